"""Deployment API of the simulator, driven over HTTP (speed 0 unless a manual clock is used)."""
from __future__ import annotations

import copy
import json

import pytest

from voyager.encoding import encode_host_password
from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from voyager.sim.backend.deployer import STAGES, TOTAL
from voyager.sim.testing import SharedSim, SimHttp
from voyager.sim.walkthrough import Walk

H1, H2, H3 = "127.10.20.11", "127.10.20.12", "127.10.20.13"


@pytest.fixture
def plan():
    return build_demo_plan()


@pytest.fixture(scope="module")
def shared():
    plan = build_demo_plan()
    with Simulator(plan, speed=0, ssh=False) as s:
        yield SharedSim(s, plan)


@pytest.fixture
def sim(shared):
    """The module's simulator, put back to its undeployed state."""
    shared.restore("undeployed")
    return shared.sim


@pytest.fixture
def http(sim):
    return SimHttp(sim.endpoints)


def payload_for(sim, plan):
    walk = Walk(sim.endpoints, plan)
    return walk.deploy_payload(walk.scan())


def post_deploy(http, body, ip=H1):
    return http.deploy_api("POST", ip, "/api/v2/deployment/cluster", json=body)


def test_every_call_needs_the_fixed_token(http):
    for method, path in [("GET", "/api/v2/deployment/host"), ("GET", "/api/v2/deployment/cluster"),
                         ("POST", "/api/v2/deployment/cluster"), ("GET", "/api/v2/deployment/deploy_verify"),
                         ("GET", "/api/v2/deployment/host/deploy_status?host_ip=" + H1)]:
        r = http.request(method, H1, path, tls=False, token="0123456789abcdef0123456789abcdef")
        assert r.status_code == 401, path
        assert r.json()["ec"] == "REST_UNAUTHORIZED"
        assert http.request(method, H1, path, tls=False, token=None).status_code == 401


def test_scan_host_answers_the_planned_host(http, plan):
    body = http.deploy_api("GET", H2, "/api/v2/deployment/host").json()
    assert body["ec"] == "EOK" and body["error"] == {}
    data = body["data"]
    assert data["host_ip"] == H2 and data["status"] == "disabled" and data["product"] == "SMTXOS"
    assert data["version"] == "6.2.0" and data["patch_version"] == "P4"
    assert len(data["host_uuid"]) == 36


def test_cluster_scan_lists_undeployed_hosts(http):
    hosts = http.deploy_api("GET", H1, "/api/v2/deployment/cluster").json()["data"]["hosts"]
    assert sorted(h["host_ip"] for h in hosts) == [H1, H2, H3]


def test_cluster_scan_is_empty_over_lacp(plan):
    plan.networks.storage.bond = "balance-tcp"
    with Simulator(plan, speed=0, ssh=False) as sim:
        assert SimHttp(sim.endpoints).deploy_api("GET", H1, "/api/v2/deployment/cluster").json()["data"] == {"hosts": []}


def test_deploy_succeeds_and_verify_reports_it(sim, http, plan):
    """deploy_verify is also served over https (as the walkthrough calls it)."""
    r = post_deploy(http, payload_for(sim, plan))
    assert r.status_code == 200
    assert r.json()["data"]["msg"] == "SUCCEEDED: A new cluster deploying task is on its way now."
    # speed 0: finished at once; deploy_status is then an error body that clients must ignore
    status = http.deploy_api("GET", H1, "/api/v2/deployment/host/deploy_status", params={"host_ip": H1}).json()
    assert status["ec"] == "DEPLOY_TASK_NOT_FOUND" and status["data"] is None
    for ip in (H1, H2, H3):
        verify = http.request("GET", ip, "/api/v2/deployment/deploy_verify", tls=True, deploy_token=True).json()["data"]
        assert verify == {"is_deployed": True, "platform": "kvm"}
    assert sim.status()["deployed"] is True and sim.status()["vds"] == 2 and sim.status()["vlans"] == 1


