"""Rules about addresses: syntax, uniqueness, which subnet each belongs to, loopback
and the temporary test range."""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from voyager.plan import cells as C
from voyager.plan.rules.common import (
    Addr,
    Context,
    cell_sort_key,
    host,
    hosts_cell,
    mgmt_cell,
    net,
    parse_ip,
    parse_subnet,
    rule,
    usable_ip,
)

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
IP_HINT = "请填写形如 10.0.20.11 的 IPv4 地址（四段 0-255 的数字，用英文句点分隔）"
ONE_PER_CELL = "一个单元格只能填写一个地址，请删除多余的地址"


@rule("ip.syntax", "error", "地址是有效的 IPv4 地址")
def ip_syntax(ctx: Context):
    for a in ctx.addresses(include_test=True, include_gateways=True):
        addr = parse_ip(a.value)
        if addr is None:
            hint = ONE_PER_CELL if " " in a.value else IP_HINT
            yield ctx.finding(a.cell, f"{a.cell}: {a.value} 不是有效的 IPv4 地址（{a.label}）", hint)
        elif not usable_ip(addr):
            yield ctx.finding(a.cell, f"{a.cell}: {a.value} 不能分配给设备（{a.label}：组播、保留或"
                              "0.x 地址）", "请改用该网段内的单播地址")


@rule("subnet.syntax", "error", "网段是 CIDR 格式（如 10.0.20.0/24）")
def subnet_syntax(ctx: Context):
    for n in ctx.networks():
        if n.subnet and parse_subnet(n.subnet) is None:
            cell = net(n.row, "subnet")
            yield ctx.finding(cell, f"{cell}: {n.subnet} 不是有效的网段（{n.label}）",
                              "请按 CIDR 格式填写网段，例如 10.0.20.0/24（网络地址/前缀长度）")


@rule("subnet.host_bits", "warning", "网段写的是网络地址")
def subnet_host_bits(ctx: Context):
    for n in ctx.networks():
        sub = parse_subnet(n.subnet)
        if sub is not None and n.subnet and n.subnet.split("/")[0] != str(sub.network_address):
            cell = net(n.row, "subnet")
            yield ctx.finding(cell, f"{cell}: 网段 {n.subnet} 不是网络地址，按 {sub} 理解（{n.label}）",
                              f"请改为 {sub}")


@rule("subnet.overlap", "error", "各网络的网段互不重叠")
def subnet_overlap(ctx: Context):
    # the BMC network may share the management subnet (out-of-band on the same LAN)
    nets = [(n, parse_subnet(n.subnet)) for n in ctx.networks() if n.role != "bmc"]
    nets = [(n, s) for n, s in nets if s is not None]
    for i, (a, sa) in enumerate(nets):
        for b, sb in nets[i + 1:]:
            if sa.overlaps(sb):
                ca, cb = net(a.row, "subnet"), net(b.row, "subnet")
                yield ctx.finding(cb, f"{cb}: {b.label}的网段 {b.subnet} 与 {ca} {a.label}的网段 "
                                  f"{a.subnet} 重叠", "不同网络（不同 VLAN）必须使用不重叠的网段",
                                  [cb, ca])


@rule("ip.duplicate", "error", "同一地址在规划中只使用一次")
def ip_duplicate(ctx: Context):
    by_ip: dict[ipaddress.IPv4Address, list[Addr]] = defaultdict(list)
    for a in ctx.addresses():
        if a.ip is not None:
            by_ip[a.ip].append(a)
    for ip, uses in by_ip.items():
        # the VIP equal to a host's management IP is reported by vip.host
        kinds = {u.kind for u in uses}
        if len(uses) == 2 and kinds == {"vip", "host.mgmt"}:
            continue
        if len(uses) > 1:
            where = "、".join(f"{u.cell}（{u.label}）" for u in uses)
            yield ctx.finding(uses[1].cell, f"{uses[1].cell}: 地址 {ip} 被重复使用：{where}",
                              "每个地址只能分配给一个用途，请修改其中一处",
                              [u.cell for u in uses[1:]] + [uses[0].cell])


@rule("ip.gateway", "error", "设备地址不与网关相同")
def ip_gateway(ctx: Context):
    gateways = {}
    for n in ctx.networks():
        gw = parse_ip(n.gateway)
        if gw is not None:
            gateways.setdefault(gw, (net(n.row, "gateway"), n.label))
    for a in ctx.addresses():
        if a.ip in gateways:
            gcell, label = gateways[a.ip]
            yield ctx.finding(a.cell, f"{a.cell}: {a.label} {a.value} 与 {gcell} {label}的网关相同",
                              "网关地址属于路由器/交换机，请给设备另选地址", [a.cell, gcell])


