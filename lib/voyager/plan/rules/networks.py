"""Rules about the virtual networks (虚拟网络): VLAN IDs, template lists, NICs and the
network architecture (主机规划!Q20)."""
from __future__ import annotations

from collections import defaultdict

from voyager.plan import cells as C
from voyager.plan.rules.common import Context, PlannedNet, choice_findings, hosts_cell, net, repeats, rule

THREE_NETS = "三网独立"
CONVERGED = "三网融合"


def link_row(ctx: Context, n: PlannedNet, key: str) -> int:
    """The row a shared attribute (VDS, NICs, bond, speed, port type) of ``n`` was
    written in: the business rows share row 8; the extra management network shares
    row 4 unless it has its own value."""
    if n.role == "business":
        return C.NET_BUSINESS_ROWS[0]
    if n.role == "extra_mgmt":
        mgmt = ctx.plan.networks.mgmt
        own = getattr(ctx.plan.networks.extra_mgmt, key, None)
        if own == getattr(mgmt, key, None):
            return C.NET_ROW_MGMT
    return n.row


def vds_groups(ctx: Context) -> dict[str, list[PlannedNet]]:
    """Networks grouped by the virtual switch they live on. In 三网独立 management,
    storage, backup and business are separate switches whatever they are called; the
    storage network is always on its own switch (both supported architectures)."""
    arch = ctx.plan.cluster.network_arch
    groups: dict[str, list[PlannedNet]] = defaultdict(list)
    for n in ctx.networks():
        if n.role == "bmc":
            continue
        role = "mgmt" if n.role == "extra_mgmt" else n.role
        if arch == THREE_NETS or role == "storage" or not n.vds:
            key = f"role:{role}"
        else:
            key = f"vds:{n.vds.strip().lower()}"
        groups[key].append(n)
    return groups


@rule("vlan.range", "error", "VLAN ID 在 0-4094 之间")
def vlan_range(ctx: Context):
    for n in ctx.networks():
        if n.vlan is not None and not 0 <= n.vlan <= 4094:
            cell = net(n.row, "vlan")
            yield ctx.finding(cell, f"{cell}: VLAN ID {n.vlan} 超出范围（{n.label}）",
                              "VLAN ID 必须是 0-4094 之间的整数（0 表示不打标签）")


@rule("vlan.duplicate", "error", "同一虚拟交换机上的 VLAN ID 不重复")
def vlan_duplicate(ctx: Context):
    for members in vds_groups(ctx).values():
        for n, first in repeats(members, lambda n: n.vlan):
            cell, other = net(n.row, "vlan"), net(first.row, "vlan")
            vds = n.vds or first.vds or "同一虚拟交换机"
            yield ctx.finding(cell, f"{cell}: VLAN ID {n.vlan} 在虚拟交换机 {vds} 上重复"
                              f"（{n.label} 与 {other} {first.label}）",
                              "同一虚拟交换机上的每个网络必须使用不同的 VLAN ID", [cell, other])


@rule("vlan.name_duplicate", "error", "业务网络名称不重复")
def vlan_name_duplicate(ctx: Context):
    for v, first in repeats(ctx.plan.networks.business.vlans, lambda v: v.name.strip().lower() if v.name else None):
        cell, other = net(v.row, "name"), net(first.row, "name")
        yield ctx.finding(cell, f"{cell}: 业务网络名称「{v.name}」与 {other} 重复",
                          "每个业务网络（虚拟机网络）需要唯一的名称", [cell, other])


def _list_rule(ctx: Context, key: str, allowed_for, what: str):
    reported: set[str] = set()
    for n in ctx.networks():
        value = getattr(n, key)
        allowed = allowed_for(n)
        if not value or allowed is None or value in allowed:
            continue
        cell = net(link_row(ctx, n, key), key)
        if cell in reported:
            continue
        reported.add(cell)
        yield ctx.finding(cell, f"{cell}: {what}「{value}」不在模板的选项中（{n.label}）",
                          f"请从下拉列表中选择：{'、'.join(allowed)}")


@rule("list.bond", "error", "网口绑定模式在模板的选项中")
def list_bond(ctx: Context):
    yield from _list_rule(ctx, "bond", lambda n: None if n.role == "bmc" else C.BOND_MODES,
                          "网口绑定模式")


@rule("list.speed", "warning", "网口速率在模板的选项中")
def list_speed(ctx: Context):
    yield from _list_rule(ctx, "speed",
                          lambda n: C.BMC_SPEEDS if n.role == "bmc" else C.NIC_SPEEDS, "速率")


@rule("list.port_type", "warning", "端口类型在模板的选项中")
def list_port_type(ctx: Context):
    yield from _list_rule(ctx, "port_type", lambda n: C.PORT_TYPES, "端口类型")


@rule("list.switch_mode", "warning", "物理交换机配置类型在模板的选项中")
def list_switch_mode(ctx: Context):
    yield from _list_rule(ctx, "switch_mode", lambda n: C.SWITCH_MODES, "物理交换机配置类型")


@rule("list.network_arch", "error", "网络架构在模板的选项中")
def list_network_arch(ctx: Context):
    yield from choice_findings(ctx, ctx.plan.cluster.network_arch, C.NETWORK_ARCHS, C.HOST_NETWORK_ARCH, "网络架构",
                               C.SUPPORTED_NETWORK_ARCHS)


@rule("network_arch.unsupported", "error", "网络架构是部署手册支持的存储独立或三网独立")
def network_arch_unsupported(ctx: Context):
    if ctx.plan.cluster.network_arch == CONVERGED:
        cell = hosts_cell(C.HOST_NETWORK_ARCH)
        yield ctx.finding(cell, f"{cell}: 网络架构「三网融合」不受支持：部署手册只支持「存储独立」"
                          "（管理&业务融合、存储独立）和「三网独立」两种网络部署模型",
                          "请为存储网络规划独立的网口和网段，并把网络架构改为「存储独立」或「三网独立」")


@rule("nic.reuse", "error", "不同虚拟交换机不共用主机网口（三网独立时各网络网口互不相同）")
def nic_reuse(ctx: Context):
    groups = []
    for members in vds_groups(ctx).values():
        first = members[0]
        nics = {nic for n in members for nic in n.nics}
        if nics:
            groups.append((first, net(link_row(ctx, first, "nics"), "nics"), nics))
    for i, (a, cell_a, nics_a) in enumerate(groups):
        for b, cell_b, nics_b in groups[i + 1:]:
            shared = sorted(nics_a & nics_b)
            if shared and cell_a != cell_b:
                arch = ctx.plan.cluster.network_arch
                why = "三网独立时管理、存储、业务网络必须使用不同的网口" if arch == THREE_NETS \
                    else "一块网口只能属于一个虚拟交换机"
                yield ctx.finding(cell_b, f"{cell_b}: 网口 {'、'.join(shared)} 同时用于{b.label.split(' ')[0]}"
                                  f"和 {cell_a} {a.label.split(' ')[0]}", f"{why}，请修改网口规划",
                                  [cell_b, cell_a])


@rule("nic.duplicate", "warning", "同一网口在一个虚拟交换机里只写一次")
def nic_duplicate(ctx: Context):
    reported: set[str] = set()
    for n in ctx.networks():
        cell = net(link_row(ctx, n, "nics"), "nics")
        dupes = sorted({x for x in n.nics if n.nics.count(x) > 1})
        if dupes and cell not in reported:
            reported.add(cell)
            yield ctx.finding(cell, f"{cell}: 网口 {'、'.join(dupes)} 重复填写（{n.label}）",
                              "每个网口只写一次，多个网口用英文逗号分隔")
