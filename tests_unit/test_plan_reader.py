"""The workbook reader: the real template (when ../shared is present) and small
workbooks exercising each quirk of the template."""
from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.hyperlink import Hyperlink

from voyager.plan import PlanError, Secret, read_plan, validate, write_plan
from voyager.plan.demo import build_demo_plan

# ---------------------------------------------------------------- the real template


@pytest.fixture(scope="module")
def real_plan(real_template):
    return read_plan(real_template)


def test_real_template_cluster(real_plan):
    c = real_plan.cluster
    assert c.name == "CN-BJ-SMTX-Prod-Cls01"
    assert c.vip == "10.0.20.10"
    assert c.serial is None
    assert (c.network_arch, c.storage_arch, c.features) == ("三网独立", "混闪-分层", "Boost")
    assert c.version_note == "版本:6.2.0P4"
    assert c.admin_user == "root" and c.admin_password == Secret("HC!r0cks")
    # 主机规划!C3 and 集群管理信息!N3 are =虚拟网络!B3 without cached values
    assert c.name_refs == {"主机规划!C3": c.name, "集群管理信息!N3": c.name}


def test_real_template_hosts(real_plan):
    hosts = real_plan.hosts
    assert [h.index for h in hosts] == [1, 2, 3, 4]
    assert [h.name for h in hosts] == [f"BJ-SMTX-Prod-Node-0{i}" for i in range(1, 5)]
    assert [h.mgmt_ip for h in hosts] == [f"10.0.20.1{i}" for i in range(1, 5)]
    assert [h.storage_ip for h in hosts] == [f"10.0.21.1{i}" for i in range(1, 5)]
    assert [h.bmc_ip for h in hosts] == [f"10.0.19.1{i}" for i in range(1, 5)]
    assert [(h.rack, h.unit) for h in hosts] == [("A01", 1), ("A01", 3), ("A02", 1), ("A02", 3)]
    h = hosts[0]
    assert (h.ssh_user, h.admin_user, h.bmc_user) == ("smartx", "root", "root")
    # G3:G6 carry mailto: hyperlinks; the value is the password
    assert h.bmc_password.reveal() == "P@ssw0rd!123"
    assert h.ssh_password.reveal() == "HC!r0cks"


def test_real_template_networks(real_plan):
    n = real_plan.networks
    assert (n.bmc.subnet, n.bmc.gateway) == ("10.0.20.0/24", "10.0.20.1")
    assert (n.mgmt.vds, n.mgmt.name, n.mgmt.vlan, n.mgmt.subnet, n.mgmt.gateway) == (
        "vDS-MgMt-Network", "default", 0, "10.0.20.0/24", "10.0.20.1")
    assert n.mgmt.nics == ["ens224", "ens192"] and n.mgmt.bond == "active-backup"
    assert (n.storage.subnet, n.storage.nics, n.storage.speed) == (
        "10.0.21.0/24", ["ens256", "ens161"], "25G")
    assert n.extra_mgmt is None and n.backup is None
    b = n.business
    assert (b.vds, b.nics, b.bond) == ("vDS-Prod-Network", ["ens225", "ens257"], "balance-slb")
    assert [v.vlan for v in b.vlans] == list(range(1120, 1131))
    assert [v.name for v in b.vlans] == [f"VLAN-{i}" for i in range(1120, 1131)]
    assert b.vlans[-1].subnet == "10.1.30.0/24" and b.vlans[-1].gateway == "10.1.30.1"


def test_real_template_services(real_plan):
    p = real_plan
    ct = p.cloudtower
    assert (ct.ip, ct.version, ct.vm_name) == ("10.0.20.2", "4.7.1", "Cloudtower")
    assert ct.serial == "15271df9-90d3-4092-9b02-3f4261521e56"
    assert (ct.organization, ct.datacenter) == ("八九实验室", "C89-LAB")
    assert p.obs.ip == "10.0.20.3" and p.obs.web_user is None and not p.obs.web_password  # N/A
    assert p.backup_service.ip == "10.0.20.4"
    assert p.er is None
    assert p.ntp == ["10.0.0.2", "ntp.c89.fun"]
    assert p.dns == ["10.0.0.114", "10.0.0.1"]
    assert (p.test_ip_range.start, p.test_ip_range.end) == ("10.0.20.231", "10.0.20.239")
    assert p.document.project == "超融合项目"
    assert p.findings == []


