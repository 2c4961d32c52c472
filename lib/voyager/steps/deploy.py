"""Walkthrough step 02 (初始化集群): build the deploy payload, trigger the
deployment, follow it stage by stage and verify it.

:func:`build_payload` is a pure function of the plan and the host scans
(``GET /api/v2/deployment/host`` ``data`` per management IP), shaped exactly
like ``api-samples/deploy-cluster-payload-*.jsonc``:

* two VDSes created by the deployment: management (虚拟网络 row 4) and storage
  (row 6), each associated with every host's planned NICs and bond mode. Both
  supported network architectures deploy the same two; they differ afterwards
  (三网独立: a separate business VDS; 存储独立: business VLANs on the
  management VDS — see ``voyager.steps.config``);
* ``mgt-network`` / ``storage-network`` with each host's address, the netmask
  of the planned subnet, the management gateway and the planned VLAN;
* per host: ``host_ip`` = the link-local IPv6 of its ``port-mgt`` (of its first
  planned management NIC when the scan shows no ``port-mgt``) scoped with the
  deploying host's first management NIC (``fe80::…%ens192``), disks by storage
  architecture (混闪-分层: SSD/NVMe cache + HDD data, ``with_faster_ssd_as_cache``;
  全闪-不分层: every disk data), the boot/system disks left out, ``is_master``
  on the first three hosts (five from five hosts on), and ``host_passwords``
  with the default ``P@ssw0rd!123`` encoded per API-FACTS — the plan's
  passwords are applied over SSH after deployment, as the walkthrough does;
* NTP ``internal`` during deployment (set to the plan's servers afterwards),
  DNS from the plan, ``vhost_enabled`` / ``rdma_enabled`` from 主机规划!O19.
"""
from __future__ import annotations

import ipaddress
import time
from datetime import datetime, timezone
from typing import Any, Optional

from voyager.encoding import encode_host_password
from voyager.plan import cells
from voyager.plan.model import Host, Plan
from voyager.waiters import read_deploy_status, read_through, wait_deploy

DEFAULT_HOST_PASSWORD = cells.DEFAULT_HOST_PASSWORD_AFTER_DEPLOY
HOST_USERS = ("root", "smartx")
DEPLOY_ACCEPTED = "SUCCEEDED: A new cluster deploying task is on its way now."
MGT_NETWORK = "mgt-network"
STORAGE_NETWORK = "storage-network"
NON_DATA_FUNCTIONS = ("boot", "smtx_system")
HYBRID = "混闪-分层"
ALL_FLASH = "全闪-不分层"


class PayloadError(ValueError):
    """The plan and the scans do not allow a payload (message names host / cell)."""


def netmask(subnet: Optional[str]) -> str:
    """``"10.0.20.0/24"`` -> ``"255.255.255.0"``."""
    try:
        return str(ipaddress.ip_network(subnet or "", strict=False).netmask)
    except ValueError:
        raise PayloadError(f"子网 {subnet!r} 不是有效的 CIDR，无法得到子网掩码") from None


def master_count(hosts: int) -> int:
    return 5 if hosts >= 5 else 3


def is_all_flash(plan: Plan) -> bool:
    return (plan.cluster.storage_arch or "").strip() == ALL_FLASH


def iface(scan: dict[str, Any], name: str) -> Optional[dict[str, Any]]:
    return next((i for i in scan.get("ifaces") or [] if i.get("name") == name), None)


def link_local_host_ip(plan: Plan, scan: dict[str, Any], host: Host) -> str:
    """``fe80::…%<nic>`` for ``hosts[].host_ip`` (see the module docstring)."""
    mgmt_nics = plan.networks.mgmt.nics
    if not mgmt_nics:
        raise PayloadError(f"{cells.ref(cells.NET, 'J4')}: 规划表未填写管理网卡")
    zone = mgmt_nics[0]
    candidates = [iface(scan, "port-mgt")] + [iface(scan, n) for n in mgmt_nics]
    for cand in candidates:
        addr = (cand or {}).get("ipv6") or ""
        if addr.lower().startswith("fe80:"):
            return f"{addr}%{zone}"
    raise PayloadError(f"主机 {host.name}（{host.mgmt_ip}）的扫描结果中没有管理网卡的 IPv6 链路本地地址")


