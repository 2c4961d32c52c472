"""Step 09: the test workload VMs on the business networks.

Which VMs (:func:`plan_test_vms`)
---------------------------------
The first business VLAN (虚拟网络 row 8) gets two VMs, every other business
VLAN one, so that each VLAN has a VM, there are at least two, and two VMs
share a VLAN (they ping each other; one pings the other while it migrates in
step 10). Hosts take turns in plan order, so the two VMs of a VLAN run on
different hosts. Names ``voyager-test-01`` …; addresses taken in order from
the plan's temporary test range (集群管理信息!E18:E19), with the mask of the
VLAN's subnet (虚拟网络 H) and its gateway (虚拟网络 I).

How a VM is made (:func:`ensure_test_vm`)
-----------------------------------------
Found by name in CloudTower first (a rerun never imports a second one).
Otherwise the template's disk files are uploaded (``/upload-elf-file``,
chunked, the upload task ids recorded in the run state at once so a rerun
resumes them), its descriptor parsed (``/parse-ovf``) and the VM imported
(``/import-vm`` on the planned host, NIC on the VLAN, started); the VM id and
the import task are recorded in the run state (``test_vms.<name>``) before
waiting for the task (``/get-tasks``). Its address is then set the way step 04
sets the CloudTower VM's: through fisheye ``PUT /api/v2/vms/{uuid}`` once the
guest agent runs.

Uploads are spent by the import they are handed to (CloudTower makes the VM's
volumes of them): when no VM is found but the run state shows that an import
was started with the recorded uploads (its task failed, or step 11 deleted the
VM: ``uploads_spent``), those uploads are cancelled and the disks uploaded again.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from voyager.clients import ApiError, TransportError
from voyager.ovf import Ova
from voyager.plan import cells
from voyager.plan.model import BusinessVlan, Host, Plan
from voyager.waiters import wait_job, wait_port, wait_tower_tasks, wait_vm_guest_agent

LOG = logging.getLogger("voyager.steps.workload")

VM_PREFIX = "voyager-test-"
STATE = "test_vms"
EXISTING = "已存在，未重复创建"  # VmFacts.how of a VM found by name
UPLOAD_CHUNK = 4 * 1024 * 1024  # [INF] CloudTower's upload chunk for /upload-elf-file


class WorkloadPlanError(ValueError):
    """The plan cannot place the test VMs (Chinese, names the cells)."""


@dataclass(frozen=True)
class TestVm:
    __test__ = False  # not a pytest test class

    index: int
    name: str
    vlan: BusinessVlan
    ip: str
    netmask: str
    gateway: str
    host: Host

    @property
    def cells(self) -> str:
        row = self.vlan.row
        return (f"{cells.ref(cells.MGMT, cells.MGMT_TEST_IP_START)}:{cells.MGMT_TEST_IP_END}、"
                f"{cells.NET}!D{row}/H{row}/I{row}、{cells.HOSTS}!I{self.host.row}")


def _test_range(plan: Plan) -> list[str]:
    where = f"{cells.ref(cells.MGMT, cells.MGMT_TEST_IP_START)}:{cells.MGMT_TEST_IP_END}"
    rng = plan.test_ip_range
    if rng is None or not rng.start or not rng.end:
        raise WorkloadPlanError(f"规划表没有填写临时测试地址段（{where}），无法为测试虚拟机分配地址")
    try:
        start, end = ipaddress.IPv4Address(rng.start), ipaddress.IPv4Address(rng.end)
    except ValueError:
        raise WorkloadPlanError(f"临时测试地址段 {rng.start} - {rng.end}（{where}）不是有效的 IPv4 地址") from None
    if int(end) < int(start):
        raise WorkloadPlanError(f"临时测试地址段 {rng.start} - {rng.end}（{where}）的结束地址小于起始地址")
    return [str(ipaddress.IPv4Address(n)) for n in range(int(start), min(int(end), int(start) + 255) + 1)]


def plan_test_vms(plan: Plan) -> list[TestVm]:
    vlans = plan.networks.business.vlans
    if not vlans:
        raise WorkloadPlanError(f"规划表没有业务网络（{cells.NET} 第 8-18 行），无法在业务网络上创建测试虚拟机")
    hosts = [h for h in plan.hosts if h.mgmt_ip]
    if len(hosts) < 2:
        raise WorkloadPlanError(f"测试虚拟机需要分布在至少两台主机上，规划表（{cells.HOSTS}）只有 {len(hosts)} 台主机")
    slots = [vlans[0], *vlans]
    ips = _test_range(plan)
    if len(ips) < len(slots):
        raise WorkloadPlanError(
            f"临时测试地址段（{cells.ref(cells.MGMT, cells.MGMT_TEST_IP_START)}:{cells.MGMT_TEST_IP_END}）只有 "
            f"{len(ips)} 个地址，{len(vlans)} 个业务网络需要 {len(slots)} 台测试虚拟机：请扩大地址段")
    out = []
    for k, vlan in enumerate(slots):
        row = vlan.row
        try:
            net = ipaddress.IPv4Network(vlan.subnet or "", strict=False)
        except ValueError:
            raise WorkloadPlanError(f"业务网络 {vlan.name} 的子网 {vlan.subnet!r}（{cells.NET}!H{row}）无效") from None
        if not vlan.subnet or not vlan.gateway:
            raise WorkloadPlanError(f"业务网络 {vlan.name} 缺少子网或网关（{cells.NET}!H{row}/I{row}）")
        out.append(TestVm(k + 1, f"{VM_PREFIX}{k + 1:02d}", vlan, ips[k], str(net.netmask), vlan.gateway,
                          hosts[k % len(hosts)]))
    return out


def same_vlan_peers(specs: list[TestVm], spec: TestVm) -> list[TestVm]:
    return [s for s in specs if s.vlan.name == spec.vlan.name and s.name != spec.name]


# -- CloudTower lookups ------------------------------------------------------------------------
def tower_hosts(tower, cluster_id: str) -> dict[str, dict[str, Any]]:
    """``{management ip: host}`` of the cluster in CloudTower."""
    hosts = tower.rest("get-hosts", {"where": {"cluster": {"id": cluster_id}}}) or []
    return {h["management_ip"]: h for h in hosts}


def host_by_node_ip(hosts: dict[str, dict[str, Any]], node_ip: str) -> Optional[dict[str, Any]]:
    return next((h for h in hosts.values() if node_ip in (h.get("data_ip"), h.get("management_ip"))), None)


def tower_vlan(tower, name: str) -> dict[str, Any]:
    vlans = tower.rest("get-vlans", {"where": {"name": name, "type": "VM"}}) or []
    if not vlans:
        raise AssertionError(f"CloudTower 中没有业务网络 {name}：请先完成 03-配置集群 与 05-关联 CloudTower")
    return vlans[0]


def find_vms(tower, cluster_id: str, name: str) -> list[dict[str, Any]]:
    return tower.rest("get-vms", {"where": {"name": name, "cluster": {"id": cluster_id}}}) or []


def find_vm(tower, cluster_id: str, name: str) -> Optional[dict[str, Any]]:
    found = find_vms(tower, cluster_id, name)
    if len(found) > 1:
        raise AssertionError(f"CloudTower 中有 {len(found)} 台名为 {name} 的虚拟机（应只有一台）："
                             f"{', '.join(v['id'] for v in found)}")
    return found[0] if found else None


# -- upload and import ---------------------------------------------------------------------------
def _upload_state(run_state, name: str) -> dict[str, Any]:
    return dict(run_state.get(STATE, name) or {})


CHUNK_ATTEMPTS = 3  # a chunk refused (5xx) or cut off is sent again from where CloudTower stands, twice


def upload_disk(tower, cluster_id: str, ova: Ova, file_name: str, size: int, run_state, vm_name: str,
                slot: int) -> str:
    """Upload one disk file of the template (resuming a recorded upload); returns its upload task id.
    A chunk CloudTower refuses (5xx) or whose answer is lost is sent again from the task's
    ``current_chunk`` (at most :data:`CHUNK_ATTEMPTS` times in a row)."""
    recorded = (_upload_state(run_state, vm_name).get("upload_tasks") or {}).get(str(slot))
    task = None
    if recorded:
        task = _upload_task(tower, recorded)
        task = task if task and task.get("status") in ("UPLOADING", "SUCCESSED") else None
        if task and task["status"] == "SUCCESSED":
            return task["id"]
    chunk = int(task["chunk_size"]) if task else UPLOAD_CHUNK
    index = int(task["current_chunk"]) if task else 0
    failures = 0
    with ova.open(file_name) as fh:
        while index * chunk < size:
            fh.seek(index * chunk)  # resume: from the chunk CloudTower expects next
            data = fh.read(chunk)
            form = {"cluster_id": cluster_id, "name": file_name, "size": str(size), "size_unit": "B"}
            if task:
                form["upload_task_id"] = task["id"]
            try:
                task = tower.call("POST", "/v2/api/upload-elf-file", data=form,
                                  files={"file": (file_name, data, "application/octet-stream")})
            except (ApiError, TransportError) as exc:
                if isinstance(exc, ApiError) and exc.status is not None and exc.status < 500:
                    raise
                failures += 1
                if failures >= CHUNK_ATTEMPTS:
                    raise AssertionError(f"{vm_name} 上传模板磁盘 {file_name} 的第 {index + 1} 块连续 {failures} 次"
                                         f"失败：{exc}；重跑会从已上传的位置继续") from None
                current = _upload_task(tower, task["id"]) if task else None
                LOG.warning("%s 上传 %s 第 %d 块失败（%s），从 CloudTower 记录的位置重发", vm_name, file_name,
                            index + 1, exc)
                index = int(current["current_chunk"]) if current else 0
                task = current
                continue
            failures = 0
            if not recorded:
                run_state.merge(STATE, vm_name, {"upload_tasks": {**(_upload_state(run_state, vm_name).get(
                    "upload_tasks") or {}), str(slot): task["id"]}})
                recorded = task["id"]
            index = int(task["current_chunk"])
            chunk = int(task["chunk_size"])
            LOG.info("%s 上传 %s：%d/%d 字节", vm_name, file_name, min(size, index * chunk), size)
    if task.get("status") != "SUCCESSED":
        raise AssertionError(f"{file_name} 上传后状态为 {task.get('status')}，不是 SUCCESSED")
    return task["id"]


def _upload_task(tower, task_id: str) -> Optional[dict[str, Any]]:
    tasks = tower.rest("get-upload-tasks", {"where": {"id": task_id}}) or []
    return tasks[0] if tasks else None


def drop_spent_uploads(tower, run_state, name: str) -> list[str]:
    """Cancel the uploads recorded for VM ``name`` that an import already used (no VM was
    left of it, or it was deleted) and forget them; returns the ids cancelled."""
    ids = list((_upload_state(run_state, name).get("upload_tasks") or {}).values())
    present = [t["id"] for t in tower.rest("get-upload-tasks", {"where": {"id_in": ids}}) or []] if ids else []
    if present:
        tower.rest("cancel-upload-task", {"where": {"id_in": present}})
    run_state.delete(STATE, name)
    return present


def import_params(spec: TestVm, cluster_id: str, host_id: str, vlan_id: str, parsed: dict[str, Any],
                  uploads: list[str], vm_cfg: dict[str, Any]) -> dict[str, Any]:
    params = {"name": spec.name, "cluster_id": cluster_id, "host_id": host_id, "upload_tasks": uploads,
              "parsed_ovf": parsed, "status": "RUNNING", "ha": False,
              "description": "smtx-voyager 测试虚拟机（验收完成后删除）",
              "vm_nics": [{"connect_vlan_id": vlan_id, "model": "VIRTIO", "enabled": True}]}
    if vm_cfg.get("vcpu"):
        params.update({"vcpu": int(vm_cfg["vcpu"]), "cpu_sockets": int(vm_cfg["vcpu"]), "cpu_cores": 1})
    if vm_cfg.get("memory_mib"):
        # VmImportParams.memory_unit is a ByteUnit: B, KB, MB, GB, TB, PB (OpenAPI 4.6.0)
        params.update({"memory": int(vm_cfg["memory_mib"]) * 2 ** 20, "memory_unit": "B"})
    return params


@dataclass
class VmFacts:
    name: str
    id: str
    local_id: str
    how: str
    host_ip: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)


def record_vm(run_state, spec: TestVm, vm: dict[str, Any], **more: Any) -> None:
    run_state.merge(STATE, spec.name, {"id": vm["id"], "local_id": vm.get("local_id"), "ip": spec.ip,
                                       "vlan": spec.vlan.name, **more})


def ensure_test_vm(tower, cluster_id: str, spec: TestVm, template: Path, run_state,
                   vm_cfg: Optional[dict[str, Any]] = None, *, task_timeout: float = 3600.0) -> VmFacts:
    """The VM exists (imported once); returns its ids and how it was obtained."""
    vm = find_vm(tower, cluster_id, spec.name)
    recorded = _upload_state(run_state, spec.name)
    if vm is not None:
        record_vm(run_state, spec, vm)
        task = recorded.get("import_task") if recorded.get("id") == vm["id"] else None
        if task:
            wait_tower_tasks(tower, [task], timeout=task_timeout)
            vm = find_vm(tower, cluster_id, spec.name) or vm
        return VmFacts(spec.name, vm["id"], vm["local_id"], EXISTING, (vm.get("host") or {}).get("management_ip"))
    if recorded.get("import_task") or recorded.get("uploads_spent"):
        spent = drop_spent_uploads(tower, run_state, spec.name)
        LOG.info("%s：上次导入用掉的上传（%s）已取消，重新上传模板", spec.name, "、".join(spent) or "已不存在")
    ova = Ova(template)
    hosts = tower_hosts(tower, cluster_id)
    host = hosts.get(spec.host.mgmt_ip)
    if host is None:
        raise AssertionError(f"CloudTower 中没有主机 {spec.host.mgmt_ip}（{spec.host.name}）")
    vlan = tower_vlan(tower, spec.vlan.name)
    uploads = [upload_disk(tower, cluster_id, ova, name, size, run_state, spec.name, k)
               for k, (name, size) in enumerate(ova.disk_files())]
    # parse-ovf reads the descriptor and creates nothing: safe to resend (idempotent)
    parsed = tower.call("POST", "/v2/api/parse-ovf", data={"cluster_id": cluster_id}, idempotent=True,
                        files={"file": (ova.descriptor_name, ova.descriptor_bytes, "application/xml")})
    answer = tower.rest("import-vm", [import_params(spec, cluster_id, host["id"], vlan["id"], parsed, uploads,
                                                    vm_cfg or {})])
    item = answer[0] if isinstance(answer, list) else answer
    vm, task_id = item["data"], item.get("task_id")
    record_vm(run_state, spec, vm, import_task=task_id)
    LOG.info("%s 导入中（CloudTower 任务 %s），目标主机 %s", spec.name, task_id, spec.host.name)
    wait_tower_tasks(tower, [task_id], timeout=task_timeout)
    return VmFacts(spec.name, vm["id"], vm["local_id"], "已从模板导入", spec.host.mgmt_ip,
                   {"template": template.name, "upload_tasks": uploads})


def tower_vm(tower, cluster_id: str, spec: TestVm) -> dict[str, Any]:
    vm = find_vm(tower, cluster_id, spec.name)
    if vm is None:
        raise AssertionError(f"CloudTower 中没有测试虚拟机 {spec.name}：请先通过 test_vm_created")
    return vm


def wait_guest_agent(fisheye, local_id: str, *, timeout: float = 1800.0) -> dict[str, Any]:
    return wait_vm_guest_agent(fisheye, local_id, timeout=timeout)


def nic_config(vm: dict[str, Any]) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """``(ip, netmask, gateway)`` of the VM's first configured IPv4 as its guest agent reports it."""
    for nic in (vm.get("guest_info") or {}).get("nics") or []:
        for addr in nic.get("ip_addresses") or []:
            if addr.get("ip_address_type") == "ipv4" and not str(addr.get("ip_address", "")).startswith("127.0.0."):
                return addr["ip_address"], addr.get("netmask") or None, nic.get("gateway_ip") or None
    return None, None, None


