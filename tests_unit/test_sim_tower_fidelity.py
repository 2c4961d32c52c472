"""Fidelity of the simulator against the official CloudTower OpenAPI spec and the captures
(../shared/reference; the module skips without it).

The served operations are read from the simulator's front-ends (every ``POST /v2/api/<op>``
route, :func:`tower_openapi.served_operations`), never from a hand list. After a simulated
walkthrough through every one of them (steps 04-06 as the walkthrough does them, then step 07's
components and steps 09-11's workload, both test-VM routes included), every response is
validated against the spec's response schema (``nullable`` honoured beside ``allOf``; the few
operations the spec lacks against their [INF] schema, ``tower_openapi.INFERRED``). For every
served operation, requests derived from a request the walkthrough sent successfully, made to
violate its request schema (a missing required field, a wrong type, a bad enum value, a bad
``where`` value; a multipart form without a required part), must get a 400 ErrorBody naming the
offending field. Every fisheye answer the captures show has the captures' keys and value types.
One line sums it up (``pytest tests_unit/test_sim_tower_fidelity.py -s``)::

    CloudTower 保真度：提供 N/554 个 REST 操作（另有 K 个规范外 [INF] 操作）；响应合规 …；违规请求被拒 …；fisheye 抓包字段 …
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from tower_openapi import (INFERRED, MULTIPART, deref, generate_spec_package, in_spec, load_spec, request_content,
                           request_schema, response_schema, served_operations, validator)

SPEC = load_spec()
if SPEC is None:
    pytest.skip("../shared/reference 中没有 CloudTower OpenAPI 规范：跳过保真度测试", allow_module_level=True)

from sim_support import plan  # noqa: E402,F401 (fixture)
from sim_tower_support import (TowerHttp, backup_package, deploy_body, mgmt_vlan, obs_package,  # noqa: E402,F401
                               reset_tower, sim, tower_up)
from voyager.ovf import descriptor_xml  # noqa: E402
from voyager.sim import Simulator  # noqa: E402
from voyager.sim.testing import SharedSim  # noqa: E402
from voyager.sim.tower import openapi  # noqa: E402
from voyager.sim.tower.vms import CHUNK_SIZE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "reference" / "api-samples"
WALKTHROUGH = ROOT.parent / "shared" / "spec" / "000_6329e4e73b7c4111.txt"
SERVED = served_operations()
REST = "/v2/api/"


def _where_entity(schema: Any) -> Optional[str]:
    """The entity of the ``x-where`` marker in a generated request schema part (through anyOf/allOf)."""
    if not isinstance(schema, dict):
        return None
    if "x-where" in schema:
        return schema["x-where"]
    return next((e for branch in schema.get("anyOf", []) + schema.get("allOf", [])
                 if (e := _where_entity(branch)) is not None), None)


def _item_schema(op: str) -> Optional[dict[str, Any]]:
    """The generated request schema of one object of ``op``'s body (an array's item)."""
    schema = openapi.REQUESTS.get(op)
    return schema.get("items") if schema and schema.get("type") == "array" else schema


def list_entity(op: str) -> Optional[str]:
    """The entity a ``get-*`` list answers: the one its request's ``where`` filters."""
    item = _item_schema(op) if op.startswith("get-") else None
    return _where_entity(item["properties"].get("where")) if item else None


def _array_request(op: str) -> bool:
    schema = request_schema(SPEC, op)
    return bool(schema) and deref(SPEC, schema).get("type") == "array"


def _answer(resp) -> Any:
    """The parsed JSON answer, or the text when it is not JSON (a crash shows as what it is)."""
    try:
        return resp.json()
    except ValueError:
        return resp.text