def test_real_template_findings(real_plan):
    """The template's own findings (listed in the README): BMC addresses 10.0.19.x are
    outside its BMC subnet H3 (10.0.20.0/24), and it has exactly two NTP servers."""
    found = [(f.severity, f.rule, f.cell) for f in validate(real_plan)]
    assert found == [("error", "bmc.subnet", f"主机规划!E{r}") for r in range(3, 7)] + [
        ("warning", "ntp.two", "集群管理信息!E22")]


def test_real_template_reads_fast(real_template):
    read_plan(real_template)  # warm the import and file cache
    start = time.perf_counter()
    plan = read_plan(real_template)
    validate(plan)
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------- quirk workbooks


def _edit(path: Path, edits: dict[str, dict[str, object]]) -> Path:
    """Apply ``{sheet: {cell: value}}`` to a workbook with openpyxl (full mode)."""
    wb = openpyxl.load_workbook(path)
    for sheet, cells in edits.items():
        for coord, value in cells.items():
            wb[sheet][coord] = value
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def _demo_workbook(tmp_path_factory):
    return write_plan(build_demo_plan(), tmp_path_factory.mktemp("demo") / "plan.xlsx")


@pytest.fixture
def demo_file(tmp_path, _demo_workbook):
    """The demo plan written by the template writer; each test edits its own copy."""
    return Path(shutil.copyfile(_demo_workbook, tmp_path / "plan.xlsx"))


def test_full_width_and_stray_spaces(demo_file):
    _edit(demo_file, {
        "主机规划": {"H3": "\u3000demo-node-01\u00a0", "I3": " 127.10.20.11\u3000",
                  "I4": "１２７．１０．２０．１２", "N5": "127.10.21. 13"},
        "虚拟网络": {"B3": "DEMO-SMTX-Cls01\u200b "},
        "文档描述": {"C15": "  演示\u3000客户 "},
    })
    plan = read_plan(demo_file)
    assert plan.hosts[0].name == "demo-node-01"
    assert [h.mgmt_ip for h in plan.hosts] == ["127.10.20.11", "127.10.20.12", "127.10.20.13"]
    assert plan.hosts[2].storage_ip == "127.10.21.13"
    assert plan.cluster.name == "DEMO-SMTX-Cls01"
    assert plan.document.customer == "演示 客户"
    assert plan.findings == []


@pytest.mark.parametrize("typed", ["ens225，ens257", "ens225、ens257", "ens225; ens257",
                                   "ens225/ens257", "ens225 ens257", " ens225 ,\u3000ens257 ",
                                   "ens225；ens257", "ens225\nens257"])
def test_nic_list_separators(demo_file, typed):
    _edit(demo_file, {"虚拟网络": {"J8": typed}})
    assert read_plan(demo_file).networks.business.nics == ["ens225", "ens257"]


def test_vlan_ids_as_strings_and_floats(demo_file):
    _edit(demo_file, {"虚拟网络": {"F8": "1120", "F9": 1121.0, "F10": " １１２２ ", "F4": "0"}})
    plan = read_plan(demo_file)
    assert [v.vlan for v in plan.networks.business.vlans] == [1120, 1121, 1122]
    assert plan.networks.mgmt.vlan == 0
    assert plan.findings == []


def test_unparseable_vlan_is_a_finding_on_its_cell(demo_file):
    _edit(demo_file, {"虚拟网络": {"F9": "abc", "F10": 11.5}})
    plan = read_plan(demo_file)
    vlans = plan.networks.business.vlans
    assert len(vlans) == 3, "rows with a bad VLAN are kept"
    assert [v.vlan for v in vlans] == [1120, None, None]
    found = [(f.rule, f.severity, f.cell) for f in plan.findings]
    assert found == [("read.vlan", "error", "虚拟网络!F9"), ("read.vlan", "error", "虚拟网络!F10")]
    assert "abc" in plan.findings[0].message
    # validate reports it once (no extra "required" on the same cell)
    assert [f.rule for f in validate(plan, sim=True) if f.cell == "虚拟网络!F9"] == ["read.vlan"]