def nic_ip(vm: dict[str, Any]) -> Optional[str]:
    return nic_config(vm)[0]


def ensure_address(fisheye, local_id: str, spec: TestVm, *, timeout: float = 600.0) -> str:
    """The VM's NIC carries the planned address (step 04's way); returns what was done."""
    vm = fisheye.vm(local_id)
    if nic_ip(vm) == spec.ip:
        return f"已配置 {spec.ip}/{spec.netmask}，网关 {spec.gateway}"
    nic = vm["nics"][0]
    body = {"nics": [{"vlan_uuid": nic["vlan_uuid"], "ovs": nic["ovs"], "model": "virtio",
                      "mac_address": nic["mac_address"], "mirror": False, "gateway": spec.gateway,
                      "subnet_mask": spec.netmask, "ip_address": spec.ip, "link": "up"}]}
    job = fisheye.put(f"/api/v2/vms/{local_id}", json=body)
    wait_job(fisheye, job["job_id"], timeout=timeout)
    found = nic_ip(fisheye.vm(local_id))
    assert found == spec.ip, f"{spec.name} 的网卡地址为 {found}，应为 {spec.ip}（{spec.cells}）"
    return f"已设置 {spec.ip}/{spec.netmask}，网关 {spec.gateway}"


def wait_ssh(endpoints, spec: TestVm, *, timeout: float = 600.0) -> None:
    wait_port(endpoints, spec.ip, 22, timeout=timeout, describe=f"测试虚拟机 {spec.name}（{spec.ip}）的 SSH 端口")