class RecordingTower(TowerHttp):
    """A CloudTower client that keeps every REST exchange: (operation, request body, status, answer);
    a multipart request's body is kept as ``{"form": fields, "files": part names}``."""

    def __init__(self, endpoints) -> None:
        super().__init__(endpoints)
        self.exchanges: list[tuple[str, Any, int, Any]] = []

    def post(self, path: str, **kwargs):
        resp = super().post(path, **kwargs)
        if path.startswith(REST):
            if "json" in kwargs:
                body = kwargs["json"]
            else:
                body = {"form": dict(kwargs.get("data") or {}), "files": sorted(kwargs.get("files") or {})}
            self.exchanges.append((path[len(REST):], body, resp.status_code, _answer(resp)))
        return resp

    def form(self, op: str, fields: dict[str, str], files: dict[str, Any]) -> Any:
        resp = self.post(REST + op, data=fields, files=files)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _walkthrough(tower: RecordingTower, plan) -> str:
    """Steps 04-06 as the walkthrough does them; returns the connected cluster's id."""
    tower.create_root()
    org = tower.gql("createOrganization", {"data": {"name": "八九实验室"}}, auth=None)["data"]["createOrganization"]
    assert tower.login().status_code == 200
    tower.ok("login", {"username": "root", "source": "LOCAL", "password": "HC!r0cks"})
    tower.ok("get-organizations", {})
    dc = tower.ok("create-datacenter", {"organization_id": org["id"], "name": "八九实验室"})["data"]  # captured form
    tower.ok("create-datacenter", [{"organization_id": org["id"], "name": "DC-2"}])
    connected = tower.ok("connect-cluster", {"datacenter_id": dc["id"], "password": plan.cluster.admin_password.reveal(),
                                             "username": "root", "ip": plan.cluster.vip})
    cid = connected["data"]["id"]
    tower.ok("get-tasks", {"where": {"id_in": [connected["task_id"]]}})
    tower.ok("get-clusters", {"where": {"id": cid}})
    wheres = {"get-datacenters": {"id": dc["id"]}, "get-hosts": {"cluster": {"id": cid}},
              "get-vdses": {"cluster": {"id": cid}}, "get-vlans": {"name": "default"},
              "get-vms": {"cluster": {"id": cid}}}
    for op, where in wheres.items():
        tower.ok(op, {})
        tower.ok(op, {"where": where})
    view = tower.ok("create-view", [{"time_unit": "HOUR", "time_span": 2, "cluster_id": cid, "name": "Cluster"}])
    host_ids = [h["id"] for h in tower.ok("get-hosts", {"where": {"cluster": {"id": cid}}})]
    graph = {"type": "AREA", "resource_type": "host", "view_id": view[0]["data"]["id"], "title": "主机 CPU 使用率 %",
             "cluster_id": cid, "connect_id": host_ids, "metric_name": "host_cpu_overall_usage_percent"}
    tower.ok("create-graph", [graph])
    tower.ok("get-views", {"where": {"cluster": {"id": cid}}})
    tower.ok("get-graphs", {"where": {"view": {"id": view[0]["data"]["id"]}}})
    zone = tower.ok("get-zone-topoes", {"where": {"cluster": {"id": cid}}})[0]
    rack = tower.ok("create-rack-topo", [{"cluster_id": cid, "zone_topo_id": zone["id"], "height": 42,
                                          "name": "A01"}])[0]["data"]
    bricks = [tower.ok("create-brick-topo", [{"cluster_id": cid, "rack_topo_id": rack["id"], "height": 2,
                                              "name": h.name, "position": h.unit}])[0]["data"] for h in plan.hosts]
    nodes = {n["host"]["management_ip"]: n for n in tower.ok("get-node-topoes", {"where": {"cluster": {"id": cid}}})}
    tower.ok("move-node-topo", [{"where": {"id": nodes[h.mgmt_ip]["id"]},
                                 "data": {"brick_topo_id": b["id"], "position": {"row": 1, "column": 1}}}
                                for h, b in zip(plan.hosts, bricks[:-1])])
    tower.ok("get-rack-topoes", {"orderBy": "name_ASC", "first": 5, "skip": 0})
    tower.ok("get-brick-topoes", {"where": {"rack_topo": {"id": rack["id"]}}})
    tower.ok("get-tasks", {"orderBy": "local_created_at_DESC"})
    tower.ok("get-clusters", {})
    tower.ok("get-cluster-settingses", {"where": {"cluster": {"id": cid}}})  # step 06 read-back
    tower.ok("get-ntp-service-url", {})  # step 04 read-back
    return cid


