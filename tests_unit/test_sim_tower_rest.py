"""CloudTower REST (/v2/api) of the simulator, driven over HTTP with requests."""
from __future__ import annotations

import json

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import TOWER, VIP, TowerHttp, sim, timed_tower, tower, tower_up  # noqa: F401 (fixtures)
from voyager.sim import Simulator
from voyager.sim.backend.faults import Faults
from voyager.sim.testing import SimHttp, deployed
from voyager.sim.tower.rest import TowerRestFrontend
from voyager.sim.tower.schema import FIELDS


pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

@pytest.fixture
def ready(tower, plan):
    """Logged in, one organization, one datacenter, the cluster connected."""
    org_id = tower.setup()
    dc_id, cluster = tower.connect(plan, org_id)
    return tower, org_id, dc_id, cluster


# -- reachability, login, tokens -----------------------------------------------------------------
def test_cloudtower_answers_only_once_its_installer_finished(plan):
    with Simulator(plan, speed=0, ssh=False) as s:
        http, walk = deployed(s, plan)
        tower = TowerHttp(s.endpoints)
        assert tower.login().status_code == 502  # no VM yet
        iso = walk.upload(VIP, "cloudtower-v4.7.1.oe2003.x86_64.iso", 1024)
        walk.cloudtower_vm(VIP, iso["image_path"])
        resp = tower.login()
        assert resp.status_code == 502 and resp.headers["X-Sim-Unreachable"] == "1"
        s.world.tower_preinstall()
        s.world.tower_start_installer()
        assert tower.login().status_code == 400  # answering now; no root user yet
        assert SimHttp(s.endpoints).sim("/__sim__/reachable", ip=TOWER, port=443) == {"open": True}


def test_login_before_root_user_wrong_password_and_success(tower):
    resp = tower.login()
    assert resp.status_code == 400
    assert resp.json() == {"message": resp.json()["message"], "status": 400, "path": "/v2/api/login",
                           "code": "LOGIN_FAILED"}
    tower.create_root()
    assert tower.login("wrong-password").status_code == 400
    bad_user = tower.post("/v2/api/login", auth=None, json={"username": "admin", "password": "HC!r0cks"})
    assert bad_user.status_code == 400
    missing = tower.post("/v2/api/login", auth=None, json={"username": "root"})
    assert missing.status_code == 400 and "password" in missing.json()["message"]
    resp = tower.login()
    assert resp.status_code == 200 and resp.headers["x-tower-request-id"]
    body = resp.json()
    assert body["task_id"] is None and body["data"]["token"].count(".") == 2


def test_token_is_checked_raw_or_bearer(tower):
    tower.setup()
    token = tower.token
    for auth in (None, "not-a-token", f"Bearer {token}x"):
        resp = tower.rest("get-organizations", auth=auth)
        assert resp.status_code == 401, auth
        assert resp.json()["status"] == 401 and resp.json()["path"] == "/v2/api/get-organizations"
        assert resp.headers["x-tower-request-id"]
    assert tower.rest("get-organizations", auth=token).status_code == 200
    assert tower.rest("get-organizations", auth=f"Bearer {token}").status_code == 200


REST_OPERATIONS = sorted(r.rule.rsplit("/", 1)[1] for r in TowerRestFrontend.url_map.iter_rules() if not r.arguments)
LIST_OPERATIONS = [op for op in REST_OPERATIONS if op.startswith("get-") and op != "get-ntp-service-url"]


@pytest.mark.parametrize("op", [op for op in REST_OPERATIONS if op != "login"])
def test_every_operation_needs_a_token(tower, op):
    tower.setup()
    for auth in (None, "not-a-token"):
        resp = tower.rest(op, {} if op.startswith("get-") else [{}], auth=auth)
        assert resp.status_code == 401 and resp.json()["path"] == f"/v2/api/{op}", (op, auth)


