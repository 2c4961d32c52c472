"""Walkthrough step 04 (部署cloudtower并配置): the CloudTower ISO, the
CloudTower VM, its NIC, the installer, and CloudTower's first setup (root
user, organization, login, NTP, DNS, license serial).

Each function observes first, acts only when the effect is missing and
verifies; each records what it expected and found (``voyager.report.facts``)
and returns a short Chinese sentence. Work in flight is recorded in the run
state section ``cloudtower`` before it is awaited (``vm_create_job``,
``nic_job``, ``installer_started``) and a rerun follows it instead of
starting it again.

Fixed by the walkthrough (not plan values): the VM specification, the SSH
account ``cloudtower`` and CloudTower's root password ``HC!r0cks`` (its
encoded form is hard-coded in ``createRootUser``). Both are kept as
:class:`Secret` and registered with the redactor.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from datetime import datetime, timezone
from typing import Any, Optional

from voyager.clients import is_already_exists
from voyager.plan import cells
from voyager.plan.model import Plan, Secret
from voyager.redact import REDACTOR
from voyager.report import facts
from voyager.steps.config import StepError, _job_id, find_vds, vlans_of, write_back_checked
from voyager.steps.jobs import current_job
from voyager.steps.upload import ISO, ensure_image, find_image
from voyager.waiters import WaitError, WaitFailed, epoch_of, wait_for, wait_installer_log, wait_job, wait_port, \
    wait_vm_guest_agent


SECTION = "cloudtower"
JOB_TIMEOUT = 1800.0
GUEST_AGENT_TIMEOUT = 3600.0
INSTALL_TIMEOUT = 3600.0
NIC_REPORT_TIMEOUT = 300.0

# -- the walkthrough's fixed VM specification ---------------------------------------------------
VM_DESCRIPTION = "CloudTower VM auto created by CXVoyager"
VCPU, SOCKETS, CORES = 8, 8, 1
MEMORY = 20401094656
OS_DISK_NAME = "cloudtower-os"
OS_DISK_SIZE = 429496729600  # 400 GiB
DEFAULT_VM_NAME = "cloudtower"

# -- the walkthrough's fixed accounts ------------------------------------------------------------
SSH_USER = "cloudtower"
ROOT_USER = "root"
ROOT_PASSWORD = Secret(cells.DEFAULT_PASSWORD)  # HC!r0cks: "默认密码就是HC!r0cks，不能修改"
ENCODED_ROOT_PASSWORD = Secret(
    "NzllNTE3NTgxYWY5NDY3ODM4ZTczMTg1MDc4YmM3YzQ6eVpSSTlodUNxNDBNL3J4ZTViZ1dqZz09")
REDACTOR.add_secret(ROOT_PASSWORD)
REDACTOR.add_secret(ENCODED_ROOT_PASSWORD)

# -- the installer ------------------------------------------------------------------------------------
# The walkthrough's `sudo sh preinstall.sh && sudo nohup sudo installer deploy &`, as two commands:
# the pre-installation runs in the foreground (its failure is shown, and the installer is not
# started), then the installer is detached with its output sent to nohup.out explicitly — over a
# non-interactive SSH channel nohup would otherwise keep writing to the channel and hold it open.
PREINSTALL_COMMAND = "sudo sh /usr/share/smartx/tower/preinstall.sh"
INSTALL_LOG = "nohup.out"  # in the cloudtower user's login directory, where nohup writes it
INSTALLER_COMMAND = (f"sudo nohup sudo /usr/share/smartx/tower/installer/binary/installer deploy "
                     f">> {INSTALL_LOG} 2>&1 < /dev/null &")
SUCCESS_MARKER = "Install Operation Center Successfully"
FAILURE_MARKERS = ("Install Operation Center Failed",)
TAIL_LINES = 20
PORT_RETRIES, PORT_INTERVAL = 3, 10.0  # walkthrough: 443 not answering -> retry 3 times, 10 s apart

# -- GraphQL operations, as the walkthrough sends them ---------------------------------------------
CREATE_ROOT_USER = (
    "mutation createRootUser($root_password: String!, $now: DateTime!) {\n  createUser(data: {name: \"root\", "
    "source: LOCAL, role: ROOT, username: \"root\", display_username: \"root\", password: $root_password, "
    "password_recover_qa: {enabled: false, items: []}, password_updated_at: $now}, effect: {encoded: true}) {\n"
    "    id\n    __typename\n  }\n}\n")
CREATE_ORGANIZATION = ("mutation createOrganization($data: OrganizationCreateInput!) {\n  createOrganization("
                       "data: $data) {\n    id\n    __typename\n  }\n}\n")
CHECK_TOWER_IS_SETUP = ("query checkTowerIsSetup {\n  organizations(first: 1) {\n    id\n    name\n    __typename\n"
                        "  }\n  userCreated {\n    created\n    __typename\n  }\n}\n")
UPDATE_NTP = ("mutation updateCloudTowerNtpUrl($data: NtpCommonUpdateInput!) {\n  updateCloudTowerNtpUrl(data: "
              "$data) {\n    ntp_service_url\n    __typename\n  }\n}\n")
DEPLOYED_LICENSE = (
    "query deployedLicense {\n  deploys(first: 1) {\n    id\n    license {\n      id\n      license_serial\n"
    "      maintenance_end_date\n      maintenance_start_date\n      max_chunk_num\n      max_cluster_num\n"
    "      max_vm_num\n      used_vm_num\n      sign_date\n      expire_date\n      software_edition\n      type\n"
    "      vendor\n      __typename\n    }\n    __typename\n  }\n}\n")


def _mgmt_cell(key: str) -> str:
    return cells.ref(cells.NET, f"{cells.NET_COL[key]}{cells.NET_ROW_MGMT}")


def _tower_cell(key: str) -> str:
    return cells.ref(cells.MGMT, f"{cells.MGMT_COL[key]}{cells.MGMT_ROW_CLOUDTOWER}")


def vm_name(plan: Plan) -> str:
    """集群管理信息!B3, lower-cased (default ``cloudtower``)."""
    return (plan.cloudtower.vm_name or DEFAULT_VM_NAME).strip().lower()


def tower_ip(plan: Plan) -> str:
    if not plan.cloudtower.ip:
        raise StepError(f"规划表未填写 CloudTower 的 IP 地址（{_tower_cell('ip')}）")
    return plan.cloudtower.ip


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
        raise StepError(f"集群中没有管理虚拟交换机 {name}（{_mgmt_cell('vds')}）")
    if not vds.get("ovsbr_name"):
        vds = fisheye.get(f"/api/v2/network/vds/{vds['uuid']}") or vds
    wanted = [n for n in (plan.networks.mgmt.name, "default") if n]
    vlans = vlans_of(fisheye, vds["uuid"])
    vlan = next((v for n in wanted for v in vlans if v.get("name") == n), None)
    if vlan is None:
        raise StepError(f"管理虚拟交换机 {name} 上没有虚拟机网络 {' / '.join(wanted)}（{_mgmt_cell('name')}），"
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
    facts.record("管理虚拟交换机", plan.networks.mgmt.vds, net["vds_name"], cell=_mgmt_cell("vds"))
    facts.record("管理虚拟交换机 ovsbr_name（查询所得）", "非空", net["ovsbr_name"], ok=bool(net["ovsbr_name"]))
    facts.record("管理网络 VLAN uuid（查询所得）", "非空", net["vlan_uuid"], ok=bool(net["vlan_uuid"]),
                 cell=_mgmt_cell("name"))
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


def _recorded_job(fisheye, run_state, key: str) -> Optional[dict[str, Any]]:
    """The job recorded under ``cloudtower.<key>``, or None when none is recorded
    or the cluster no longer knows it."""
    job_id = run_state.get(SECTION, key)
    job = current_job(fisheye, job_id) if job_id else None
    return job if job and (job.get("job_id") or job.get("state")) else None


def _follow_job(fisheye, job_id: str, what: str) -> dict[str, Any]:
    try:
        return wait_job(fisheye, job_id, timeout=JOB_TIMEOUT)
    except WaitFailed as exc:
        raise StepError(f"{what}的作业 {job_id} 失败：{exc.reason}") from None


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
                        f"（{_tower_cell('vm_name')}）")
    if existing:
        vm_uuid, how = existing[0]["uuid"], f"CloudTower 虚拟机 {name} 已存在"
        run_state.delete(SECTION, "vm_create_job")  # whatever was recorded has ended in this VM
    else:
        job = _recorded_job(fisheye, run_state, "vm_create_job")
        if job is not None and job.get("state") != "failed":
            job_id = job.get("job_id") or run_state.get(SECTION, "vm_create_job")
            how = f"跟踪上次记录的创建作业，CloudTower 虚拟机 {name} 已创建"
        else:
            if job is not None:
                facts.note(f"上次创建 CloudTower 虚拟机的作业 {job.get('job_id')} 失败，已重新创建")
            answer = fisheye.post("/api/v2/vms", json=vm_body(plan, where, image["path"]))
            job_id = _job_id(answer, f"创建 CloudTower 虚拟机 {name}")
            run_state.set(SECTION, "vm_create_job", job_id)
            how = f"已创建 CloudTower 虚拟机 {name}"
        done = _follow_job(fisheye, job_id, f"创建 CloudTower 虚拟机 {name} ")
        created = [u for u, r in (done.get("resources") or {}).items()
                   if isinstance(r, dict) and r.get("type") == "KVM_VM"]
        if not created:
            found = vms_named(fisheye, name)
            if not found:
                raise StepError(f"创建作业 {job_id} 已完成，但集群中没有虚拟机 {name}")
            created = [found[0]["uuid"]]
        vm_uuid = created[0]
        run_state.delete(SECTION, "vm_create_job")
    run_state.set(SECTION, "vm_uuid", vm_uuid)
    vm = fisheye.vm(vm_uuid)
    facts.record("CloudTower 虚拟机名称", name, vm.get("vm_name"), cell=_tower_cell("vm_name"))
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
        raise StepError(f"规划表未填写管理网络的网段或网关（{_mgmt_cell('subnet')} / {_mgmt_cell('gateway')}）")
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
        run_state.delete(SECTION, "nic_job")
    else:
        job = _recorded_job(fisheye, run_state, "nic_job")
        if job is not None and job.get("state") != "failed":
            job_id = job.get("job_id") or run_state.get(SECTION, "nic_job")
        else:
            nics = vm.get("nics") or []
            if not nics:
                raise StepError(f"CloudTower 虚拟机 {vm.get('vm_name')} 没有网卡")
            nic = nics[0]
            body = {"nics": [{"vlan_uuid": nic.get("vlan_uuid"), "ovs": nic.get("ovs"), "model": "virtio",
                              "mac_address": nic.get("mac_address"), "mirror": False, "gateway": gateway,
                              "subnet_mask": mask, "ip_address": ip, "link": "up"}]}
            job_id = _job_id(fisheye.put(f"/api/v2/vms/{vm_uuid}", json=body), "配置 CloudTower 虚拟机网络")
            run_state.set(SECTION, "nic_job", job_id)
        _follow_job(fisheye, job_id, "配置 CloudTower 虚拟机网络")
        run_state.delete(SECTION, "nic_job")
        vm = wait_for(f"CloudTower 虚拟机报告 IP {ip}", lambda: fisheye.vm(vm_uuid),
                      lambda v: wanted in guest_addresses(v), timeout,
                      progress=lambda v: f"guest agent 报告的地址 {guest_addresses(v)}")
        how = f"已为 CloudTower 虚拟机配置 {ip}/{mask}，网关 {gateway}（作业完成）"
    found = next((a for a in guest_addresses(vm) if a[0] == ip), ("", "", ""))
    facts.record("CloudTower IP", ip, found[0], cell=_tower_cell("ip"))
    facts.record("子网掩码", mask, found[1], cell=_mgmt_cell("subnet"))
    facts.record("网关", gateway, found[2], cell=_mgmt_cell("gateway"))
    return how


# =========================================================================== installer
def log_tail(ssh, lines: int = TAIL_LINES) -> Optional[str]:
    """The last ``lines`` lines of the installer log, or None when there is none."""
    result = ssh.sudo(f"tail -n {int(lines)} {shlex.quote(INSTALL_LOG)}")
    return result.stdout if result.ok else None


def installer_state(tail: Optional[str]) -> str:
    """``none`` (never started), ``running``, ``ok`` or ``failed`` — from the log."""
    if not tail or not tail.strip():
        return "none"
    if SUCCESS_MARKER in tail:
        return "ok"
    if any(m in tail for m in FAILURE_MARKERS):
        return "failed"
    return "running"


def _installer_failed(ssh, reason: str) -> StepError:
    tail = log_tail(ssh) or "（日志为空 / empty）"
    return StepError(f"CloudTower 安装失败：{reason}\n{INSTALL_LOG} 最后 {TAIL_LINES} 行：\n{REDACTOR.redact(tail)}")


def install(ssh, endpoints, plan: Plan, run_state, *, timeout: float = INSTALL_TIMEOUT) -> str:
    """Run the installer once (the walkthrough's command), follow ``nohup.out`` until
    the success line; a failure names the log's last lines. A rerun after a failed
    installation removes the failed log and runs the installer again."""
    ip = tower_ip(plan)
    tail = log_tail(ssh)
    state = installer_state(tail)
    if state == "none" and endpoints.tcp_open(ip, 443):
        facts.record("CloudTower 443 端口", "应答", "应答")
        facts.note("没有安装日志，CloudTower 已在 443 端口应答：视为已安装")
        return "CloudTower 已安装（443 端口已应答）"
    how = "安装程序已在运行，继续跟踪日志" if state == "running" else "CloudTower 已安装"
    if state in ("none", "failed"):
        if state == "failed":
            facts.note("上次安装失败，删除失败的安装日志后重新运行安装程序")
            ssh.sudo(f"rm -f {shlex.quote(INSTALL_LOG)}").check("删除失败的安装日志")
        for command in (PREINSTALL_COMMAND, INSTALLER_COMMAND):
            result = ssh.run(command, timeout=600)
            if not result.ok:
                raise StepError(f"CloudTower 安装命令 {command.split(' >>')[0]} 失败（退出码 {result.exit_status}）：\n"
                                f"{REDACTOR.redact((result.stdout + result.stderr)[-2000:])}")
        runs = int(run_state.get(SECTION, "installer_runs") or 0) + 1
        run_state.update(SECTION, {"installer_started": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                                   "installer_runs": runs})
        how = "已运行 CloudTower 安装程序" + (f"（第 {runs} 次）" if runs > 1 else "")
    try:
        # one `tail` over SSH at most every 30 s, paced from the installer's start (run state)
        wait_installer_log(ssh, INSTALL_LOG, SUCCESS_MARKER, failure_markers=FAILURE_MARKERS, sudo=True,
                           lines=TAIL_LINES, timeout=timeout, interval=5.0, max_interval=30.0,
                           started=epoch_of(run_state.get(SECTION, "installer_started")))
    except WaitError as exc:
        raise _installer_failed(ssh, getattr(exc, "reason", None) or str(exc)) from None
    facts.record("安装日志", SUCCESS_MARKER, SUCCESS_MARKER)
    return how + "，日志出现 " + SUCCESS_MARKER


def wait_https(endpoints, plan: Plan, *, retries: int = PORT_RETRIES, interval: float = PORT_INTERVAL) -> str:
    """443 answers (walkthrough: retry three times, 10 s apart, then fail)."""
    ip = tower_ip(plan)
    wait_port(endpoints, ip, 443, timeout=retries * interval, interval=interval, max_interval=interval,
              describe=f"CloudTower {ip} 的 443 端口应答")
    facts.record("CloudTower 443 端口", "应答", "应答")
    return f"CloudTower {ip} 的 443 端口已应答"


# =========================================================================== first setup (GraphQL)
def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def check_setup(tower_anon) -> dict[str, Any]:
    data = tower_anon.graphql("checkTowerIsSetup", CHECK_TOWER_IS_SETUP, {}, auth=False, idempotent=True) or {}
    return {"organizations": list(data.get("organizations") or []),
            "created": bool((data.get("userCreated") or {}).get("created"))}


def ensure_root_user(tower_anon) -> str:
    """CloudTower's root user (``createRootUser`` with the walkthrough's encoded
    password); an existing user is accepted. ``checkTowerIsSetup`` shows it."""
    if check_setup(tower_anon)["created"]:
        how = "CloudTower 管理员 root 已存在"
    else:
        answer = tower_anon.graphql("createRootUser", CREATE_ROOT_USER,
                                    {"root_password": ENCODED_ROOT_PASSWORD, "now": _now()},
                                    auth=False, already_ok=True)
        how = "CloudTower 管理员 root 已存在" if is_already_exists(answer) else "已创建 CloudTower 管理员 root"
    created = check_setup(tower_anon)["created"]
    facts.record("checkTowerIsSetup.userCreated.created", True, created)
    if not created:
        raise StepError("checkTowerIsSetup 显示 CloudTower 管理员尚未创建")
    return how


def organization_name(plan: Plan) -> str:
    name = plan.cloudtower.organization or plan.document.customer
    if not name:
        raise StepError(f"规划表未填写客户名称（{cells.ref(cells.DOC, cells.DOC_CUSTOMER)}），无法命名 CloudTower 组织")
    return name


def _organizations(tower) -> list[dict[str, Any]]:
    return list(tower.rest("get-organizations", {}) or [])


def ensure_organization(tower_anon, plan: Plan) -> tuple[str, str]:
    """The organization named from 文档描述!C15: created (before setup without a
    token, afterwards logged in); an existing one is accepted. Returns (id, how)."""
    name = organization_name(plan)
    cell = cells.ref(cells.DOC, cells.DOC_CUSTOMER)
    mine = find_organization(tower_anon, name)
    if mine is not None:
        how = f"CloudTower 组织 {name} 已存在"
    else:
        # before setup createOrganization needs no token; with other organizations present it does
        answer = tower_anon.graphql("createOrganization", CREATE_ORGANIZATION, {"data": {"name": name}},
                                    auth=tower_anon.logged_in, already_ok=True)
        how = f"CloudTower 组织 {name} 已存在" if is_already_exists(answer) else f"已创建 CloudTower 组织 {name}"
        mine = find_organization(tower_anon, name)
    setup = check_setup(tower_anon)
    facts.record("CloudTower 组织", name, mine.get("name") if mine else None, cell=cell)
    facts.record("checkTowerIsSetup.organizations", "至少一个组织", [o.get("name") for o in setup["organizations"]],
                 ok=bool(setup["organizations"]))
    if mine is None:
        raise StepError(f"CloudTower 中没有组织 {name}（{cell}）")
    return mine["id"], how


def find_organization(tower_anon, name: str) -> Optional[dict[str, Any]]:
    """The organization ``name``: checkTowerIsSetup shows the first one only, so
    when organizations exist and the first is another one, all are listed
    (logged in as root)."""
    orgs = check_setup(tower_anon)["organizations"]
    if not orgs:
        return None
    if orgs[0].get("name") != name:
        if not tower_anon.logged_in:
            tower_anon.login(ROOT_USER, ROOT_PASSWORD)
        orgs = _organizations(tower_anon)
    return next((o for o in orgs if o.get("name") == name), None)


def login(tower, plan: Plan) -> str:
    """``POST /v2/api/login`` as root with the walkthrough's fixed password."""
    tower.login(ROOT_USER, ROOT_PASSWORD)
    facts.record("CloudTower 登录（/v2/api/login）", "获得 token", "获得 token" if tower.logged_in else "没有 token")
    if plan.cloudtower.web_password and plan.cloudtower.web_password.reveal() != ROOT_PASSWORD.reveal():
        facts.note(f"规划表的 CloudTower 密码（{_tower_cell('web_password')}）与部署手册固定的初始密码不同；"
                   "部署时使用固定的初始密码")
    return f"已登录 CloudTower {tower.ip}（用户 {ROOT_USER}）"


