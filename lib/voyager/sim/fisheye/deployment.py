"""Deployment API front-end (``/api/v2/deployment/*`` on every planned host).

Every call needs the fixed pre-deployment token
``x-smartx-token: e79b85fc18b7402fbcc0391fe8d7d24c`` (401 otherwise).

* ``GET  /api/v2/deployment/host`` — this host's scan.
* ``GET  /api/v2/deployment/cluster`` — the layer-2 scan through the storage
  NICs: every undeployed planned host, or ``hosts: []`` when the storage
  network is LACP-bonded (``balance-tcp``) or on a VLAN sub-interface, as the
  walkthrough warns (“扫描不到其他主机的，会无返回值”).
* ``POST /api/v2/deployment/cluster`` — validated as described in
  :mod:`voyager.sim.backend.deployer`; ``data.msg`` is the ``SUCCEEDED: ...`` sentence.
* ``GET  /api/v2/deployment/host/deploy_status?host_ip=`` — stages while
  running; once the deployment is over (or none runs) the body is an error
  (HTTP 200, ``ec: DEPLOY_TASK_NOT_FOUND``) — clients must then read
  ``deploy_verify``.
* ``GET  /api/v2/deployment/deploy_verify`` — ``{is_deployed, platform}``.
"""
from __future__ import annotations

from werkzeug.routing import Map, Rule

from voyager.sim.backend.errors import SimError, form_error
from voyager.sim.fisheye.base import TOKEN_HEADER, SmartxFrontend, ok, require_fields, str_arg

DEPLOYMENT_TOKEN = "e79b85fc18b7402fbcc0391fe8d7d24c"

PAYLOAD = {"platform": (str,), "cluster_name": (str,), "dns_server": (list,), "vdses": (list,),
           "networks": (list,), "hosts": (list,), "ntp": (dict,), "vhost_enabled": (bool,),
           "rdma_enabled": (bool,)}
HOST_ENTRY = {"host_ip": (str,), "host_uuid": (str,), "hostname": (str,), "host_passwords": (list,),
              "ifaces": (list,), "disks": (list,)}
VDS_ENTRY = {"name": (str,), "bond_mode": (str,), "hosts_associated": (list,)}
NETWORK_ENTRY = {"name": (str,), "attached_vds": (str,), "network_type": (str,), "network_config": (dict,),
                 "mode": (dict,)}


def validate_payload_types(body) -> None:
    require_fields(body, PAYLOAD)
    if body["platform"] != "kvm":
        raise form_error("platform", "only kvm is supported")
    if not body["cluster_name"].strip():
        raise form_error("cluster_name", "must not be empty")
    if not body["hosts"]:
        raise form_error("hosts", "must not be empty")
    for i, entry in enumerate(body["hosts"]):
        require_fields(entry, HOST_ENTRY, f"hosts[{i}].")
        for k, pw in enumerate(entry["host_passwords"]):
            require_fields(pw, {"user": (str,), "password": (str,)}, f"hosts[{i}].host_passwords[{k}].")
        for k, disk in enumerate(entry["disks"]):
            require_fields(disk, {"drive": (str,), "function": (str,)}, f"hosts[{i}].disks[{k}].")
        for k, iface in enumerate(entry["ifaces"]):
            require_fields(iface, {"ip": (str,), "function": (str,)}, f"hosts[{i}].ifaces[{k}].")
    for i, vds in enumerate(body["vdses"]):
        require_fields(vds, VDS_ENTRY, f"vdses[{i}].")
        for k, a in enumerate(vds["hosts_associated"]):
            require_fields(a, {"host_uuid": (str,), "nics_associated": (list,)}, f"vdses[{i}].hosts_associated[{k}].")
    for i, net in enumerate(body["networks"]):
        require_fields(net, NETWORK_ENTRY, f"networks[{i}].")
    require_fields(body["ntp"], {"mode": (str,)}, "ntp.")
    for dns in body["dns_server"]:
        if not isinstance(dns, str):
            raise form_error("dns_server", "must be a list of strings")


class DeploymentFrontend(SmartxFrontend):
    kinds = ("host",)
    url_map = Map([
        Rule("/api/v2/deployment/host", methods=["GET"], endpoint="scan_host"),
        Rule("/api/v2/deployment/cluster", methods=["GET"], endpoint="scan_cluster"),
        Rule("/api/v2/deployment/cluster", methods=["POST"], endpoint="deploy"),
        Rule("/api/v2/deployment/host/deploy_status", methods=["GET"], endpoint="deploy_status"),
        Rule("/api/v2/deployment/deploy_verify", methods=["GET"], endpoint="deploy_verify"),
    ])

    def check_token(self, request, machine):
        if request.headers.get(TOKEN_HEADER) != DEPLOYMENT_TOKEN:
            return SimError("REST_UNAUTHORIZED", "invalid deployment token", status=401)
        return None

    def scan_host(self, request, machine):
        with self.world.lock:
            return ok(machine.host.scan())

    def scan_cluster(self, request, machine):
        storage = self.world.plan.networks.storage
        with self.world.lock:
            if (storage.bond or "").lower() == "balance-tcp" or (storage.vlan or 0) != 0:
                return ok({"hosts": []})
            return ok({"hosts": [h.scan() for h in self.world.hosts.values() if not h.deployed]})

    def deploy(self, request, machine):
        body = self.json_body(request)
        validate_payload_types(body)
        with self.world.lock:
            msg = self.world.deployer.start(machine.host, body)
            self.world.warm_up()
            self.world.changed()
        return ok({"msg": msg})

    def deploy_status(self, request, machine):
        query = str_arg(request, "host_ip")
        with self.world.lock:
            return ok(self.world.deployer.status(query))

    def deploy_verify(self, request, machine):
        with self.world.lock:
            return ok(self.world.deployer.verify(machine.host))


FRONTENDS = [DeploymentFrontend]
