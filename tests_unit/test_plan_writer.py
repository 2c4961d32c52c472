"""Write-back of serial numbers: atomic, backed up, everything else preserved, and a
clear refusal when the workbook is locked or read-only."""
from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import openpyxl
import pytest

from voyager.plan import PlanWriteError, read_plan, write_back, write_plan
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Component

SERIALS = {
    "cluster_serial": "SMTX-CLUSTER-0001",
    "cloudtower_serial": "0f6a1c2e-1111-4222-8333-944455556666",
    "obs_serial": "OBS-SN-77",
    "backup_serial": "BAK-SN-88",
}
TARGETS = {("主机规划", "E19"), ("集群管理信息", "M3"), ("集群管理信息", "M4"), ("集群管理信息", "M5")}


@pytest.fixture
def plan_file(tmp_path) -> Path:
    plan = build_demo_plan()
    plan.obs = Component(row=4, vm_name="observability", version="1.4.1", ip="127.10.20.3")
    plan.backup_service = Component(row=5, vm_name="backup", version="2.2.0", ip="127.10.20.4")
    folder = tmp_path / "plans"
    folder.mkdir()
    return write_plan(plan, folder / "规划设计表.xlsx")


def snapshot(path: Path, skip=frozenset()) -> dict:
    """Everything the writer must preserve, per sheet."""
    wb = openpyxl.load_workbook(path)
    out = {"sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets]}
    for ws in wb.worksheets:
        values = {}
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is not None and (ws.title, cell.coordinate) not in skip:
                    values[cell.coordinate] = cell.value
        p = ws.protection
        out[ws.title] = {
            "values": values,
            "merged": sorted(str(r) for r in ws.merged_cells.ranges),
            "validations": sorted((str(dv.sqref), dv.formula1, dv.type) for dv in ws.data_validations.dataValidation),
            "protection": (p.sheet, p.insertRows, p.deleteRows, p.formatCells, p.selectLockedCells,
                           p.hashValue, p.saltValue, p.algorithmName, p.password),
            "locked": {c.coordinate: c.protection.locked for row in ws.iter_rows(max_row=30, max_col=20)
                       for c in row},
        }
    wb.close()
    return out


def leftovers(folder: Path, original: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != original)


def test_write_back_sets_the_serials(plan_file):
    backup = write_back(plan_file, SERIALS)
    plan = read_plan(plan_file)
    assert plan.cluster.serial == SERIALS["cluster_serial"]
    assert plan.cloudtower.serial == SERIALS["cloudtower_serial"]
    assert plan.obs.serial == SERIALS["obs_serial"]
    assert plan.backup_service.serial == SERIALS["backup_serial"]
    assert backup is not None and backup.exists()


def test_everything_else_is_preserved(plan_file):
    before = snapshot(plan_file, skip=TARGETS)
    write_back(plan_file, SERIALS)
    assert snapshot(plan_file, skip=TARGETS) == before


def test_backup_is_a_timestamped_copy_of_the_original(plan_file):
    original = plan_file.read_bytes()
    backup = write_back(plan_file, {"cluster_serial": "SN-1"})
    assert re.fullmatch(r"规划设计表\.bak-\d{8}-\d{6}(-\d+)?\.xlsx", backup.name)
    assert backup.parent == plan_file.parent
    assert backup.read_bytes() == original
    assert leftovers(plan_file.parent, plan_file) == [backup.name]  # no temp file left


def test_second_backup_in_the_same_second_gets_a_new_name(plan_file):
    first = write_back(plan_file, {"cluster_serial": "SN-1"})
    second = write_back(plan_file, {"cluster_serial": "SN-2"})
    assert first != second and first.exists() and second.exists()
    assert read_plan(plan_file).cluster.serial == "SN-2"


def test_same_values_write_nothing(plan_file):
    write_back(plan_file, SERIALS)
    files = leftovers(plan_file.parent, plan_file)
    mtime = plan_file.stat().st_mtime_ns
    assert write_back(plan_file, SERIALS) is None
    assert write_back(plan_file, {"cluster_serial": None}) is None
    assert leftovers(plan_file.parent, plan_file) == files
    assert plan_file.stat().st_mtime_ns == mtime


def test_partial_update_leaves_other_targets(plan_file):
    write_back(plan_file, SERIALS)
    write_back(plan_file, {"cloudtower_serial": "NEW-CT"})
    plan = read_plan(plan_file)
    assert plan.cloudtower.serial == "NEW-CT" and plan.cluster.serial == SERIALS["cluster_serial"]


def test_file_mode_is_kept(plan_file):
    plan_file.chmod(0o640)
    write_back(plan_file, {"cluster_serial": "SN-1"})
    assert plan_file.stat().st_mode & 0o777 == 0o640


def test_unknown_key_is_a_programming_error(plan_file):
    with pytest.raises(ValueError, match="unknown write-back keys"):
        write_back(plan_file, {"vip": "1.2.3.4"})


@pytest.mark.parametrize("lock_name", ["~$规划设计表.xlsx", ".~lock.规划设计表.xlsx#"])
def test_locked_by_excel(plan_file, lock_name):
    lock = plan_file.with_name(lock_name)
    lock.write_bytes(b"owner")
    original = plan_file.read_bytes()
    with pytest.raises(PlanWriteError) as err:
        write_back(plan_file, SERIALS)
    message = str(err.value)
    assert "正在被 Excel" in message and "关闭" in message and lock_name in message
    assert plan_file.read_bytes() == original
    assert leftovers(plan_file.parent, plan_file) == [lock_name]


def test_read_only_file(plan_file):
    original = plan_file.read_bytes()
    plan_file.chmod(0o444)
    try:
        with pytest.raises(PlanWriteError, match="只读"):
            write_back(plan_file, SERIALS)
    finally:
        plan_file.chmod(0o644)
    assert plan_file.read_bytes() == original
    assert leftovers(plan_file.parent, plan_file) == []


def test_read_only_folder(plan_file):
    original = plan_file.read_bytes()
    folder = plan_file.parent
    folder.chmod(0o555)
    try:
        with pytest.raises(PlanWriteError, match="不可写"):
            write_back(plan_file, SERIALS)
    finally:
        folder.chmod(0o755)
    assert plan_file.read_bytes() == original
    assert leftovers(folder, plan_file) == []


def test_failure_while_replacing_leaves_original_untouched(plan_file, monkeypatch):
    original = plan_file.read_bytes()

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PlanWriteError, match="原文件未改动"):
        write_back(plan_file, SERIALS)
    assert plan_file.read_bytes() == original
    assert leftovers(plan_file.parent, plan_file) == []  # no temp file, no backup