@rule("ip.reserved", "error", "设备地址不是网段的网络地址或广播地址")
def ip_reserved(ctx: Context):
    subnets = [(n, parse_subnet(n.subnet)) for n in ctx.networks()]
    items = ctx.addresses() + [a for a in ctx.addresses(include_gateways=True) if a.kind == "gateway"]
    for a in items:
        ip = a.ip
        if ip is None:
            continue
        for n, sub in subnets:
            if sub is None or sub.prefixlen >= 31 or ip not in sub:
                continue
            if ip in (sub.network_address, sub.broadcast_address):
                what = "网络地址" if ip == sub.network_address else "广播地址"
                yield ctx.finding(a.cell, f"{a.cell}: {a.value} 是网段 {sub}（{n.label}）的{what}，"
                                  f"不能用作{a.label}", "请改用网段内的可用主机地址")
                break


def _outside(ctx: Context, cell: str, label: str, value: str, subnet, subnet_cell: str,
             net_label: str, hint: str):
    return ctx.finding(cell, f"{cell}: {label} {value} 不在{net_label} {subnet}（{subnet_cell}）内",
                       hint, [cell, subnet_cell])


def _hosts_outside(ctx: Context, role: str, field: str, net_row: int, label: str, net_label: str, hint: str):
    """A finding per host whose ``field`` address lies outside the ``role`` subnet (``hint``
    names the subnet cell as ``{subnet_cell}``)."""
    sub = ctx.subnet_of(role)
    if sub is None:
        return
    subnet_cell = net(net_row, "subnet")
    for h in ctx.plan.hosts:
        value = getattr(h, field)
        ip = parse_ip(value)
        if ip is not None and ip not in sub:
            yield _outside(ctx, host(h.row, field), label, value, sub, subnet_cell, net_label,
                           hint.format(subnet_cell=subnet_cell))


@rule("subnet.mgmt", "error", "主机管理地址在管理网段内")
def subnet_mgmt(ctx: Context):
    yield from _hosts_outside(ctx, "mgmt", "mgmt_ip", C.NET_ROW_MGMT, "管理地址", "管理网络",
                              "请修改管理地址，或核对 {subnet_cell} 的管理网段")


@rule("subnet.storage", "error", "主机存储IP在存储网段内")
def subnet_storage(ctx: Context):
    yield from _hosts_outside(ctx, "storage", "storage_ip", C.NET_ROW_STORAGE, "存储IP", "存储网络",
                              "请修改存储IP，或核对 {subnet_cell} 的存储网段")


@rule("bmc.subnet", "error", "带外地址在带外管理网段内")
def bmc_subnet(ctx: Context):
    yield from _hosts_outside(ctx, "bmc", "bmc_ip", C.NET_ROW_BMC, "带外地址", "带外管理网络",
                              "请修改带外地址，或把 {subnet_cell} 改为带外地址所在的网段")


@rule("gateway.subnet", "error", "网关在所属网段内")
def gateway_subnet(ctx: Context):
    for n in ctx.networks():
        sub, gw = parse_subnet(n.subnet), parse_ip(n.gateway)
        if sub is None or gw is None:
            continue
        cell = net(n.row, "gateway")
        if gw not in sub:
            yield ctx.finding(cell, f"{cell}: 网关 {n.gateway} 不在{n.label}网段 {sub} 内",
                              "请核对网关和网段（同一行的 H、I 列）", [cell, net(n.row, "subnet")])


@rule("vip.subnet", "error", "集群VIP在管理网段内")
def vip_subnet(ctx: Context):
    sub, vip = ctx.subnet_of("mgmt"), parse_ip(ctx.plan.cluster.vip)
    if sub is not None and vip is not None and vip not in sub:
        yield _outside(ctx, hosts_cell(C.HOST_VIP), "集群VIP", ctx.plan.cluster.vip, sub,
                       net(C.NET_ROW_MGMT, "subnet"), "管理网络", "集群VIP 必须是管理网段内的空闲地址")


@rule("vip.host", "error", "集群VIP不是某台主机的地址")
def vip_host(ctx: Context):
    vip = parse_ip(ctx.plan.cluster.vip)
    if vip is None:
        return
    for h in ctx.plan.hosts:
        if parse_ip(h.mgmt_ip) == vip:
            cell = hosts_cell(C.HOST_VIP)
            yield ctx.finding(cell, f"{cell}: 集群VIP {ctx.plan.cluster.vip} 与主机 {h.name or h.row} 的"
                              f"管理地址（{host(h.row, 'mgmt_ip')}）相同",
                              "VIP 是集群的浮动地址，必须是不属于任何主机的空闲地址",
                              [cell, host(h.row, "mgmt_ip")])


@rule("component.subnet", "error", "CloudTower 等组件地址在管理网段或额外管理网段内")
def component_subnet(ctx: Context):
    subs = [(s, r) for s, r in ((ctx.subnet_of("mgmt"), C.NET_ROW_MGMT),
                                (ctx.subnet_of("extra_mgmt"), C.NET_ROW_EXTRA_MGMT)) if s]
    if not subs:
        return
    for a in ctx.addresses():
        if a.kind not in ("component", "er") or a.ip is None:
            continue
        if not any(a.ip in s for s, _ in subs):
            names = "或".join(f"{s}（{net(r, 'subnet')}）" for s, r in subs)
            yield ctx.finding(a.cell, f"{a.cell}: {a.label} {a.value} 不在管理网段 {names} 内",
                              "管理组件必须位于管理网络或额外管理网络（虚拟网络第 5 行）中",
                              [a.cell] + [net(r, "subnet") for _, r in subs])


