"""The disk-image route to a test VM in the simulated CloudTower (voyager.sim.tower.volumes):
``/upload-elf-file`` a disk image -> ``/import-vm-volume`` -> ``/create-vm`` mounting the volume
(OpenAPI 4.6.0), over the wire and with the suite's own clients; the VM behaves as an imported
OVF does (guest agent, address, SSH with the image's account)."""
from __future__ import annotations

import dataclasses
import secrets

import pytest
from sim_tower_support import TowerHttp
from sim_workload_support import connected

from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.backend.faults import Faults
from voyager.sim.backend.passwords import hash_password
from voyager.sim.ssh.workload import guest_image_header
from voyager.sim.tower.vms import CHUNK_SIZE
from voyager.steps import workload

USER = "voyager"
PASSWORD = secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    plan = build_demo_plan()
    with Simulator(plan, speed=0) as sim:
        clients = connected(sim, plan, tmp_path_factory.mktemp("volumes"))
        http = TowerHttp(sim.endpoints)
        http.token = clients.tower._token.reveal()
        vlan = http.ok("get-vlans", {"where": {"name": plan.networks.business.vlans[0].name, "type": "VM"}})[0]
        hosts = {h["management_ip"]: h for h in http.ok("get-hosts", {"where": {"cluster": {"id": clients.cluster_id}}})}
        yield {"sim": sim, "plan": plan, "c": clients, "http": http, "vlan": vlan, "hosts": hosts}
        clients.close()


def _image(size: int = CHUNK_SIZE + 100) -> bytes:
    """A disk image as the simulator's guests carry their account: the header, then zeros."""
    header = guest_image_header(USER, hash_password(PASSWORD))
    return (header + b"\0" * size)[:size]


def _upload(http, cluster_id: str, data: bytes, name: str = "voyager-workload.qcow2") -> dict:
    """``/upload-elf-file`` in CHUNK_SIZE chunks; returns the last UploadTask answer."""
    task = None
    for start in range(0, len(data), CHUNK_SIZE):
        form = {"cluster_id": cluster_id, "name": name, "size": str(len(data)), "size_unit": "B"}
        if task:
            form["upload_task_id"] = task["id"]
        resp = http.post("/v2/api/upload-elf-file", data=form, files={"file": (name, data[start:start + CHUNK_SIZE])})
        assert resp.status_code == 200, resp.text
        task = resp.json()
    return task


def _volume(http, cluster_id: str, name: str, data: bytes | None = None) -> dict:
    upload = _upload(http, cluster_id, _image() if data is None else data)
    assert (upload["status"], upload["resource_type"]) == ("SUCCESSED", "VM_VOLUME_QCOW2")
    (item,) = http.ok("import-vm-volume", [{"upload_task_id": upload["id"], "name": name, "cluster_id": cluster_id,
                                             "storage_policy": "REPLICA_2_THIN_PROVISION"}])
    (task,) = http.ok("get-tasks", {"where": {"id": item["task_id"]}})
    assert task["key"] == "IMPORT_VM_VOLUME" and task["status"] == "SUCCESSED"  # speed 0
    return item["data"]


def _create(world, name: str, disks: dict, **change) -> dict:
    params = {"name": name, "cluster_id": world["c"].cluster_id, "cpu_sockets": 2, "cpu_cores": 1,
              "memory": 2, "memory_unit": "GB", "status": "RUNNING", "firmware": "BIOS", "ha": False,
              "host_id": world["hosts"][world["plan"].hosts[1].mgmt_ip]["id"],
              "vm_nics": [{"connect_vlan_id": world["vlan"]["id"], "model": "VIRTIO", "enabled": True}],
              "vm_disks": disks, **change}
    return world["http"].rest("create-vm", [params])


def _spec(world, name: str):
    """A planned test VM's address, for a VM of another name."""
    return dataclasses.replace(workload.plan_test_vms(world["plan"])[0], name=name)