@pytest.mark.parametrize("op", LIST_OPERATIONS)
def test_every_list_checks_its_query(tower, op):
    tower.setup()
    assert isinstance(tower.ok(op, {}), list)
    for body, code in (([], "VALIDATION"), ({"where": {"no_such_field": 1}}, "INVALID_WHERE"),
                       ({"where": {}, "extra": 1}, "VALIDATION"), ({"first": -1}, "INVALID_WHERE")):
        resp = tower.rest(op, body)
        assert resp.status_code == 400 and resp.json()["code"] == code, (op, body, resp.text)
    bad_json = tower.post(f"/v2/api/{op}", data="{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "INVALID_JSON"


def test_list_schemas_are_the_rendered_fields(ready):
    """tower_schema.FIELDS (what a where may name on an empty list) = what the lists render."""
    tower, _org, _dc, cluster = ready
    cid = cluster["id"]
    view = tower.ok("create-view", [{"time_unit": "HOUR", "time_span": 2, "cluster_id": cid, "name": "Cluster"}])
    tower.ok("create-graph", [{"type": "AREA", "resource_type": "cluster", "view_id": view[0]["data"]["id"],
                               "title": "t", "cluster_id": cid, "connect_id": [cid], "metric_name": "m"}])
    zone = tower.ok("get-zone-topoes")[0]["id"]
    rack = tower.ok("create-rack-topo", [{"cluster_id": cid, "zone_topo_id": zone, "height": 42, "name": "A"}])
    tower.ok("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": rack[0]["data"]["id"], "height": 2,
                                    "name": "b", "position": 1}])
    for op in LIST_OPERATIONS:
        items = tower.ok(op, {})
        assert items and all(set(item) == FIELDS[op] for item in items), op


def test_unknown_operation_and_wrong_method(tower):
    """模拟器未提供的操作返回 404 ErrorBody {message, status, path}；GET 一个已提供的操作是 405。"""
    tower.setup()
    resp = tower.rest("get-nothing")
    assert resp.status_code == 404 and resp.headers.get("x-tower-request-id")
    body = resp.json()
    assert body["status"] == 404 and body["path"] == "/v2/api/get-nothing" and "get-nothing" in body["message"]
    assert tower.get("/v2/api/get-clusters").status_code == 405


@pytest.mark.parametrize("op, where, field", [
    ("get-clusters", {"connect_state": "BOGUS"}, "connect_state"),
    ("get-tasks", {"status": "DONE"}, "status"),
    ("get-hosts", {"cluster": "abc"}, "cluster"),
    ("get-vms", {"id": 5}, "id"),
    ("get-clusters", {"AND": {"id": "x"}}, "AND"),
    ("get-clusters", {"id_in": ["a", 5]}, "id_in"),
    ("get-hosts", {"cluster": {"connect_state": "NOPE"}}, "connect_state"),
    ("get-datacenters", {"clusters_some": {"bogus": 1}}, "bogus"),
])
def test_where_values_are_checked_against_the_spec(tower, op, where, field):
    """where 的取值按规范中的字段类型与枚举检查（枚举值错误、关系字段不是对象、id 不是字符串、AND 不是数组）：
    即使列表为空也返回 400，消息点名该字段。"""
    tower.setup()
    resp = tower.rest(op, {"where": where})
    assert resp.status_code == 400 and field in resp.json()["message"], resp.text


@pytest.mark.parametrize("body, field", [
    ({"first": "5"}, "first"), ({"skip": True}, "skip"), ({"after": 5}, "after"), ({"orderBy": "colour_ASC"}, "orderBy"),
])
def test_list_paging_values_are_typed(tower, body, field):
    """first/skip/last 必须是整数、after/before 是字符串、orderBy 是该实体的字段：否则 400 并点名该字段。"""
    tower.setup()
    resp = tower.rest("get-clusters", body)
    assert resp.status_code == 400 and field in resp.json()["message"], resp.text


def test_both_request_forms_are_checked(tower):
    """数组形式与抓包客户端的单对象形式都按规范检查：缺少必填字段是 400。"""
    org_id = tower.setup()
    for body in ({"organization_id": org_id}, [{"organization_id": org_id}]):
        resp = tower.rest("create-datacenter", body)
        assert resp.status_code == 400 and "'name' is a required property" in resp.json()["message"]


def test_https_serves_the_same_api(sim, tower):
    tower.setup()
    secure = TowerHttp(sim.endpoints, tls=True)
    secure.token = tower.token
    assert secure.ok("get-organizations")[0]["name"] == "演示客户"