def test_deploy_status_runs_through_the_stages(plan):
    clock = ManualClock(speed=1.0)
    with Simulator(plan, clock=clock, ssh=False) as sim:
        http = SimHttp(sim.endpoints)
        walk = Walk(sim.endpoints, plan)
        assert post_deploy(http, walk.deploy_payload(walk.scan())).status_code == 200
        seen = []
        for _ in range(len(STAGES)):
            for key in (H1, walk.deploy_payload(walk.scan())["hosts"][0]["host_ip"]):
                data = http.deploy_api("GET", H1, "/api/v2/deployment/host/deploy_status",
                                       params={"host_ip": key}).json()["data"]
                assert data["state"] == "running" and data["total_stages"] == len(STAGES)
            seen.append((data["current_stage"], data["stage_info"]))
            verify = http.deploy_api("GET", H2, "/api/v2/deployment/deploy_verify").json()["data"]
            assert verify["is_deployed"] is False
            clock.advance_real(dict(STAGES)[data["stage_info"]])
        assert [s for s, _ in seen] == list(range(1, len(STAGES) + 1))
        assert [name for _, name in seen] == [name for name, _ in STAGES]
        assert http.deploy_api("GET", H2, "/api/v2/deployment/deploy_verify").json()["data"]["is_deployed"] is True
        assert clock.now() - 1_760_000_000 == pytest.approx(TOTAL)


def test_second_deploy_while_running_is_refused(plan):
    clock = ManualClock(speed=1.0)
    with Simulator(plan, clock=clock, ssh=False) as sim:
        http = SimHttp(sim.endpoints)
        body = payload_for(sim, plan)
        assert post_deploy(http, body).status_code == 200
        r = post_deploy(http, body)
        assert r.status_code == 409 and r.json()["ec"] == "DEPLOYMENT_IN_PROGRESS"
        clock.advance_real(TOTAL)
        r = post_deploy(http, body)
        assert r.json()["ec"] == "HOST_ALREADY_DEPLOYED"


def test_deploy_failure_fault_leaves_hosts_undeployed_and_allows_a_retry(plan):
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:DEPLOY_CLUSTER:1") as sim:
        http = SimHttp(sim.endpoints)
        body = payload_for(sim, plan)
        assert post_deploy(http, body).status_code == 200
        assert http.deploy_api("GET", H1, "/api/v2/deployment/deploy_verify").json()["data"]["is_deployed"] is False
        assert sim.status()["deployed"] is False
        assert post_deploy(http, body).status_code == 200
        assert sim.status()["deployed"] is True


def mutate(body, path, value):
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


BAD_PAYLOADS = [
    (("cluster_name",), KeyError, "cluster_name"),
    (("platform",), "vmware", "platform"),
    (("vhost_enabled",), "yes", "vhost_enabled"),
    (("hosts",), [], "hosts"),
    (("dns_server",), "127.0.0.1", "dns_server"),
    (("hosts", 0, "host_uuid"), "00000000-0000-4000-8000-000000000000", "hosts[0].host_uuid"),
    (("hosts", 0, "host_ip"), "127.10.20.11", "hosts[0].host_ip"),
    (("hosts", 0, "host_ip"), "fe80::1%ens192", "hosts[0].host_ip"),
    (("hosts", 0, "host_passwords"), [{"user": "root", "password": "c+G6KvJYsKyQyY4U"}], "hosts[0].host_passwords"),
    (("hosts", 0, "host_passwords", 0, "password"), "bm90IGRlY29kYWJsZSBhdCBhbGw=", "hosts[0].host_passwords"),
    (("hosts", 0, "host_passwords", 0, "password"), "%%%", "hosts[0].host_passwords"),
    (("hosts", 0, "ifaces", 0, "ip"), "127.10.20.99", "hosts[0].ifaces"),
    (("hosts", 0, "disks", 0, "drive"), "sdz", "hosts[0].disks"),
    (("hosts", 0, "disks"), [], "hosts[0].disks"),
    (("vdses", 0, "bond_mode"), "lacp", "vdses"),
    (("networks", 0, "attached_vds"), "nope", "networks"),
    (("networks", 0, "network_type"), "bogus", "networks"),
    (("ntp", "mode"), "sometimes", "ntp.mode"),
]


@pytest.mark.parametrize("path,value,field", BAD_PAYLOADS, ids=[f"{'.'.join(map(str, p))}" for p, _, _ in BAD_PAYLOADS])
def test_deploy_validation_errors(sim, http, plan, path, value, field):
    body = mutate(copy.deepcopy(payload_for(sim, plan)), path, value)
    r = post_deploy(http, body)
    assert r.status_code == 400
    out = r.json()
    assert out["ec"] == "REST_FORM_ERROR" and out["data"] is None
    assert field in out["error"]["detail"], out
    assert sim.status()["deployed"] is False


