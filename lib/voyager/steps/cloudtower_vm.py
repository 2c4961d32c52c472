"""Walkthrough step 04, the CloudTower VM: the CloudTower ISO in the cluster's
images, the VM's placement (looked up, never assumed), the VM created with the
walkthrough's fixed specification, its guest agent, and its NIC with the
planned address.

Each function observes first, acts only when the effect is missing and
verifies; each records what it expected and found (``voyager.report.facts``)
and returns a short Chinese sentence. The fisheye jobs in flight
(``vm_create_job``, ``nic_job``) go through ``steps.jobs`` with their records in
the run-state section ``cloudtower``: recorded before waiting, followed by a
rerun while they run, forgotten once they ended.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import jobs
from voyager.steps.cloudtower import SECTION, mgmt_cell, tower_cell, tower_ip, vm_name
from voyager.steps.config import StepError, _job_id, find_vds, vlans_of
from voyager.steps.upload import ISO, ensure_image, find_image
from voyager.waiters import WaitFailed, wait_for, wait_vm_guest_agent


VM_CREATE_JOB, NIC_JOB = "vm_create_job", "nic_job"  # keys of the jobs in flight (steps.jobs records)
JOB_TIMEOUT = 1800.0
GUEST_AGENT_TIMEOUT = 3600.0
NIC_REPORT_TIMEOUT = 300.0

# -- the walkthrough's fixed VM specification ---------------------------------------------------
VM_DESCRIPTION = "CloudTower VM auto created by CXVoyager"
VCPU, SOCKETS, CORES = 8, 8, 1
MEMORY = 20401094656
OS_DISK_NAME = "cloudtower-os"
OS_DISK_SIZE = 429496729600  # 400 GiB


# =========================================================================== ISO
def ensure_iso(fisheye, media, run_state) -> tuple[dict[str, Any], str]:
    """The CloudTower ISO listed in ``/api/v2/images`` with the file's name and size
    (uploaded through ``steps.upload`` only when missing)."""
    if media is None:
        raise StepError("媒体目录中没有 CloudTower ISO（cloudtower*.iso）：请用 --media-dir 指定 ISO 所在目录")
    image, how = ensure_image(fisheye, ISO, media, run_state=run_state)
    facts.record("CloudTower ISO 名称", media.name, image.get("name"))
    facts.record("CloudTower ISO 大小（字节）", media.size, image.get("size"))
    if image.get("md5"):
        facts.note(f"集群列出的 md5：{image['md5']}")
    if image.get("name") != media.name or image.get("size") != media.size:
        raise StepError(f"集群中的镜像 {image.get('name')}（{image.get('size')} 字节）与本地 ISO "
                        f"{media.name}（{media.size} 字节）不一致")
    run_state.update(SECTION, {"image_uuid": image.get("uuid"), "image_path": image.get("path")})
    return image, how


def iso_image(fisheye, media) -> dict[str, Any]:
    """The uploaded CloudTower ISO (for the VM's CD-ROM); a clear error when it is missing."""
    if media is None:
        raise StepError("媒体目录中没有 CloudTower ISO（cloudtower*.iso）：请用 --media-dir 指定 ISO 所在目录")
    image = find_image(fisheye, ISO, media.name)
    if image is None or not image.get("path"):
        raise StepError(f"集群中没有已上传的 CloudTower ISO {media.name}：请先完成 ISO 上传检查")
    return image


# =========================================================================== placement
def _listing(answer: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        for key in keys:
            if isinstance(answer.get(key), list):
                return list(answer[key])
        return []
    return list(answer or [])


def default_storage_policy(fisheye) -> dict[str, Any]:
    """The storage policy named ``default`` (``GET /api/v2/storage_policies``)."""
    policies = _listing(fisheye.get("/api/v2/storage_policies"), "entities", "storage_policies")
    policy = next((p for p in policies if p.get("name") == "default"), None)
    if policy is None or not policy.get("uuid"):
        raise StepError(f"集群没有名为 default 的存储策略：{[p.get('name') for p in policies]}")
    return policy


def management_network(fisheye, plan: Plan) -> dict[str, str]:
    """The management VDS (虚拟网络!C4) with its ``ovsbr_name`` and its default
    VM network (虚拟网络!D4, ``default`` when not planned)."""
    name = plan.networks.mgmt.vds
    vds = find_vds(fisheye, name)
    if vds is None:
        raise StepError(f"集群中没有管理虚拟交换机 {name}（{mgmt_cell('vds')}）")
    if not vds.get("ovsbr_name"):
        vds = fisheye.get(f"/api/v2/network/vds/{vds['uuid']}") or vds
    wanted = [n for n in (plan.networks.mgmt.name, "default") if n]
    vlans = vlans_of(fisheye, vds["uuid"])
    vlan = next((v for n in wanted for v in vlans if v.get("name") == n), None)
    if vlan is None:
        raise StepError(f"管理虚拟交换机 {name} 上没有虚拟机网络 {' / '.join(wanted)}（{mgmt_cell('name')}），"
                        f"现有：{[v.get('name') for v in vlans]}")
    if not vds.get("ovsbr_name"):
        raise StepError(f"管理虚拟交换机 {name} 没有返回 ovsbr_name")
    return {"vds_uuid": vds["uuid"], "vds_name": name, "ovsbr_name": vds["ovsbr_name"],
            "vlan_uuid": vlan["uuid"], "vlan_name": vlan.get("name")}


def placement(fisheye, plan: Plan) -> dict[str, str]:
    """What the VM payload needs and the walkthrough says to look up: the default
    storage policy's uuid, the management VDS's ovsbr name and its default VLAN's uuid."""
    net = management_network(fisheye, plan)
    policy = default_storage_policy(fisheye)
    facts.record("管理虚拟交换机", plan.networks.mgmt.vds, net["vds_name"], cell=mgmt_cell("vds"))
    facts.record("管理虚拟交换机 ovsbr_name（查询所得）", "非空", net["ovsbr_name"], ok=bool(net["ovsbr_name"]))
    facts.record("管理网络 VLAN uuid（查询所得）", "非空", net["vlan_uuid"], ok=bool(net["vlan_uuid"]),
                 cell=mgmt_cell("name"))
    facts.record("默认存储策略 uuid（查询所得）", "非空", policy["uuid"], ok=bool(policy["uuid"]))
    return {**net, "storage_policy_uuid": policy["uuid"]}


# =========================================================================== VM
def vm_body(plan: Plan, where: dict[str, str], iso_path: str) -> dict[str, Any]:
    """The walkthrough's ``POST /api/v2/vms`` payload."""
    return {
        "vm_name": vm_name(plan), "description": VM_DESCRIPTION, "vcpu": VCPU, "memory": MEMORY,
        "cpu": {"topology": {"sockets": SOCKETS, "cores": CORES}},
        "nics": [{"ovs": where["ovsbr_name"], "model": "virtio", "mirror": False, "vlan_uuid": where["vlan_uuid"],
                  "link": "up"}],
        "disks": [{"type": "disk", "bus": "virtio", "storage_policy_uuid": where["storage_policy_uuid"],
                   "name": OS_DISK_NAME, "quota_policy": None, "size_in_byte": OS_DISK_SIZE},
                  {"type": "cdrom", "bus": "ide", "path": iso_path, "disabled": False}],
        "ha": True, "nested_virtualization": False, "hasNormalVol": False, "hasSharedVol": False,
        "hasVolume": False, "cpu_model": "cluster_default", "firmware": "BIOS", "diskNamePrefix": "cloudtower",
        "folder_uuid": None, "node_ip": None, "auto_schedule": True, "existDisks": [], "quota_policy": None,
        "status": "running",
    }


def vms_named(fisheye, name: str) -> list[dict[str, Any]]:
    return [v for v in _listing(fisheye.get("/api/v2/vms"), "entities", "vms") if v.get("vm_name") == name]


def _run_job(fisheye, run_state, key: str, start, what: str) -> jobs.Ran:
    """A fisheye job of step 04 through ``steps.jobs`` (recorded as ``cloudtower.<key>``
    before waiting, followed on rerun while it runs, forgotten when it ended); a
    failed job is a ``StepError`` naming it and its reason."""
    try:
        return jobs.run(jobs.FISHEYE_JOB, fisheye, run_state, key, start, section=SECTION, timeout=JOB_TIMEOUT)
    except WaitFailed as exc:
        raise StepError(f"{what}的{exc.describe}失败：{exc.reason}") from None


def check_vm_spec(vm: dict[str, Any], iso_path: str) -> list[str]:
    """Compare the VM with the walkthrough's fixed specification; records each fact."""
    topology = (vm.get("cpu") or {}).get("topology") or {}
    disks = vm.get("disks") or []
    os_disk = next((d for d in disks if d.get("type") == "disk" and d.get("name") == OS_DISK_NAME), {})
    cdrom = next((d for d in disks if d.get("type") == "cdrom"), {})
    rows = [
        ("vCPU", VCPU, vm.get("vcpu")),
        ("CPU 插槽数 × 每插槽核数", f"{SOCKETS} × {CORES}", f"{topology.get('sockets')} × {topology.get('cores')}"),
        ("内存（字节）", MEMORY, vm.get("memory")),
        (f"系统盘 {OS_DISK_NAME} 大小（字节）", OS_DISK_SIZE, os_disk.get("size", os_disk.get("size_in_byte"))),
        (f"系统盘 {OS_DISK_NAME} 总线", "virtio", os_disk.get("bus")),
        ("光驱总线", "ide", cdrom.get("bus")),
        ("光驱挂载的 ISO", iso_path, cdrom.get("path")),
        ("高可用（ha）", True, vm.get("ha")),
        ("固件", "BIOS", vm.get("firmware")),
        ("虚拟机状态", "running", vm.get("status")),
    ]
    problems = []
    for what, expected, found in rows:
        facts.record(f"CloudTower 虚拟机{what}", expected, found)
        if expected != found:
            problems.append(f"{what}为 {found!r}，应为 {expected!r}")
    return problems


def ensure_vm(fisheye, plan: Plan, run_state, where: dict[str, str], image: dict[str, Any]) -> tuple[dict, str]:
    """The CloudTower VM: found by name, else the recorded creating job followed,
    else created (job id recorded before waiting). Verified against the spec."""
    name = vm_name(plan)
    existing = vms_named(fisheye, name)
    if len(existing) > 1:
        raise StepError(f"集群中有 {len(existing)} 台名为 {name} 的虚拟机，请删除多余的后重跑"
                        f"（{tower_cell('vm_name')}）")
    if existing:
        vm_uuid, how = existing[0]["uuid"], f"CloudTower 虚拟机 {name} 已存在"
        jobs.forget(run_state, VM_CREATE_JOB, section=SECTION)  # whatever was recorded has ended in this VM
    else:
        ran = _run_job(fisheye, run_state, VM_CREATE_JOB, lambda: _job_id(
            fisheye.post("/api/v2/vms", json=vm_body(plan, where, image["path"])), f"创建 CloudTower 虚拟机 {name}"),
            f"创建 CloudTower 虚拟机 {name} ")
        how = (f"跟踪上次记录的创建作业，CloudTower 虚拟机 {name} 已创建" if ran.followed
               else f"已创建 CloudTower 虚拟机 {name}")
        created = [u for u, r in (ran.result.get("resources") or {}).items()
                   if isinstance(r, dict) and r.get("type") == "KVM_VM"]
        if not created:
            found = vms_named(fisheye, name)
            if not found:
                raise StepError(f"创建作业 {ran.work_id} 已完成，但集群中没有虚拟机 {name}")
            created = [found[0]["uuid"]]
        vm_uuid = created[0]
    run_state.set(SECTION, "vm_uuid", vm_uuid)
    vm = fisheye.vm(vm_uuid)
    facts.record("CloudTower 虚拟机名称", name, vm.get("vm_name"), cell=tower_cell("vm_name"))
    problems = check_vm_spec(vm, image["path"])
    if problems:
        raise StepError(f"CloudTower 虚拟机 {name} 与部署手册的规格不一致：" + "；".join(problems))
    return vm, how


def wait_guest_agent(fisheye, vm_uuid: str, *, timeout: float = GUEST_AGENT_TIMEOUT) -> dict[str, Any]:
    """The guest agent (SVT vmtools) runs: the OS installed from the ISO and booted."""
    vm = wait_vm_guest_agent(fisheye, vm_uuid, timeout=timeout)
    info = vm.get("guest_info") or {}
    facts.record("guest agent 状态（ga_state）", "Running", info.get("ga_state"))
    facts.note(f"操作系统：{info.get('os_version') or '-'}（guest_os_type {vm.get('guest_os_type')}）")
    return vm


# =========================================================================== NIC
def planned_nic(plan: Plan) -> tuple[str, str, str]:
    """(IP 集群管理信息!E3, netmask of 虚拟网络!H4, gateway 虚拟网络!I4)."""
    mgmt = plan.networks.mgmt
    if not mgmt.subnet or not mgmt.gateway:
        raise StepError(f"规划表未填写管理网络的网段或网关（{mgmt_cell('subnet')} / {mgmt_cell('gateway')}）")
    mask = str(ipaddress.IPv4Network(mgmt.subnet, strict=False).netmask)
    return tower_ip(plan), mask, mgmt.gateway


def guest_addresses(vm: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(ip, netmask, gateway) of every IPv4 address the guest agent reports."""
    out = []
    for nic in (vm.get("guest_info") or {}).get("nics") or []:
        if nic.get("name") == "lo":  # the loopback interface (the simulator's plans use 127.x addresses)
            continue
        for addr in nic.get("ip_addresses") or []:
            if addr.get("ip_address_type") == "ipv4":
                out.append((addr.get("ip_address"), addr.get("netmask") or "", nic.get("gateway_ip") or ""))
    return out


def ensure_vm_ip(fisheye, plan: Plan, vm_uuid: str, run_state, *, timeout: float = NIC_REPORT_TIMEOUT) -> str:
    """The planned IP, mask and gateway on the VM's NIC (``PUT /api/v2/vms/{uuid}``,
    job followed), read back from the guest agent."""
    ip, mask, gateway = planned_nic(plan)
    wanted = (ip, mask, gateway)
    vm = fisheye.vm(vm_uuid)
    if wanted in guest_addresses(vm):
        how = f"CloudTower 虚拟机网卡已是 {ip}/{mask}，网关 {gateway}"
        jobs.forget(run_state, NIC_JOB, section=SECTION)
    else:
        def configure() -> str:
            nics = vm.get("nics") or []
            if not nics:
                raise StepError(f"CloudTower 虚拟机 {vm.get('vm_name')} 没有网卡")
            nic = nics[0]
            body = {"nics": [{"vlan_uuid": nic.get("vlan_uuid"), "ovs": nic.get("ovs"), "model": "virtio",
                              "mac_address": nic.get("mac_address"), "mirror": False, "gateway": gateway,
                              "subnet_mask": mask, "ip_address": ip, "link": "up"}]}
            return _job_id(fisheye.put(f"/api/v2/vms/{vm_uuid}", json=body), "配置 CloudTower 虚拟机网络")

        _run_job(fisheye, run_state, NIC_JOB, configure, "配置 CloudTower 虚拟机网络")
        vm = wait_for(f"CloudTower 虚拟机报告 IP {ip}", lambda: fisheye.vm(vm_uuid),
                      lambda v: wanted in guest_addresses(v), timeout,
                      progress=lambda v: f"guest agent 报告的地址 {guest_addresses(v)}")
        how = f"已为 CloudTower 虚拟机配置 {ip}/{mask}，网关 {gateway}（作业完成）"
    found = next((a for a in guest_addresses(vm) if a[0] == ip), ("", "", ""))
    facts.record("CloudTower IP", ip, found[0], cell=tower_cell("ip"))
    facts.record("子网掩码", mask, found[1], cell=mgmt_cell("subnet"))
    facts.record("网关", gateway, found[2], cell=mgmt_cell("gateway"))
    return how