def _components(tower: RecordingTower, plan, cid: str) -> None:
    """Step 07: both packages uploaded, both applications deployed, clusters associated; a
    failed deployment's clean-up (``uninstall-cloudtower-application``) on the backup application."""
    _, obs = obs_package(tower)
    backup_package(tower)
    tower.ok("get-upload-tasks", {"where": {"resource_type": "CLOUDTOWER_APPLICATION_PACKAGE"}})
    (backup_pkg,) = tower.ok("get-cloudtower-application-packages", {"where": {"name": "iomesh-backup"}})
    vlan = mgmt_vlan(tower, plan)
    app = tower.ok("deploy-cloudtower-application",
                   deploy_body("Observability", obs["package_id"], cid, vlan["id"], plan.obs.ip, plan))
    backup = tower.ok("deploy-cloudtower-application",
                      deploy_body("backup", backup_pkg["id"], cid, vlan["id"], plan.backup_service.ip, plan))
    tower.ok("get-cloudtower-applications", {"where": {"id": app["id"]}})
    tower.ok("associate-obs-clusters", {"application_id": app["id"], "cluster_ids": [cid]})
    tower.ok("get-obs-cluster-associations", {"where": {"application": {"id": app["id"]}}})
    (service,) = tower.ok("get-backup-services", {"where": {"application": {"id": backup["id"]}}})
    tower.ok("associate-backup-service-clusters", {"backup_service_id": service["id"], "cluster_ids": [cid]})
    tower.ok("uninstall-cloudtower-application", {"where": {"id": backup["id"]}})


def _upload(tower: RecordingTower, cid: str, name: str, data: bytes, *, chunks: Optional[int] = None) -> dict:
    """``/upload-elf-file`` in CHUNK_SIZE chunks (only the first ``chunks`` when given)."""
    task: dict[str, Any] = {}
    for n, start in enumerate(range(0, len(data), CHUNK_SIZE)):
        if chunks is not None and n >= chunks:
            break
        fields = {"cluster_id": cid, "name": name, "size": str(len(data)), "size_unit": "B"}
        if task:
            fields["upload_task_id"] = task["id"]
        task = tower.form("upload-elf-file", fields, {"file": (name, data[start:start + CHUNK_SIZE])})
    return task


def _workload(tower: RecordingTower, plan, cid: str) -> None:
    """Steps 09-11: a VM imported from an OVF and one created from an uploaded disk image, a
    migration, maintenance mode, and everything removed again."""
    hosts = tower.ok("get-hosts", {"where": {"cluster": {"id": cid}}})
    vlan = tower.ok("get-vlans", {"where": {"name": plan.networks.business.vlans[0].name, "type": "VM"}})[0]
    disk = b"x" * CHUNK_SIZE + b"y" * 10
    upload = _upload(tower, cid, "disk1.vmdk", disk)
    tower.ok("get-upload-tasks", {"where": {"id": upload["id"]}})
    xml = descriptor_xml("fidelity", vcpu=2, memory_mib=1024, disk_gib=4, disk_file="disk1.vmdk",
                         disk_file_size=len(disk), mac="00:50:56:00:00:21")
    parsed = tower.form("parse-ovf", {"cluster_id": cid}, {"file": ("fidelity.ovf", xml)})
    nic = {"connect_vlan_id": vlan["id"], "model": "VIRTIO", "enabled": True}
    imported = tower.ok("import-vm", [{"name": "fidelity-ovf", "cluster_id": cid, "host_id": hosts[0]["id"],
                                       "upload_tasks": [upload["id"]], "parsed_ovf": parsed, "status": "RUNNING",
                                       "ha": False, "vm_nics": [nic]}])[0]["data"]
    tower.ok("migrate-vm", {"where": {"id": imported["id"]}, "data": {"host_id": hosts[1]["id"]}})
    tower.ok("enter-maintenance-mode-precheck", {"where": {"id": hosts[2]["id"]}})
    tower.ok("enter-maintenance-mode", {"where": {"id": hosts[2]["id"]}})
    tower.ok("get-hosts", {"where": {"id": hosts[2]["id"]}})  # its host_state
    tower.ok("exit-maintenance-mode", {"where": {"id": hosts[2]["id"]}})
    image = _upload(tower, cid, "fidelity.qcow2", b"q" * 100)
    volume = tower.ok("import-vm-volume", [{"upload_task_id": image["id"], "name": "fidelity-disk", "cluster_id": cid,
                                            "storage_policy": "REPLICA_2_THIN_PROVISION"}])[0]["data"]
    tower.ok("get-vm-volumes", {"where": {"id": volume["id"]}})
    disks = {"mount_disks": [{"vm_volume_id": volume["id"], "bus": "VIRTIO", "boot": 0}],
             "mount_new_create_disks": [{"vm_volume": {"name": "fidelity-data", "size": 1, "size_unit": "GB",
                                                       "elf_storage_policy": "REPLICA_2_THIN_PROVISION"},
                                         "bus": "VIRTIO", "boot": 1}],
             "mount_cd_roms": [{"boot": 2}]}
    created = tower.ok("create-vm", [{"name": "fidelity-image", "cluster_id": cid, "host_id": hosts[1]["id"],
                                      "cpu_sockets": 1, "cpu_cores": 2, "memory": 1, "memory_unit": "GB",
                                      "status": "RUNNING", "firmware": "BIOS", "ha": False, "vm_nics": [nic],
                                      "vm_disks": disks}])[0]["data"]
    tower.ok("get-vm-volumes", {"where": {"mounting": True}})
    for vm in (imported, created):
        tower.ok("delete-vm", {"where": {"id": vm["id"]}})
    spare = _upload(tower, cid, "spare.raw", b"r" * 10)
    spare_volume = tower.ok("import-vm-volume", {"upload_task_id": spare["id"], "name": "spare", "cluster_id": cid,
                                                 "storage_policy": "REPLICA_2_THIN_PROVISION"})["data"]
    tower.ok("delete-vm-volume", {"where": {"id": spare_volume["id"]}})
    pending = _upload(tower, cid, "pending.vmdk", disk, chunks=1)
    tower.ok("cancel-upload-task", {"where": {"id_in": [pending["id"], upload["id"], image["id"], spare["id"]]}})
    tower.ok("get-vms", {"where": {"name_starts_with": "fidelity-"}})


