"""The rule registry and the helpers every rule module shares.

A rule is a small function ``check(ctx) -> Iterable[Finding]`` registered with
:func:`rule` under a stable id and a default severity. Rules only read the model;
``ctx.finding(...)`` builds a finding with the rule's id and severity so that a rule
cannot emit another rule's id by accident.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

from voyager.plan import cells as C
from voyager.plan.model import Finding, Plan

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str  # what the rule checks (Chinese), listed by ``voyager plan check --rules``
    check: Callable[["Context"], Iterable[Finding]]


RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: str, title: str):
    """Register ``check`` under ``rule_id``."""
    if severity not in SEVERITIES:
        raise ValueError(f"bad severity {severity!r} for rule {rule_id}")

    def register(check: Callable[["Context"], Iterable[Finding]]):
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")
        RULES[rule_id] = Rule(rule_id, severity, title, check)
        return check

    return register


# ------------------------------------------------------------------ cell references
def net(row: int, key: str) -> str:
    return C.ref(C.NET, f"{C.NET_COL[key]}{row}")


def host(row: int, key: str) -> str:
    return C.ref(C.HOSTS, f"{C.HOST_COL[key]}{row}")


def mgmt(row: int, key: str) -> str:
    return C.ref(C.MGMT, f"{C.MGMT_COL[key]}{row}")


def hosts_cell(coord: str) -> str:
    return C.ref(C.HOSTS, coord)


def mgmt_cell(coord: str) -> str:
    return C.ref(C.MGMT, coord)


def choice_findings(ctx: "Context", value: str, choices, coord: str, what: str, options=None):
    """The finding for a 主机规划 dropdown value (cell ``coord``) that is not one of
    ``choices``; the hint lists ``options`` (default: ``choices``)."""
    if value and value not in choices:
        cell = hosts_cell(coord)
        yield ctx.finding(cell, f"{cell}: {what}「{value}」不在模板的选项中",
                          f"请从下拉列表中选择：{'、'.join(options or choices)}")


def repeats(items, key):
    """``(item, first)`` for every item whose ``key(item)`` was already the key of an
    earlier item ``first``; items whose key is ``None`` are not compared."""
    seen: dict = {}
    for item in items:
        k = key(item)
        if k is None:
            continue
        first = seen.setdefault(k, item)
        if first is not item:
            yield item, first


SHEET_ORDER = {name: i for i, name in enumerate(C.PLAN_SHEETS)}
_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


_COORD = re.compile(r"\$?([A-Z]{1,3})\$?(\d+)")


def cell_sort_key(cell: str) -> tuple:
    """Sheet order of the template (文档描述, 虚拟网络, 主机规划, 集群管理信息), then row,
    then column. (Rules work on the model only: no spreadsheet library needed.)"""
    sheet, _, coord = cell.rpartition("!")
    m = _COORD.fullmatch(coord.upper())
    pos = (0, 0)
    if m:
        col = 0
        for letter in m.group(1):
            col = col * 26 + ord(letter) - ord("A") + 1
        pos = (int(m.group(2)), col)
    return (SHEET_ORDER.get(sheet, len(SHEET_ORDER)), sheet) + pos


def finding_sort_key(f: Finding) -> tuple:
    return cell_sort_key(f.cell) + (_SEVERITY_ORDER.get(f.severity, 9), f.rule)


# ------------------------------------------------------------------ parsing
def parse_ip(value: Optional[str]) -> Optional[ipaddress.IPv4Address]:
    if not value:
        return None
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def usable_ip(addr: ipaddress.IPv4Address) -> bool:
    """A unicast address a machine can own (not 0.x, multicast, reserved or broadcast)."""
    return not (addr.is_multicast or addr.is_unspecified or addr.is_reserved
                or int(addr) >> 24 == 0)


def parse_subnet(value: Optional[str]) -> Optional[ipaddress.IPv4Network]:
    """``10.0.20.0/24`` (host bits tolerated: ``10.0.20.1/24`` -> 10.0.20.0/24).
    A value without a prefix length is not a subnet."""
    if not value or "/" not in value:
        return None
    try:
        return ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return None


# ------------------------------------------------------------------ inventory
@dataclass(frozen=True)
class Addr:
    """A planned address and where it is written."""

    cell: str
    label: str  # Chinese, e.g. "主机 node-01 管理地址"
    value: str
    kind: str  # host.mgmt | host.storage | host.bmc | vip | component | er | test | gateway

    @property
    def ip(self) -> Optional[ipaddress.IPv4Address]:
        return parse_ip(self.value)


@dataclass(frozen=True)
class PlannedNet:
    """A planned network row of 虚拟网络 with a subnet."""

    row: int
    role: str  # bmc | mgmt | extra_mgmt | storage | backup | business
    label: str  # Chinese
    vds: Optional[str]
    vlan: Optional[int]
    subnet: Optional[str]
    gateway: Optional[str]
    nics: tuple[str, ...]
    bond: Optional[str]
    speed: Optional[str]
    port_type: Optional[str]
    switch_mode: Optional[str]


ROLE_LABELS = {
    "bmc": "带外管理网络",
    "mgmt": "管理网络",
    "extra_mgmt": "额外管理网络",
    "storage": "存储网络",
    "backup": "备份网络",
    "business": "业务网络",
}


class Context:
    """What a rule sees: the plan, the mode, and shared views of the plan."""

    def __init__(self, plan: Plan, sim: bool = False):
        self.plan = plan
        self.sim = sim
        self._rule: Optional[Rule] = None
        # cells the reader already reported (a rule does not report them again as empty)
        self.read_cells = {c for f in plan.findings for c in (f.cells or [f.cell])}

    # -- findings ------------------------------------------------------------------
    def finding(self, cell: str, message: str, hint: str = "",
                cells: Optional[list[str]] = None, severity: Optional[str] = None) -> Finding:
        assert self._rule is not None, "ctx.finding() called outside a rule"
        more = [c for c in (cells or []) if c != cell]
        return Finding(severity or self._rule.severity, self._rule.id, cell, message, hint,
                       [cell] + more if more else [])

    # -- views ---------------------------------------------------------------------
    def networks(self) -> list[PlannedNet]:
        """Every network row in use, BMC first, business rows last."""
        n = self.plan.networks
        out: list[PlannedNet] = []
        for role, net_row in (("bmc", n.bmc), ("mgmt", n.mgmt), ("extra_mgmt", n.extra_mgmt),
                              ("storage", n.storage), ("backup", n.backup)):
            if net_row is None:
                continue
            out.append(PlannedNet(net_row.row, role, ROLE_LABELS[role], net_row.vds, net_row.vlan,
                                  net_row.subnet, net_row.gateway, tuple(net_row.nics),
                                  net_row.bond, net_row.speed, net_row.port_type,
                                  net_row.switch_mode))
        b = n.business
        for v in b.vlans:
            label = f"业务网络 {v.name}" if v.name else f"业务网络(第 {v.row} 行)"
            out.append(PlannedNet(v.row, "business", label, b.vds, v.vlan, v.subnet, v.gateway,
                                  tuple(b.nics), b.bond, b.speed, b.port_type, b.switch_mode))
        return out

    def subnet_of(self, role: str) -> Optional[ipaddress.IPv4Network]:
        net_row = getattr(self.plan.networks, role, None)
        return parse_subnet(net_row.subnet) if net_row is not None else None

    def addresses(self, include_test: bool = False,
                  include_gateways: bool = False) -> list[Addr]:
        """Every single address the plan assigns, in sheet order."""
        p = self.plan
        out: list[Addr] = []
        if include_gateways:
            for n in self.networks():
                if n.gateway:
                    out.append(Addr(net(n.row, "gateway"), f"{n.label}网关", n.gateway, "gateway"))
        for h in p.hosts:
            who = f"主机 {h.name}" if h.name else f"第 {h.row} 行主机"
            if h.bmc_ip:
                out.append(Addr(host(h.row, "bmc_ip"), f"{who} 带外地址", h.bmc_ip, "host.bmc"))
            if h.mgmt_ip:
                out.append(Addr(host(h.row, "mgmt_ip"), f"{who} 管理地址", h.mgmt_ip, "host.mgmt"))
            if h.storage_ip:
                out.append(Addr(host(h.row, "storage_ip"), f"{who} 存储IP", h.storage_ip,
                                "host.storage"))
        if p.cluster.vip:
            out.append(Addr(hosts_cell(C.HOST_VIP), "集群VIP", p.cluster.vip, "vip"))
        for comp, label in self.components():
            if comp.ip:
                out.append(Addr(mgmt(comp.row, "ip"), f"{label} IP", comp.ip, "component"))
        if p.er is not None:
            if p.er.vip:
                out.append(Addr(mgmt_cell(C.MGMT_ER_VIP), "ER VIP", p.er.vip, "er"))
            for i, node in enumerate(p.er.nodes):
                out.append(Addr(self.list_cell("er.nodes", i, C.MGMT_ER_NODES),
                                f"ER 控制器{i + 1:02d}", node, "er"))
        if include_test and p.test_ip_range is not None:
            if p.test_ip_range.start:
                out.append(Addr(mgmt_cell(C.MGMT_TEST_IP_START), "测试IP范围起始",
                                p.test_ip_range.start, "test"))
            if p.test_ip_range.end:
                out.append(Addr(mgmt_cell(C.MGMT_TEST_IP_END), "测试IP范围结束",
                                p.test_ip_range.end, "test"))
        return out

    def components(self) -> Iterator[tuple]:
        p = self.plan
        yield p.cloudtower, "CloudTower"
        if p.obs is not None:
            yield p.obs, "Observability"
        if p.backup_service is not None:
            yield p.backup_service, "备份服务"

    def list_cell(self, key: str, index: int, coords: tuple[str, ...]) -> str:
        """The cell of item ``index`` of a column list (NTP, DNS, ER nodes)."""
        where = self.plan.locations.get(f"{key}[{index}]")
        if where:
            return where
        return mgmt_cell(coords[min(index, len(coords) - 1)])


def run(rules: Iterable[Rule], ctx: Context) -> Iterator[Finding]:
    for r in rules:
        ctx._rule = r
        try:
            yield from r.check(ctx)
        finally:
            ctx._rule = None
