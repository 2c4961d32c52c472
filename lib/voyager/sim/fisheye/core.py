"""Fisheye (SMTX OS management API) front-end: users/sessions, settings,
license, IPMI, hosts, storage policies, CPU compatibility and jobs.

Served on every deployed host and on the VIP once it is set. Before the host
belongs to the deployed cluster every fisheye path answers 404
``REST_NOT_FOUND``.

``/api/v3`` (bare JSON, grpc-gateway errors):

* ``POST /api/v3/users:setupRoot {password, repeat, encrypted: false}`` →
  the root user (shape of api-samples/setup-root-response.json); a second call
  answers 409 ``{"code": 6, "message": "root user has already been set up"}``
  — the real API refuses to set root up twice; clients treat it as done.
* ``POST /api/v3/sessions {username, password, encrypted: false}`` →
  ``{user_id, token, create_time, expire_time (+7 days), update_time}``;
  before setupRoot: 400 ``code 9`` (FAILED_PRECONDITION); wrong password: 401.
* ``DELETE /api/v3/sessions`` (token header) logs the session out.

``/api/v2`` needs ``x-smartx-token`` of a live session, else HTTP 401
``ec: REST_UNAUTHORIZED``. IPMI: an account is valid (``success``) only for a
planned BMC address in 127.0.0.0/8 with the plan's BMC user and password;
anything else is ``failure`` with ``is_valid: false`` (the simulator cannot
reach a real BMC).
"""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from voyager.sim.backend.cluster import CPU_MODELS, RECOMMENDED_CPU_MODELS
from voyager.sim.backend.errors import SimError, form_error, not_found
from voyager.sim.fisheye.base import TOKEN_HEADER, SmartxFrontend, locked, ok, public, require_fields
from voyager.sim.web.frontend import json_response


class FisheyeFrontend(SmartxFrontend):
    """Base of the fisheye front-ends: cluster membership and session checks."""

    kinds = ("host", "vip")

    def available(self, machine):
        cluster = self.world.cluster
        if cluster is None or machine.host is None or machine.host.mgmt_ip not in cluster.host_ips:
            return SimError("REST_NOT_FOUND", "the management API is not available on an undeployed host", status=404)
        return None

    def check_token(self, request, machine):
        if self.world.cluster.session(request.headers.get(TOKEN_HEADER), self.world.clock.now()) is None:
            return SimError("REST_UNAUTHORIZED", "invalid or expired token", status=401)
        return None