# =========================================================================== NTP / DNS / license
def _servers(text: Any) -> list[str]:
    return [s.strip() for s in re.split(r"[;,]", str(text or "")) if s.strip()]


def tower_ntp_servers(tower) -> list[str]:
    return _servers((tower.rest("get-ntp-service-url", {}) or {}).get("ntp_service_url"))


def ensure_ntp(tower, plan: Plan) -> str:
    """CloudTower's NTP servers = the plan's (集群管理信息!E22:E24), read back."""
    servers = list(plan.ntp)
    cell = cells.ref(cells.MGMT, f"{cells.MGMT_NTP[0]}:{cells.MGMT_NTP[-1]}")
    if not servers:
        raise StepError(f"规划表未填写 NTP 服务器（{cell}）")
    if tower_ntp_servers(tower) == servers:
        how = f"CloudTower NTP 已是 {servers}"
    else:
        data = tower.graphql("updateCloudTowerNtpUrl", UPDATE_NTP, {"data": {"ntp_service_url": ",".join(servers)}})
        answered = _servers(((data or {}).get("updateCloudTowerNtpUrl") or {}).get("ntp_service_url"))
        facts.record("updateCloudTowerNtpUrl 的返回", servers, answered, cell=cell)
        how = f"已设置 CloudTower NTP {servers}"
    after = tower_ntp_servers(tower)
    facts.record("CloudTower NTP 服务器（读回）", servers, after, cell=cell)
    if after != servers:
        raise StepError(f"CloudTower 读回的 NTP 服务器为 {after}，应为规划的 {servers}（{cell}）")
    return how


