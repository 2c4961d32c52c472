"""CloudTower's test-VM operations in the simulator (voyager.sim.tower.vms): the rules
that refuse bad requests, over plain HTTP (the happy path runs in test_steps_workload)."""
from __future__ import annotations

import pytest
from sim_tower_support import TowerHttp, tower_up

from voyager.ovf import descriptor_xml
from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.tower.vms import CHUNK_SIZE


@pytest.fixture(scope="module")
def tower():
    plan = build_demo_plan()
    with Simulator(plan, speed=0, ssh=False) as sim:
        tower_up(sim, plan)
        http = TowerHttp(sim.endpoints)
        org = http.setup(plan.cloudtower.organization)
        _, cluster = http.connect(plan, org, plan.cloudtower.datacenter)
        http.cluster_id = cluster["id"]
        http.sim = sim
        yield http


def _upload(tower, data: bytes, size: int, task_id=None, name="disk.vmdk"):
    form = {"cluster_id": tower.cluster_id, "name": name, "size": str(size), "size_unit": "B"}
    if task_id:
        form["upload_task_id"] = task_id
    return tower.post("/v2/api/upload-elf-file", data=form, files={"file": (name, data)})


def _finished_upload(tower) -> str:
    first = _upload(tower, b"x" * CHUNK_SIZE, CHUNK_SIZE + 10)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["current_chunk"]) == ("UPLOADING", 1)
    last = _upload(tower, b"y" * 10, CHUNK_SIZE + 10, first.json()["id"])
    assert last.json()["status"] == "SUCCESSED" and last.json()["resource_type"] == "VM_VOLUME_VMDK"
    return first.json()["id"]


def test_upload_chunks_must_have_the_chunk_size(tower):
    bad = _upload(tower, b"x" * 100, CHUNK_SIZE * 2)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CHUNK"
    assert tower.post("/v2/api/upload-elf-file", json={}).status_code == 400  # multipart only
    task_id = _finished_upload(tower)
    again = _upload(tower, b"z", CHUNK_SIZE + 10, task_id)
    assert again.json()["code"] == "UPLOAD_TASK_FINISHED"
    listed = tower.ok("get-upload-tasks", {"where": {"id": task_id}})
    assert listed[0]["size"] == CHUNK_SIZE + 10
    assert tower.ok("cancel-upload-task", {"where": {"id": task_id}}) == [task_id]
    assert tower.ok("get-upload-tasks", {"where": {"id": task_id}}) == []


def test_parse_ovf_and_import_rules(tower):
    xml = descriptor_xml("tiny", vcpu=4, memory_mib=1024, disk_gib=8, disk_file="d.vmdk", disk_file_size=10,
                         mac="00:50:56:00:00:09")
    parsed = tower.post("/v2/api/parse-ovf", data={"cluster_id": tower.cluster_id},
                        files={"file": ("tiny.ovf", xml)})
    assert parsed.status_code == 200, parsed.text
    body = parsed.json()
    assert (body["name"], body["vcpu"], body["memory"]) == ("tiny", 4, 2 ** 30)
    assert body["disks"] == [{"name": "disk0", "size": 8 * 2 ** 30, "type": "DISK", "bus": "VIRTIO"}]
    broken = tower.post("/v2/api/parse-ovf", data={"cluster_id": tower.cluster_id}, files={"file": ("x.ovf", b"<a")})
    assert broken.json()["code"] == "INVALID_OVF"
    vlan = tower.ok("get-vlans", {"where": {"name": "VLAN-1120"}})[0]
    params = {"name": "tiny-vm", "cluster_id": tower.cluster_id, "parsed_ovf": body, "status": "RUNNING",
              "vm_nics": [{"connect_vlan_id": vlan["id"]}]}
    unfinished = tower.rest("import-vm", [{**params, "upload_tasks": ["nope"]}])
    assert unfinished.json()["code"] == "UPLOAD_NOT_READY"
    task_id = _finished_upload(tower)
    item = tower.ok("import-vm", [{**params, "upload_tasks": [task_id]}])[0]
    assert item["data"]["name"] == "tiny-vm" and item["task_id"]
    reused = tower.rest("import-vm", [{**params, "name": "tiny-2", "upload_tasks": [task_id]}])
    assert reused.json()["code"] == "UPLOAD_ALREADY_USED"
    vm = tower.ok("get-vms", {"where": {"name": "tiny-vm"}})[0]
    assert vm["status"] == "RUNNING"  # speed 0: the import task is done
    same_host = tower.rest("migrate-vm", {"where": {"id": vm["id"]}, "data": {"host_id": vm["host"]["id"]}})
    assert same_host.json()["code"] == "SAME_HOST"
    deleted = tower.ok("delete-vm", {"where": {"id": vm["id"]}})
    assert deleted[0]["data"] == {"id": vm["id"]}
    assert tower.ok("get-vms", {"where": {"name": "tiny-vm"}}) == []