# -- ping ------------------------------------------------------------------------------------------
_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
_SEQ = re.compile(r"icmp_seq=(\d+)")


@dataclass
class PingResult:
    transmitted: int
    received: int
    rtt_min: Optional[float]
    rtt_avg: Optional[float]
    rtt_max: Optional[float]
    longest_gap_packets: int
    interval: float

    @property
    def loss_percent(self) -> float:
        return 100.0 if not self.transmitted else (self.transmitted - self.received) * 100.0 / self.transmitted

    @property
    def longest_gap_seconds(self) -> float:
        return self.longest_gap_packets * self.interval

    def describe(self) -> str:
        rtt = (f"，RTT 最小/平均/最大 {self.rtt_min:.3f}/{self.rtt_avg:.3f}/{self.rtt_max:.3f} ms"
               if self.rtt_avg is not None else "")
        return (f"发送 {self.transmitted}，收到 {self.received}，丢包 {self.loss_percent:.1f}%{rtt}，"
                f"最长连续无应答 {self.longest_gap_seconds:.1f} 秒")


def parse_ping(text: str, interval: float) -> PingResult:
    """iputils ping output -> figures; the longest run of unanswered packets from the icmp_seq gaps."""
    stats = _STATS.search(text or "")
    if stats is None:
        raise AssertionError(f"ping 没有输出统计行：{(text or '')[-300:]!r}")
    sent, got = int(stats.group(1)), int(stats.group(2))
    seqs = sorted({int(s) for s in _SEQ.findall(text)})
    if seqs:
        gaps = [seqs[0] - 1, sent - seqs[-1]] + [b - a - 1 for a, b in zip(seqs, seqs[1:])]
        longest = max(gaps)
    else:
        longest = sent
    rtt = _RTT.search(text)
    values = [float(rtt.group(i)) for i in (1, 2, 3)] if rtt else [None, None, None]
    return PingResult(sent, got, *values, longest_gap_packets=longest, interval=interval)


def ping(client, target: str, *, count: int, interval: float) -> PingResult:
    """``ping`` from the VM behind the SSH ``client`` to ``target``."""
    cmd = f"ping -c {int(count)} -i {interval:g} -W 1 {shlex.quote(target)}"
    result = client.run(cmd, timeout=count * interval + 60)
    return parse_ping(result.stdout, interval)


def guest_login(ssh: Callable, spec: TestVm, cfg) -> Any:
    """An SSH client logged into the test VM with the template's account."""
    client = ssh(spec.ip, cfg.guest_user, cfg.guest_password)
    client.run("true", timeout=60).check(f"登录测试虚拟机 {spec.name}")
    return client


def ensure_ready(tower, fisheye, endpoints, cluster_id: str, spec: TestVm, template: Path, run_state,
                 vm_cfg: Optional[dict[str, Any]] = None) -> VmFacts:
    """Everything step 09 checks one by one, in one go (a later step rerun alone
    needs its VM): created, guest agent up, address set, SSH answering."""
    result = ensure_test_vm(tower, cluster_id, spec, template, run_state, vm_cfg)
    wait_guest_agent(fisheye, result.local_id)
    ensure_address(fisheye, result.local_id, spec)
    wait_ssh(endpoints, spec)
    return result