def test_a_vm_from_an_uploaded_disk_image_is_a_test_vm(world):
    """上传的磁盘镜像 → /import-vm-volume → /create-vm（mount_disks）得到的虚拟机在规划主机上运行，
    配置地址后可用镜像中的账号 SSH 登录；挂载中的卷不能删除，删除虚拟机后卷随之删除。"""
    http, c, plan = world["http"], world["c"], world["plan"]
    volume = _volume(http, c.cluster_id, "img-vm-disk")
    assert volume["mounting"] is False and volume["entityAsyncStatus"] is None
    assert volume["size"] == len(_image()) and volume["elf_storage_policy"] == "REPLICA_2_THIN_PROVISION"
    resp = _create(world, "img-vm", {"mount_disks": [{"vm_volume_id": volume["id"], "bus": "VIRTIO", "boot": 0}]})
    assert resp.status_code == 200, resp.text
    (item,) = resp.json()
    (task,) = http.ok("get-tasks", {"where": {"id": item["task_id"]}})
    assert task["key"] == "CREATE_VM" and task["status"] == "SUCCESSED" and task["resource_id"] == item["data"]["id"]
    (vm,) = http.ok("get-vms", {"where": {"name": "img-vm"}})
    assert vm["status"] == "RUNNING" and vm["vcpu"] == 2 and vm["memory"] == 2 * 2 ** 30
    assert vm["host"]["management_ip"] == plan.hosts[1].mgmt_ip and vm["size"] == volume["size"]
    (mounted,) = http.ok("get-vm-volumes", {"where": {"id": volume["id"]}})
    assert mounted["mounting"] is True
    refused = http.rest("delete-vm-volume", {"where": {"id": volume["id"]}})
    assert refused.status_code == 400 and refused.json()["code"] == "VM_VOLUME_MOUNTED"
    spec = _spec(world, "img-vm")
    workload.wait_guest_agent(c.fisheye, vm["local_id"], timeout=30)
    workload.ensure_address(c.fisheye, vm["local_id"], spec, timeout=30)
    guest = c.ssh(spec.ip, USER, PASSWORD)
    assert guest.run("true", timeout=30).ok
    (deleted,) = http.ok("delete-vm", {"where": {"id": vm["id"]}})
    assert deleted["data"] == {"id": vm["id"]}
    assert http.ok("get-vms", {"where": {"name": "img-vm"}}) == []
    assert http.ok("get-vm-volumes", {"where": {"id": volume["id"]}}) == []  # deleted with its VM


def test_an_address_given_at_creation_answers_once_the_agent_runs(world):
    """/create-vm 的网卡带 ip_address 时，客户机代理运行后该地址即可 SSH 登录（无需再经 fisheye 配置）。"""
    http, c = world["http"], world["c"]
    volume = _volume(http, c.cluster_id, "addr-vm-disk")
    spec = dataclasses.replace(_spec(world, "addr-vm"), ip=workload.plan_test_vms(world["plan"])[1].ip)
    nic = {"connect_vlan_id": world["vlan"]["id"], "ip_address": spec.ip, "subnet_mask": spec.netmask,
           "gateway": spec.gateway}
    resp = _create(world, "addr-vm", {"mount_disks": [{"vm_volume_id": volume["id"], "bus": "SCSI", "boot": 1}]},
                   vm_nics=[nic])
    assert resp.status_code == 200, resp.text
    vm = resp.json()[0]["data"]
    workload.wait_guest_agent(c.fisheye, vm["local_id"], timeout=30)
    assert workload.nic_ip(c.fisheye.vm(vm["local_id"])) == spec.ip
    assert c.ssh(spec.ip, USER, PASSWORD).run("true", timeout=30).ok
    http.ok("delete-vm", {"where": {"id": vm["id"]}})


def test_blank_disks_make_a_plain_vm_and_volumes_delete(world):
    """只有新建空白磁盘与空光驱的虚拟机没有客户机代理；未挂载的卷可以删除。"""
    http, c = world["http"], world["c"]
    disks = {"mount_new_create_disks": [{"vm_volume": {"name": "blank-1", "size": 10, "size_unit": "GB",
                                                       "elf_storage_policy": "REPLICA_2_THIN_PROVISION"},
                                         "bus": "VIRTIO", "boot": 1}],
             "mount_cd_roms": [{"boot": 0}]}
    resp = _create(world, "blank-vm", disks)
    assert resp.status_code == 200, resp.text
    (vm,) = http.ok("get-vms", {"where": {"name": "blank-vm"}})
    assert vm["status"] == "RUNNING" and vm["vm_tools_status"] == "NOT_RUNNING" and vm["size"] == 10 * 2 ** 30
    (blank,) = http.ok("get-vm-volumes", {"where": {"name": "blank-1"}})
    assert blank["mounting"] is True and blank["size"] == 10 * 2 ** 30
    http.ok("delete-vm", {"where": {"id": vm["id"]}})
    assert http.ok("get-vm-volumes", {"where": {"name": "blank-1"}}) == []
    spare = _volume(http, c.cluster_id, "spare-disk")
    (item,) = http.ok("delete-vm-volume", {"where": {"id": spare["id"]}})
    assert item["data"] == {"id": spare["id"]} and item["task_id"]
    assert http.ok("get-vm-volumes", {"where": {"id": spare["id"]}}) == []


def test_import_rules(world):
    """导入卷：上传未完成、上传的是 OVF 描述文件、同一上传导入两次，都被拒绝并说明原因。"""
    http, c = world["http"], world["c"]
    data = _image(CHUNK_SIZE + 10)
    first = http.post("/v2/api/upload-elf-file", files={"file": ("half.qcow2", data[:CHUNK_SIZE])},
                      data={"cluster_id": c.cluster_id, "name": "half.qcow2", "size": str(len(data))}).json()
    body = {"upload_task_id": first["id"], "name": "x", "cluster_id": c.cluster_id,
            "storage_policy": "REPLICA_2_THIN_PROVISION"}
    assert http.rest("import-vm-volume", [body]).json()["code"] == "UPLOAD_NOT_READY"
    ovf = _upload(http, c.cluster_id, b"<Envelope/>", name="x.ovf")
    assert http.rest("import-vm-volume", [{**body, "upload_task_id": ovf["id"]}]).json()["code"] == "UPLOAD_NOT_A_VOLUME"
    used = _upload(http, c.cluster_id, _image(100))
    assert http.rest("import-vm-volume", [{**body, "upload_task_id": used["id"]}]).status_code == 200
    again = http.rest("import-vm-volume", [{**body, "upload_task_id": used["id"], "name": "y"}])
    assert again.json()["code"] == "UPLOAD_ALREADY_USED"
    nosuch = http.rest("import-vm-volume", [{**body, "upload_task_id": "nosuch"}])
    assert nosuch.status_code == 404