def test_rack_unit_variants_and_bad_unit(demo_file):
    _edit(demo_file, {"主机规划": {"Q3": "x", "Q4": "7U", "Q5": 9.0}})
    plan = read_plan(demo_file)
    assert [h.unit for h in plan.hosts] == [None, 7, 9]
    assert [(f.rule, f.severity, f.cell) for f in plan.findings] == [("read.unit", "warning", "主机规划!Q3")]


def test_simple_formula_without_cached_value_is_resolved(demo_file):
    _edit(demo_file, {
        "集群管理信息": {"E25": "=虚拟网络!I4", "E26": "='虚拟网络'!$I$6"},
        "主机规划": {"I19": "=$I$3"},
    })
    plan = read_plan(demo_file)
    assert plan.dns == ["127.10.20.1", "127.10.21.1"]
    assert plan.cluster.vip == "127.10.20.11"
    assert plan.cluster.name_refs["主机规划!C3"] == "DEMO-SMTX-Cls01"
    assert plan.findings == []


def test_complex_formula_without_cached_value_is_a_finding(demo_file):
    _edit(demo_file, {"集群管理信息": {"E26": '=CONCATENATE("127.10.0.", 1)'}})
    plan = read_plan(demo_file)
    assert plan.dns == ["127.10.0.114"]
    assert [(f.rule, f.cell) for f in plan.findings] == [("read.formula", "集群管理信息!E26")]


def test_text_that_looks_like_a_formula_is_kept(tmp_path):
    plan = build_demo_plan()
    plan.hosts[0].ssh_password = Secret("=Secret-1")
    path = write_plan(plan, tmp_path / "p.xlsx")
    assert read_plan(path).hosts[0].ssh_password.reveal() == "=Secret-1"


def test_mailto_hyperlink_uses_cell_value(demo_file):
    wb = openpyxl.load_workbook(demo_file)
    ws = wb["主机规划"]
    ws["G3"] = "P@ssw0rd!123"
    ws["G3"].hyperlink = Hyperlink(ref="G3", target="mailto:P@ssw0rd!123")
    wb.save(demo_file)
    plan = read_plan(demo_file)
    assert plan.hosts[0].bmc_password.reveal() == "P@ssw0rd!123"
    assert "P@ssw0rd" not in repr(plan.hosts[0]) and "P@ssw0rd" not in str(plan.to_dict())


def test_merged_ranges_share_the_top_left_value(demo_file):
    # enabling the extra management network (row 5): VDS, NICs, bond come from the
    # merged C4:C5, J4:J5, K4:K5 ranges
    _edit(demo_file, {"虚拟网络": {"F5": 30, "H5": "127.10.30.0/24", "I5": "127.10.30.1"}})
    extra = read_plan(demo_file).networks.extra_mgmt
    assert extra is not None
    assert (extra.vds, extra.nics, extra.bond, extra.speed) == (
        "vDS-MgMt-Network", ["ens192", "ens224"], "active-backup", "10G")
    assert (extra.name, extra.vlan, extra.subnet) == ("Infra-network", 30, "127.10.30.0/24")


def test_merges_are_taken_from_the_file(tmp_path, demo_file):
    # an unmerged row 5 with its own NICs keeps them; an unmerged empty one falls back to row 4
    wb = openpyxl.load_workbook(demo_file)
    ws = wb["虚拟网络"]
    ws.unmerge_cells("J4:J5")
    ws["J5"] = "ens300,ens301"
    ws["F5"], ws["H5"], ws["I5"] = 30, "127.10.30.0/24", "127.10.30.1"
    wb.save(demo_file)
    extra = read_plan(demo_file).networks.extra_mgmt
    assert extra.nics == ["ens300", "ens301"] and extra.vds == "vDS-MgMt-Network"