# -- organizations and datacenters ----------------------------------------------------------------
def test_organizations_and_datacenters_shapes(tower):
    org_id = tower.setup()
    assert tower.ok("get-organizations") == [{"id": org_id, "name": "演示客户", "datacenters": []}]
    created = tower.ok("create-datacenter", {"organization_id": org_id, "name": "DEMO-DC"})
    assert created["task_id"] is None
    dc = created["data"]
    assert dc["name"] == "DEMO-DC" and dc["organization"] == {"id": org_id, "name": "演示客户"}
    assert dc["cluster_num"] == 0 and dc["clusters"] == [] and dc["labels"] == []
    assert tower.ok("get-organizations")[0]["datacenters"] == [{"id": dc["id"], "name": "DEMO-DC"}]
    assert [d["id"] for d in tower.ok("get-datacenters", {"where": {"organization": {"id": org_id}}})] == [dc["id"]]


def test_create_datacenter_mirrors_arrays_and_rejects_duplicates(tower):
    org_id = tower.setup()
    out = tower.ok("create-datacenter", [{"organization_id": org_id, "name": "DC-A"},
                                         {"organization_id": org_id, "name": "DC-B"}])
    assert isinstance(out, list) and [o["data"]["name"] for o in out] == ["DC-A", "DC-B"]
    dup = tower.rest("create-datacenter", [{"organization_id": org_id, "name": "DC-A"}])
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    unknown = tower.rest("create-datacenter", {"organization_id": "cnope", "name": "DC-C"})
    assert unknown.status_code == 404
    missing = tower.rest("create-datacenter", {"organization_id": org_id})
    assert missing.status_code == 400 and "name" in missing.json()["message"]
    assert tower.rest("create-datacenter", "x").status_code == 400


# -- connecting the cluster ------------------------------------------------------------------------
def test_connect_cluster_and_the_connected_cluster(ready, sim, plan):
    tower, org_id, dc_id, cluster = ready
    license_serial = sim.world.cluster.serial
    assert cluster["connect_state"] == "CONNECTED"
    assert cluster["local_id"] == cluster["license_serial"] == license_serial
    assert cluster["name"] == plan.cluster.name and cluster["ip"] == VIP and cluster["management_vip"] == VIP
    assert cluster["type"] == "SMTX_OS" and cluster["hypervisor"] == "ELF" and cluster["host_num"] == 3
    assert sorted(h["management_ip"] for h in cluster["hosts"]) == [h.mgmt_ip for h in plan.hosts]
    assert plan.networks.business.vds in {v["name"] for v in cluster["vdses"]}
    assert [v["name"] for v in cluster["vms"]] == [plan.cloudtower.vm_name]
    assert cluster["datacenters"] == [{"id": dc_id, "name": "DEMO-DC"}]
    assert cluster["settings"]["id"] and cluster["dns"] == ["127.10.0.114", "127.10.0.1"]
    assert cluster["ntp_mode"] == "EXTERNAL" and cluster["license_type"] == "TRIAL"
    dc = tower.ok("get-datacenters")[0]
    assert dc["cluster_num"] == 1 and dc["host_num"] == 3
    assert sim.status()["connected_clusters"] == 1


def test_connect_cluster_response_and_task(tower, plan):
    org_id = tower.setup()
    dc_id = tower.ok("create-datacenter", {"organization_id": org_id, "name": "DC"})["data"]["id"]
    body = {"datacenter_id": dc_id, "username": "root", "ip": VIP, "password": plan.cluster.admin_password.reveal()}
    out = tower.ok("connect-cluster", [body])
    assert isinstance(out, list) and len(out) == 1
    assert out[0]["data"]["connect_state"] == "INITIALIZING" and out[0]["task_id"]
    assert out[0]["data"]["version"] == "6.2.0" and out[0]["data"]["ip"] == VIP
    task = tower.ok("get-tasks", {"where": {"id_in": [out[0]["task_id"]]}})
    assert len(task) == 1 and task[0]["status"] == "SUCCESSED" and task[0]["progress"] == 1.0
    assert task[0]["cluster"]["id"] == out[0]["data"]["id"] and task[0]["error_message"] is None
    dup = tower.rest("connect-cluster", body)
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]