RESOLV_CONF = "/etc/resolv.conf"


def nameservers(text: str) -> list[str]:
    return [parts[1] for parts in (line.split() for line in (text or "").splitlines())
            if len(parts) >= 2 and parts[0] == "nameserver"]


def read_resolv_conf(ssh) -> str:
    result = ssh.run(f"cat {RESOLV_CONF}")
    return result.stdout if result.ok else ""


def ensure_dns(ssh, plan: Plan) -> str:
    """``/etc/resolv.conf`` of the CloudTower VM names the plan's DNS servers
    (集群管理信息!E25:E26), in order; other lines are kept. Read back."""
    servers = list(plan.dns)
    cell = cells.ref(cells.MGMT, f"{cells.MGMT_DNS[0]}:{cells.MGMT_DNS[-1]}")
    if not servers:
        raise StepError(f"规划表未填写 DNS 服务器（{cell}）")
    text = read_resolv_conf(ssh)
    if nameservers(text) == servers:
        how = f"{RESOLV_CONF} 已是 {servers}"
    else:
        kept = [line for line in text.splitlines() if not line.split()[:1] == ["nameserver"]]
        content = "\n".join(kept + [f"nameserver {s}" for s in servers]) + "\n"
        ssh.sudo(f"tee {RESOLV_CONF}", stdin=content).check(f"写入 {RESOLV_CONF}")
        how = f"已写入 {RESOLV_CONF}：{servers}"
    after = nameservers(read_resolv_conf(ssh))
    facts.record(f"CloudTower {RESOLV_CONF} 的 nameserver（读回）", servers, after, cell=cell)
    if after != servers:
        raise StepError(f"{RESOLV_CONF} 读回的 DNS 为 {after}，应为规划的 {servers}（{cell}）")
    return how


def license_serial(tower) -> dict[str, Any]:
    """``deployedLicense`` → the license of the first deploy (serial, type, dates)."""
    data = tower.graphql("deployedLicense", DEPLOYED_LICENSE, {}, idempotent=True) or {}
    deploys = data.get("deploys") or []
    lic = (deploys[0] or {}).get("license") if deploys else None
    if not lic or not lic.get("license_serial"):
        raise StepError(f"deployedLicense 没有返回 CloudTower 序列号：{data!r}")
    facts.record("CloudTower 序列号", "非空", lic["license_serial"], ok=True)
    facts.note(f"许可类型 {lic.get('type')}，版本 {lic.get('software_edition')}，"
               f"签发 {lic.get('sign_date')}，到期 {lic.get('expire_date')}")
    return lic


def write_back_serial(plan_path, serial: str) -> str:
    """The CloudTower serial into 集群管理信息!M3, read back."""
    message, found = write_back_checked(plan_path, "cloudtower_serial", serial, lambda p: p.cloudtower.serial)
    facts.record("规划表 CloudTower 序列号（写回后读回）", serial, found,
                 cell=cells.ref(cells.MGMT, cells.MGMT_CLOUDTOWER_SERIAL))
    return message
