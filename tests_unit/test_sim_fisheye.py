"""Fisheye /api/v3 and /api/v2 (users, sessions, settings, license, IPMI, hosts,
storage policies, CPU compatibility, jobs) of the simulator, over HTTP at speed 0."""
from __future__ import annotations

import pytest

from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from sim_support import http, plan, shared, sim  # noqa: F401 (fixtures)
from voyager.sim.testing import SimHttp

H1, H2, VIP = "127.10.20.11", "127.10.20.12", "127.10.20.10"
PW = "P@ssw0rd!123"


@pytest.fixture
def undeployed(shared):
    shared.restore("undeployed")
    return shared.sim


@pytest.fixture
def raw(shared):
    """Deployed, root not set up, no session."""
    return shared.restore("deployed")


def login(http, ip=H1, password=PW, user="root"):
    return http.post(ip, "/api/v3/sessions", json={"username": user, "password": password, "encrypted": False},
                     token=None)


def test_fisheye_is_absent_before_deployment(undeployed):
    sim = undeployed
    r = SimHttp(sim.endpoints).post(H1, "/api/v3/users:setupRoot", json={"password": PW, "repeat": PW})
    assert r.status_code == 404
    r = SimHttp(sim.endpoints).get(H1, "/api/v2/tools/license", token="x" * 32)
    assert r.status_code == 404 and r.json()["ec"] == "REST_NOT_FOUND"


def test_login_before_setup_root_fails(raw):
    r = login(raw)
    assert r.status_code == 400
    assert r.json() == {"code": 9, "message": "root user has not been set up yet", "details": []}


def test_setup_root_then_login_then_logout(raw):
    r = raw.post(H1, "/api/v3/users:setupRoot", json={"password": PW, "repeat": PW, "encrypted": False}, token=None)
    assert r.status_code == 200
    assert r.json()["username"] == "root" and r.json()["role"] == "ROOT" and r.json()["password"] == ""
    again = raw.post(H2, "/api/v3/users:setupRoot", json={"password": PW, "repeat": PW, "encrypted": False}, token=None)
    assert again.status_code == 409 and again.json()["code"] == 6
    assert login(raw, password="wrong").status_code == 401
    assert login(raw, user="admin").status_code == 401
    session = login(raw, ip=H2).json()
    assert set(session) == {"user_id", "token", "create_time", "expire_time", "update_time"}
    assert session["user_id"] == "root" and len(session["token"]) == 32
    assert session["expire_time"][:10] > session["create_time"][:10]
    token = session["token"]
    assert raw.get(H1, "/api/v2/tools/license", token=token).status_code == 200  # any cluster host
    assert raw.delete(H1, "/api/v3/sessions", token=token).json() == {}
    assert raw.get(H1, "/api/v2/tools/license", token=token).status_code == 401
    assert raw.delete(H1, "/api/v3/sessions", token=token).status_code == 401


@pytest.mark.parametrize("body,status", [
    ({"password": PW, "repeat": "other"}, 400),
    ({"password": "", "repeat": ""}, 400),
    ({"password": PW}, 400),
    ({"password": PW, "repeat": PW, "encrypted": True}, 400),
])
def test_setup_root_validation(raw, body, status):
    r = raw.post(H1, "/api/v3/users:setupRoot", json=body, token=None)
    assert r.status_code == status and r.json()["code"] == 3