def test_connect_cluster_answers_as_captured_and_takes_no_datacenter(tower, plan):
    """connect-cluster 的答复与步骤 05 抓包一致（精简的集群对象，无 local_id、settings、datacenters）；
    规范中 datacenter_id 是可选的：不带也能关联。"""
    tower.setup()
    out = tower.ok("connect-cluster", {"username": "root", "ip": VIP, "password": plan.cluster.admin_password.reveal()})
    assert set(out["data"]) == {"id", "name", "hypervisor", "version", "architecture", "connect_state", "dns", "ip",
                                "ntp_servers", "recommended_cpu_models", "total_cpu_models", "type", "labels"}
    assert out["data"]["connect_state"] == "INITIALIZING" and out["task_id"]
    cluster = tower.ok("get-clusters", {"where": {"id": out["data"]["id"]}})[0]
    assert cluster["datacenters"] == [] and cluster["connect_state"] == "CONNECTED"


@pytest.mark.parametrize("change, status, code", [
    ({"password": "wrong-pass"}, 400, "CLUSTER_AUTH_FAILED"),
    ({"username": "admin"}, 400, "CLUSTER_AUTH_FAILED"),
    ({"ip": "127.10.20.99"}, 400, "CLUSTER_CONNECT_FAILED"),
    ({"datacenter_id": "cnope"}, 404, "DATACENTER_NOT_FOUND"),
    ({"ip": None}, 400, "VALIDATION"),
])
def test_connect_cluster_errors(tower, plan, change, status, code):
    org_id = tower.setup()
    dc_id = tower.ok("create-datacenter", {"organization_id": org_id, "name": "DC"})["data"]["id"]
    body = {"datacenter_id": dc_id, "username": "root", "ip": VIP, "password": plan.cluster.admin_password.reveal()}
    body.update(change)
    resp = tower.rest("connect-cluster", body)
    assert resp.status_code == status and resp.json()["code"] == code
    assert plan.cluster.admin_password.reveal() not in resp.text
    assert tower.ok("get-clusters") == []


def test_connect_cluster_state_machine_over_time(plan):
    with timed_tower(plan) as (s, clock):
        tower = TowerHttp(s.endpoints)
        org_id = tower.setup()
        dc_id = tower.ok("create-datacenter", {"organization_id": org_id, "name": "DC"})["data"]["id"]
        out = tower.ok("connect-cluster", {"datacenter_id": dc_id, "username": "root", "ip": VIP,
                                           "password": plan.cluster.admin_password.reveal()})

        def state():
            task = tower.ok("get-tasks", {"where": {"id": out["task_id"]}})[0]
            return task["status"], task["progress"], tower.ok("get-clusters")[0]["connect_state"]

        assert state() == ("PENDING", 0.0, "INITIALIZING")
        clock.advance(3 + 22.5)
        status, progress, connect = state()
        assert (status, connect) == ("EXECUTING", "INITIALIZING") and 0.4 <= progress <= 0.6
        assert "hosts" not in tower.ok("get-clusters")[0]  # nothing synced before CONNECTED
        assert tower.ok("get-hosts") == []
        clock.advance(30)
        assert state() == ("SUCCESSED", 1.0, "CONNECTED")
        assert len(tower.ok("get-hosts")) == 3


def test_connect_task_failure_fault_removes_the_cluster(sim, tower, plan):
    org_id = tower.setup()
    dc_id = tower.ok("create-datacenter", {"organization_id": org_id, "name": "DC"})["data"]["id"]
    body = {"datacenter_id": dc_id, "username": "root", "ip": VIP, "password": plan.cluster.admin_password.reveal()}
    saved = sim.world.faults
    sim.world.faults = Faults("fail-job:CONNECT_CLUSTER:1")
    try:
        task_id = tower.ok("connect-cluster", body)["task_id"]
        task = tower.ok("get-tasks", {"where": {"id": task_id}})[0]
        assert task["status"] == "FAILED" and task["error_code"] and "fail-job" in task["error_message"]
        assert tower.ok("get-clusters") == []
        assert tower.ok("connect-cluster", body)["data"]["connect_state"] == "INITIALIZING"  # fault spent
        assert tower.ok("get-clusters")[0]["connect_state"] == "CONNECTED"
    finally:
        sim.world.faults = saved


