"""The generated template: the real template's layout, and a lossless round trip."""
from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
import zipfile

import openpyxl
import pytest

from voyager.plan import Secret, build_demo_plan, new_template, read_plan, validate, write_plan
from voyager.plan import cells as C
from voyager.plan.model import ER, Component, IpRange, Network
from voyager.plan.template import TEMPLATE_SHEETS, is_demo_workbook
from voyager.plan.xlsx_patch import sheet_parts


def _dict(plan):
    d = plan.to_dict()
    d.pop("source")
    return d


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    path = new_template(tmp_path_factory.mktemp("tpl") / "blank.xlsx")
    wb = openpyxl.load_workbook(path)
    yield path, wb
    wb.close()


def test_sheet_names_and_order(blank):
    _, wb = blank
    assert wb.sheetnames == [name for name, _ in TEMPLATE_SHEETS]
    assert set(C.PLAN_SHEETS) <= set(wb.sheetnames)
    assert wb.active.title == C.HOSTS
    assert wb["设计调研(内部）"].sheet_state == "hidden"


def test_headers_labels_and_formulas(blank):
    _, wb = blank
    net, hosts, mgmt = wb[C.NET], wb[C.HOSTS], wb[C.MGMT]
    assert [net.cell(2, c).value for c in range(2, 15)][:8] == [
        "集群名称", "虚拟交换机", "虚拟网络", "网络功能说明", "VLAN ID", "VLAN类型", "SubNetwork", "Gateway"]
    assert hosts["I2"].value == "管理地址" and hosts["N2"].value == "存储IP"
    assert (hosts["H19"].value, hosts["P19"].value, hosts["P20"].value) == ("集群VIP", "存储架构", "网络架构")
    assert hosts["C3"].value == "=虚拟网络!B3"
    assert mgmt["N3"].value == "=虚拟网络!B3"
    assert hosts["R5"].value == '=IF(ISNUMBER(Q5),Q5+1,"")'
    assert mgmt["B22"].value == "NTP Server1" and mgmt["B26"].value == "DNS Server2"
    assert "三网独立" in net["B23"].value and "RDMA" in hosts["B29"].value


def test_merged_ranges(blank):
    _, wb = blank
    for sheet in C.PLAN_SHEETS:
        assert sorted(str(r) for r in wb[sheet].merged_cells.ranges) == sorted(C.MERGED[sheet])


def test_data_validation_lists(blank):
    _, wb = blank
    def lists(sheet):
        return {str(dv.sqref): dv.formula1 for dv in wb[sheet].data_validations.dataValidation}
    net = lists(C.NET)
    assert net["K4 K6:K8"] == '"balance-tcp,balance-slb,active-backup"'
    assert net["N3:N8"] == '"Access,Trunk"'
    assert net["L4:L8"] == '"1G,10G,25G,40G,56G,100G"'
    hosts = lists(C.HOSTS)
    assert hosts["O19"] == '"None,RDMA,Boost,RDMA+Boost"'
    assert hosts["Q19"] == '"混闪-分层,全闪-不分层"'
    assert hosts["Q20:R20"] == '"三网融合,存储独立,三网独立"'


def test_sheet_protection_locks_layout_not_inputs(blank):
    _, wb = blank
    for sheet in C.PLAN_SHEETS:
        p = wb[sheet].protection
        assert p.sheet and p.insertRows and p.deleteRows and p.insertColumns and p.deleteColumns
        assert not p.formatCells and not p.selectLockedCells
    hosts = wb[C.HOSTS]
    assert hosts["I3"].protection.locked is False  # management IP: input
    assert hosts["I19"].protection.locked is False  # VIP: input
    assert hosts["H19"].protection.locked is True  # label
    assert hosts["C3"].protection.locked is True  # formula
    assert hosts["I2"].protection.locked is True  # header


def test_blank_template_reads_cleanly(blank):
    path, _ = blank
    plan = read_plan(path)
    assert plan.findings == []
    assert plan.hosts == [] and plan.networks.business.vlans == []
    assert plan.networks.backup is None and plan.obs is None
    rules = {f.rule for f in validate(plan)}
    assert {"required", "hosts.count"} <= rules


def test_layout_matches_the_real_template(blank, real_template):
    _, wb = blank
    real = openpyxl.load_workbook(real_template, read_only=True)
    try:
        assert wb.sheetnames == real.sheetnames
        for sheet, row, cols in ((C.NET, 2, range(2, 15)), (C.HOSTS, 2, range(2, 18)),
                                 (C.MGMT, 2, range(2, 15)), (C.MGMT, 21, range(2, 7))):
            ours = [wb[sheet].cell(row, c).value for c in cols]
            theirs = [real[sheet].cell(row, c).value for c in cols]
            assert ours == theirs, sheet
        for sheet, coords in ((C.HOSTS, ("D19", "H19", "J19", "N19", "P19", "P20", "C3", "B21", "B29")),
                              (C.MGMT, ("B3", "C3", "B6", "C6", "C7", "B18", "C18", "B22", "B25", "F22", "N3")),
                              (C.NET, ("C3", "D3", "E3", "E4", "E5", "E6", "E7", "E8", "B23", "B1")),
                              (C.DOC, ("B11", "B15", "B16", "B17"))):
            for coord in coords:
                assert wb[sheet][coord].value == real[sheet][coord].value, f"{sheet}!{coord}"
    finally:
        real.close()
    theirs = _structure(real_template)  # from the XML: a full openpyxl load takes seconds
    for sheet in C.PLAN_SHEETS:
        merged, validations = theirs[sheet]
        assert sorted(str(r) for r in wb[sheet].merged_cells.ranges) == merged, sheet
        ours = sorted((" ".join(sorted(str(d.sqref).split())), d.formula1)
                      for d in wb[sheet].data_validations.dataValidation)
        assert ours == validations, sheet