def test_a_dropped_chunk_is_refused_and_a_dropped_first_chunk_leaves_no_task(tower):
    """drop-chunk：第一块被拒时不留下上传任务（创建任务的请求整体失败）；之后的块被拒时任务保留，
    current_chunk 不前进，重发该块后继续。"""
    from voyager.sim.backend.faults import Faults

    saved = tower.sim.world.faults
    tower.sim.world.faults = Faults("drop-chunk:dropped.vmdk:1")
    try:
        before = {t["id"] for t in tower.ok("get-upload-tasks", {})}
        first = _upload(tower, b"x" * CHUNK_SIZE, CHUNK_SIZE + 10, name="dropped.vmdk")
        assert first.status_code == 500 and first.json()["code"] == "UPLOAD_FAILED"
        assert {t["id"] for t in tower.ok("get-upload-tasks", {})} == before
        first = _upload(tower, b"x" * CHUNK_SIZE, CHUNK_SIZE + 10, name="dropped.vmdk").json()
        assert first["current_chunk"] == 1
        tower.sim.world.faults = Faults("drop-chunk:dropped.vmdk:1")
        refused = _upload(tower, b"y" * 10, CHUNK_SIZE + 10, first["id"], name="dropped.vmdk")
        assert refused.status_code == 500
        assert tower.ok("get-upload-tasks", {"where": {"id": first["id"]}})[0]["current_chunk"] == 1
        last = _upload(tower, b"y" * 10, CHUNK_SIZE + 10, first["id"], name="dropped.vmdk").json()
        assert last["status"] == "SUCCESSED"
    finally:
        tower.sim.world.faults = saved
    tower.ok("cancel-upload-task", {"where": {"id": first["id"]}})


def test_a_failed_import_answers_its_vm_and_task_then_leaves_no_vm(tower):
    """fail-job:IMPORT_VM 故障下（速度 0，任务立即结束）import-vm 仍然返回虚拟机与任务；任务失败，虚拟机不存在，
    其上传已被这次导入用掉。"""
    from voyager.sim.backend.faults import Faults

    xml = descriptor_xml("tiny", vcpu=1, memory_mib=512, disk_gib=1, disk_file="d.vmdk", disk_file_size=10,
                         mac="00:50:56:00:00:0a")
    body = tower.post("/v2/api/parse-ovf", data={"cluster_id": tower.cluster_id},
                      files={"file": ("tiny.ovf", xml)}).json()
    vlan = tower.ok("get-vlans", {"where": {"name": "VLAN-1120"}})[0]
    task_id = _finished_upload(tower)
    params = {"name": "doomed", "cluster_id": tower.cluster_id, "parsed_ovf": body, "status": "RUNNING",
              "vm_nics": [{"connect_vlan_id": vlan["id"]}], "upload_tasks": [task_id]}
    saved = tower.sim.world.faults
    tower.sim.world.faults = Faults("fail-job:IMPORT_VM:1")
    try:
        item = tower.ok("import-vm", [params])[0]
    finally:
        tower.sim.world.faults = saved
    assert item["data"]["name"] == "doomed" and item["task_id"]
    task = tower.ok("get-tasks", {"where": {"id": item["task_id"]}})[0]
    assert task["status"] == "FAILED"
    assert tower.ok("get-vms", {"where": {"name": "doomed"}}) == []
    assert tower.rest("import-vm", [params]).json()["code"] == "UPLOAD_ALREADY_USED"
    tower.ok("cancel-upload-task", {"where": {"id": task_id}})