def test_get_clusters_where_order_and_errors(ready):
    tower, _org, dc_id, cluster = ready
    assert [c["id"] for c in tower.ok("get-clusters", {"where": {"name_contains": "DEMO"}})] == [cluster["id"]]
    assert tower.ok("get-clusters", {"where": {"connect_state": "INITIALIZING"}}) == []
    assert len(tower.ok("get-clusters", {"where": {"datacenters_some": {"id": dc_id}}, "first": 1})) == 1
    assert tower.ok("get-clusters", {"where": {"NOT": [{"id": cluster["id"]}]}}) == []
    bad = tower.rest("get-clusters", {"where": {"no_such_field": 1}})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_WHERE"
    assert tower.rest("get-clusters", {"wher": {}}).status_code == 400
    assert tower.rest("get-clusters", {"orderBy": "bogus"}).status_code == 400


# -- cluster-side objects ------------------------------------------------------------------------------
def test_hosts_vdses_vlans_vms(ready, plan):
    tower, _org, _dc, cluster = ready
    hosts = tower.ok("get-hosts", {"where": {"cluster": {"id": cluster["id"]}}})
    assert sorted(h["name"] for h in hosts) == [h.name for h in plan.hosts]
    assert all(h["status"] == "CONNECTED_HEALTHY" and h["cluster"]["id"] == cluster["id"] for h in hosts)
    assert {h["id"] for h in hosts} == {h["id"] for h in cluster["hosts"]}
    assert tower.ok("get-hosts", {"where": {"management_ip": plan.hosts[1].mgmt_ip}})[0]["name"] == plan.hosts[1].name
    vdses = {v["name"]: v for v in tower.ok("get-vdses")}
    business = vdses[plan.networks.business.vds]
    assert business["vlans_num"] == 3 and business["type"] == "VM" and not business["internal"]
    assert vdses[plan.networks.mgmt.vds]["type"] == "MANAGEMENT" and vdses["vds-ovsbr-internal"]["internal"]
    vlans = tower.ok("get-vlans", {"where": {"vds": {"id": business["id"]}}, "orderBy": "vlan_id_ASC"})
    assert [(v["name"], v["vlan_id"], v["type"]) for v in vlans] == [
        (f"VLAN-{1120 + k}", 1120 + k, "VM") for k in range(3)]
    assert tower.ok("get-vlans", {"where": {"type": "MANAGEMENT"}})[0]["name"] == "mgt-network"
    vms = tower.ok("get-vms")
    assert len(vms) == 1 and vms[0]["name"] == plan.cloudtower.vm_name and vms[0]["status"] == "RUNNING"
    assert vms[0]["ips"] == plan.cloudtower.ip and vms[0]["vm_tools_status"] == "RUNNING"
    assert vms[0]["host"]["id"] in {h["id"] for h in hosts} and vms[0]["vcpu"] == 8


# -- dashboards ----------------------------------------------------------------------------------------
def test_views_and_graphs_as_the_init_script_creates_them(ready):
    tower, _org, _dc, cluster = ready
    cid = cluster["id"]
    assert tower.ok("get-views", {"where": {"cluster": {"id": cid}, "name": "Cluster"}}) == []
    views = {}
    for name in ("Cluster", "Host", "VM"):
        out = tower.ok("create-view", [{"time_unit": "HOUR", "time_span": 2, "cluster_id": cid, "name": name}])
        assert out[0]["task_id"] is None and out[0]["data"]["cluster"]["id"] == cid
        views[name] = out[0]["data"]["id"]
    assert tower.ok("get-views", {"where": {"cluster": {"id": cid}, "name": "Host"}})[0]["id"] == views["Host"]
    host_ids = [h["id"] for h in tower.ok("get-hosts", {"where": {"cluster": {"id": cid}}})]
    g1 = tower.ok("create-graph", [{"type": "AREA", "resource_type": "cluster", "view_id": views["Cluster"],
                                    "title": "集群 CPU 使用率 %", "cluster_id": cid, "connect_id": [cid],
                                    "metric_name": "cluster_cpu_usage_percent"}])[0]["data"]
    assert g1["metric_type"] == "NORMAL" and g1["view"]["id"] == views["Cluster"]
    g2 = tower.ok("create-graph", [{"type": "AREA", "resource_type": "host", "view_id": views["Host"],
                                    "title": "主机 CPU 使用率 %", "cluster_id": cid, "connect_id": host_ids,
                                    "metric_name": "host_cpu_overall_usage_percent"}])[0]["data"]
    assert sorted(h["id"] for h in g2["hosts"]) == sorted(host_ids)
    g3 = tower.ok("create-graph", [{"type": "AREA", "resource_type": "vm", "view_id": views["VM"],
                                    "title": "虚拟机 CPU 使用率 Top N", "cluster_id": cid, "connect_id": [],
                                    "metric_name": "elf_vm_cpu_overall_usage_percent", "metric_type": "TOPK",
                                    "metric_count": "5"}])[0]["data"]
    assert g3["metric_type"] == "TOPK" and g3["metric_count"] == 5
    assert [g["id"] for g in tower.ok("get-graphs", {"where": {"view": {"id": views["Host"]}}})] == [g2["id"]]
    assert [g["id"] for g in tower.ok("get-views", {"where": {"id": views["Cluster"]}})[0]["graphs"]] == [g1["id"]]