def test_missing_file(tmp_path):
    with pytest.raises(PlanWriteError, match="不存在"):
        write_back(tmp_path / "nope.xlsx", SERIALS)


NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def xml_structure(path: Path) -> dict:
    """Merged ranges, data validations, sheet protection (with its password hash) and
    hyperlinks of every worksheet, read from the XML after ``</sheetData>``."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for name in sorted(n for n in zf.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)):
            text = zf.read(name).decode("utf-8")
            tail = text[text.find("</sheetData>") + len("</sheetData>"):text.rfind("</worksheet>")]
            root = ET.fromstring(f'<t xmlns="{NS[1:-1]}" xmlns:r="http://schemas.openxmlformats.org/'
                                 f'officeDocument/2006/relationships">{tail}</t>')
            prot = root.find(NS + "sheetProtection")
            out[name] = (
                sorted(m.get("ref") for m in root.iter(NS + "mergeCell")),
                sorted((dv.get("sqref"), dv.get("type"), dv.findtext(NS + "formula1") or "")
                       for dv in root.iter(NS + "dataValidation")),
                dict(prot.attrib) if prot is not None else None,
                sorted(h.get("ref") for h in root.iter(NS + "hyperlink")),
            )
    return out


def all_values(path: Path, skip=frozenset()) -> dict:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: {(r, c): v for r, row in enumerate(ws.iter_rows(values_only=True), 1)
                           for c, v in enumerate(row, 1)
                           if v is not None and (ws.title, r, c) not in skip}
                for ws in wb.worksheets}
    finally:
        wb.close()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def without_cells(xml: bytes, coords) -> str:
    """The worksheet XML with the elements of ``coords`` removed."""
    text = xml.decode("utf-8")
    for coord in coords:
        text = re.sub(rf'<c r="{coord}"[^>]*?(/>|>.*?</c>)', "", text, flags=re.S)
    return text


def test_real_template_is_preserved(real_template, tmp_path):
    """On the real template (13 sheets, 7 MB of XML, password-protected sheets,
    hyperlinks, comments): every part of the package is byte-for-byte the same, except
    the two worksheets written, and in those only the written cells differ."""
    path = tmp_path / real_template.name
    shutil.copy(real_template, path)
    path.chmod(0o644)
    before = members(path)
    write_back(path, {"cluster_serial": "SMTX-REAL-1", "cloudtower_serial": "CT-REAL-<&>"})
    after = members(path)
    assert list(after) == list(before)
    hosts_part, mgmt_part = "xl/worksheets/sheet9.xml", "xl/worksheets/sheet10.xml"
    assert [n for n in before if before[n] != after[n]] == [hosts_part, mgmt_part]
    assert without_cells(after[hosts_part], ["E19"]) == without_cells(before[hosts_part], ["E19"])
    assert without_cells(after[mgmt_part], ["M3"]) == without_cells(before[mgmt_part], ["M3"])
    # the cell keeps its style and becomes an inline string
    assert '<c r="E19" s="333" t="inlineStr"><is><t xml:space="preserve">SMTX-REAL-1</t></is></c>' \
        in after[hosts_part].decode()
    plan = read_plan(path)
    assert (plan.cluster.serial, plan.cloudtower.serial) == ("SMTX-REAL-1", "CT-REAL-<&>")
    assert plan.findings == []
    assert xml_structure(path)  # still parses


def _inject(path: Path, part: str, old: bytes, new: bytes, extra: dict[str, bytes] | None = None) -> None:
    """Rewrite one part of the package (what Excel would have written but openpyxl cannot)."""
    data = members(path)
    assert old in data[part]
    data[part] = data[part].replace(old, new, 1)
    data.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in data.items():
            zf.writestr(name, blob)


def test_cached_formula_results_survive(plan_file):
    """A plan cell computed by a formula is read from its cached result; the write-back
    keeps that result (openpyxl would drop it and the cell would become unreadable)."""
    wb = openpyxl.load_workbook(plan_file)
    wb["集群管理信息"]["E26"] = '=CONCATENATE("127.10.0.", 1)'
    wb.save(plan_file)
    xml = members(plan_file)["xl/worksheets/sheet10.xml"]
    # openpyxl writes an empty <v/> (or <v></v> when lxml, a python-docx dependency, is installed)
    cell = re.search(rb'<c r="E26"[^>]*>(<f>.*?</f>)(?:<v ?/>|<v></v>)\s*</c>', xml)
    _inject(plan_file, "xl/worksheets/sheet10.xml", cell.group(0),
            b'<c r="E26" t="str">' + cell.group(1) + b"<v>127.10.0.1</v></c>")
    assert read_plan(plan_file).dns == ["127.10.0.114", "127.10.0.1"]
    write_back(plan_file, SERIALS)
    plan = read_plan(plan_file)
    assert plan.dns == ["127.10.0.114", "127.10.0.1"] and plan.findings == []
    assert plan.cluster.serial == SERIALS["cluster_serial"]


def test_parts_openpyxl_does_not_know_survive(plan_file):
    custom = b'<?xml version="1.0"?><topology xmlns="urn:example">diagram</topology>'
    _inject(plan_file, "[Content_Types].xml", b"</Types>",
            b'<Override PartName="/customXml/item1.xml" ContentType="application/xml"/></Types>',
            {"customXml/item1.xml": custom})
    write_back(plan_file, SERIALS)
    assert members(plan_file)["customXml/item1.xml"] == custom
    assert read_plan(plan_file).backup_service.serial == SERIALS["backup_serial"]


def test_missing_rows_and_cells_are_inserted_in_order(tmp_path):
    """A workbook whose target rows/cells do not exist yet (not made by the template)."""
    wb = openpyxl.Workbook()
    wb.active.title = "主机规划"
    hosts = wb.active
    hosts["A1"], hosts["A25"] = "first", "last"  # no row 19
    mgmt = wb.create_sheet("集群管理信息")
    mgmt["B3"], mgmt["N3"] = "Cloudtower", "after"  # row 3 without M3
    mgmt["A4"] = "x"  # row 4 ends before M4
    wb.create_sheet("空表")
    path = tmp_path / "odd.xlsx"
    wb.save(path)
    write_back(path, SERIALS)
    check = openpyxl.load_workbook(path)
    assert check["主机规划"]["E19"].value == SERIALS["cluster_serial"]
    assert [check["主机规划"][c].value for c in ("A1", "A25")] == ["first", "last"]
    m = check["集群管理信息"]
    assert (m["M3"].value, m["M4"].value, m["M5"].value) == (
        SERIALS["cloudtower_serial"], SERIALS["obs_serial"], SERIALS["backup_serial"])
    assert (m["B3"].value, m["N3"].value, m["A4"].value) == ("Cloudtower", "after", "x")
    xml = members(path)["xl/worksheets/sheet2.xml"].decode()
    assert xml.index('r="B3"') < xml.index('r="M3"') < xml.index('r="N3"') < xml.index('r="M4"')
    rows = [int(r) for r in re.findall(r'<row r="(\d+)"', xml)]
    assert rows == sorted(rows)


def test_formula_in_a_target_cell_falls_back_to_openpyxl(plan_file):
    wb = openpyxl.load_workbook(plan_file)
    wb["主机规划"]["E19"] = "=D19"
    wb.save(plan_file)
    write_back(plan_file, {"cluster_serial": "SN-OVER-FORMULA"})
    assert read_plan(plan_file).cluster.serial == "SN-OVER-FORMULA"
    assert openpyxl.load_workbook(plan_file)["主机规划"]["E19"].data_type == "s"


def test_write_through_a_symlink_keeps_the_link(plan_file):
    link = plan_file.parent.parent / "link.xlsx"
    link.symlink_to(plan_file)
    backup = write_back(link, {"cluster_serial": "SN-LINK"})
    assert link.is_symlink() and backup.parent == plan_file.parent
    assert read_plan(plan_file).cluster.serial == "SN-LINK"


@pytest.mark.parametrize("sheet_data,expected", [
    ("<sheetData/>", '<sheetData><row r="19"><c r="E19" t="inlineStr"><is><t xml:space="preserve">V</t>'
                     "</is></c></row></sheetData>"),
    ('<sheetData><row r="19" spans="1:3"/></sheetData>',
     '<sheetData><row r="19" spans="1:5"><c r="E19" t="inlineStr"><is><t xml:space="preserve">V</t>'
     "</is></c></row></sheetData>"),
    ('<sheetData><row r="19"><c r="E19" s="7" t="s"><v>3</v></c><c r="F19" s="2"/></row></sheetData>',
     '<sheetData><row r="19"><c r="E19" s="7" t="inlineStr"><is><t xml:space="preserve">V</t></is></c>'
     '<c r="F19" s="2"/></row></sheetData>'),
    ('<sheetData><row r="2"><c r="A2"/></row><row r="20"><c r="A20"/></row></sheetData>',
     '<sheetData><row r="2"><c r="A2"/></row><row r="19"><c r="E19" t="inlineStr"><is>'
     '<t xml:space="preserve">V</t></is></c></row><row r="20"><c r="A20"/></row></sheetData>'),
])
def test_patch_cell_xml(sheet_data, expected):
    from voyager.plan.xlsx_patch import _set_cell

    assert _set_cell(f"<worksheet>{sheet_data}</worksheet>", "E19", "V") == f"<worksheet>{expected}</worksheet>"


def test_patch_keeps_a_namespace_prefix_and_widens_the_dimension():
    from voyager.plan.xlsx_patch import _set_cell, _widen_dimension

    xml = '<x:worksheet><x:dimension ref="A1:C3"/><x:sheetData><x:row r="3"><x:c r="A3"/></x:row></x:sheetData></x:worksheet>'
    out = _widen_dimension(_set_cell(xml, "E19", "V"), ["E19"])
    assert '<x:dimension ref="A1:E19"/>' in out
    assert '<x:row r="19"><x:c r="E19" t="inlineStr"><x:is><x:t xml:space="preserve">V</x:t></x:is></x:c></x:row>' in out


@pytest.mark.parametrize("sheet_data", [
    '<sheetData><row><c r="E19"/></row></sheetData>',  # row without r
    '<sheetData><row r="19"><c s="1"/></row></sheetData>',  # cell without r
    '<sheetData><row r="19"><c r="E19"><f>D19</f><v>1</v></c></row></sheetData>',  # formula
])
def test_patch_refuses_layouts_it_cannot_handle(sheet_data):
    from voyager.plan.xlsx_patch import Unsupported, _set_cell

    with pytest.raises(Unsupported):
        _set_cell(f"<worksheet>{sheet_data}</worksheet>", "E19", "V")


def test_filesystem_refusing_chmod_still_writes(plan_file, monkeypatch):
    """Network shares (SMB) may refuse chmod/utime: the write-back still happens."""
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(os, "utime", refuse)
    backup = write_back(plan_file, {"cluster_serial": "SN-SMB"})
    assert backup.exists() and read_plan(plan_file).cluster.serial == "SN-SMB"