def test_deploy_rejects_invalid_json_and_a_foreign_zone(sim, http, plan):
    r = http.request("POST", H1, "/api/v2/deployment/cluster", tls=False, deploy_token=True, data="{not json",
                     headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["ec"] == "REST_FORM_ERROR"
    body = payload_for(sim, plan)
    body["hosts"][1]["host_ip"] = body["hosts"][1]["host_ip"].split("%")[0] + "%eth9"
    assert "hosts[1].host_ip" in post_deploy(http, body).json()["error"]["detail"]


def test_deploy_must_include_the_receiving_host(sim, http, plan):
    body = payload_for(sim, plan)
    body["hosts"] = body["hosts"][1:]
    for v in body["vdses"]:
        v["hosts_associated"] = v["hosts_associated"][1:]
    for n in body["networks"]:
        n["network_config"]["service"] = n["network_config"]["service"][1:]
    r = post_deploy(http, body, ip=H1)
    assert r.status_code == 400 and "hosts" in r.json()["error"]["detail"]
    assert post_deploy(http, body, ip=H2).status_code == 200
    verify = http.deploy_api("GET", H1, "/api/v2/deployment/deploy_verify").json()["data"]
    assert verify["is_deployed"] is False  # H1 was left out


def test_encoded_default_password_is_what_the_walkthrough_sends(sim, http, plan):
    body = payload_for(sim, plan)
    assert body["hosts"][0]["host_passwords"][0]["password"] == "c+G6KvJYsKyQyY4U"
    body["hosts"][0]["host_passwords"][0]["password"] = encode_host_password("111111")
    assert post_deploy(http, body).status_code == 200
    assert sim.world.check_login(H1, "root", "111111")
    assert sim.world.check_login(H1, "smartx", "P@ssw0rd!123")
    assert not sim.world.check_login(H1, "root", "P@ssw0rd!123")


def test_missing_and_down_nics_are_refused(plan):
    overrides = {H2: {"missing_nics": ["ens224"]}, H3: {"down_nics": ["ens161"]}}
    with Simulator(plan, speed=0, ssh=False, host_overrides=overrides) as sim:
        http = SimHttp(sim.endpoints)
        body = payload_for(sim, plan)
        r = post_deploy(http, body)
        assert r.json()["ec"] == "NETWORK_NIC_NOT_FOUND" and "ens224" in r.json()["error"]["msg"]
        sim.world.hosts[H2].ifaces.append(dict(sim.world.hosts[H1].iface("ens224"), name="ens224"))
        r = post_deploy(http, body)
        assert r.json()["ec"] == "NETWORK_NIC_LINK_DOWN" and "ens161" in r.json()["error"]["msg"]


def test_already_deployed_host_override(plan):
    with Simulator(plan, speed=0, ssh=False, host_overrides={H3: {"deployed": True, "version": "6.1.0"}}) as sim:
        http = SimHttp(sim.endpoints)
        scan = http.deploy_api("GET", H3, "/api/v2/deployment/host").json()["data"]
        assert scan["status"] == "enabled" and scan["version"] == "6.1.0" and scan["patch_version"] == ""
        assert http.deploy_api("GET", H3, "/api/v2/deployment/deploy_verify").json()["data"]["is_deployed"] is True
        cluster_scan = http.deploy_api("GET", H1, "/api/v2/deployment/cluster").json()["data"]["hosts"]
        assert H3 not in [h["host_ip"] for h in cluster_scan]
        walk = Walk(sim.endpoints, plan)
        scans = {h.mgmt_ip: http.deploy_api("GET", h.mgmt_ip, "/api/v2/deployment/host").json()["data"]
                 for h in plan.hosts}
        r = post_deploy(http, walk.deploy_payload(scans))
        assert r.json()["ec"] == "HOST_ALREADY_DEPLOYED"


def test_deploy_status_requires_host_ip(http):
    r = http.deploy_api("GET", H1, "/api/v2/deployment/host/deploy_status")
    assert r.status_code == 400 and "host_ip" in r.json()["error"]["detail"]


def test_payload_from_the_suite_builder_is_accepted(sim, http, plan):
    deploy_steps = pytest.importorskip("voyager.steps.deploy")
    scans = {h.mgmt_ip: http.deploy_api("GET", h.mgmt_ip, "/api/v2/deployment/host").json()["data"]
             for h in plan.hosts}
    r = post_deploy(http, json.loads(json.dumps(deploy_steps.build_payload(plan, scans))))
    assert r.status_code == 200, r.text