def test_view_and_graph_errors(ready, sim):
    tower, _org, _dc, cluster = ready
    cid = cluster["id"]
    view = {"time_unit": "HOUR", "time_span": 2, "cluster_id": cid, "name": "Cluster"}
    vid = tower.ok("create-view", [view])[0]["data"]["id"]
    dup = tower.rest("create-view", [view])
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    assert tower.rest("create-view", [{**view, "name": "X", "time_unit": "WEEK"}]).status_code == 400
    assert tower.rest("create-view", [{**view, "name": "X", "time_span": 0}]).status_code == 400
    assert tower.rest("create-view", [{**view, "name": "X", "cluster_id": "cnope"}]).status_code == 404
    graph = {"type": "AREA", "resource_type": "host", "view_id": vid, "title": "t", "cluster_id": cid,
             "connect_id": [cid], "metric_name": "m"}
    fisheye_uuid = sim.world.cluster_info()["hosts"][0]["uuid"]
    wrong = tower.rest("create-graph", [{**graph, "connect_id": [fisheye_uuid]}])
    assert wrong.status_code == 400 and wrong.json()["code"] == "CONNECT_ID_NOT_FOUND"
    assert tower.rest("create-graph", [{**graph, "view_id": "cnope"}]).status_code == 404
    assert tower.rest("create-graph", [{**graph, "type": "LINE"}]).status_code == 400
    assert tower.rest("create-graph", [{**graph, "metric_type": "TOPK", "metric_count": 0}]).status_code == 400
    assert tower.rest("create-graph", [{**graph, "connect_id": []}]).status_code == 400


# -- rack topology ---------------------------------------------------------------------------------------
def test_rack_topology(ready, plan):
    tower, _org, _dc, cluster = ready
    cid = cluster["id"]
    zones = tower.ok("get-zone-topoes", {"where": {"cluster": {"id": cid}}})
    assert len(zones) == 1 and zones[0]["rack_topoes"] == []
    rack = tower.ok("create-rack-topo", [{"cluster_id": cid, "zone_topo_id": zones[0]["id"], "height": 42,
                                          "name": "A01"}])[0]
    assert rack["task_id"] and rack["data"]["height"] == 42
    dup = tower.rest("create-rack-topo", [{"cluster_id": cid, "zone_topo_id": zones[0]["id"], "height": 42,
                                           "name": "A01"}])
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    bricks = []
    for h in plan.hosts:
        out = tower.ok("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": rack["data"]["id"], "height": 2,
                                              "name": h.name, "position": h.unit}])
        bricks.append(out[0]["data"])
    overlap = tower.rest("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": rack["data"]["id"], "height": 2,
                                                "name": "other", "position": plan.hosts[0].unit + 1}])
    assert overlap.status_code == 400 and overlap.json()["code"] == "BRICK_OVERLAP"
    outside = tower.rest("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": rack["data"]["id"], "height": 2,
                                                "name": "top", "position": 42}])
    assert outside.status_code == 400 and outside.json()["code"] == "BRICK_OUT_OF_RACK"
    nodes = {n["host"]["management_ip"]: n for n in tower.ok("get-node-topoes", {"where": {"cluster": {"id": cid}}})}
    assert len(nodes) == 3 and all(n["brick_topo"] is None for n in nodes.values())
    moves = [{"where": {"id": nodes[h.mgmt_ip]["id"]},
              "data": {"brick_topo_id": b["id"], "position": {"row": 1, "column": 1}}}
             for h, b in zip(plan.hosts, bricks)]
    moved = tower.ok("move-node-topo", moves)
    assert [m["data"]["brick_topo"]["id"] for m in moved] == [b["id"] for b in bricks]
    taken = tower.rest("move-node-topo", [{"where": {"id": nodes[plan.hosts[1].mgmt_ip]["id"]},
                                           "data": {"brick_topo_id": bricks[0]["id"],
                                                    "position": {"row": 1, "column": 1}}}])
    assert taken.status_code == 400 and taken.json()["code"] == "NODE_POSITION_TAKEN"
    assert tower.rest("move-node-topo", {"where": {"id": "x"}, "data": {}}).status_code == 400
    brick = tower.ok("get-brick-topoes", {"where": {"id": bricks[0]["id"]}})[0]
    assert brick["node_topoes"] == [{"id": nodes[plan.hosts[0].mgmt_ip]["id"], "name": plan.hosts[0].name}]
    assert brick["rack_topo"]["name"] == "A01"
    tasks = tower.ok("get-tasks", {"where": {"key": "MOVE_NODE_TOPO"}})
    assert len(tasks) == 3 and {t["status"] for t in tasks} == {"SUCCESSED"}