def _fisheye_routes():
    """(method, concrete path, public) of every fisheye rule (converters filled with sample values)."""
    import re

    from voyager.sim.fisheye.core import FisheyeCore
    from voyager.sim.fisheye.images import FisheyeImages
    from voyager.sim.fisheye.resources import FisheyeNetwork, FisheyeVms

    out = []
    for cls in (FisheyeCore, FisheyeNetwork, FisheyeVms, FisheyeImages):
        for rule in cls.url_map.iter_rules():
            path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", rule.rule)
            path = re.sub(r"<[^>]+>", "00000000-0000-4000-8000-000000000000", path)
            public = getattr(getattr(cls, rule.endpoint), "public", False)
            out += [(m, path, public) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


FISHEYE_ROUTES = _fisheye_routes()


@pytest.mark.parametrize("method,path,public", FISHEYE_ROUTES, ids=[f"{m} {p}" for m, p, _ in FISHEYE_ROUTES])
def test_every_fisheye_route_checks_its_token(http, method, path, public):
    for token in (None, "0" * 32):
        r = http.request(method, VIP, path, token=token, json={})
        if public:  # setupRoot / sessions: answered (refused for their own reasons), never 401 for a missing token
            assert r.status_code != 401 or path == "/api/v3/sessions" and method == "DELETE", (method, path)
        else:
            assert r.status_code == 401 and r.json()["ec"] == "REST_UNAUTHORIZED", (method, path, token)


@pytest.mark.parametrize("method,path,public", FISHEYE_ROUTES, ids=[f"{m} {p}" for m, p, _ in FISHEYE_ROUTES])
def test_no_fisheye_route_before_deployment(undeployed, method, path, public):
    r = SimHttp(undeployed.endpoints).request(method, H1, path, token="0" * 32, json={})
    assert r.status_code == 404, (method, path)


def test_v2_needs_a_session_token(http):
    for path in ("/api/v2/tools/license", "/api/v2/network/vds", "/api/v2/images", "/api/v2/vms",
                 "/api/v2/storage_policies", "/api/v2/jobs/nope"):
        r = http.get(VIP, path, token="0" * 32)
        assert r.status_code == 401 and r.json()["ec"] == "REST_UNAUTHORIZED", path
        assert http.get(VIP, path, token=None).status_code == 401


def test_settings_jobs_apply(http, plan, sim):
    assert http.get(VIP, "/api/v2/settings/vip").json()["data"] == {"management_vip": VIP, "iscsi_vip": None}
    assert http.get(VIP, "/api/v2/settings/dns").json()["data"] == {"dns_servers": ["127.10.0.114", "127.10.0.1"]}
    assert http.get(VIP, "/api/v2/settings/ntp").json()["data"] == {
        "ntp_mode": "external", "ntp_servers": ["127.10.0.2", "127.10.0.3", "ntp.demo.local"]}


@pytest.mark.parametrize("what,body,field", [
    ("vip", {"management_vip": "not-an-ip"}, "management_vip"),
    ("vip", {"management_vip": "127.99.0.1"}, "management_vip"),
    ("vip", {"management_vip": VIP, "iscsi_vip": "x"}, "iscsi_vip"),
    ("dns", {"dns_servers": ["dns.example"]}, "dns_servers"),
    ("dns", {"dns_servers": []}, "dns_servers"),
    ("ntp", {"ntp_mode": "sometimes", "ntp_servers": []}, "ntp_mode"),
    ("ntp", {"ntp_mode": "external", "ntp_servers": []}, "ntp_servers"),
])
def test_settings_validation(http, what, body, field):
    r = http.put(VIP, f"/api/v2/settings/{what}", json=body)
    assert r.status_code == 400 and r.json()["ec"] == "REST_FORM_ERROR"
    assert field in r.json()["error"]["detail"]


def test_vip_answers_only_once_its_job_is_done(plan):
    clock = ManualClock(speed=1.0)
    with Simulator(plan, clock=clock, ssh=False) as sim:
        # deploy with the clock running, then set the VIP
        from voyager.sim.backend.deployer import TOTAL
        from voyager.sim.walkthrough import Walk
        walk = Walk(sim.endpoints, plan)
        http = SimHttp(sim.endpoints)
        http.deploy_api("POST", H1, "/api/v2/deployment/cluster", json=walk.deploy_payload(walk.scan()))
        clock.advance_real(TOTAL)
        http.token = walk.login_root()
        job_id = http.put(H1, "/api/v2/settings/vip", json={"management_vip": VIP, "iscsi_vip": None}).json()["data"]["job_id"]
        job = http.get(H1, f"/api/v2/jobs/{job_id}").json()["data"]["job"]
        assert job["state"] == "pending" and job["description"] == "UPDATE_VIP"
        r = http.get(VIP, "/api/v2/tools/license")
        assert r.status_code == 502 and r.headers["X-Sim-Unreachable"] == "1"
        assert http.sim("/__sim__/reachable", ip=VIP, port=443) == {"open": False}
        clock.advance_real(1.5)
        assert http.get(H1, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "processing"
        clock.advance_real(10)
        assert http.get(H1, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "done"
        assert http.get(VIP, "/api/v2/tools/license").status_code == 200
        assert http.sim("/__sim__/reachable", ip=VIP, port=443) == {"open": True}


def test_license(http, sim):
    data = http.get(VIP, "/api/v2/tools/license").json()["data"]
    assert data["serial"] == sim.world.cluster.serial and len(data["serial"]) == 36
    assert data["license_type"] == "TRIAL" and data["software_edition"] == "ENTERPRISE"
    assert data["period"] == 2592000 and isinstance(data["sign_date"], int)


def test_ipmi_accounts_valid_only_with_the_plan_credentials(http, plan):
    hosts = http.get(VIP, "/api/v2/hosts").json()["data"]
    assert [h["management_ip"] for h in hosts] == [h.mgmt_ip for h in plan.hosts]
    h0, h1 = plan.hosts[0], plan.hosts[1]
    accounts = [
        {"node_name": h0.name, "host": h0.bmc_ip, "user": h0.bmc_user, "node_uuid": hosts[0]["host_uuid"],
         "password": h0.bmc_password.reveal()},
        {"node_name": h1.name, "host": h1.bmc_ip, "user": h1.bmc_user, "node_uuid": hosts[1]["host_uuid"],
         "password": "wrong"},
        {"node_name": h1.name, "host": "10.0.1.12", "user": h1.bmc_user, "node_uuid": hosts[1]["host_uuid"],
         "password": h1.bmc_password.reveal()},
    ]
    data = http.post(VIP, "/api/v2/ipmi/upsert_accounts", json={"accounts": accounts}).json()["data"]
    assert [a["host"] for a in data["success"]] == [h0.bmc_ip]
    assert data["success"][0]["is_valid"] is True and data["success"][0]["port"] == 623
    assert [(a["host"], a["is_valid"], a["interface"]) for a in data["failure"]] == [
        (h1.bmc_ip, False, None), ("10.0.1.12", False, None)]
    listed = http.get(VIP, "/api/v2/ipmi/accounts").json()["data"]
    assert all("password" not in a for a in listed)
    bad = http.post(VIP, "/api/v2/ipmi/upsert_accounts", json={"accounts": [dict(accounts[0], node_uuid="nope")]})
    assert bad.status_code == 400 and "accounts" in bad.json()["error"]["detail"]
    assert http.post(VIP, "/api/v2/ipmi/upsert_accounts", json={"accounts": [{"host": "x"}]}).status_code == 400


def test_storage_policies(http, plan):
    policies = http.get(VIP, "/api/v2/storage_policies").json()["data"]
    assert len(policies) == 1 and policies[0]["name"] == "default" and policies[0]["replica_num"] == 2
    assert policies[0]["thin_provision"] is True
    assert policies[0]["whitelist"] == ",".join(h.storage_ip for h in plan.hosts)


def test_cpu_compatibility(http):
    assert http.get(VIP, "/api/v2/elf/cluster_recommended_cpu_models").json()["data"] == {"cpu_models": ["EPYC"]}
    assert http.get(VIP, "/api/v2/elf/cluster_cpu_compatibility").json()["data"]["cpu_model"] is None
    assert http.put(VIP, "/api/v2/elf/cluster_cpu_compatibility", json={"cpu_model": "EPYC"}).json()["data"] == {
        "cpu_model": "EPYC"}
    assert http.get(VIP, "/api/v2/elf/cluster_cpu_compatibility").json()["data"]["cpu_model"] == "EPYC"
    r = http.put(VIP, "/api/v2/elf/cluster_cpu_compatibility", json={"cpu_model": "Skylake"})
    assert r.status_code == 400 and "cpu_model" in r.json()["error"]["detail"]


def test_unknown_job_and_unknown_path_and_method(http):
    r = http.get(VIP, "/api/v2/jobs/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["ec"] == "REST_NOT_FOUND"
    assert http.get(VIP, "/api/v2/no/such/thing").status_code == 404
    r = http.request("PATCH", VIP, "/api/v2/tools/license")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_bad_json_body_is_a_form_error(http):
    r = http.request("PUT", VIP, "/api/v2/settings/dns", data="{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["ec"] == "REST_FORM_ERROR"