def payload_disks(plan: Plan, scan: dict[str, Any], host: Host) -> list[dict[str, Any]]:
    """Disks of one host with their function for the storage architecture."""
    all_flash = is_all_flash(plan)
    disks = []
    for d in scan.get("disks") or []:
        if d.get("function") in NON_DATA_FUNCTIONS:
            continue
        kind = (d.get("type") or "").upper()
        function = "data" if all_flash or kind == "HDD" else "cache"
        disks.append({
            "drive": d.get("drive"),
            "function": function,
            "model": d.get("model"),
            "serial": d.get("serial"),
            "size": d.get("size"),
            "type": d.get("type"),
        })
    if not disks:
        raise PayloadError(f"主机 {host.name}（{host.mgmt_ip}）没有可用于存储的磁盘")
    return disks


def _vds(name: Optional[str], bond: Optional[str], nics: list[str], uuids: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "bond_mode": bond,
        "hosts_associated": [{"host_uuid": u, "nics_associated": list(nics)} for u in uuids],
    }


def _network(name: str, vds: Optional[str], kind: str, service: list[dict], vlan: Optional[int],
             gateway: Optional[str]) -> dict[str, Any]:
    config: dict[str, Any] = {"service": service}
    if gateway:
        config["route"] = [{"gateway": gateway}]
    return {
        "name": name,
        "attached_vds": vds,
        "network_type": kind,
        "network_config": config,
        "mode": {"type": "vlan_access", "network_identities": [vlan if vlan is not None else 0]},
    }


def _payload_host(plan: Plan, scan: dict[str, Any], host: Host, is_master: bool, encoded: str) -> dict[str, Any]:
    """One ``hosts[]`` entry: link-local ``host_ip``, addresses, disks by storage architecture."""
    return {
        "host_ip": link_local_host_ip(plan, scan, host),
        "host_uuid": scan["host_uuid"],
        "hostname": host.name,
        "disk_data_with_cache": False,
        "host_passwords": [{"user": user, "password": encoded} for user in HOST_USERS],
        "tags": [],
        "ifaces": [
            {"ip": host.mgmt_ip, "function": "mgt"},
            {"ip": host.storage_ip, "function": "storage"},
        ],
        "disks": payload_disks(plan, scan, host),
        "is_master": is_master,
        "with_faster_ssd_as_cache": not is_all_flash(plan),
    }