class FisheyeCore(FisheyeFrontend):
    url_map = Map([
        Rule("/api/v3/users:setupRoot", methods=["POST"], endpoint="setup_root"),
        Rule("/api/v3/sessions", methods=["POST"], endpoint="login"),
        Rule("/api/v3/sessions", methods=["DELETE"], endpoint="logout"),
        Rule("/api/v2/settings/<any(vip, dns, ntp):what>", methods=["PUT"], endpoint="put_setting"),
        Rule("/api/v2/settings/<any(vip, dns, ntp):what>", methods=["GET"], endpoint="get_setting"),
        Rule("/api/v2/tools/license", methods=["GET"], endpoint="license"),
        Rule("/api/v2/ipmi/upsert_accounts", methods=["POST"], endpoint="upsert_ipmi"),
        Rule("/api/v2/ipmi/accounts", methods=["GET"], endpoint="ipmi_accounts"),
        Rule("/api/v2/hosts", methods=["GET"], endpoint="hosts"),
        Rule("/api/v2/storage_policies", methods=["GET"], endpoint="storage_policies"),
        Rule("/api/v2/elf/cluster_recommended_cpu_models", methods=["GET"], endpoint="recommended_cpu"),
        Rule("/api/v2/elf/cluster_cpu_compatibility", methods=["GET"], endpoint="get_cpu_compat"),
        Rule("/api/v2/elf/cluster_cpu_compatibility", methods=["PUT"], endpoint="put_cpu_compat"),
        Rule("/api/v2/jobs/<job_id>", methods=["GET"], endpoint="job"),
    ])

    # -- /api/v3 ----------------------------------------------------------------------------
    @public
    @locked
    def setup_root(self, request, machine):
        body = self.json_body(request)
        try:
            require_fields(body, {"password": (str,), "repeat": (str,)})
        except SimError as exc:
            raise SimError("INVALID_ARGUMENT", exc.msg + ": " + ", ".join(exc.detail)) from None
        if body.get("encrypted"):
            raise SimError("INVALID_ARGUMENT", "encrypted passwords are not supported by the simulator")
        self.world.cluster.setup_root(body["password"], body["repeat"])
        return json_response({"id": "root", "username": "root", "password": "", "email": "root@test.com",
                              "role": "ROOT", "annotation": "", "auth_provider_id": "local"})

    @public
    @locked
    def login(self, request, machine):
        body = self.json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
                or not isinstance(body.get("password"), str):
            raise SimError("INVALID_ARGUMENT", "username and password are required")
        if body.get("encrypted"):
            raise SimError("INVALID_ARGUMENT", "encrypted passwords are not supported by the simulator")
        return json_response(self.world.cluster.login(body["username"], body["password"], self.world.clock.now()))

    @public
    @locked
    def logout(self, request, machine):
        token = request.headers.get(TOKEN_HEADER) or ""
        if not token or not self.world.cluster.logout(token):
            raise SimError("UNAUTHENTICATED", "invalid or expired token", status=401)
        return json_response({})

    # -- settings ---------------------------------------------------------------------------------
    @locked
    def put_setting(self, request, machine, what):
        body = self.json_body(request)
        if not isinstance(body, dict):
            raise form_error("body", "must be a JSON object")
        return ok({"job_id": self.world.settings_job(what, body)})

    def get_setting(self, request, machine, what):
        with self.world.lock:
            c = self.world.cluster
            data = {"vip": {"management_vip": c.vip, "iscsi_vip": c.iscsi_vip},
                    "dns": {"dns_servers": list(c.dns_servers)},
                    "ntp": {"ntp_mode": c.ntp_mode, "ntp_servers": list(c.ntp_servers)}}[what]
            return ok(data)

    def license(self, request, machine):
        with self.world.lock:
            return ok(self.world.cluster.license())

    # -- IPMI -------------------------------------------------------------------------------------
    @locked
    def upsert_ipmi(self, request, machine):
        body = self.json_body(request)
        require_fields(body, {"accounts": (list,)})
        for i, acc in enumerate(body["accounts"]):
            require_fields(acc, {"node_uuid": (str,), "host": (str,), "user": (str,), "password": (str,)},
                           f"accounts[{i}].")
        return ok(self.world.cluster.upsert_ipmi(body["accounts"], self.world))

    def ipmi_accounts(self, request, machine):
        with self.world.lock:
            return ok([dict(a) for a in self.world.cluster.ipmi_accounts])

    # -- hosts, storage, CPU ---------------------------------------------------------------------
    def hosts(self, request, machine):
        with self.world.lock:
            out = []
            for ip in self.world.cluster.host_ips:
                h = self.world.hosts[ip]
                out.append({"host_uuid": h.uuid, "hostname": h.hostname, "management_ip": h.mgmt_ip,
                            "data_ip": h.storage_ip, "sn": h.sn, "version": h.version, "status": "running",
                            "is_master": ip == self.world.cluster.master_ip})
            return ok(out)

    def storage_policies(self, request, machine):
        with self.world.lock:
            return ok([dict(p) for p in self.world.cluster.storage_policies])

    def recommended_cpu(self, request, machine):
        return ok({"cpu_models": list(RECOMMENDED_CPU_MODELS)})

    def get_cpu_compat(self, request, machine):
        with self.world.lock:
            return ok({"cpu_model": self.world.cluster.cpu_model, "cpu_models": list(CPU_MODELS)})

    @locked
    def put_cpu_compat(self, request, machine):
        body = self.json_body(request)
        require_fields(body, {"cpu_model": (str,)})
        self.world.cluster.set_cpu_model(body["cpu_model"])
        return ok({"cpu_model": self.world.cluster.cpu_model})

    # -- jobs --------------------------------------------------------------------------------------
    def job(self, request, machine, job_id):
        with self.world.lock:
            job = self.world.jobs.get(job_id)
            if job is None:
                raise not_found("job", job_id)
            return ok({"job": self.world.jobs.render(job)})


FRONTENDS = [FisheyeCore]
