"""Simulator serving: addressing by Host header, unreachable machines, /__sim__/,
TLS, start time, loopback-only sockets, and every HTTP fault kind."""
from __future__ import annotations

import os
import socket
import ssl
import time

import pytest
import requests

from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.backend.faults import FaultSpecError, Faults, parse_faults
from voyager.sim.testing import SimHttp, deployed
from voyager.sim.walkthrough import WalkError

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

H1, VIP, TOWER = "127.10.20.11", "127.10.20.10", "127.10.20.2"


@pytest.fixture
def plan():
    return build_demo_plan()


@pytest.fixture
def sim(plan):
    with Simulator(plan, speed=0, ssh=False) as s:
        yield s


def test_starts_in_under_two_seconds(plan):
    t0 = time.monotonic()
    sim = Simulator(plan, speed=0).start()
    try:
        elapsed = time.monotonic() - t0
        assert requests.get(sim.endpoints["http"] + "/__sim__/state", timeout=5).status_code == 200
    finally:
        sim.stop()
    assert elapsed < 2.0, elapsed


def _listening_sockets_of_this_process() -> list[tuple[str, int]]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, family in (("/proc/self/net/tcp", socket.AF_INET), ("/proc/self/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        with open(table) as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in inodes:  # 0A = LISTEN
                    continue
                addr_hex, port_hex = local.split(":")
                raw = bytes.fromhex(addr_hex)
                if family == socket.AF_INET:
                    addr = socket.inet_ntop(family, raw[::-1])
                else:
                    addr = socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                found.append((addr, int(port_hex, 16)))
    return found


def test_every_listening_socket_is_on_loopback(plan):
    before = set(_listening_sockets_of_this_process())
    with Simulator(plan, speed=0) as sim:  # with SSH when the SSH front-end exists
        opened = set(_listening_sockets_of_this_process()) - before
        ports = {int(sim.endpoints["http"].rsplit(":", 1)[1]), int(sim.endpoints["https"].rsplit(":", 1)[1]),
                 *sim.endpoints["ssh"].values()}
        assert {p for _, p in opened} >= ports
        assert opened and all(addr.startswith("127.") for addr, _ in opened), opened
        for url in (sim.endpoints["http"], sim.endpoints["https"]):
            assert url.startswith(("http://127.0.0.1:", "https://127.0.0.1:"))


def test_machine_selection_and_unreachable_addresses(sim):
    http = SimHttp(sim.endpoints)
    assert http.deploy_api("GET", H1, "/api/v2/deployment/host").json()["data"]["host_ip"] == H1
    r = http.request("GET", H1 + ":80", "/api/v2/deployment/host", deploy_token=True)
    assert r.json()["data"]["host_ip"] == H1
    for ip in (VIP, TOWER, "127.99.99.99", "10.0.20.11"):  # planned but down / not planned at all
        r = http.deploy_api("GET", ip, "/api/v2/deployment/host")
        assert r.status_code == 502 and r.headers["X-Sim-Unreachable"] == "1", ip
    r = http.deploy_api("GET", H1 + ":8443", "/api/v2/deployment/host")
    assert r.status_code == 502
    assert http.deploy_api("GET", H1, "/api/v2/nothing/here").status_code == 404


def test_sim_paths(sim):
    http = SimHttp(sim.endpoints)
    assert http.sim("/__sim__/state") == sim.status()
    assert http.sim("/__sim__/endpoints") == sim.endpoints
    assert http.sim("/__sim__/reachable", ip=H1, port=22) == {"open": True}
    assert http.sim("/__sim__/reachable", ip=H1, port=443) == {"open": True}
    assert http.sim("/__sim__/reachable", ip=H1, port=8080) == {"open": False}
    assert http.sim("/__sim__/reachable", ip=VIP, port=443) == {"open": False}
    assert http.sim("/__sim__/reachable", ip=TOWER, port=22) == {"open": False}
    r = requests.get(sim.endpoints["http"] + "/__sim__/reachable", params={"ip": H1, "port": "x"}, timeout=5)
    assert r.status_code == 400
    assert requests.get(sim.endpoints["http"] + "/__sim__/nope", timeout=5).status_code == 404


def test_tls_is_a_self_signed_certificate_covering_the_planned_addresses(sim, plan, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(sim.certificate_pem)
    r = requests.get(sim.endpoints["https"] + "/api/v2/deployment/host",
                     headers={"Host": H1, "x-smartx-token": "e79b85fc18b7402fbcc0391fe8d7d24c"}, verify=str(bundle),
                     timeout=10)
    assert r.status_code == 200
    port = int(sim.endpoints["https"].rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=str(bundle))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=H1) as tls:  # SAN includes the planned management IP
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_a_silent_tls_client_does_not_block_others(sim):
    port = int(sim.endpoints["https"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        http = SimHttp(sim.endpoints)
        assert http.request("GET", H1, "/api/v2/deployment/host", tls=True, deploy_token=True,
                            timeout=5).status_code == 200


# -- faults ------------------------------------------------------------------------------------------------
def test_fault_grammar():
    rules = parse_faults("http-500:/api/v3/users:setupRoot:2, slow:/api/v2/*:1,fail-job:VM_CREATE:3")
    assert [(r.kind, r.target, r.count) for r in rules] == [
        ("http-500", "/api/v3/users:setupRoot", 2), ("slow", "/api/v2/*", 1), ("fail-job", "VM_CREATE", 3)]
    assert parse_faults("") == [] and parse_faults(None) == []
    for bad in ("http-500", "http-500:/x", "boom:/x:1", "http-500:/x:0", "http-500:/x:many", "http-500::1"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_fault_grammar_methods_and_ssh_kinds():
    rules = parse_faults("http-500:POST /api/v2/network/vds:1,slow:get /api/v2/jobs/*:2,"
                         "ssh-fail:chpasswd*:1,ssh-drop:sudo -n chpasswd:2")
    assert [(r.kind, r.method, r.pattern, r.count) for r in rules] == [
        ("http-500", "POST", "/api/v2/network/vds", 1), ("slow", "GET", "/api/v2/jobs/*", 2),
        ("ssh-fail", None, "chpasswd*", 1), ("ssh-drop", None, "sudo -n chpasswd", 2)]
    assert parse_faults("http-reset:/api/v3/users:setupRoot:1")[0].method is None


@pytest.mark.parametrize("spec, says", [
    ("http-500:FETCH /api/v2/network/vds:1", "'FETCH' 不是 HTTP 方法"),
    ("http-500:POST api/v2/network/vds:1", "以 / 开头的路径"),
    ("http-500:POST:1", "以 / 开头的路径"),
    ("ssh-fail:chpasswd:0", "COUNT 必须是正整数"),
    ("ssh-drop:chpasswd", "缺少冒号分隔的 TARGET 或 COUNT"),
    ("ssh-oops:chpasswd:1", "未知的故障类型 'ssh-oops'"),
])
def test_bad_fault_specs_name_the_rule(spec, says):
    """错误的故障规则给出中文说明，并写出有问题的那一条规则和正确格式。"""
    with pytest.raises(FaultSpecError) as exc:
        parse_faults(f"fail-job:VM_CREATE:1,{spec}")
    message = str(exc.value)
    assert says in message and repr(spec) in message and "KIND:TARGET:COUNT" in message


def test_http_fault_with_a_method_spares_other_methods():
    faults = Faults("http-500:POST /api/v2/network/vds:1,http-reset:/api/v2/network/vds:1")
    assert faults.take_http("/api/v2/network/vds", "GET") == "http-reset"  # the method-less rule
    assert faults.take_http("/api/v2/network/vds", "GET") is None
    assert faults.take_http("/api/v2/network/vds", "post") == "http-500"
    assert faults.take_http("/api/v2/network/vds", "POST") is None


def test_graphql_operation_and_job_resource_targets():
    """HTTP 目标可写 路径#GraphQL操作名；fail-job 目标可写 “作业描述 资源名”，两者都不影响其他操作或资源。"""
    faults = Faults("http-500:POST /api#createRootUser:1,fail-job:VM_UPDATE voyager-test-*:1")
    assert faults.wants_operation
    assert faults.take_http("/api", "POST", "checkTowerIsSetup") is None
    assert faults.take_http("/api", "POST") is None
    assert faults.take_http("/api", "POST", "createRootUser") == "http-500"
    assert faults.take_http("/api", "POST", "createRootUser") is None
    assert not faults.take_job("VM_UPDATE", "cloudtower") and not faults.take_job("VM_UPDATE")
    assert faults.take_job("VM_UPDATE", "voyager-test-02") and not faults.take_job("VM_UPDATE", "voyager-test-01")
    plain = Faults("http-500:/api:1,fail-job:VM_UPDATE:1")
    assert not plain.wants_operation
    assert plain.take_http("/api", "POST", "createRootUser") == "http-500"  # /api alone: every operation
    assert plain.take_job("VM_UPDATE", "voyager-test-01")  # the description alone: every resource


def test_terminal_summary_lists_each_injected_fault_and_how_often_it_fired():
    """运行结束时的终端摘要列出每条注入的故障规则及其触发次数（没有故障时不列出）。"""
    from types import SimpleNamespace

    from voyager.pytest_plugin import fault_lines

    sim = SimpleNamespace(faults=Faults("http-500:POST /api/v2/network/vds:2,fail-job:VM_CREATE:1"))
    sim.faults.take_http("/api/v2/network/vds", "POST")
    assert fault_lines(sim) == ["模拟器注入的故障（--sim-faults）：",
                                "  http-500:POST /api/v2/network/vds:2 已触发 1 次",
                                "  fail-job:VM_CREATE:1 已触发 0 次"]
    assert fault_lines(None) == [] and fault_lines(SimpleNamespace(faults=Faults(""))) == []


def test_faults_fire_count_times_in_order():
    faults = Faults("fail-job:VM_*:1,fail-job:VM_CREATE:1")
    assert faults.take("fail-job", "VM_CREATE") and faults.take("fail-job", "VM_CREATE")
    assert not faults.take("fail-job", "VM_CREATE")
    assert [r["fired"] for r in faults.summary()] == [1, 1]
    assert Faults("http-500:/*:5").take_http("/__sim__/state") is None


def test_http_500_fault(plan):
    with Simulator(plan, speed=0, ssh=False, faults="http-500:/api/v2/deployment/host:2") as sim:
        http = SimHttp(sim.endpoints)
        for _ in range(2):
            r = http.deploy_api("GET", H1, "/api/v2/deployment/host")
            assert r.status_code == 500 and r.json()["ec"] == "REST_UNKNOWN_ERROR"
        assert http.deploy_api("GET", H1, "/api/v2/deployment/host").status_code == 200
        assert http.sim("/__sim__/state")["hosts"] == 3  # never faulted


def test_http_500_on_post_fails_the_vds_creation_once_while_gets_pass(plan):
    """http-500:POST /api/v2/network/vds:1 只让一次 VDS 创建失败，同一路径的 GET 不受影响；再次创建成功且只有一个业务 VDS。"""
    with Simulator(plan, speed=0, ssh=False, faults="http-500:POST /api/v2/network/vds:1") as sim:
        http, walk = deployed(sim, plan, configure=False)
        with pytest.raises(WalkError, match="POST /api/v2/network/vds .*HTTP 500"):
            walk.configure()  # root, VIP, DNS, NTP, IPMI, then the business VDS
        vip = plan.cluster.vip
        http.token = walk.token
        for _ in range(3):
            names = [v["name"] for v in http.get(vip, "/api/v2/network/vds").json()["data"]]
            assert plan.networks.business.vds not in names
        hosts = {h["management_ip"]: h for h in walk.v2(vip, "GET", "/api/v2/hosts")}
        walk.business_network(vip, hosts)
        names = [v["name"] for v in http.get(vip, "/api/v2/network/vds").json()["data"]]
        assert names.count(plan.networks.business.vds) == 1
        assert sim.faults.summary()[0]["fired"] == 1


def test_http_500_fault_shapes_per_api(plan):
    with Simulator(plan, speed=0, ssh=False, faults="http-500:/v2/api/*:1,http-500:/api:1,http-500:/api/v3/*:1") as sim:
        http = SimHttp(sim.endpoints)
        http.deploy_api("GET", H1, "/api/v2/deployment/host")
        r = http.post(H1, "/v2/api/login", json={})
        assert r.status_code == 500 and r.json()["status"] == 500
        r = http.post(H1, "/api", json={})
        assert r.status_code == 500 and r.json()["errors"][0]["message"]
        r = http.post(H1, "/api/v3/sessions", json={})
        assert r.status_code == 500 and r.json()["code"] == 13


def test_http_reset_fault(plan):
    with Simulator(plan, speed=0, ssh=False, faults="http-reset:/api/v2/deployment/*:1") as sim:
        http = SimHttp(sim.endpoints)
        with pytest.raises(requests.ConnectionError):
            http.deploy_api("GET", H1, "/api/v2/deployment/host")
        assert http.deploy_api("GET", H1, "/api/v2/deployment/host").status_code == 200


def test_slow_fault_answers_after_the_client_timeout(plan):
    with Simulator(plan, speed=0, ssh=False, faults="slow:/api/v2/deployment/host:1", slow_seconds=1.0) as sim:
        http = SimHttp(sim.endpoints)
        t0 = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            http.deploy_api("GET", H1, "/api/v2/deployment/host", timeout=0.3)
        assert time.monotonic() - t0 < 1.0
        assert http.deploy_api("GET", H1, "/api/v2/deployment/host", timeout=5).status_code == 200


def test_stop_does_not_wait_for_a_slow_answer(plan):
    sim = Simulator(plan, speed=0, ssh=False, faults="slow:/api/v2/deployment/host:1", slow_seconds=60.0).start()
    try:
        with pytest.raises(requests.ReadTimeout):
            SimHttp(sim.endpoints).deploy_api("GET", H1, "/api/v2/deployment/host", timeout=0.3)
    finally:
        t0 = time.monotonic()
        sim.stop()
    assert time.monotonic() - t0 < 5.0


def test_faults_only_hit_reachable_machines(plan):
    with Simulator(plan, speed=0, ssh=False, faults="http-500:/v2/api/*:1") as sim:
        http = SimHttp(sim.endpoints)
        assert http.post(TOWER, "/v2/api/login", json={}).status_code == 502  # CloudTower not up: not consumed
        assert sim.faults.summary()[0]["fired"] == 0


def test_fail_job_fault_on_vm_create(plan):
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:VM_CREATE:1") as sim:
        http, walk = deployed(sim, plan)
        vdses = http.get(VIP, "/api/v2/network/vds").json()["data"]
        mgmt = next(v for v in vdses if v["name"] == plan.networks.mgmt.vds)
        vlan = http.get(VIP, f"/api/v2/network/vds/{mgmt['uuid']}/vlans").json()["data"]["entities"][0]
        body = {"vm_name": "x", "vcpu": 1, "memory": 1 << 30, "nics": [{"vlan_uuid": vlan["uuid"]}], "disks": []}
        job_id = http.post(VIP, "/api/v2/vms", json=body).json()["data"]["job_id"]
        assert http.get(VIP, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "failed"
        assert sim.status()["vms"] == 0
        job_id = http.post(VIP, "/api/v2/vms", json=body).json()["data"]["job_id"]
        assert http.get(VIP, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "done"
        assert sim.status()["vms"] == 1


def test_fail_job_fault_on_one_named_vm(plan):
    """fail-job:VM_UPDATE 虚拟机名:1 只让该虚拟机的配置作业失败，另一台虚拟机的同类作业照常完成。"""
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:VM_UPDATE second:1") as sim:
        http, walk = deployed(sim, plan)
        vdses = http.get(VIP, "/api/v2/network/vds").json()["data"]
        mgmt = next(v for v in vdses if v["name"] == plan.networks.mgmt.vds)
        vlan = http.get(VIP, f"/api/v2/network/vds/{mgmt['uuid']}/vlans").json()["data"]["entities"][0]
        states = {}
        for name in ("first", "second"):
            body = {"vm_name": name, "vcpu": 1, "memory": 1 << 30, "nics": [{"vlan_uuid": vlan["uuid"]}], "disks": []}
            job_id = http.post(VIP, "/api/v2/vms", json=body).json()["data"]["job_id"]
            vm_uuid = next(u for u, r in http.get(VIP, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["resources"].items()
                           if r.get("type") == "KVM_VM")
            nic = {"vlan_uuid": vlan["uuid"], "link": "down"}  # no address: needs no guest agent
            job_id = http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": [nic]}).json()["data"]["job_id"]
            states[name] = http.get(VIP, f"/api/v2/jobs/{job_id}").json()["data"]["job"]
        assert states["first"]["state"] == "done"
        assert states["second"]["state"] == "failed" and "second" in states["second"]["error_msg"]
        assert sim.faults.summary()[0]["fired"] == 1


def test_bind_plan_ips_serves_unmodified_clients_or_skips_with_a_warning(plan, caplog):
    with Simulator(plan, speed=0, ssh=False, bind_plan_ips=True) as sim:
        if not sim.bound_plan_ips:
            assert "cannot bind plan address" in caplog.text
            pytest.skip("binding planned addresses on low ports needs privileges here")
        assert "127.10.20.11" in sim.bound_plan_ips
        r = requests.get("http://127.10.20.11/api/v2/deployment/host", timeout=5,
                         headers={"x-smartx-token": "e79b85fc18b7402fbcc0391fe8d7d24c"})
        assert r.status_code == 200 and r.json()["data"]["host_ip"] == "127.10.20.11"
        r = requests.get("http://127.10.20.10/api/v2/tools/license", timeout=5)  # VIP not up yet
        assert r.status_code == 502 and r.headers["X-Sim-Unreachable"] == "1"
