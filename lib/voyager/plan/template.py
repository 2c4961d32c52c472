"""Write a planning workbook with the SmartX template's layout.

``new_template(path)`` writes an empty template ready to fill in; ``demo=True`` fills it
with :func:`voyager.plan.demo.build_demo_plan`. ``write_plan(plan, path)`` writes any
plan; ``read_plan(write_plan(p))`` gives back ``p`` (apart from ``source``).

The layout follows the real template (``PLAN-FIELDS.md``): same sheet names and order,
headers on row 2, labels, formulas (``主机规划!C3 = 虚拟网络!B3``), merged ranges,
data-validation lists and sheet protection (structure locked, input cells editable).
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Optional

from voyager.plan.xl import openpyxl  # first: openpyxl without numpy
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.worksheet.datavalidation import DataValidation

from voyager.plan import cells as C
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Component, Network, Plan, Secret

GENERATOR = "smtx-voyager"
DEMO_KEYWORD = "smtx-voyager-demo"

# (name, hidden) in the template's order
TEMPLATE_SHEETS = (
    ("更新说明", False), (C.DOC, False), ("设计调研(内部）", True), ("配置确认表", True),
    ("逻辑拓扑图", False), ("硬件兼容评估", True), ("机架位置", False), (C.NET, False),
    (C.HOSTS, False), (C.MGMT, False), ("端口开放需求(可选）", False),
    ("超融合平台加固基线（可选）", False), ("服务器端口连线(可选)", False),
)

NET_HEADERS = ("集群名称", "虚拟交换机", "虚拟网络", "网络功能说明", "VLAN ID", "VLAN类型", "SubNetwork",
               "Gateway", "主机端口", "网口绑定模式", "速率", "端口类型", "物理交换机配置类型")
HOST_HEADERS = ("序号", "集群名称", "设备S/N", "带外地址", "带外账号", "带外密码", "主机名", "管理地址",
                "SSH 用户名", "密码", "管理员账号", "密码", "存储IP", "功能描述", "机架名称", "机架位置 U")
MGMT_HEADERS = ("SmartX生产平台管理 虚拟机名称", "技术说明", "Version", "IP地址", "Web  管理员", "密码",
                " SSH 用户名", "SSH 密码", "系统管理员", "密码", "性能配置", "SN", "管理集群")

NET_PURPOSES = {3: "带外管理流量", 4: "SMTX OS系统管理网络",
                5: "（可选）Cloudtower,obs等组件,客户要求需独立网段", 6: "SMTX OS内部存储网络",
                7: "SMTX 备份服务互联NAS", 8: "虚拟机网络(按需提供)"}
# template defaults of rows the plan leaves empty
NET_DEFAULTS = {
    4: {"C": "vDS-MgMt-Network", "D": "default", "F": 0, "G": "Access", "K": "active-backup", "L": "10G",
        "M": "光口", "N": "Access"},
    5: {"D": "Infra-network", "G": "Access", "N": "Access"},
    6: {"C": "vDS-Storage-Network", "D": "storage-network", "F": 0, "G": "Access", "K": "active-backup",
        "L": "25G", "M": "光口", "N": "Access"},
    7: {"C": "vDS-Backup-Network", "D": "backup-network", "G": "Access", "K": "active-backup",
        "L": "10G", "M": "光口", "N": "Access"},
    8: {"C": "vDS-Prod-Network", "K": "balance-slb", "L": "10G", "M": "光口", "N": "Trunk"},
}
COMPONENT_DEFAULTS = {
    3: ("Cloudtower", "SMTX 集群统一 Web 管理平台", "8vCPU\\19GB-Mem\\400GB Disk",
        {"F": "root", "G": C.DEFAULT_PASSWORD, "H": "smartx", "I": C.DEFAULT_PASSWORD, "J": "root",
         "K": C.DEFAULT_PASSWORD}),
    4: ("Observability", "集群监控与告警集成组件", "16vCPU\\32GB-Mem\\512GB Disk",
        {"F": "N/A", "G": "N/A", "H": "o11y", "J": "admin"}),
    5: ("backup", "备份服务管理组件", "4vCPU\\16GB-Mem\\40GB Disk",
        {"F": "N/A", "G": "N/A", "H": "smartx", "J": "admin"}),
}
NOTE_NET = "请注意：当前仅支持“管理&业务融合、存储独立”与“三网独立”两种网络部署模型。"
NOTE_HOSTS = ("1. 集群命名规范建议：企业简写 - 地域简写- 软件品牌-业务简写-编号， 如: CN-BJ-SMTX-Prod-Cls01"
              "（企业-北京-SMTX-生产-集群01）;\n2. 主机命名规范建议：地域简写-软件-业务-功能-编号，如："
              "BJ-SMTX-Prod-Node-01（北京-SMTX-生产-主机-01）；\n3. 集群VIP建议为连续的第一个开始IP，方便后续扩容。")
NOTE_RDMA = "请注意：当前自动部署平台尚不支持开启RDMA"
NOTE_NTP = ("最佳配置三个及以上 NTP服务器，\n如果仅有两个平级物理NTP，且上游为同一时间源，可配置此两个NTP，"
            "否则禁止配置2个；\n推荐本地NTP Server同步上游原子/北斗时钟服务器地址，本地NTP Server等级不低于4级。")
NOTE_DOC = ("文档说明：\n本文档根据数据中心基础架构平台建设项目需求和长期的发展需要，参照SmartX 超融合最佳实践规范，"
            "对SMTX OS平台建设项目规划设计，做为项目建设规范和指导。")
NOTE_OTHER = "此工作表为 SmartX 规划设计表模板的组成部分；smtx-voyager 不读取它，请按需参考 SmartX 官方模板填写。"

COLUMN_WIDTHS = {
    C.DOC: {"A": 4.2, "B": 15.5, "C": 10.8, "E": 22, "F": 44.8},
    C.NET: {"A": 5.3, "B": 27.8, "C": 24.2, "D": 25, "E": 59, "F": 10.8, "H": 20.2, "I": 21.8,
            "J": 26.2, "K": 19.5, "L": 12, "M": 13.3, "N": 21.3},
    C.HOSTS: {"A": 5, "B": 11.3, "C": 37.2, "D": 13.5, "E": 21.4, "F": 15.1, "G": 17.5, "H": 30.5,
              "I": 14.5, "J": 14.7, "K": 11.5, "L": 13.8, "M": 11.5, "N": 15.5, "O": 27.2, "P": 21,
              "Q": 9.8},
    C.MGMT: {"A": 4.3, "B": 36.8, "C": 43.8, "D": 17.5, "E": 16.8, "F": 15.3, "G": 13.7, "H": 15.5,
             "I": 16.3, "L": 44.5, "M": 54.7, "N": 34.7},
}

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_LABEL_FONT = Font(bold=True)
_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="center")
_UNLOCKED = Protection(locked=False)


def _put(ws, coord: str, value: Any) -> None:
    """Set a cell; a string starting with "=" that is not meant as a formula stays text."""
    if isinstance(value, Secret):
        value = value.reveal() or None
    cell = ws[coord]
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"


def _formula(ws, coord: str, formula: str) -> None:
    ws[coord] = formula


def _header(ws, row: int, first_col: str, titles: tuple[str, ...]) -> None:
    start = openpyxl.utils.column_index_from_string(first_col)
    for i, title in enumerate(titles):
        cell = ws.cell(row=row, column=start + i, value=title)
        cell.font, cell.fill, cell.border, cell.alignment = _HEADER_FONT, _HEADER_FILL, _BORDER, _WRAP


def _label(ws, coord: str, text: str) -> None:
    ws[coord] = text
    ws[coord].font = _LABEL_FONT
    ws[coord].alignment = _WRAP


def _unlock(ws, ref: str) -> None:
    """Make the input cells of ``ref`` editable under sheet protection, with a border."""
    for row in ws[ref] if ":" in ref else ((ws[ref],),):
        for cell in row:
            cell.protection = _UNLOCKED
            cell.border = _BORDER


def _protect(ws, format_columns: bool = True) -> None:
    """Sheet protection as in the template: cells may be selected and formatted, rows
    and columns may not be inserted or deleted (the layout is addressed by coordinate).
    No password: the engineer can lift it if ever needed."""
    p = ws.protection
    p.sheet = True
    p.objects = p.scenarios = True
    p.insertRows = p.deleteRows = p.insertColumns = p.deleteColumns = True
    p.insertHyperlinks = p.sort = True
    p.formatRows = p.formatColumns = format_columns
    p.formatCells = p.selectLockedCells = p.selectUnlockedCells = False
    p.autoFilter = p.pivotTables = False


def _validation(ws, values: tuple[str, ...], sqref: str) -> None:
    dv = DataValidation(type="list", formula1='"' + ",".join(values) + '"', allow_blank=True,
                        showErrorMessage=True, errorTitle="输入无效", error="请从下拉列表中选择")
    for ref in sqref.split():
        dv.add(ref)
    ws.add_data_validation(dv)


def _merge(ws, sheet: str) -> None:
    for ref in C.MERGED[sheet]:
        ws.merge_cells(ref)


def _widths(ws, sheet: str) -> None:
    for col, width in COLUMN_WIDTHS.get(sheet, {}).items():
        ws.column_dimensions[col].width = width


# ---------------------------------------------------------------------------- sheets
def _doc_sheet(ws, plan: Optional[Plan]) -> None:
    ws["B11"] = NOTE_DOC
    ws["B11"].alignment = _WRAP
    for coord, label in (("B15", "客户名称："), ("B16", "项目名称："), ("B17", "数据中心名称：")):
        _label(ws, coord, label)
    doc = plan.document if plan else None
    _put(ws, C.DOC_CUSTOMER, doc.customer if doc else "SMTX-HCI")
    _put(ws, C.DOC_PROJECT, doc.project if doc else None)
    _put(ws, C.DOC_DATACENTER, doc.datacenter if doc else "SMTX-HCI-DC")
    _header(ws, 18, "B", ("版本日期", "版本", "作者", "联系电话", "变更记录"))
    _unlock(ws, "C15:F17")
    _unlock(ws, "B19:F24")
    _merge(ws, C.DOC)


def _net_row(ws, row: int, network: Optional[Network], shared: bool = True) -> None:
    cols = C.NET_COL
    for col, value in NET_DEFAULTS.get(row, {}).items():
        _put(ws, f"{col}{row}", value)
    if network is None:
        return
    _put(ws, f"{cols['name']}{row}", network.name)
    _put(ws, f"{cols['vlan']}{row}", network.vlan)
    _put(ws, f"{cols['subnet']}{row}", network.subnet)
    _put(ws, f"{cols['gateway']}{row}", network.gateway)
    _put(ws, f"{cols['switch_mode']}{row}", network.switch_mode)
    if shared:  # rows 4 and 5 share VDS, NICs, bond, speed, port type (merged)
        _put(ws, f"{cols['vds']}{row}", network.vds)
        _put(ws, f"{cols['nics']}{row}", ",".join(network.nics) or None)
        _put(ws, f"{cols['bond']}{row}", network.bond)
        _put(ws, f"{cols['speed']}{row}", network.speed)
        _put(ws, f"{cols['port_type']}{row}", network.port_type)


def _net_sheet(ws, plan: Optional[Plan]) -> None:
    _formula(ws, "B1", '=文档描述!C15&"-"&文档描述!C16&"-SMTX 平台虚拟交换机规划"')
    ws["B1"].font = Font(bold=True, size=14)
    _header(ws, 2, "B", NET_HEADERS)
    for row, text in NET_PURPOSES.items():
        ws[f"E{row}"] = text
    # BMC row: not a virtual switch; J/K describe the dedicated port
    for col, value in (("C", "（IPMI）"), ("D", "（IPMI）"), ("F", 0), ("G", "Access"),
                       ("J", "IPMI/BMC/iDrac/iLO"), ("K", "专用"), ("L", "1G"), ("M", "电口"),
                       ("N", "Access")):
        _put(ws, f"{col}3", value)
    n = plan.networks if plan else None
    _put(ws, C.NET_CLUSTER_NAME, plan.cluster.name if plan else None)
    if n is not None:
        bmc = n.bmc
        for key in ("vds", "name", "vlan", "subnet", "gateway", "speed", "port_type", "switch_mode"):
            value = getattr(bmc, key)
            if value is not None:
                _put(ws, f"{C.NET_COL[key]}3", value)
    _net_row(ws, C.NET_ROW_MGMT, n.mgmt if n else None)
    _net_row(ws, C.NET_ROW_EXTRA_MGMT, n.extra_mgmt if n else None, shared=False)
    _net_row(ws, C.NET_ROW_STORAGE, n.storage if n else None)
    _net_row(ws, C.NET_ROW_BACKUP, n.backup if n else None)
    _net_row(ws, 8, None)
    if n is not None:
        b = n.business
        for key in ("vds", "bond", "speed", "port_type", "switch_mode"):
            _put(ws, f"{C.NET_COL[key]}8", getattr(b, key))
        _put(ws, f"{C.NET_COL['nics']}8", ",".join(b.nics) or None)
        for v in b.vlans:
            if v.row not in C.NET_BUSINESS_ROWS:
                raise ValueError(f"business network row {v.row} is outside 8..18")
            _put(ws, f"D{v.row}", v.name)
            _put(ws, f"F{v.row}", v.vlan)
            _put(ws, f"G{v.row}", v.vlan_type)
            _put(ws, f"H{v.row}", v.subnet)
            _put(ws, f"I{v.row}", v.gateway)
    ws["B23"] = NOTE_NET
    ws["B23"].font = Font(bold=True, color="C00000")
    _unlock(ws, "B3:N18")
    _merge(ws, C.NET)
    _validation(ws, ("专用", "共享"), "K3")
    _validation(ws, C.PORT_TYPES, "M3:M4 M6:M8")
    _validation(ws, C.BOND_MODES, "K4 K6:K8")
    _validation(ws, C.SWITCH_MODES, "N3:N8")
    _validation(ws, C.BMC_SPEEDS, "L3")
    _validation(ws, C.NIC_SPEEDS, "L4:L8")


def _hosts_sheet(ws, plan: Optional[Plan]) -> None:
    _formula(ws, "B1", '=文档描述!C15&"-"&文档描述!C16&"-SMTX 集群节点管理地址规划"')
    ws["B1"].font = Font(bold=True, size=14)
    _header(ws, 2, "B", HOST_HEADERS)
    _formula(ws, "C3", f"={C.NET}!{C.NET_CLUSTER_NAME}")
    for row in C.HOST_ROWS:
        i = row - C.HOST_ROWS[0] + 1
        ws[f"B{row}"] = i
        ws[f"J{row}"] = C.DEFAULT_SSH_USER
        ws[f"L{row}"] = C.DEFAULT_ADMIN_USER
        ws[f"O{row}"] = f"SmartX管理集群Node{i}"
        _formula(ws, f"R{row}", f'=IF(ISNUMBER(Q{row}),Q{row}+1,"")')
    seen: set[int] = set()
    for h in plan.hosts if plan else []:
        if h.row not in C.HOST_ROWS or h.row in seen:
            raise ValueError(f"host row {h.row} is outside 3..18 or used twice")
        seen.add(h.row)
        for key, col in C.HOST_COL.items():
            if key != "cluster_name":
                _put(ws, f"{col}{h.row}", getattr(h, key))
    cl = plan.cluster if plan else None
    for coord, label in (("D19", "Cluster SN"), ("H19", "集群VIP"), ("J19", "集群管理员"),
                         ("N19", "集群功能启用"), ("P19", "存储架构"), ("P20", "网络架构")):
        _label(ws, coord, label)
    _put(ws, C.HOST_VERSION_NOTE, cl.version_note if cl else "版本:")
    _put(ws, C.HOST_CLUSTER_SERIAL, cl.serial if cl else None)
    _put(ws, C.HOST_VIP, cl.vip if cl else None)
    _put(ws, C.HOST_ADMIN_USER, cl.admin_user if cl else C.DEFAULT_ADMIN_USER)
    _put(ws, C.HOST_ADMIN_PASSWORD, cl.admin_password if cl else C.DEFAULT_PASSWORD)
    _put(ws, C.HOST_FEATURES, cl.features if cl else "Boost")
    _put(ws, C.HOST_STORAGE_ARCH, cl.storage_arch if cl else None)
    _put(ws, C.HOST_NETWORK_ARCH, cl.network_arch if cl else None)
    _label(ws, "B21", "说明：")
    ws["B23"] = NOTE_HOSTS
    ws["B23"].alignment = _WRAP
    ws["B29"] = NOTE_RDMA
    ws["B29"].font = Font(bold=True, color="C00000")
    _unlock(ws, "D3:Q18")
    for coord in ("C19", "E19", "I19", "L19", "M19", "O19", "Q19", "Q20"):
        _unlock(ws, coord)
    _merge(ws, C.HOSTS)
    _validation(ws, C.FEATURES, "O19")
    _validation(ws, C.STORAGE_ARCHS, "Q19")
    _validation(ws, C.NETWORK_ARCHS, "Q20:R20")


def _component(ws, row: int, comp: Optional[Component]) -> None:
    name, tech, perf, defaults = COMPONENT_DEFAULTS[row]
    ws[f"B{row}"] = name
    ws[f"C{row}"] = tech
    ws[f"L{row}"] = perf
    if comp is None:
        for col, value in defaults.items():
            ws[f"{col}{row}"] = value
        return
    for key, col in C.MGMT_COL.items():
        _put(ws, f"{col}{row}", getattr(comp, key))


def _mgmt_sheet(ws, plan: Optional[Plan]) -> None:
    _formula(ws, "B1", '=文档描述!C15&"-"&文档描述!C16&"SMTX OS 架构平台管理规划"')
    ws["B1"].font = Font(bold=True, size=14)
    _header(ws, 2, "B", MGMT_HEADERS)
    _component(ws, C.MGMT_ROW_CLOUDTOWER, plan.cloudtower if plan else None)
    _component(ws, C.MGMT_ROW_OBS, plan.obs if plan else None)
    _component(ws, C.MGMT_ROW_BACKUP, plan.backup_service if plan else None)
    _formula(ws, "N3", f"={C.NET}!{C.NET_CLUSTER_NAME}")
    ws["B6"] = "ER"
    ws["C6"] = "ER VIP"
    for i, coord in enumerate(C.MGMT_ER_NODES):
        ws[f"C{coord[1:]}"] = f"控制器{i + 1:02d}"
    er = plan.er if plan else None
    if er is not None:
        _put(ws, C.MGMT_ER_VIP, er.vip)
        for coord, node in zip(C.MGMT_ER_NODES, er.nodes):
            _put(ws, coord, node)
        _put(ws, C.MGMT_ER_SERIAL, er.serial)
    ws["B18"], ws["C18"], ws["D18"] = "临时IP", "测试用临时IP范围", "---"
    r = plan.test_ip_range if plan else None
    if r is not None:
        _put(ws, C.MGMT_TEST_IP_START, r.start)
        _put(ws, C.MGMT_TEST_IP_END, r.end)
    ws["B20"] = "当有其他管理组件时，依次往后添加..."
    _header(ws, 21, "B", ("基础架构设备名称", "技术说明", "类别", "IP地址", "说明"))
    for i, coord in enumerate(C.MGMT_NTP):
        row = coord[1:]
        ws[f"B{row}"], ws[f"C{row}"], ws[f"D{row}"] = f"NTP Server{i + 1}", "集群统一时间服务器地址", "建议物理设备"
        _put(ws, coord, plan.ntp[i] if plan and i < len(plan.ntp) else None)
    for i, coord in enumerate(C.MGMT_DNS):
        row = coord[1:]
        ws[f"B{row}"], ws[f"C{row}"], ws[f"D{row}"] = f"DNS Server{i + 1}", "集群DNS 解析服务器", "域名服务器"
        _put(ws, coord, plan.dns[i] if plan and i < len(plan.dns) else None)
    ws["F22"] = NOTE_NTP
    ws["F22"].alignment = _WRAP
    if plan and (len(plan.ntp) > len(C.MGMT_NTP) or len(plan.dns) > len(C.MGMT_DNS)):
        raise ValueError("the template holds at most 3 NTP and 2 DNS servers")
    _unlock(ws, "B3:M5")
    _unlock(ws, "E6:E11")
    _unlock(ws, "M6")
    _unlock(ws, "E18:E19")
    _unlock(ws, "E22:E26")
    _merge(ws, C.MGMT)


def write_plan(plan: Optional[Plan], path: str | Path, *, demo: bool = False) -> Path:
    """Write ``plan`` (or, with ``None``, an empty template) to ``path`` in the template
    layout. Returns the path. Secrets are written in clear: the workbook is the plan."""
    path = Path(path)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    builders = {C.DOC: _doc_sheet, C.NET: _net_sheet, C.HOSTS: _hosts_sheet, C.MGMT: _mgmt_sheet}
    for title, hidden in TEMPLATE_SHEETS:
        ws = wb.create_sheet(title)
        if hidden:
            ws.sheet_state = "hidden"
        if title in builders:
            builders[title](ws, plan)
            _widths(ws, title)
            _protect(ws, format_columns=title != C.NET)
        elif title == "更新说明":
            _header(ws, 1, "A", ("作者", "更新日期", "更新记录"))
            ws["A2"], ws["B2"] = GENERATOR, _dt.date.today().isoformat()
            ws["C2"] = "由 voyager plan new 按 SmartX 规划设计表模板（ELF 2025-08-20）的布局生成"
            ws.column_dimensions["C"].width = 80
        else:
            ws["B2"] = NOTE_OTHER
    wb.active = [t for t, _ in TEMPLATE_SHEETS].index(C.HOSTS)
    wb.properties.creator = GENERATOR
    wb.properties.title = "SmartX 规划设计表"
    if demo:
        wb.properties.keywords = DEMO_KEYWORD
    wb.save(path)
    return path


def new_template(path: str | Path, demo: bool = False, hosts: int = 3) -> Path:
    """An empty template (ready to fill in), or with ``demo=True`` one filled with the
    demo plan of ``hosts`` hosts (all addresses in 127.0.0.0/8)."""
    plan = build_demo_plan(hosts) if demo else None
    return write_plan(plan, path, demo=demo)


def is_demo_workbook(path: str | Path) -> bool:
    """True for a workbook written by ``new_template(demo=True)`` (safe to overwrite)."""
    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception:
        return False
    try:
        props = wb.properties
        return props.creator == GENERATOR and props.keywords == DEMO_KEYWORD
    finally:
        wb.close()
