"""Rules about the cluster settings (主机规划 row 19-20) and the services of
集群管理信息: cluster name, features, storage architecture, DNS and NTP."""
from __future__ import annotations

import re

from voyager.plan import cells as C
from voyager.plan.rules.common import Context, choice_findings, hosts_cell, parse_ip, rule, usable_ip
from voyager.plan.rules.hosts import valid_hostname


@rule("cluster.name", "error", "各工作表中的集群名称一致")
def cluster_name(ctx: Context):
    name = ctx.plan.cluster.name
    if not name:
        return
    source = C.ref(C.NET, C.NET_CLUSTER_NAME)
    for cell, value in ctx.plan.cluster.name_refs.items():
        if value and value != name:
            yield ctx.finding(cell, f"{cell}: 集群名称「{value}」与 {source} 的「{name}」不一致",
                              f"请把 {cell} 恢复为公式 ={C.NET}!{C.NET_CLUSTER_NAME}，或改成相同的名称",
                              [cell, source])


@rule("list.features", "error", "集群功能启用在模板的选项中")
def list_features(ctx: Context):
    yield from choice_findings(ctx, ctx.plan.cluster.features, C.FEATURES, C.HOST_FEATURES, "集群功能")


@rule("rdma.unsupported", "error", "不启用自动部署不支持的 RDMA")
def rdma_unsupported(ctx: Context):
    value = ctx.plan.cluster.features
    if value in C.FEATURES and ctx.plan.cluster.rdma_enabled:
        cell = hosts_cell(C.HOST_FEATURES)
        yield ctx.finding(cell, f"{cell}: 集群功能「{value}」包含 RDMA，当前自动部署平台尚不支持开启 RDMA"
                          "（见 主机规划!B29）", "请选择 None 或 Boost；RDMA 需在部署后由 SmartX 工程师手工开启")


@rule("list.storage_arch", "error", "存储架构在模板的选项中")
def list_storage_arch(ctx: Context):
    yield from choice_findings(ctx, ctx.plan.cluster.storage_arch, C.STORAGE_ARCHS, C.HOST_STORAGE_ARCH, "存储架构")


@rule("dns.ip", "error", "DNS 服务器是 IP 地址")
def dns_ip(ctx: Context):
    for i, value in enumerate(ctx.plan.dns):
        ip = parse_ip(value)
        if ip is None or not usable_ip(ip):
            cell = ctx.list_cell("dns", i, C.MGMT_DNS)
            hint = "DNS 服务器只能填写 IP 地址（部署 API 只接受 IP），例如 10.0.0.114"
            if " " in value:
                hint = "一个单元格只填写一个 DNS 服务器；第二个请填在 E26"
            yield ctx.finding(cell, f"{cell}: DNS 服务器「{value}」不是有效的 IPv4 地址", hint)


@rule("ntp.syntax", "error", "NTP 服务器是 IP 地址或主机名")
def ntp_syntax(ctx: Context):
    for i, value in enumerate(ctx.plan.ntp):
        looks_numeric = re.fullmatch(r"[\d.]+", value) is not None
        ok = parse_ip(value) is not None if looks_numeric else valid_hostname(value)
        if not ok:
            cell = ctx.list_cell("ntp", i, C.MGMT_NTP)
            what = "不是有效的 IPv4 地址" if looks_numeric else "既不是 IP 地址也不是有效的域名"
            hint = "请填写 NTP 服务器的 IP 地址或域名，例如 10.0.0.2 或 ntp.example.com"
            if " " in value:
                hint = "一个单元格只填写一个 NTP 服务器；其余的依次填在 E22、E23、E24"
            yield ctx.finding(cell, f"{cell}: NTP 服务器「{value}」{what}", hint)


@rule("ntp.two", "warning", "不配置恰好两个 NTP 服务器（模板说明 F22）")
def ntp_two(ctx: Context):
    if len(ctx.plan.ntp) == 2:
        cells = [ctx.list_cell("ntp", i, C.MGMT_NTP) for i in range(2)]
        yield ctx.finding(cells[0], f"{cells[0]}: 只配置了两个 NTP 服务器（{'、'.join(ctx.plan.ntp)}）；"
                          "两个时间源不一致时集群无法判断哪个正确",
                          "按模板说明（集群管理信息!F22）配置三个及以上 NTP 服务器；只有在两个服务器"
                          "是同一上游时间源的平级服务器时才可保留两个", cells)