# -- schema-violating requests, derived from a request each operation answered with 200 ------------------------
def _wrong_value(schema: dict[str, Any]) -> Any:
    typ = deref(SPEC, schema).get("type")
    return {"string": 12345, "integer": "x", "number": "x", "boolean": "x", "array": "x", "object": "x"}.get(typ)


def _object_violations(schema: dict[str, Any], valid: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, Any]]:
    """(what, field, body) for each way ``valid`` (an instance of ``schema``) can be made to violate it."""
    schema = deref(SPEC, schema)
    for field in schema.get("required", []):
        if field in valid:
            yield "missing", prefix + field, {k: v for k, v in valid.items() if k != field}
    for field, prop in sorted(schema.get("properties", {}).items()):
        target = deref(SPEC, prop)
        if "enum" in target:
            yield "enum", prefix + field, {**valid, field: "BOGUS_VALUE"}
        wrong = _wrong_value(prop)
        if wrong is not None and field in valid:
            yield "type", prefix + field, {**valid, field: wrong}
        if target.get("type") == "object" and isinstance(valid.get(field), dict) and target.get("properties"):
            for what, name, inner in _object_violations(target, valid[field], f"{prefix}{field}."):
                yield what, name, {**valid, field: inner}


def _where_violations(entity: str) -> Iterator[tuple[str, str, Any]]:
    """(what, key, where) with a ``where`` the spec's ``<entity>WhereInput`` does not allow."""
    table = openapi.WHERE[entity]
    yield "where", "AND", {"AND": {"id": "x"}}
    yield "where", "id", {"id": 5}
    yield "where", "id_in", {"id_in": "x"}
    yield "where", "no_such_field", {"no_such_field": 1}
    picked: set[str] = set()
    for field, (typ, family) in sorted(table.items()):
        kind = family if family in ("R", "M") else ("enum" if typ in openapi.ENUMS else typ)
        if kind in picked:
            continue
        picked.add(kind)
        key = field + ("_some" if family == "M" else "")
        bad = {"R": "abc", "M": "abc", "enum": "BOGUS_VALUE", "String": 5, "Int": "x", "Float": "x",
               "Boolean": "x"}[kind]
        yield "where", key, {key: bad}


def _valid_requests(exchanges: list[tuple[str, Any, int, Any]]) -> dict[str, Any]:
    """The first request each operation answered with 200."""
    valid: dict[str, Any] = {}
    for op, body, status, _answer in exchanges:
        if status == 200:
            valid.setdefault(op, body)
    return valid