def test_empty_optional_sections_are_none(demo_file):
    _edit(demo_file, {"集群管理信息": {"E4": None, "E5": None}})  # the demo plans Observability and backup
    plan = read_plan(demo_file)
    assert plan.networks.extra_mgmt is None
    assert plan.networks.backup is None  # row 7 carries only the template's default names
    assert plan.obs is None and plan.backup_service is None and plan.er is None


def test_optional_sections_when_filled(demo_file):
    _edit(demo_file, {
        "虚拟网络": {"F7": 40, "H7": "127.10.40.0/24", "J7": "ens162"},
        "集群管理信息": {"E4": "127.10.20.3", "F4": "N/A", "E6": "127.10.20.5", "E8": "127.10.20.7",
                   "E18": None, "E19": None},
    })
    plan = read_plan(demo_file)
    assert plan.networks.backup.vds == "vDS-Backup-Network" and plan.networks.backup.vlan == 40
    assert plan.networks.backup.nics == ["ens162"]
    assert plan.obs.ip == "127.10.20.3" and plan.obs.web_user is None and plan.obs.vm_name == "Observability"
    assert plan.er.vip == "127.10.20.5" and plan.er.nodes == ["127.10.20.7"]
    assert plan.locations == {"er.nodes[0]": "集群管理信息!E8"}
    assert plan.test_ip_range is None


def test_gaps_in_column_lists_keep_their_cells(demo_file):
    _edit(demo_file, {"集群管理信息": {"E22": None, "E23": None, "E24": "bad_host!"}})
    plan = read_plan(demo_file)
    assert plan.ntp == ["bad_host!"]
    (f,) = [f for f in validate(plan, sim=True) if f.rule == "ntp.syntax"]
    assert f.cell == "集群管理信息!E24"


def test_partial_host_row_is_reported_not_dropped(demo_file):
    _edit(demo_file, {"主机规划": {"D7": "SN-LOST-1", "P7": "A03"}})
    plan = read_plan(demo_file)
    assert len(plan.hosts) == 3
    (f,) = plan.findings
    assert (f.rule, f.severity, f.cell) == ("read.host_row", "warning", "主机规划!D7")
    assert "主机规划!P7" in f.cells


def test_host_row_counts_with_any_of_e_h_i_n(demo_file):
    _edit(demo_file, {"主机规划": {"N6": "127.10.21.14"}})
    plan = read_plan(demo_file)
    assert [h.row for h in plan.hosts] == [3, 4, 5, 6]
    assert plan.hosts[3].name is None and plan.hosts[3].index == 4
    required = {f.cell for f in validate(plan, sim=True) if f.rule == "required"}
    assert {"主机规划!H6", "主机规划!I6", "主机规划!K6", "主机规划!M6"} <= required


def test_stray_business_row_is_reported(demo_file):
    _edit(demo_file, {"虚拟网络": {"H12": "127.11.9.0/24"}})
    plan = read_plan(demo_file)
    assert len(plan.networks.business.vlans) == 3
    assert [(f.rule, f.cell) for f in plan.findings] == [("read.vlan_row", "虚拟网络!H12")]


def test_business_row_counts_with_name_only(demo_file):
    _edit(demo_file, {"虚拟网络": {"D14": "VLAN-NEW"}})
    vlans = read_plan(demo_file).networks.business.vlans
    assert [v.row for v in vlans] == [8, 9, 10, 14] and vlans[-1].vlan is None


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(PlanError, match="不存在"):
        read_plan(tmp_path / "nope.xlsx")


