"""How the simulated inspection center judges its items: from the world's state.

:func:`evaluate(world, items)` returns one result per item, ``{item_name,
display_name, status: PASS | WARNING | FAIL, value, advice}``. Items the
simulator models follow the simulated cluster:

* ``ipmi_account_is_valid`` — every host has an IPMI account the cluster judged
  valid (``upsert_accounts``; an account with a wrong BMC user/password fails);
* ``host_power_is_on`` — no host powered off (host override ``powered_off``);
* ``host_work_status_is_unknown`` / ``host_management_network_can_ping`` — a
  host powered off or whose management NICs are all down (``down_nics``) fails;
* ``host_storage_network_can_ping`` — storage NICs all down fails;
* ``host_bond_slave_is_normal`` — a planned bonded NIC down fails;
* ``cluster_can_connect_to_external_ntp_server`` /
  ``cluster_can_sync_time_with_external_ntp_server`` — NTP in external mode with
  a reachable server (the simulator reaches IPv4 servers in 127.0.0.0/8, and host
  names once the cluster has a DNS server): none reachable fails, some
  unreachable is a warning;
* ``elf_cluster_cpu_model_not_recommended`` — no CPU compatibility model set is
  a warning.

Every other item passes with the value ``正常``: the simulator has nothing that
could make it fail. A fault ``inspect-fail:<item glob>:N`` fails the first N
matching items of the next jobs (value and advice say it is a simulated fault).
"""
from __future__ import annotations

import ipaddress
from typing import Any, Callable, Optional

from voyager.steps.inspection_items import chinese_name

PASS, WARNING, FAIL = "PASS", "WARNING", "FAIL"
FAULT_KIND = "inspect-fail"


def _result(item: str, status: str, value: str, advice: str = "") -> dict[str, Any]:
    return {"item_name": item, "display_name": chinese_name(item), "status": status, "value": value,
            "advice": advice}


def _hosts(world) -> list:
    cluster = world.cluster
    return [world.hosts[ip] for ip in cluster.host_ips] if cluster is not None else []


def _label(host) -> str:
    return f"{host.hostname}（{host.mgmt_ip}）"


def _all_down(host, nics: list[str]) -> bool:
    return bool(nics) and set(nics) <= host.down_nics


def _ntp_reachable(server: str, has_dns: bool) -> bool:
    try:
        return ipaddress.IPv4Address(server) in ipaddress.IPv4Network("127.0.0.0/8")
    except ValueError:
        return has_dns


def _check_ipmi(world, item: str) -> dict[str, Any]:
    accounts = {a["node_uuid"]: a for a in world.cluster.ipmi_accounts}
    bad = [h for h in _hosts(world) if not (accounts.get(h.uuid) or {}).get("is_valid")]
    if not bad:
        return _result(item, PASS, f"{len(accounts)} 台主机的 IPMI 账号有效")
    detail = "、".join(f"{_label(h)} {'账号无效' if h.uuid in accounts else '未配置账号'}" for h in bad)
    return _result(item, FAIL, detail, "检查这些主机的带外地址、IPMI 用户名与密码（主机规划 E/F/G 列），"
                                       "并在集群设置中重新提交 IPMI 账号")


def _check_power(world, item: str) -> dict[str, Any]:
    off = [h for h in _hosts(world) if h.powered_off]
    if not off:
        return _result(item, PASS, f"{len(_hosts(world))} 台主机均已开机")
    return _result(item, FAIL, "未开机：" + "、".join(_label(h) for h in off), "为这些主机上电并确认其加入集群")


def _check_unreachable(world, item: str, role: str) -> dict[str, Any]:
    nets = world.plan.networks
    nics = list(nets.mgmt.nics if role == "mgmt" else nets.storage.nics)
    down = [h for h in _hosts(world) if h.powered_off or _all_down(h, nics)]
    what = "管理网络" if role == "mgmt" else "存储网络"
    if not down:
        return _result(item, PASS, f"全部主机的{what}可以连通")
    return _result(item, FAIL, f"{what}不通：" + "、".join(_label(h) for h in down),
                   f"检查这些主机{what}网口（{'、'.join(nics)}）的链路与交换机配置")


