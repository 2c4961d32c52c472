"""The ``required`` rule: every field the walkthrough needs is filled in."""
from __future__ import annotations

from voyager.plan import cells as C
from voyager.plan.rules.common import Context, host, hosts_cell, mgmt, mgmt_cell, net, rule

_NET_FIELDS = {
    "vds": "虚拟交换机",
    "name": "虚拟网络名称",
    "vlan": "VLAN ID",
    "subnet": "网段(SubNetwork)",
    "gateway": "网关(Gateway)",
    "nics": "主机端口",
    "bond": "网口绑定模式",
}


def _missing(value) -> bool:
    return value is None or value == "" or value == [] or (hasattr(value, "reveal") and not value)


def _required_fields(ctx: Context):
    """(cell, Chinese label, value) of every field that must be filled."""
    p = ctx.plan
    n = p.networks
    yield C.ref(C.NET, C.NET_CLUSTER_NAME), "集群名称", p.cluster.name
    network_rows = [(n.mgmt, "管理网络", ("vds", "name", "vlan", "subnet", "gateway", "nics", "bond")),
                    (n.storage, "存储网络", ("vds", "name", "vlan", "subnet", "nics", "bond"))]
    if n.extra_mgmt is not None:
        network_rows.append((n.extra_mgmt, "额外管理网络", ("name", "vlan", "subnet", "gateway")))
    if n.backup is not None:
        network_rows.append((n.backup, "备份网络", ("vds", "name", "vlan", "subnet", "nics", "bond")))
    for row, label, keys in network_rows:
        for key in keys:
            yield net(row.row, key), f"{label}的{_NET_FIELDS[key]}", getattr(row, key)
    b = n.business
    if b.vlans:
        first = C.NET_BUSINESS_ROWS[0]
        for key in ("vds", "nics", "bond"):
            yield net(first, key), f"业务网络的{_NET_FIELDS[key]}", getattr(b, key)
        for v in b.vlans:
            yield net(v.row, "name"), "业务网络名称", v.name
            yield net(v.row, "vlan"), f"业务网络 {v.name or ''} 的 VLAN ID", v.vlan
    for h in p.hosts:
        who = f"主机 {h.name}" if h.name else f"第 {h.row} 行主机"
        yield host(h.row, "name"), f"{who}的主机名", h.name
        yield host(h.row, "mgmt_ip"), f"{who}的管理地址", h.mgmt_ip
        yield host(h.row, "storage_ip"), f"{who}的存储IP", h.storage_ip
        yield host(h.row, "ssh_user"), f"{who}的 SSH 用户名", h.ssh_user
        yield host(h.row, "ssh_password"), f"{who}的 SSH 密码", h.ssh_password
        yield host(h.row, "admin_user"), f"{who}的管理员账号", h.admin_user
        yield host(h.row, "admin_password"), f"{who}的管理员密码", h.admin_password
        if h.bmc_ip:  # BMC accounts are configured only for hosts with a BMC address
            yield host(h.row, "bmc_user"), f"{who}的带外账号", h.bmc_user
            yield host(h.row, "bmc_password"), f"{who}的带外密码", h.bmc_password
    yield hosts_cell(C.HOST_VIP), "集群VIP", p.cluster.vip
    yield hosts_cell(C.HOST_ADMIN_USER), "集群管理员账号", p.cluster.admin_user
    yield hosts_cell(C.HOST_ADMIN_PASSWORD), "集群管理员密码", p.cluster.admin_password
    yield hosts_cell(C.HOST_STORAGE_ARCH), "存储架构", p.cluster.storage_arch
    yield hosts_cell(C.HOST_NETWORK_ARCH), "网络架构", p.cluster.network_arch
    ct = p.cloudtower
    for key, label in (("vm_name", "虚拟机名称"), ("version", "版本"), ("ip", "IP地址"),
                       ("web_user", "Web 管理员"), ("web_password", "Web 管理员密码"),
                       ("ssh_user", "SSH 用户名"), ("ssh_password", "SSH 密码")):
        yield mgmt(ct.row, key), f"CloudTower {label}", getattr(ct, key)
    for comp, label in ((p.obs, "Observability"), (p.backup_service, "备份服务")):
        if comp is not None:
            yield mgmt(comp.row, "vm_name"), f"{label} 虚拟机名称", comp.vm_name
            yield mgmt(comp.row, "ip"), f"{label} IP地址", comp.ip
    if p.er is not None:
        yield mgmt_cell(C.MGMT_ER_VIP), "ER VIP", p.er.vip
    yield C.ref(C.DOC, C.DOC_CUSTOMER), "客户名称（CloudTower 组织名称）", p.document.customer
    yield C.ref(C.DOC, C.DOC_DATACENTER), "数据中心名称（CloudTower 数据中心）", p.document.datacenter
    yield mgmt_cell(C.MGMT_NTP[0]), "NTP 服务器（至少一个）", p.ntp
    yield mgmt_cell(C.MGMT_DNS[0]), "DNS 服务器（至少一个）", p.dns


@rule("required", "error", "部署所需的字段都已填写")
def required(ctx: Context):
    for cell, label, value in _required_fields(ctx):
        if _missing(value) and cell not in ctx.read_cells:
            yield ctx.finding(cell, f"{cell}: 缺少{label}", f"请在 {cell} 填写{label}")