def _structure(path) -> dict:
    """{plan sheet: (merged ranges, [(sqref, formula1)] of its list validations)}."""
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    out = {}
    with zipfile.ZipFile(path) as zf:
        parts = sheet_parts(zf)
        for sheet in C.PLAN_SHEETS:
            xml = zf.read(parts[sheet])
            tail = xml[xml.rfind(b"</sheetData>") + len(b"</sheetData>"):xml.rfind(b"</worksheet>")]
            root = ET.fromstring(b'<t xmlns="' + ns[1:-1].encode() + b'" xmlns:r="http://schemas.'
                                 b'openxmlformats.org/officeDocument/2006/relationships">' + tail + b"</t>")
            merged = sorted(m.get("ref") for m in root.iter(ns + "mergeCell"))
            validations = sorted((" ".join(sorted(dv.get("sqref").split())), dv.findtext(ns + "formula1"))
                                 for dv in root.iter(ns + "dataValidation"))
            out[sheet] = (merged, validations)
    return out


@pytest.mark.parametrize("hosts", [3, 7, 16])
def test_demo_round_trip(tmp_path, hosts):
    plan = build_demo_plan(hosts)
    path = write_plan(plan, tmp_path / "demo.xlsx")
    back = read_plan(path)
    assert _dict(back) == _dict(plan)
    assert back.findings == []
    assert back.secrets() == plan.secrets()
    assert back.fingerprint() == plan.fingerprint()


def test_rich_plan_round_trip(tmp_path):
    """Every optional section filled, serials present, odd values."""
    plan = build_demo_plan(4)
    n = plan.networks
    n.extra_mgmt = Network(row=5, vds=n.mgmt.vds, name="Infra-network", vlan=30, subnet="127.10.30.0/24",
                           gateway="127.10.30.1", nics=list(n.mgmt.nics), bond=n.mgmt.bond,
                           speed=n.mgmt.speed, port_type=n.mgmt.port_type, switch_mode="Access")
    n.backup = Network(row=7, vds="vDS-Backup-Network", name="backup-network", vlan=40,
                       subnet="127.10.40.0/24", gateway="127.10.40.1", nics=["ens162"],
                       bond="active-backup", speed="10G", port_type="光口", switch_mode="Access")
    plan.obs = Component(row=4, vm_name="observability", version="1.4.1", ip="127.10.20.3",
                         ssh_user="o11y", ssh_password=Secret("HC!r0cks"), admin_user="admin",
                         admin_password=Secret("HC!r0cks"), serial="OBS-1")
    plan.backup_service = Component(row=5, vm_name="backup", version="2.2.0", ip="127.10.20.4",
                                    serial="BAK-1")
    plan.er = ER(vip="127.10.20.5", nodes=["127.10.20.6", "127.10.20.7"], serial="ER-1")
    plan.cluster.serial = "SMTX-1"
    plan.cloudtower.serial = "CT-1"
    plan.hosts[1].description = None
    plan.hosts[2].unit = None
    plan.ntp = ["127.10.0.2"]
    plan.dns = ["127.10.0.114"]
    plan.test_ip_range = IpRange(start="127.10.20.231", end="127.10.20.239")
    path = write_plan(plan, tmp_path / "rich.xlsx")
    back = read_plan(path)
    assert _dict(back) == _dict(plan)
    assert back.findings == []


def test_demo_workbook_is_valid_on_loopback(demo_plan_file):
    plan = read_plan(demo_plan_file)
    assert [f for f in validate(plan, sim=True) if f.severity == "error"] == []
    addresses = [h.mgmt_ip for h in plan.hosts] + [h.storage_ip for h in plan.hosts] + \
        [h.bmc_ip for h in plan.hosts] + [plan.cluster.vip, plan.cloudtower.ip] + plan.dns
    assert all(ipaddress.IPv4Address(a).is_loopback for a in addresses)
    assert plan.hosts[0].ssh_password.reveal() == C.DEFAULT_PASSWORD
    assert is_demo_workbook(demo_plan_file)


def test_blank_is_not_a_demo(blank):
    path, _ = blank
    assert not is_demo_workbook(path)


def test_invalid_rows_are_refused(tmp_path):
    plan = build_demo_plan()
    plan.hosts[1].row = plan.hosts[0].row
    with pytest.raises(ValueError):
        write_plan(plan, tmp_path / "x.xlsx")


def test_new_template_rejects_bad_host_count(tmp_path):
    with pytest.raises(ValueError):
        new_template(tmp_path / "x.xlsx", demo=True, hosts=17)
