"""Walkthrough step 01 (准备阶段): reachability, addresses not in use, host
scans and the comparison of each scan with the plan.

Every problem is a Chinese sentence naming the host and the plan cell to look
at (``主机 demo-node-02（127.10.20.12）缺少规划的网卡 ens224（虚拟网络!J4 管理网络）``).
"""
from __future__ import annotations

import contextvars
import ipaddress
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from voyager.clients.fisheye import FisheyeClient
from voyager.plan import cells
from voyager.plan.model import Host, Plan
from voyager.plan.rules import RULES
from voyager.report import facts

HOST_PORTS = (80, 443, 22)
PROBE_PORTS = (22, 80, 443)
MAX_SCAN_WORKERS = 16
DISKS_NOT_FOR_STORAGE = ("boot", "smtx_system")


# --------------------------------------------------------------------------- scan
def scan_host(endpoints, ip: str) -> dict[str, Any]:
    """``GET /api/v2/deployment/host`` of one host (deployment API, fixed token)."""

    data = FisheyeClient(endpoints, ip).deployment("GET", "/api/v2/deployment/host", idempotent=True)
    if not isinstance(data, dict) or not data.get("host_uuid"):
        raise ValueError(f"主机 {ip} 的扫描结果不完整（没有 host_uuid）")
    return data


def scan_hosts(endpoints, ips: Iterable[str], scan: Callable[[Any, str], dict] = scan_host,
               max_workers: int = MAX_SCAN_WORKERS) -> dict[str, Any]:
    """Scan every host in parallel; ``{ip: scan data or the exception raised}``.
    Each worker runs in a copy of the caller's context, so the evidence of the
    scans is recorded against the calling step."""
    ips = [ip for ip in ips if ip]
    results: dict[str, Any] = {}
    if not ips:
        return results
    with ThreadPoolExecutor(max_workers=min(max_workers, len(ips)), thread_name_prefix="scan") as pool:
        futures = {ip: pool.submit(contextvars.copy_context().run, scan, endpoints, ip) for ip in ips}
        for ip, fut in futures.items():
            try:
                results[ip] = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per host by the suite
                results[ip] = exc
    return results