def test_not_an_xlsx(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(PlanError, match="不是有效的 .xlsx"):
        read_plan(bad)


def test_missing_sheet(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "虚拟网络"
    wb.create_sheet("主机规划")
    wb.save(tmp_path / "partial.xlsx")
    with pytest.raises(PlanError, match="缺少工作表「文档描述」「集群管理信息」"):
        read_plan(tmp_path / "partial.xlsx")



def test_passwords_lose_only_edge_spaces(demo_file):
    _edit(demo_file, {"主机规划": {"K3": "\u3000Pa ss\u00a0word1 ", "M3": "N/A"}})
    host = read_plan(demo_file).hosts[0]
    assert host.ssh_password.reveal() == "Pa ss\u00a0word1"
    assert not host.admin_password  # a placeholder, then "required" asks for it


def test_bad_index_falls_back_to_the_row(demo_file):
    _edit(demo_file, {"主机规划": {"B4": "二"}})
    plan = read_plan(demo_file)
    assert [h.index for h in plan.hosts] == [1, 2, 3]
    assert [(f.rule, f.severity, f.cell) for f in plan.findings] == [("read.index", "info", "主机规划!B4")]


# ---------------------------------------------------------------- more quirks


def test_full_width_space_inside_addresses(demo_file):
    _edit(demo_file, {"主机规划": {"I3": "127.10.20.\u300011", "N3": "127 .10.21.11",
                                "E3": "127.10.19.11\u200b"},
                      "虚拟网络": {"H4": "127.10.20.0\u3000/24"}})
    plan = read_plan(demo_file)
    h = plan.hosts[0]
    assert (h.mgmt_ip, h.storage_ip, h.bmc_ip) == ("127.10.20.11", "127.10.21.11", "127.10.19.11")
    assert plan.networks.mgmt.subnet == "127.10.20.0/24"
    assert plan.findings == []


def test_nic_list_with_mixed_separators(demo_file):
    _edit(demo_file, {"虚拟网络": {"J8": " ens225，ens257、ens300;ens301 / ens302\u3000ens303\nens304 "}})
    assert read_plan(demo_file).networks.business.nics == [
        "ens225", "ens257", "ens300", "ens301", "ens302", "ens303", "ens304"]


@pytest.mark.parametrize("typed", [True, "1120 1121", "VLAN1120", "1,120"])
def test_vlan_cells_that_are_not_one_integer(demo_file, typed):
    _edit(demo_file, {"虚拟网络": {"F8": typed}})
    plan = read_plan(demo_file)
    assert plan.networks.business.vlans[0].vlan is None
    (f,) = plan.findings
    assert (f.rule, f.cell) == ("read.vlan", "虚拟网络!F8")
    assert f.message.startswith("虚拟网络!F8: ") and str(typed).upper() in f.message.upper() and f.hint
    # reported once: no "required" (missing VLAN) on the same cell
    assert [x.rule for x in validate(plan, sim=True) if x.cell == "虚拟网络!F8"] == ["read.vlan"]


def test_several_addresses_in_one_cell_are_reported_not_merged(demo_file):
    _edit(demo_file, {"主机规划": {"I3": "127.10.20.11 127.10.20.21"},
                      "集群管理信息": {"E22": "127.10.0.2\n127.10.0.3", "E25": "127.10.0.114，127.10.0.1"}})
    plan = read_plan(demo_file)
    assert plan.hosts[0].mgmt_ip == "127.10.20.11 127.10.20.21"
    assert plan.ntp[0] == "127.10.0.2 127.10.0.3"
    found = {f.rule: f for f in validate(plan, sim=True) if f.severity == "error"}
    assert found["ip.syntax"].cell == "主机规划!I3"
    assert "127.10.20.11 127.10.20.21" in found["ip.syntax"].message
    assert "一个单元格只能填写一个地址" in found["ip.syntax"].hint
    assert found["ntp.syntax"].cell == "集群管理信息!E22" and "E23" in found["ntp.syntax"].hint
    assert found["dns.ip"].cell == "集群管理信息!E25"


def test_array_formula_is_resolved(demo_file):
    from openpyxl.worksheet.formula import ArrayFormula

    wb = openpyxl.load_workbook(demo_file)
    wb["集群管理信息"]["E25"] = ArrayFormula("E25", "=虚拟网络!I4")
    wb.save(demo_file)
    plan = read_plan(demo_file)
    assert plan.dns[0] == "127.10.20.1" and plan.findings == []


def test_formula_in_a_password_cell_is_not_quoted(demo_file):
    _edit(demo_file, {"主机规划": {"K3": '=CONCATENATE("Hidden", "Pass-42")'}})
    plan = read_plan(demo_file)
    (f,) = plan.findings
    assert (f.rule, f.cell) == ("read.formula", "主机规划!K3")
    assert "Hidden" not in f.message + f.hint and "Pass-42" not in f.message + f.hint
    assert not plan.hosts[0].ssh_password


def test_chart_sheet_instead_of_a_plan_sheet(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "虚拟网络"
    wb.create_sheet("主机规划")
    wb.create_sheet("文档描述")
    wb.create_chartsheet("集群管理信息")
    wb.save(tmp_path / "chart.xlsx")
    with pytest.raises(PlanError, match="「集群管理信息」是图表"):
        read_plan(tmp_path / "chart.xlsx")


def test_corrupt_sheet_xml(demo_file, tmp_path):
    import zipfile

    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(demo_file) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet9.xml":  # 主机规划
                data = data[: len(data) // 2]
            dst.writestr(info, data)
    with pytest.raises(PlanError, match="主机规划|损坏"):
        read_plan(broken)


def test_public_openpyxl_path_reads_the_same(demo_file, monkeypatch):
    """The lean opening (openpyxl's reader without its stylesheet step) and the public
    ``load_workbook(read_only=True)`` it falls back to give the same plan."""
    from voyager.plan import workbook

    _edit(demo_file, {"集群管理信息": {"E26": '=CONCATENATE("127.10.0.", 1)'}, "虚拟网络": {"F9": "x"}})
    _typed_as_date(demo_file, "主机规划", "Q4")
    lean = read_plan(demo_file)

    def unavailable(self, path, data_only):
        raise AttributeError("openpyxl internals changed")

    monkeypatch.setattr(workbook._Book, "_open_lean", unavailable)
    public = read_plan(demo_file)
    assert public.to_dict() == lean.to_dict() and public.secrets() == lean.secrets()
    assert [f.to_dict() for f in public.findings] == [f.to_dict() for f in lean.findings]


def test_public_openpyxl_path_on_the_real_template(real_template, real_plan, monkeypatch):
    from voyager.plan import workbook

    monkeypatch.setattr(workbook._Book, "_open_lean",
                        lambda self, path, data_only: (_ for _ in ()).throw(TypeError("changed")))
    assert read_plan(real_template).to_dict() == real_plan.to_dict()


def test_every_reader_finding_names_its_cell_value_and_fix(demo_file):
    """One workbook with every kind of read.* finding: each message starts with the
    cell, shows what was typed (except formulas in password cells), and says what to do."""
    _edit(demo_file, {
        "主机规划": {"B4": "二", "Q3": "x", "D7": "SN-LOST", "K5": '=CONCATENATE("A", "B")'},
        "虚拟网络": {"F9": "abc", "H12": "127.11.9.0/24"},
        "集群管理信息": {"E26": '=CONCATENATE("127.10.0.", 1)'},
    })
    findings = read_plan(demo_file).findings
    rules = {f.rule for f in findings}
    assert rules == {"read.index", "read.unit", "read.host_row", "read.formula", "read.vlan", "read.vlan_row"}
    typed = {"主机规划!B4": "二", "主机规划!Q3": "x", "虚拟网络!F9": "abc", "集群管理信息!E26": "CONCATENATE"}
    for f in findings:
        assert f.message.startswith(f"{f.cell}: ") and f.hint, f.to_dict()
        assert f.severity in ("error", "warning", "info")
        if f.cell in typed:
            assert typed[f.cell] in f.message, f.to_dict()


def _typed_as_date(path: Path, sheet: str, coord: str) -> None:
    """What Excel stores when an engineer types ``1-2`` (a date with a date format)."""
    wb = openpyxl.load_workbook(path)
    cell = wb[sheet][coord]
    cell.value = datetime.datetime(2025, 1, 2)
    cell.number_format = "m/d/yyyy"
    wb.save(path)


def test_a_date_typed_into_a_number_cell_is_reported(demo_file):
    _typed_as_date(demo_file, "主机规划", "Q4")  # rack unit "1-2"
    plan = read_plan(demo_file)
    assert plan.hosts[1].unit is None
    (f,) = plan.findings
    assert (f.rule, f.cell) == ("read.unit", "主机规划!Q4") and "2025-01-02" in f.message