def _check_work_status(world, item: str) -> dict[str, Any]:
    nics = list(world.plan.networks.mgmt.nics)
    unknown = [h for h in _hosts(world) if h.powered_off or _all_down(h, nics)]
    if not unknown:
        return _result(item, PASS, "全部主机工作状态正常")
    return _result(item, FAIL, "状态未知：" + "、".join(_label(h) for h in unknown),
                   "检查这些主机是否开机、管理网络是否连通")


def _check_bond(world, item: str) -> dict[str, Any]:
    nets = world.plan.networks
    bonded = [n for net in (nets.mgmt, nets.storage) if len(net.nics) > 1 for n in net.nics]
    if len(nets.business.nics) > 1:
        bonded += list(nets.business.nics)
    bad = [(h, sorted(set(bonded) & h.down_nics)) for h in _hosts(world)]
    bad = [(h, nics) for h, nics in bad if nics]
    if not bad:
        return _result(item, PASS, "全部绑定成员网口正常")
    return _result(item, FAIL, "；".join(f"{_label(h)} 网口 {'、'.join(n)} 断开" for h, n in bad),
                   "检查断开网口的线缆、光模块与交换机端口")


def _check_ntp(world, item: str) -> dict[str, Any]:
    cluster = world.cluster
    if cluster.ntp_mode != "external" or not cluster.ntp_servers:
        return _result(item, FAIL, f"NTP 模式 {cluster.ntp_mode}，未配置外部 NTP 服务器",
                       "在集群设置中配置外部 NTP 服务器（集群管理信息!E22:E24）")
    has_dns = bool(cluster.dns_servers)
    unreachable = [s for s in cluster.ntp_servers if not _ntp_reachable(s, has_dns)]
    if not unreachable:
        return _result(item, PASS, "可连接：" + "、".join(cluster.ntp_servers))
    status = FAIL if len(unreachable) == len(cluster.ntp_servers) else WARNING
    return _result(item, status, "无法连接：" + "、".join(unreachable),
                   "检查 NTP 服务器地址、集群到 NTP 服务器的网络（UDP 123）以及 DNS 设置")


def _check_cpu_model(world, item: str) -> dict[str, Any]:
    model = world.cluster.cpu_model
    if model:
        return _result(item, PASS, f"CPU 兼容型号 {model}")
    return _result(item, WARNING, "未设置 CPU 兼容型号", "在集群设置中选择推荐的 CPU 兼容型号")


CHECKS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "ipmi_account_is_valid": _check_ipmi,
    "host_power_is_on": _check_power,
    "host_management_network_can_ping": lambda w, i: _check_unreachable(w, i, "mgmt"),
    "host_storage_network_can_ping": lambda w, i: _check_unreachable(w, i, "storage"),
    "host_work_status_is_unknown": _check_work_status,
    "host_bond_slave_is_normal": _check_bond,
    "cluster_can_connect_to_external_ntp_server": _check_ntp,
    "cluster_can_sync_time_with_external_ntp_server": _check_ntp,
    "elf_cluster_cpu_model_not_recommended": _check_cpu_model,
}


def evaluate(world, items: list[str]) -> list[dict[str, Any]]:
    """One result per item, judged on the world's cluster now (it must be deployed)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if world.faults.take(FAULT_KIND, item):
            out.append(_result(item, FAIL, "模拟故障（inspect-fail）",
                               "模拟器按 --sim-faults inspect-fail 注入的故障：去掉该故障后重跑"))
            continue
        check: Optional[Callable[[Any, str], dict[str, Any]]] = CHECKS.get(item)
        out.append(check(world, item) if check is not None and world.cluster is not None
                   else _result(item, PASS, "正常"))
    return out