def _utc_millis(now: datetime) -> str:
    """``2025-09-28T03:04:05.678Z``, the walkthrough's ``current_time`` form."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def build_payload(plan: Plan, scans: dict[str, dict[str, Any]], *,
                  now: Optional[datetime] = None) -> dict[str, Any]:
    """The ``POST /api/v2/deployment/cluster`` body for ``plan``.

    ``scans`` maps each planned management IP to its host scan ``data``."""
    nets = plan.networks
    missing = [h for h in plan.hosts if h.mgmt_ip not in scans]
    if missing:
        raise PayloadError("缺少主机扫描结果：" + "、".join(f"{h.name}（{h.mgmt_ip}）" for h in missing))
    uuids = [scans[h.mgmt_ip]["host_uuid"] for h in plan.hosts]
    masters = master_count(len(plan.hosts))
    encoded = encode_host_password(DEFAULT_HOST_PASSWORD)
    hosts = [_payload_host(plan, scans[h.mgmt_ip], h, n < masters, encoded) for n, h in enumerate(plan.hosts)]

    def service(port: str, attr: str, subnet: str) -> list[dict[str, Any]]:
        return [{"host_uuid": scans[h.mgmt_ip]["host_uuid"], "service_interface_name": port,
                 "service_interface_ip": getattr(h, attr), "netmask": netmask(subnet)} for h in plan.hosts]

    return {
        "platform": "kvm",
        "cluster_name": plan.cluster.name,
        "dns_server": list(plan.dns),
        "vdses": [
            _vds(nets.mgmt.vds, nets.mgmt.bond, nets.mgmt.nics, uuids),
            _vds(nets.storage.vds, nets.storage.bond, nets.storage.nics, uuids),
        ],
        "networks": [
            _network(MGT_NETWORK, nets.mgmt.vds, "mgt", service("port-mgt", "mgmt_ip", nets.mgmt.subnet),
                     nets.mgmt.vlan, nets.mgmt.gateway),
            _network(STORAGE_NETWORK, nets.storage.vds, "storage",
                     service("port-storage", "storage_ip", nets.storage.subnet), nets.storage.vlan, None),
        ],
        "hosts": hosts,
        "ntp": {"mode": "internal", "ntp_server": None,
                "current_time": _utc_millis(now or datetime.now(timezone.utc))},
        "vhost_enabled": plan.cluster.vhost_enabled,
        "rdma_enabled": plan.cluster.rdma_enabled,
    }


def _host_problems(plan: Plan, host: Host, scan: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """What is wrong in one host's payload entry (link-local host_ip, names,
    addresses, disk functions, host_passwords)."""
    problems = []
    addr, _, zone = entry["host_ip"].partition("%")
    scanned_ll = {i.get("ipv6") for i in scan.get("ifaces") or [] if i.get("ipv6")}
    if not addr.lower().startswith("fe80:") or addr not in scanned_ll:
        problems.append(f"主机 {host.name}: host_ip {entry['host_ip']} 不是该主机的链路本地地址")
    if zone not in plan.networks.mgmt.nics:
        problems.append(f"主机 {host.name}: host_ip 的网卡 {zone!r} 不是规划的管理网卡")
    if entry.get("hostname") != host.name:
        problems.append(f"主机 {host.name}: hostname 为 {entry.get('hostname')!r}")
    ips = {i["function"]: i["ip"] for i in entry.get("ifaces", [])}
    if ips.get("mgt") != host.mgmt_ip or ips.get("storage") != host.storage_ip:
        problems.append(f"主机 {host.name}: 管理/存储地址与规划不一致")
    scanned = {d.get("drive"): d for d in scan.get("disks") or []}
    all_flash = is_all_flash(plan)
    for disk in entry.get("disks", []):
        src = scanned.get(disk["drive"])
        if src is None or src.get("function") in NON_DATA_FUNCTIONS:
            problems.append(f"主机 {host.name}: 磁盘 {disk['drive']} 不是扫描到的数据盘")
        elif all_flash and disk["function"] != "data":
            problems.append(f"主机 {host.name}: 全闪-不分层时磁盘 {disk['drive']} 应为 data")
        elif not all_flash and disk["function"] != ("data" if (src.get("type") or "").upper() == "HDD" else "cache"):
            problems.append(f"主机 {host.name}: 混闪-分层时磁盘 {disk['drive']} 的用途应按 SSD→cache、HDD→data")
    if sorted(p.get("user") for p in entry.get("host_passwords", [])) != sorted(HOST_USERS):
        problems.append(f"主机 {host.name}: host_passwords 应包含 root 与 smartx")
    return problems


def _network_problems(payload: dict[str, Any], plan: Plan) -> list[str]:
    """Netmasks, VLANs and the management gateway of the payload's networks."""
    problems = []
    for net, attr in ((payload["networks"][0], "mgmt"), (payload["networks"][1], "storage")):
        plan_net = getattr(plan.networks, attr)
        for svc in net["network_config"]["service"]:
            if svc["netmask"] != netmask(plan_net.subnet):
                problems.append(f"{net['name']}: 子网掩码 {svc['netmask']} 与规划子网 {plan_net.subnet} 不符")
        if net["mode"]["network_identities"] != [plan_net.vlan or 0]:
            problems.append(f"{net['name']}: VLAN 与规划不一致")
    route = payload["networks"][0]["network_config"].get("route") or [{}]
    if route[0].get("gateway") != plan.networks.mgmt.gateway:
        problems.append("管理网络网关与规划不一致")
    return problems


def check_payload(payload: dict[str, Any], plan: Plan, scans: dict[str, dict[str, Any]]) -> list[str]:
    """Independent checks of a built payload against plan and scans; returns
    the problems found (Chinese), empty when the payload is right."""
    problems: list[str] = []
    by_uuid = {p["host_uuid"]: p for p in payload.get("hosts", [])}
    if len(by_uuid) != len(plan.hosts) or len(payload.get("hosts", [])) != len(plan.hosts):
        problems.append(f"载荷中的主机数 {len(payload.get('hosts', []))} 与规划的 {len(plan.hosts)} 台不一致")
    expected_masters = master_count(len(plan.hosts))
    masters = sum(1 for p in payload.get("hosts", []) if p.get("is_master"))
    if masters != expected_masters:
        problems.append(f"主节点数 {masters}，应为 {expected_masters}")
    for host in plan.hosts:
        scan = scans.get(host.mgmt_ip) or {}
        entry = by_uuid.get(scan.get("host_uuid"))
        if entry is None:
            problems.append(f"主机 {host.name}（{host.mgmt_ip}）不在载荷中")
        else:
            problems += _host_problems(plan, host, scan, entry)
    problems += _network_problems(payload, plan)
    if payload.get("vhost_enabled") != plan.cluster.vhost_enabled or \
            payload.get("rdma_enabled") != plan.cluster.rdma_enabled:
        problems.append(f"vhost/RDMA 开关与规划的集群功能 {plan.cluster.features!r} 不一致")
    return problems