def test_maintenance_needs_a_precheck_worthy_cluster_and_one_host(tower):
    hosts = tower.ok("get-hosts", {"where": {"cluster": {"id": tower.cluster_id}}})
    many = tower.rest("enter-maintenance-mode-precheck", {"where": {"cluster": {"id": tower.cluster_id}}})
    assert many.status_code == 400  # where must select one host
    task = tower.ok("enter-maintenance-mode-precheck", {"where": {"id": hosts[0]["id"]}})["task_id"]
    assert tower.ok("get-tasks", {"where": {"id": task}})[0]["status"] == "SUCCESSED"
    out = tower.rest("exit-maintenance-mode", {"where": {"id": hosts[0]["id"]}})
    assert out.json()["code"] == "HOST_NOT_IN_MAINTENANCE"
    tower.ok("enter-maintenance-mode", {"where": {"id": hosts[0]["id"]}})
    state = tower.ok("get-hosts", {"where": {"id": hosts[0]["id"]}})[0]["host_state"]
    assert state["state"] == "MAINTENANCE_MODE"
    tower.ok("exit-maintenance-mode", {"where": {"id": hosts[0]["id"]}})
    assert tower.ok("get-hosts", {"where": {"id": hosts[0]["id"]}})[0]["host_state"] is None


def test_a_failed_import_answers_the_vm_then_removes_it(tower):
    """导入任务失败（fail-job:IMPORT_VM）时，/import-vm 仍答复虚拟机与任务，任务随后失败、虚拟机被删除。"""
    from voyager.sim.backend.faults import Faults

    xml = descriptor_xml("tiny", vcpu=1, memory_mib=512, disk_gib=1, disk_file="d.vmdk", disk_file_size=10,
                         mac="00:50:56:00:00:0a")
    parsed = tower.post("/v2/api/parse-ovf", data={"cluster_id": tower.cluster_id},
                        files={"file": ("tiny.ovf", xml)}).json()
    params = {"name": "doomed-vm", "cluster_id": tower.cluster_id, "parsed_ovf": parsed,
              "upload_tasks": [_finished_upload(tower)]}
    tower.sim.world.faults = Faults("fail-job:IMPORT_VM:1")
    try:
        resp = tower.rest("import-vm", [params])
    finally:
        tower.sim.world.faults = Faults("")
    assert resp.status_code == 200, resp.text
    (item,) = resp.json()
    assert item["data"]["name"] == "doomed-vm" and item["data"]["status"] == "STOPPED"
    assert tower.ok("get-tasks", {"where": {"id": item["task_id"]}})[0]["status"] == "FAILED"
    assert tower.ok("get-vms", {"where": {"name": "doomed-vm"}}) == []


def test_import_takes_memory_in_its_byte_unit(tower):
    """/import-vm 的 memory 按 memory_unit（ByteUnit）换算；规范外的单位（如 BYTE）得到 400。"""
    xml = descriptor_xml("sized", vcpu=1, memory_mib=512, disk_gib=1, disk_file="d.vmdk", disk_file_size=10,
                         mac="00:50:56:00:00:0b")
    parsed = tower.post("/v2/api/parse-ovf", data={"cluster_id": tower.cluster_id},
                        files={"file": ("sized.ovf", xml)}).json()
    params = {"name": "sized-vm", "cluster_id": tower.cluster_id, "parsed_ovf": parsed, "vcpu": 2,
              "memory": 3, "memory_unit": "GB"}
    bad = tower.rest("import-vm", [{**params, "memory_unit": "BYTE", "upload_tasks": ["x"]}])
    assert bad.status_code == 400 and "memory_unit" in bad.json()["message"]
    (item,) = tower.ok("import-vm", [{**params, "upload_tasks": [_finished_upload(tower)]}])
    assert (item["data"]["vcpu"], item["data"]["memory"]) == (2, 3 * 2 ** 30)
    tower.ok("delete-vm", {"where": {"id": item["data"]["id"]}})