def scan_facts(scan: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """What the run state keeps of a scan: ids, addresses, version, disks."""
    port_mgt = next((i for i in scan.get("ifaces") or [] if i.get("name") == "port-mgt"), {})
    nics = {i["name"]: i.get("ipv6") for i in scan.get("ifaces") or []
            if i.get("name") in plan.networks.mgmt.nics and i.get("ipv6")}
    return {
        "uuid": scan.get("host_uuid"),
        "hostname": scan.get("hostname"),
        "version": scan.get("version"),
        "patch_version": scan.get("patch_version"),
        "status": scan.get("status"),
        "sn": scan.get("sn"),
        "link_local": {"port-mgt": port_mgt.get("ipv6"), **nics},
        "disks": [{k: d.get(k) for k in ("drive", "function", "model", "serial", "size", "type")}
                  for d in scan.get("disks") or []],
    }


# --------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class PlannedNic:
    nic: str
    role: str  # 管理网络 / 存储网络 ...
    cell: str  # where the NIC list is, e.g. 虚拟网络!J4
    speed: Optional[str]
    speed_cell: str


def planned_nics(plan: Plan) -> list[PlannedNic]:
    nets = plan.networks
    groups = [
        (nets.mgmt, "管理网络", cells.NET_ROW_MGMT),
        (nets.storage, "存储网络", cells.NET_ROW_STORAGE),
        (nets.backup, "备份网络", cells.NET_ROW_BACKUP),
    ]
    out: list[PlannedNic] = []
    seen: set[str] = set()
    for net, role, row in groups:
        if net is None:
            continue
        for nic in net.nics:
            if nic not in seen:
                seen.add(nic)
                out.append(PlannedNic(nic, role, cells.ref(cells.NET, f"J{row}"), net.speed,
                                      cells.ref(cells.NET, f"L{row}")))
    biz = nets.business
    for nic in biz.nics:
        if nic not in seen:
            seen.add(nic)
            out.append(PlannedNic(nic, "业务网络", cells.ref(cells.NET, "J8"), biz.speed,
                                  cells.ref(cells.NET, "L8")))
    return out


def host_label(host: Host) -> str:
    return f"主机 {host.name}（{host.mgmt_ip}）"


def nic_problems(plan: Plan, host: Host, scan: dict[str, Any]) -> list[str]:
    """Planned NICs present, link up, speed as planned."""
    ifaces = {i.get("name"): i for i in scan.get("ifaces") or []}
    problems = []
    for p in planned_nics(plan):
        iface = ifaces.get(p.nic)
        facts.record(f"{p.role}网卡 {p.nic}", "存在", "存在" if iface is not None else "缺少", cell=p.cell)
        if iface is None:
            problems.append(f"{host_label(host)}缺少规划的网卡 {p.nic}（{p.cell} {p.role}）")
            continue
        link_up = bool(iface.get("physical_link_up") and iface.get("running"))
        facts.record(f"{p.nic} 链路", "已连接", "已连接" if link_up else "未连接", cell=p.cell)
        if not link_up:
            problems.append(f"{host_label(host)}的网卡 {p.nic} 链路未连接（{p.cell} {p.role}）")
            continue
        wanted = cells.speed_bits(p.speed)
        got = iface.get("speed")
        shown = f"{got / 1e9:g}G" if isinstance(got, (int, float)) and got else "未知"
        if wanted:
            facts.record(f"{p.nic} 速率", p.speed, shown, cell=p.speed_cell, ok=got == wanted)
        else:
            facts.note(f"规划表没有填写 {p.role}的速率（{p.speed_cell}），{p.nic} 的速率 {shown} 不作比较")
        if wanted and got != wanted:
            problems.append(f"{host_label(host)}的网卡 {p.nic} 速率为 {shown}，与规划的 {p.speed} 不符"
                            f"（{p.speed_cell} {p.role}）")
    return problems


def storage_disks(scan: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in scan.get("disks") or [] if d.get("function") not in DISKS_NOT_FOR_STORAGE]


def _drives(disks: list[dict[str, Any]]) -> Any:
    return [f"{d.get('drive')}（{d.get('type')}）" for d in disks] or "（无）"


def disk_problems(plan: Plan, host: Host, scan: dict[str, Any]) -> list[str]:
    """Disks usable for the planned storage architecture (主机规划!Q19)."""
    arch = (plan.cluster.storage_arch or "").strip()
    cell = cells.ref(cells.HOSTS, cells.HOST_STORAGE_ARCH)
    disks = storage_disks(scan)
    ssd = [d for d in disks if (d.get("type") or "").upper() == "SSD"]
    hdd = [d for d in disks if (d.get("type") or "").upper() == "HDD"]
    facts.record("存储架构", arch, arch, cell=cell, ok=arch in ("混闪-分层", "全闪-不分层"))
    facts.record("可用于存储的磁盘（系统盘除外）", "至少 1 块", _drives(disks), ok=bool(disks))
    if arch == "混闪-分层":
        facts.record("SSD/NVMe 缓存盘", "至少 1 块", _drives(ssd), cell=cell, ok=bool(ssd))
        facts.record("HDD 数据盘", "至少 1 块", _drives(hdd), cell=cell, ok=bool(hdd))
    elif arch == "全闪-不分层":
        facts.record("HDD 磁盘", "没有（全部为 SSD）", _drives(hdd), cell=cell, ok=not hdd)
    if not disks:
        return [f"{host_label(host)}除系统盘外没有可用于存储的磁盘"]
    if arch == "混闪-分层":
        problems = []
        if not ssd:
            problems.append(f"{host_label(host)}没有 SSD/NVMe 缓存盘，不满足存储架构 {arch}（{cell}）")
        if not hdd:
            problems.append(f"{host_label(host)}没有 HDD 数据盘，不满足存储架构 {arch}（{cell}）")
        return problems
    if arch == "全闪-不分层":
        if hdd:
            drives = "、".join(d.get("drive") or "?" for d in hdd)
            return [f"{host_label(host)}有 HDD 磁盘 {drives}，不满足存储架构 {arch}（{cell}）"]
        return []
    return [f"存储架构 {arch!r} 不是 混闪-分层 或 全闪-不分层（{cell}）"]


def deployed_problem(host: Host, scan: dict[str, Any], cluster_deployed: bool) -> Optional[str]:
    """A host must not be deployed already, unless the whole cluster is (resuming)."""
    status = scan.get("status")
    facts.record("主机部署状态 status", "disabled（未部署），或整个集群已部署（续跑）",
                 f"{status}" + ("（整个集群已部署：续跑）" if cluster_deployed else ""),
                 ok=status in (None, "disabled") or cluster_deployed)
    if status in (None, "disabled") or cluster_deployed:
        return None
    return (f"{host_label(host)}已经部署（status={status}），不能再次部署；"
            "请确认主机规划是否正确，或先将该主机恢复为未部署状态")


def version_text(scan: dict[str, Any]) -> str:
    return f"{scan.get('product') or ''} {scan.get('version') or '?'}{scan.get('patch_version') or ''}".strip()


def version_problems(plan: Plan, scans: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``(problems, notes)``: hosts must run the same product version; a
    difference from the plan's version note (主机规划!C19) is a note."""
    versions: dict[str, list[str]] = {}
    for host in plan.hosts:
        scan = scans.get(host.mgmt_ip)
        if isinstance(scan, dict):
            versions.setdefault(version_text(scan), []).append(host.name or host.mgmt_ip or "?")
    problems, notes = [], []
    for v, names in sorted(versions.items()):
        facts.record(f"{'、'.join(names)} 的版本", "所有主机一致", v, ok=len(versions) == 1)
    if len(versions) > 1:
        problems.append("主机的产品版本不一致：" + "；".join(
            f"{v}: {'、'.join(names)}" for v, names in sorted(versions.items())))
    note = plan.cluster.version_note or ""
    for v in versions:
        number = v.split(" ", 1)[-1]
        if note and number and number not in note.replace(" ", ""):
            notes.append(f"主机版本 {number} 与规划表的版本说明 {note!r}（"
                         f"{cells.ref(cells.HOSTS, cells.HOST_VERSION_NOTE)}）不一致")
    for text in notes:
        facts.note(text + "（仅提示，不影响结果）")
    return problems, notes


def cluster_deployed_from_scans(scans: dict[str, Any]) -> bool:
    """True when every host scans as part of a deployed cluster (resuming)."""
    values = [s for s in scans.values() if isinstance(s, dict)]
    return bool(values) and len(values) == len(scans) and all(s.get("status") not in (None, "disabled")
                                                              for s in values)


# --------------------------------------------------------------------------- addresses
@dataclass(frozen=True)
class PlannedAddress:
    kind: str  # VIP / storage / CloudTower / test-range
    label: str
    ip: str
    cell: str


ADDRESS_KINDS = ("VIP", "storage", "CloudTower", "test-range")


def planned_addresses(plan: Plan, kind: str) -> list[PlannedAddress]:
    if kind == "VIP":
        return [PlannedAddress(kind, "集群 VIP", plan.cluster.vip,
                               cells.ref(cells.HOSTS, cells.HOST_VIP))] if plan.cluster.vip else []
    if kind == "storage":
        return [PlannedAddress(kind, f"{h.name} 存储地址", h.storage_ip,
                               cells.ref(cells.HOSTS, f"{cells.HOST_COL['storage_ip']}{h.row}"))
                for h in plan.hosts if h.storage_ip]
    if kind == "CloudTower":
        ct = plan.cloudtower
        return [PlannedAddress(kind, "CloudTower 地址", ct.ip,
                               cells.ref(cells.MGMT, f"{cells.MGMT_COL['ip']}{cells.MGMT_ROW_CLOUDTOWER}"))] \
            if ct and ct.ip else []
    if kind == "test-range":
        rng = plan.test_ip_range
        if not rng or not rng.start or not rng.end:
            return []
        try:
            start, end = ipaddress.IPv4Address(rng.start), ipaddress.IPv4Address(rng.end)
        except ValueError:
            return []
        cell = f"{cells.ref(cells.MGMT, cells.MGMT_TEST_IP_START)}:{cells.MGMT_TEST_IP_END}"
        return [PlannedAddress(kind, "测试 IP", str(ipaddress.IPv4Address(i)), cell)
                for i in range(int(start), min(int(end), int(start) + 255) + 1)]
    raise ValueError(f"unknown address kind {kind!r}")


def owned_addresses(plan: Plan, run_state, cluster_deployed: bool) -> dict[str, str]:
    """Planned addresses expected to answer because this deployment brought
    them up (a rerun): ``{ip: why}``."""
    owned: dict[str, str] = {}
    if cluster_deployed:
        if plan.cluster.vip:
            owned[plan.cluster.vip] = "本集群的 VIP"
        for h in plan.hosts:
            if h.storage_ip:
                owned[h.storage_ip] = f"本集群主机 {h.name} 的存储地址"
    if run_state is not None:
        if run_state.get("cloudtower", "vm_uuid") and plan.cloudtower.ip:
            owned[plan.cloudtower.ip] = "本次部署的 CloudTower"
        for name, vm in (run_state.section("test_vms") or {}).items():
            if isinstance(vm, dict) and vm.get("ip"):
                owned[vm["ip"]] = f"本次部署的测试虚拟机 {name}"
    return owned


def ping(ip: str, timeout: float = 1.0) -> Optional[bool]:
    """One ICMP echo through the system ``ping``; None when ping is unavailable."""
    exe = shutil.which("ping")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-c", "1", "-W", str(max(1, int(timeout))), ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout + 5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.returncode == 0


def address_in_use(endpoints, ip: str, *, simulated: bool,
                   pinger: Callable[[str], Optional[bool]] = ping) -> tuple[bool, str]:
    """``(in_use, how)``. Live: a system ping (TCP 22/80/443 through the
    resolver when ping is unavailable). Simulator: the simulator's view of
    TCP 22/80/443 through the resolver (nothing leaves 127.0.0.0/8)."""
    if not simulated:
        answered = pinger(ip)
        if answered is not None:
            return answered, "ping"
    for port in PROBE_PORTS:
        if endpoints.tcp_open(ip, port):
            return True, f"TCP {port}"
    return False, "TCP " + "/".join(str(p) for p in PROBE_PORTS)


def reachability(endpoints, ip: str, ports: Iterable[int] = HOST_PORTS, *,
                 cell: Optional[str] = None) -> dict[int, bool]:
    found = {port: endpoints.tcp_open(ip, port) for port in ports}
    for port, is_open in found.items():
        facts.record(f"{ip} TCP {port}", "可以连接", "可以连接" if is_open else "无法连接", cell=cell)
    return found


# --------------------------------------------------------------------------- plan rules
RULE_GROUPS = {
    "read": "读取规划表",
    "required": "必填字段",
    "addresses": "地址与网段",
    "hosts": "主机",
    "networks": "虚拟网络",
    "services": "集群功能与服务",
}


def rule_group(rule_id: str) -> str:
    """The group a finding's rule belongs to (the validator module defining it)."""
    if rule_id.startswith("read."):
        return "read"
    rule = RULES.get(rule_id)
    if rule is None:
        return "read"
    return rule.check.__module__.rsplit(".", 1)[-1]


def rule_groups() -> list[str]:
    """Every group, the known ones first (a new validator module adds a group)."""
    found = {r.check.__module__.rsplit(".", 1)[-1] for r in RULES.values()}
    return list(RULE_GROUPS) + sorted(found - set(RULE_GROUPS))


def format_finding(f) -> str:
    text = f.message if f.message.startswith(f.cell) else f"{f.cell}: {f.message}"
    if f.hint:
        text += f"（{f.hint}）"
    return text