@rule("ip.loopback", "error", "真实部署不使用回环地址（--sim 时允许）")
def ip_loopback(ctx: Context):
    if ctx.sim:
        return
    found: list[tuple[str, str]] = []
    for a in ctx.addresses(include_test=True, include_gateways=True):
        if a.ip is not None and a.ip in LOOPBACK:
            found.append((a.cell, a.value))
    for n in ctx.networks():
        sub = parse_subnet(n.subnet)
        if sub is not None and sub.overlaps(LOOPBACK):
            found.append((net(n.row, "subnet"), n.subnet or ""))
    for key, values, coords in (("ntp", ctx.plan.ntp, C.MGMT_NTP), ("dns", ctx.plan.dns, C.MGMT_DNS)):
        for i, v in enumerate(values):
            ip = parse_ip(v)
            if ip is not None and ip in LOOPBACK:
                found.append((ctx.list_cell(key, i, coords), v))
    if found:
        found.sort(key=lambda cv: cell_sort_key(cv[0]))
        cell, value = found[0]
        yield ctx.finding(cell, f"{cell}: 规划表使用了回环地址 {value}（共 {len(found)} 处 127.0.0.0/8 地址），"
                          "真实集群不能使用回环地址",
                          "回环地址只用于模拟器演练（voyager plan check --sim / pytest suites/ --sim）；"
                          "真实部署请填写实际规划的地址", [c for c, _ in found])


@rule("test_range.incomplete", "error", "测试IP范围的起止地址都填写")
def test_range_incomplete(ctx: Context):
    r = ctx.plan.test_ip_range
    if r is None or (r.start and r.end):
        return
    missing = C.MGMT_TEST_IP_END if r.start else C.MGMT_TEST_IP_START
    given = (C.MGMT_TEST_IP_START, r.start) if r.start else (C.MGMT_TEST_IP_END, r.end)
    cell = mgmt_cell(missing)
    yield ctx.finding(cell, f"{cell}: 测试用临时IP范围只填写了一端（{given[0]} 为 {given[1]}，{missing} 为空）",
                      "请同时填写起始地址（E18）和结束地址（E19），或都留空", [cell, mgmt_cell(given[0])])


@rule("test_range.order", "error", "测试IP范围起始地址不大于结束地址")
def test_range_order(ctx: Context):
    r = ctx.plan.test_ip_range
    start, end = (parse_ip(r.start), parse_ip(r.end)) if r else (None, None)
    if start is not None and end is not None and start > end:
        cell = mgmt_cell(C.MGMT_TEST_IP_START)
        yield ctx.finding(cell, f"{cell}: 测试IP范围起始地址 {r.start} 大于结束地址 {r.end}",
                          "请交换 E18 和 E19，或改正其中一个", [cell, mgmt_cell(C.MGMT_TEST_IP_END)])


@rule("test_range.subnet", "error", "测试IP范围位于同一个已规划的网段内")
def test_range_subnet(ctx: Context):
    r = ctx.plan.test_ip_range
    start, end = (parse_ip(r.start), parse_ip(r.end)) if r else (None, None)
    if start is None or end is None:
        return
    nets = [(n, parse_subnet(n.subnet)) for n in ctx.networks()
            if n.role in ("mgmt", "extra_mgmt", "business")]
    if any(s is not None and start in s and end in s for _, s in nets):
        return
    cell = mgmt_cell(C.MGMT_TEST_IP_START)
    yield ctx.finding(cell, f"{cell}: 测试IP范围 {r.start} - {r.end} 不在同一个已规划的管理或业务网段内",
                      "测试虚拟机使用这段地址，请让起止地址落在同一个管理网络或业务网络的网段中",
                      [cell, mgmt_cell(C.MGMT_TEST_IP_END)])


@rule("test_range.overlap", "error", "测试IP范围不包含已规划的地址")
def test_range_overlap(ctx: Context):
    r = ctx.plan.test_ip_range
    start, end = (parse_ip(r.start), parse_ip(r.end)) if r else (None, None)
    if start is None or end is None or start > end:
        return
    cell = mgmt_cell(C.MGMT_TEST_IP_START)
    for a in ctx.addresses(include_gateways=True):
        if a.ip is not None and start <= a.ip <= end:
            yield ctx.finding(cell, f"{cell}: 测试IP范围 {r.start} - {r.end} 包含已规划的地址 {a.value}"
                              f"（{a.cell} {a.label}）",
                              "测试虚拟机会占用范围内的地址，请把范围移到未分配的地址段",
                              [cell, mgmt_cell(C.MGMT_TEST_IP_END), a.cell])