# --------------------------------------------------------------------------- trigger / follow
def deploy_verify(fisheye_anon) -> dict[str, Any]:
    """``GET /api/v2/deployment/deploy_verify`` (https, fixed token) of one host."""
    data = fisheye_anon.deployment("GET", "/api/v2/deployment/deploy_verify", service="fisheye",
                                   idempotent=True)
    return data if isinstance(data, dict) else {}


def deploy_status(fisheye_anon, host_ip: str) -> dict[str, Any]:
    """The deployment's status through ``host_ip``, or ``{}`` when none runs (the
    API then answers an error, which is the normal answer outside a deployment).
    A 5xx answer or a reset is not "none runs": it is ridden out
    (``voyager.waiters.read_through``) and raises only if it persists."""
    status = read_through(f"读取部署状态（经由主机 {host_ip}）", lambda: read_deploy_status(fisheye_anon, host_ip))
    return {} if status.get("state") == "ended" and "answer" in status else status


TRIGGERED = "已触发集群部署"


STARTED = "deploy_started"  # run state cluster.<STARTED>: epoch seconds of the accepted trigger (pacing)


def trigger(fisheye_anon, host_ip: str, payload: dict[str, Any], run_state=None) -> str:
    """Start the deployment through ``host_ip`` unless the cluster is deployed
    already or a deployment is running; returns what was done (Chinese; starts
    with :data:`TRIGGERED` when this call started it). The moment the trigger was
    accepted goes to the run state (``cluster.deploy_started``): the API reports
    no start time, and the wait counts the deployment's age from it."""
    if deploy_verify(fisheye_anon).get("is_deployed"):
        return "deploy_verify 显示集群已部署，不再触发部署"
    status = deploy_status(fisheye_anon, host_ip)
    if status.get("state") == "running":
        return f"部署正在进行（阶段 {status.get('current_stage')}/{status.get('total_stages')}），不重复触发"
    sent = time.time()
    answer = fisheye_anon.deployment("POST", "/api/v2/deployment/cluster", json=payload) or {}
    msg = answer.get("msg") if isinstance(answer, dict) else answer
    if msg != DEPLOY_ACCEPTED:
        raise AssertionError(f"部署请求未被接受：{msg!r}")
    if run_state is not None:
        run_state.set("cluster", STARTED, round(sent, 3))
    return f"{TRIGGERED}（经由主机 {host_ip}）"


def ensure_deployed(fisheye_anon, host_ip: str, payload: dict[str, Any], *, run_state=None,
                    timeout: float = 7200.0) -> tuple[dict[str, Any], str]:
    """The cluster deployed, whatever an earlier run left: already deployed →
    nothing to do; a deployment running → followed; none running (the last one
    failed, or the trigger never reached the cluster) → triggered again, then
    followed. Returns ``(deploy_verify, what was done)``; raises unless deployed."""
    verify = deploy_verify(fisheye_anon)
    if verify.get("is_deployed"):
        return verify, "deploy_verify 显示集群已部署"
    note = trigger(fisheye_anon, host_ip, payload, run_state)
    return follow(fisheye_anon, host_ip, run_state=run_state, timeout=timeout), note


def follow(fisheye_anon, host_ip: str, *, run_state=None, timeout: float = 7200.0) -> dict[str, Any]:
    """Follow ``deploy_status`` stage by stage (``voyager.waiters.wait_deploy``)
    until the deployment ends; returns ``deploy_verify``. Transient errors while
    following are ridden out; a failed deployment raises ``WaitFailed`` naming the
    last stage seen, the reason and the time really waited. Paced from the
    trigger's time the run state recorded, if any."""
    started = run_state.get("cluster", STARTED) if run_state is not None else None
    return wait_deploy(fisheye_anon, host_ip, timeout=timeout,
                       started=started if isinstance(started, (int, float)) else None)