@pytest.mark.parametrize("disks, change, status, code", [
    ({"mount_disks": [{"vm_volume_id": "nosuch", "bus": "VIRTIO", "boot": 0}]}, {}, 404, "VM_VOLUME_NOT_FOUND"),
    ({"mount_cd_roms": [{"boot": 0, "elf_image_id": "img"}]}, {}, 404, "IMAGE_NOT_FOUND"),
    ({"mount_cd_roms": [{"boot": 0}, {"boot": 0}]}, {}, 400, "VALIDATION"),
    ({}, {}, 400, "VALIDATION"),
    ({"mount_cd_roms": [{"boot": 0}]}, {"vcpu": 3}, 400, "VALIDATION"),
    ({"mount_cd_roms": [{"boot": 0}]}, {"status": "SUSPENDED"}, 400, "VALIDATION"),
    ({"mount_cd_roms": [{"boot": 0}]}, {"vm_nics": [{"connect_vlan_id": "novlan"}]}, 404, "VLAN_NOT_FOUND"),
    ({"mount_cd_roms": [{"boot": 0}]}, {"memory_unit": "BYTE"}, 400, "VALIDATION"),  # ByteUnit: B, KB, MB…
])
def test_create_rules(world, disks, change, status, code):
    """创建虚拟机：不存在的卷、镜像库中的镜像、重复的启动顺序、没有磁盘、vcpu 与插槽×核数不符、
    不支持的状态、不存在的 VLAN、规范外的内存单位，都被拒绝并说明原因。"""
    resp = _create(world, "bad-vm", disks, **change)
    assert (resp.status_code, resp.json().get("code")) == (status, code), resp.text
    assert world["http"].ok("get-vms", {"where": {"name": "bad-vm"}}) == []


def test_a_mounted_volume_is_mounted_once_and_failures_undo(world):
    """一个卷只能挂载到一台虚拟机；创建任务失败时虚拟机被删除、卷被卸载；导入任务失败时卷消失、上传可再用。"""
    http, c, sim = world["http"], world["c"], world["sim"]
    volume = _volume(http, c.cluster_id, "once-disk")
    mount = {"mount_disks": [{"vm_volume_id": volume["id"], "bus": "VIRTIO", "boot": 0}]}
    twice = _create(world, "twice-vm", {"mount_disks": mount["mount_disks"] * 2})
    assert twice.json()["code"] == "VM_VOLUME_MOUNTED"
    sim.world.faults = Faults("fail-job:CREATE_VM:1")
    try:
        failed = _create(world, "fail-vm", mount)
        assert failed.status_code == 200, failed.text
        (task,) = http.ok("get-tasks", {"where": {"id": failed.json()[0]["task_id"]}})
        assert task["status"] == "FAILED"
        assert http.ok("get-vms", {"where": {"name": "fail-vm"}}) == []
        assert http.ok("get-vm-volumes", {"where": {"id": volume["id"]}})[0]["mounting"] is False
        sim.world.faults = Faults("fail-job:IMPORT_VM_VOLUME:1")
        upload = _upload(http, c.cluster_id, _image(100))
        body = {"upload_task_id": upload["id"], "name": "lost", "cluster_id": c.cluster_id,
                "storage_policy": "REPLICA_2_THIN_PROVISION"}
        (item,) = http.ok("import-vm-volume", [body])
        assert http.ok("get-tasks", {"where": {"id": item["task_id"]}})[0]["status"] == "FAILED"
        assert http.ok("get-vm-volumes", {"where": {"name": "lost"}}) == []
        assert http.rest("import-vm-volume", [body]).status_code == 200  # the upload is free again
    finally:
        sim.world.faults = Faults("")
    (vm_item,) = _create(world, "after-vm", mount).json()
    http.ok("delete-vm", {"where": {"id": vm_item["data"]["id"]}})


def test_volumes_are_kept_in_the_state(world):
    """卷记录随 CloudTower 状态保存并恢复（重启模拟器后仍在）。"""
    http, c, sim = world["http"], world["c"], world["sim"]
    volume = _volume(http, c.cluster_id, "kept-disk")
    state = sim.world.snapshot()
    assert volume["id"] in str(state["tower"]["volumes"])
    sim.world.restore(state)
    (again,) = http.ok("get-vm-volumes", {"where": {"id": volume["id"]}})
    assert again["name"] == "kept-disk"