def _violations(op: str, valid: Any) -> Iterator[tuple[str, str, str, Any]]:
    """(what, field, kind, body): ``kind`` "json" or "form" (multipart fields, sent as parts)."""
    schema = request_schema(SPEC, op)
    if schema is None:  # the operation takes no body: nothing to violate
        return
    if request_content(SPEC, op) == MULTIPART:
        fields = {**valid["form"], **{name: name for name in valid["files"]}}
        for field in deref(SPEC, schema).get("required", []):
            yield "missing", field, "form", {k: v for k, v in fields.items() if k != field}
        return
    array = _array_request(op)
    item_schema = deref(SPEC, schema)["items"] if array else schema
    wrap = (lambda item: [item]) if array else (lambda item: item)
    if list_entity(op) or op in INFERRED and op.startswith("get-"):
        base = {"where": {}, "orderBy": "id_ASC", "first": 1, "skip": 0, "after": "x", "before": "x", "last": 1}
        base = {k: v for k, v in base.items() if k in deref(SPEC, item_schema).get("properties", {})}
    else:
        base = valid[0] if isinstance(valid, list) else valid
    for what, field, item in _object_violations(item_schema, base, ""):
        yield what, field, "json", wrap(item)
    entity = _where_entity((_item_schema(op) or {}).get("properties", {}).get("where"))
    if entity:
        for what, field, where in _where_violations(entity):
            yield what, field, "json", wrap({**base, "where": where})


def _send_violation(tower: RecordingTower, op: str, kind: str, body: Any):
    if kind == "form":  # every field as a part without a file name: still multipart, only the missing part lacks
        return tower.request("POST", REST + op, files={k: (None, v) for k, v in body.items()} or {"x": (None, "")})
    return tower.rest(op, body, auth=None if op == "login" else "token")


def _error_body_ok(body: Any, status: int, op: str) -> bool:
    """ErrorBody's shape. Its ``code`` is not checked against the spec's ErrorCode enum, which
    lists only ``ResourceLocked`` while the real server answers other codes (API-FACTS)."""
    return (isinstance(body, dict) and {"message", "status", "path"} <= set(body)
            and isinstance(body["message"], str) and body["status"] == status
            and body["path"] == f"/v2/api/{op}" and set(body) <= {"message", "status", "path", "code", "props"})