# -- persistence -------------------------------------------------------------------------------------------
def test_state_file_keeps_tower_without_secrets(plan, tmp_path):
    state = tmp_path / "sim-state.json"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        org_id = tower.setup()
        tower.connect(plan, org_id)
        token = tower.token
        host_ids = sorted(h["id"] for h in tower.ok("get-hosts"))
        vlan_ids = sorted(v["id"] for v in tower.ok("get-vlans"))
    text = state.read_text(encoding="utf-8")
    for secret in (token, "HC!r0cks", plan.cluster.admin_password.reveal()):
        assert secret not in text
    assert json.loads(text)["tower"]["clusters"][0]["connect_state"] == "CONNECTED"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as again:
        tower = TowerHttp(again.endpoints)
        tower.token = token  # CloudTower tokens do not expire
        assert tower.ok("get-clusters")[0]["connect_state"] == "CONNECTED"
        assert sorted(h["id"] for h in tower.ok("get-hosts")) == host_ids  # ids are stable across restarts
        assert sorted(v["id"] for v in tower.ok("get-vlans")) == vlan_ids
        status = again.status()
        assert (status["organizations"], status["datacenters"], status["connected_clusters"]) == (1, 1, 1)


def test_ntp_service_url_reads_what_the_mutation_set(tower):
    """``/get-ntp-service-url`` (OpenAPI ``NtpServiceUrl``) answers the servers as the
    ``updateCloudTowerNtpUrl`` mutation answers them (``;``-joined); empty before."""
    tower.setup()
    assert tower.ok("get-ntp-service-url") == {"ntp_service_url": ""}
    tower.gql("updateCloudTowerNtpUrl", {"data": {"ntp_service_url": "127.10.0.2,ntp.demo.local"}})
    assert tower.ok("get-ntp-service-url") == {"ntp_service_url": "127.10.0.2;ntp.demo.local"}
    assert tower.rest("get-ntp-service-url", auth=None).status_code == 401


def test_cluster_settingses_read_back_the_storage_policy(ready):
    """``/get-cluster-settingses`` renders the OpenAPI ``ClusterSettings`` of the connected
    cluster (``settings.id`` of get-clusters) and shows ``updateClusterSettings``' change."""
    tower, _org, _dc, cluster = ready
    sid = cluster["settings"]["id"]
    found = tower.ok("get-cluster-settingses", {"where": {"id": sid}})
    assert len(found) == 1 and found[0]["cluster"]["id"] == cluster["id"]
    assert found[0]["default_storage_policy"] == "REPLICA_3_THIN_PROVISION"
    tower.gql("updateClusterSettings", {"where": {"id": sid}, "data": {
        "default_storage_policy": "REPLICA_2_THIN_PROVISION", "default_storage_policy_replica_num": 2,
        "default_storage_policy_thin_provision": True}})
    assert tower.ok("get-cluster-settingses", {"where": {"id": sid}})[0]["default_storage_policy"] == \
        "REPLICA_2_THIN_PROVISION"
    assert tower.ok("get-cluster-settingses", {"where": {"id": "nope"}}) == []