def _response_problems(op: str, request: Any, status: int, answer: Any) -> list[str]:
    if status != 200:
        return [] if _error_body_ok(answer, status, op) else [f"{op} {status}: not an ErrorBody: {answer}"]
    schema = response_schema(SPEC, op, 200)
    if isinstance(request, dict) and _array_request(op):
        schema = schema["items"]  # the captured clients' bare-object form is answered with a bare object
    return [f"{op}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(SPEC, schema).iter_errors(answer)][:5]


# -- fisheye against the captures --------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def shape_problems(captured: Any, answered: Any, where: str) -> tuple[int, list[str]]:
    """(keys compared, problems): every key of the capture is in the answer with the same JSON
    type (a captured ``null`` says nothing about the type); list items match a captured item."""
    if captured is None:
        return 0, []
    if _kind(captured) != _kind(answered):
        return 1, [f"{where}: {_kind(answered)} where the capture has {_kind(captured)}"]
    if isinstance(captured, dict):
        count, problems = 0, []
        for key, value in captured.items():
            count += 1
            if key not in answered:
                problems.append(f"{where}.{key}: missing")
                continue
            sub_count, sub = shape_problems(value, answered[key], f"{where}.{key}")
            count += sub_count
            problems += sub
        return count, problems
    if isinstance(captured, list) and captured:
        if not answered:
            return 1, [f"{where}: empty where the capture has items"]
        count, problems = 0, []
        for i, item in enumerate(answered):
            tries = [shape_problems(c, item, f"{where}[{i}]") for c in captured]
            best = min(tries, key=lambda t: len(t[1]))
            count += best[0]
            problems += best[1]
        return count, problems
    return 0, []


def _captured_vm() -> Optional[dict[str, Any]]:
    """The walkthrough's ``GET /api/v2/vms/{vm_uuid}`` answer (step 04), parsed from the spec text."""
    if not WALKTHROUGH.is_file():
        return None
    text = WALKTHROUGH.read_text(encoding="utf-8")
    path = text.index("/api/v2/vms/{vm_uuid}")
    start = text.index("\n  {\n", path) + 3
    decoded, _ = json.JSONDecoder().raw_decode(text[start:])
    return decoded


@pytest.fixture(scope="module")
def fidelity(sim, plan) -> dict[str, Any]:
    """The measurement: REST responses after a walkthrough through every served operation,
    bad requests derived from its good ones, fisheye captures."""
    reset_tower(sim)
    tower = RecordingTower(sim.endpoints)
    cid = _walkthrough(tower, plan)
    _components(tower, plan, cid)
    _workload(tower, plan, cid)
    walk_exchanges = list(tower.exchanges)
    valid = _valid_requests(walk_exchanges)
    rejected, bad = 0, []
    for op in SERVED:
        for what, field, kind, body in _violations(op, valid[op]):
            resp = _send_violation(tower, op, kind, body)
            answer = _answer(resp)
            named = field.rsplit(".", 1)[-1] in (answer.get("message", "") if isinstance(answer, dict) else "")
            if resp.status_code == 400 and _error_body_ok(answer, 400, op) and named:
                rejected += 1
            else:
                bad.append(f"{op} {what} {field}: {resp.status_code} {str(answer)[:160]}")
    problems = [_response_problems(*ex) for ex in tower.exchanges]
    return {"served": [op for op in SERVED if in_spec(SPEC, op)], "inferred": [op for op in SERVED if not in_spec(SPEC, op)],
            "exchanges": tower.exchanges, "walk": walk_exchanges,
            "invalid": [p for found in problems for p in found],
            "invalid_exchanges": sum(1 for found in problems if found), "rejected": rejected, "not_rejected": bad,
            "fisheye": _fisheye(plan)}


def _fisheye(plan) -> dict[str, Any]:
    captures = {name: json.loads((SAMPLES / name).read_text(encoding="utf-8"))
                for name in ("scan-host-response.json", "scan-cluster-response.json", "setup-root-response.json")}
    answers: dict[str, Any] = {}
    with Simulator(plan, speed=0, ssh=False) as s:
        shared = SharedSim(s, plan)
        http = shared.restore("undeployed")
        host = plan.hosts[0].mgmt_ip
        answers["scan-host-response.json"] = http.deploy_api("GET", host, "/api/v2/deployment/host").json()
        answers["scan-cluster-response.json"] = http.deploy_api("GET", host, "/api/v2/deployment/cluster").json()
        http = shared.restore("deployed")
        answers["setup-root-response.json"] = http.post(
            host, "/api/v3/users:setupRoot", token=None,
            json={"password": "Aa123456!", "repeat": "Aa123456!", "encrypted": False}).json()
        shared.restore("undeployed")
        http, walk = tower_up(s, plan)
        vm_uuid = walk.v2(plan.cluster.vip, "GET", "/api/v2/vms")[0]["uuid"]  # the CloudTower VM
        answers["GET /api/v2/vms/{uuid}"] = {"data": walk.v2(plan.cluster.vip, "GET", f"/api/v2/vms/{vm_uuid}")}
    vm = _captured_vm()
    if vm is not None:
        captures["GET /api/v2/vms/{uuid}"] = {"data": vm["data"]}
    compared, problems = 0, []
    for name, captured in captures.items():
        count, found = shape_problems(captured, answers[name], name)
        compared += count
        problems += found
    return {"compared": compared, "problems": problems}


# -- the tests ----------------------------------------------------------------------------------------------------
def test_the_openapi_package_is_generated_from_the_spec():
    """lib/voyager/sim/tower/openapi/ 的每个模块与官方 OpenAPI 规范一致（由 tests_unit/tower_openapi.py 生成），且没有多余模块。"""
    generated = generate_spec_package(copy.deepcopy(SPEC))
    folder = Path(openapi.__file__).parent
    committed = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.py")}
    assert committed == generated, "请重新生成：PYTHONPATH=lib python tests_unit/tower_openapi.py lib/voyager/sim/tower/openapi"


def test_every_served_operation_is_in_the_spec_or_a_documented_inference(fidelity):
    """模拟器提供的每个 CloudTower REST 操作（从前端路由自动找出）要么是官方规范里的操作，要么是
    docs/architecture.md 标注为 [INF] 的推断操作（其请求与响应模式见 tower_openapi.INFERRED）；走查中每个都被调用过。"""
    assert SERVED and sorted(fidelity["served"] + fidelity["inferred"]) == SERVED
    assert fidelity["inferred"] == sorted(INFERRED) == sorted(openapi.INFERRED)
    docs = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for op in fidelity["inferred"]:
        at = [m.start() for m in re.finditer(re.escape(f"`/{op}`"), docs)]
        assert any("[INF" in docs[max(0, i - 300):i + 300] for i in at), f"docs/architecture.md 没有把 /{op} 标为 [INF]"
    assert {op for op, *_ in fidelity["walk"]} == set(SERVED)
    assert set(openapi.REQUESTS) == {op for op in SERVED if request_schema(SPEC, op) is not None}


def test_every_served_response_is_schema_valid(fidelity):
    """走查后每个 REST 响应（成功与错误）都符合官方规范的响应模式（nullable 与 allOf 并列时也生效）。"""
    assert fidelity["invalid"] == []


def test_lists_answer_every_property_of_their_entity(fidelity):
    """每个 get-* 列表返回的对象都带有规范中该实体的全部属性（如 get-vms 的 68 个 Vm 属性）。"""
    schemas = SPEC["components"]["schemas"]
    short = {}
    lists = {op: list_entity(op) for op in SERVED if list_entity(op)}
    assert {"get-vms", "get-upload-tasks", "get-vm-volumes", "get-backup-services"} <= set(lists)
    seen = set()
    for op, _request, status, answer in fidelity["walk"]:
        if op in lists and status == 200:
            wanted = set(schemas[lists[op]]["properties"])
            seen.update(op for _ in answer[:1])
            for item in answer:
                if set(item) != wanted:
                    short[op] = sorted(wanted - set(item))
    assert short == {}
    assert seen == set(lists), f"走查中这些列表始终为空，无法比较属性：{sorted(set(lists) - seen)}"


def test_schema_violating_requests_get_a_400_error_body(fidelity):
    """每个已提供操作：缺必填字段（multipart 表单缺必需部分）、类型错误、枚举值错误、where 取值错误的请求
    都得到 400 ErrorBody，且消息点名该字段；每个带请求模式的操作都至少试过一个违规请求。"""
    assert fidelity["not_rejected"] == [] and fidelity["rejected"] > 0
    valid = _valid_requests(fidelity["walk"])
    untried = [op for op in openapi.REQUESTS if not any(True for _ in _violations(op, valid[op]))]
    assert untried == []


def test_fisheye_answers_have_the_captures_keys_and_types(fidelity):
    """fisheye 的主机扫描、集群扫描、setupRoot 与虚拟机详情答复包含抓包中的每个字段，类型一致。"""
    assert fidelity["fisheye"]["problems"] == []


def test_unserved_operation_is_a_404_error_body(sim):
    """模拟器未提供的 CloudTower 操作返回 404 ErrorBody {message, status, path}。"""
    resp = TowerHttp(sim.endpoints).rest("get-vm-templates", {})
    assert resp.status_code == 404 and _error_body_ok(resp.json(), 404, "get-vm-templates")
    assert not _response_problems("get-vm-templates", {}, 404, resp.json())


def test_fidelity_summary(fidelity, capsys):
    """打印一行保真度汇总：提供的操作数/规范操作数（另列规范外 [INF] 操作数）、响应合规数、违规请求被拒数、fisheye 抓包字段数。"""
    exchanges = fidelity["exchanges"]
    valid = len(exchanges) - fidelity["invalid_exchanges"]
    tried = fidelity["rejected"] + len(fidelity["not_rejected"])
    fisheye = fidelity["fisheye"]
    line = (f"CloudTower 保真度：提供 {len(fidelity['served'])}/{len(SPEC['paths'])} 个 REST 操作"
            f"（另有 {len(fidelity['inferred'])} 个规范外 [INF] 操作）；"
            f"响应合规 {valid}/{len(exchanges)}；违规请求被拒 {fidelity['rejected']}/{tried}；"
            f"fisheye 抓包字段 {fisheye['compared'] - len(fisheye['problems'])}/{fisheye['compared']}")
    with capsys.disabled():
        print("\n" + line)
    assert valid == len(exchanges) and fidelity["rejected"] == tried
    assert fisheye["compared"] > 0 and not fisheye["problems"]
