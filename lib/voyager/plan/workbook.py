"""A read-only view of the planning workbook's four plan sheets, cell by cell.

Only the four sheets that carry the plan are loaded, in openpyxl's read-only mode,
without the stylesheet, and only their first rows (the real template has 13 sheets and
7 MB of XML; see :class:`_Book`). The template's cell-level quirks are handled here, once:

* formula cells without cached values (``=虚拟网络!B3``): simple ``=Sheet!Cell``
  references are resolved against the loaded sheets; other formulas fall back to the
  cached value the file may carry, else they become a ``read.formula`` finding;
* merged ranges (taken from the file): a cell inside one takes the top-left value;
* ``mailto:`` hyperlinks (Excel turns ``P@ssw0rd!123`` into one): the cell value is used;
* integers as ints, floats (``1120.0``) or strings (``"1120"``, ``"１１２０"``);
* stray and full-width spaces (U+3000, NBSP, zero-width) and full-width characters;
  lists separated by ``,`` ``，`` ``、`` ``;`` ``/`` or spaces.

A value that cannot be parsed becomes a ``read.*`` finding on its exact cell.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from functools import partial
from pathlib import Path
from typing import Any, Optional

from voyager.plan.xl import openpyxl  # first: openpyxl without numpy

from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, range_boundaries
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.xml.constants import ARC_STYLE, SHEET_MAIN_NS

from voyager.plan import cells as C
from voyager.plan.model import Finding, Secret


class PlanError(Exception):
    """The workbook cannot be read at all (missing file, not an .xlsx, missing sheet).
    The message is Chinese and names the file or sheet."""


# rows/columns of each sheet that hold plan fields (A1:T30)
_MAX_ROW = 30
_MAX_COL = 20

# whitespace the engineers' copy-paste brings in: full-width space, NBSP, en/em spaces,
# zero-width characters, BOM
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]")
_EDGE_SPACES = re.compile("^[\\s\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]+|"
                          "[\\s\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]+$")
_NIC_SPLIT = re.compile(r"[,，、;；/／\s]+")
# placeholders meaning "not applicable" in user/password cells (template uses N/A)
_PLACEHOLDERS = {"n/a", "na", "-", "--", "---", "/", "无"}
_SIMPLE_REF = re.compile(
    r"^=\s*(?:(?:'(?P<qsheet>(?:[^']|'')+)'|(?P<sheet>[^!'\"()&+\-*/,\s]+))!)?"
    r"\$?(?P<col>[A-Za-z]{1,3})\$?(?P<row>\d+)\s*$"
)


# --------------------------------------------------------------------------- sheets
class _Sheet:
    """The first rows of one worksheet: raw values by (row, col), which of them are
    formulas, and the merged ranges."""

    def __init__(self, title: str, values: dict[tuple[int, int], Any],
                 formulas: set[tuple[int, int]], merges: list[tuple[int, int, int, int]]):
        self.title = title
        self.values = values
        self.formulas = formulas
        self.merges = merges  # (min_col, min_row, max_col, max_row)

    def raw(self, coord: str) -> tuple[Any, str, bool]:
        """The raw value of ``coord``, the coordinate it really lives in (the top-left
        cell when ``coord`` is inside a merged range) and whether it is a formula."""
        col_letter, row = coordinate_from_string(coord)
        col = column_index_from_string(col_letter)
        value = self.values.get((row, col))
        if value is None:
            for min_col, min_row, max_col, max_row in self.merges:
                if min_row <= row <= max_row and min_col <= col <= max_col:
                    row, col = min_row, min_col
                    value = self.values.get((row, col))
                    coord = f"{openpyxl.utils.get_column_letter(col)}{row}"
                    break
        return value, coord, (row, col) in self.formulas


def _load_sheet(ws, merges_xml: Optional[bytes], title: str) -> _Sheet:
    values: dict[tuple[int, int], Any] = {}
    formulas: set[tuple[int, int]] = set()
    for r, row in enumerate(ws.iter_rows(min_row=1, max_row=_MAX_ROW, max_col=_MAX_COL), start=1):
        for c, cell in enumerate(row, start=1):
            value = cell.value
            if value is not None:
                values[(r, c)] = value
                if cell.data_type == "f":
                    formulas.add((r, c))
    merges: list[tuple[int, int, int, int]] = []
    if merges_xml is not None:
        for ref in _MERGE_CELL.findall(merges_xml):
            try:
                merges.append(tuple(range_boundaries(ref.decode("ascii"))))  # type: ignore[arg-type]
            except (ValueError, UnicodeDecodeError):
                continue
    else:  # could not read the sheet XML: use the template's known ranges
        merges = [tuple(range_boundaries(r)) for r in C.MERGED.get(title, ())]  # type: ignore[misc]
    return _Sheet(title, values, formulas, merges)


_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*\bref="([^"]+)"')


def _date_styles(archive: zipfile.ZipFile, wb) -> None:
    """Which cell styles are dates or durations: the only part of the stylesheet a
    reader needs (Excel turns a typed ``1-2`` into a date; the validator must see a
    date, not its serial number). Read with ElementTree instead of openpyxl's full
    style model."""
    try:
        root = ET.fromstring(archive.read(ARC_STYLE))
    except KeyError:
        return
    ns = f"{{{SHEET_MAIN_NS}}}"
    custom = {int(f.get("numFmtId", -1)): f.get("formatCode") or ""
              for f in root.iterfind(f"{ns}numFmts/{ns}numFmt")}
    kinds: dict[str, tuple[bool, bool]] = {}  # numFmtId -> (date, duration)
    dates, durations = set(), set()
    xfs = root.find(f"{ns}cellXfs")
    for index, xf in enumerate(xfs if xfs is not None else ()):
        fmt_id = xf.get("numFmtId", "0")
        if fmt_id not in kinds:
            number = int(fmt_id) if fmt_id.isdigit() else -1
            fmt = custom.get(number) or builtin_format_code(number) or ""
            kinds[fmt_id] = (bool(fmt) and is_date_format(fmt), bool(fmt) and is_timedelta_format(fmt))
        is_date, is_duration = kinds[fmt_id]
        if is_date:
            dates.add(index)
        if is_duration:
            durations.add(index)
    wb._date_formats, wb._timedelta_formats = dates, durations


class _Book:
    """The plan sheets of a workbook in openpyxl's read-only mode, opened lean.

    ``load_workbook(read_only=True)`` builds openpyxl's whole style model (the real
    template's stylesheet is 80 KB of XML: the largest single cost of opening it) and
    sizes all 13 sheets. The plan needs only which styles are dates, and four sheets, so
    openpyxl's own reader is run without its stylesheet step (:func:`_date_styles`
    supplies the date styles) and only the four plan sheets are opened. If openpyxl's
    reader ever changes shape, the public ``load_workbook`` is used."""

    def __init__(self, path: Path, data_only: bool):
        self.sheetnames: list[str] = []
        self.chartsheets: set[str] = set()
        self._sheets: dict[str, Any] = {}
        try:
            self._open_lean(path, data_only)
        except (ImportError, AttributeError, TypeError):  # openpyxl internals differ
            self._open_public(path, data_only)

    def _open_lean(self, path: Path, data_only: bool) -> None:
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.worksheet._read_only import ReadOnlyWorksheet

        reader = ExcelReader(path, read_only=True, data_only=data_only)
        self.archive = reader.archive
        try:
            reader.read_manifest()
            reader.read_strings()
            reader.read_workbook()  # sheet names, epoch; no stylesheet
            _date_styles(reader.archive, reader.wb)
            for sheet, rel in reader.parser.find_sheets():
                self.sheetnames.append(sheet.name)
                if "chartsheet" in (rel.Type or ""):
                    self.chartsheets.add(sheet.name)
                elif sheet.name in C.PLAN_SHEETS and rel.target in reader.valid_files:
                    self._sheets[sheet.name] = partial(ReadOnlyWorksheet, reader.wb, sheet.name,
                                                       rel.target, reader.shared_strings)
        except BaseException:
            self.archive.close()
            self.sheetnames, self.chartsheets, self._sheets = [], set(), {}
            raise

    def _open_public(self, path: Path, data_only: bool) -> None:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=data_only)
        self.archive = wb._archive
        self.sheetnames = list(wb.sheetnames)
        self._sheets = {t: wb[t] for t in C.PLAN_SHEETS if t in wb.sheetnames}
        self.chartsheets = {t for t, ws in self._sheets.items() if not hasattr(ws, "iter_rows")}

    def sheet(self, title: str) -> _Sheet:
        ws = self._sheets[title]
        if isinstance(ws, partial):  # lean mode: the worksheet is opened on first use
            ws = ws()
        return _load_sheet(ws, self._merges_xml(ws), title)

    def _merges_xml(self, ws) -> Optional[bytes]:
        """The worksheet XML after ``</sheetData>``, where the ``<mergeCell>`` elements
        are (read-only mode does not expose them). None when it cannot be read."""
        member = getattr(ws, "_worksheet_path", None)
        if not member:
            return None
        try:
            data = self.archive.read(member.lstrip("/"))
        except (KeyError, OSError, zipfile.BadZipFile):
            return None
        end = data.rfind(b"sheetData>")
        return data[end:] if end >= 0 else data

    def close(self) -> None:
        self.archive.close()


# --------------------------------------------------------------------------- values
def to_text(value: Any) -> Optional[str]:
    """A cell value as text: numbers without a spurious ``.0``, odd spaces made plain,
    surrounding whitespace removed, runs of spaces collapsed. ``None`` when empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, _dt.datetime):
        text = value.date().isoformat() if value.time() == _dt.time() else value.isoformat()
    elif isinstance(value, (_dt.date, _dt.time)):
        text = value.isoformat()
    else:
        text = str(value)
    text = _ODD_SPACES.sub(" ", text)
    text = re.sub(r"[ \t\r\n]+", " ", text).strip()
    return text or None


_WHOLE_ADDRESS = re.compile(r"(?:\d+\.){3}\d+(?:/\d+)?|[A-Za-z][\w-]*(?:\.[\w-]+)+")


def technical(text: Optional[str]) -> Optional[str]:
    """Addresses, subnets, VLANs: full-width characters folded (NFKC) and every space
    removed (an address cannot contain one: ``10.0.20. 11`` is ``10.0.20.11``).
    Several complete addresses in one cell (``10.0.0.2 10.0.0.3``, one per line) stay
    separated by one space, so that the validator reports the cell instead of reading
    a merged ``10.0.0.210.0.0.3``."""
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).replace("。", ".")
    tokens = text.split()
    if len(tokens) > 1 and all(_WHOLE_ADDRESS.fullmatch(t) for t in tokens):
        return " ".join(tokens)
    return "".join(tokens) or None


def _is_ole(path: Path) -> bool:
    """An OLE compound file: what Excel writes for an encrypted workbook (and for .xls)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    except OSError:
        return False


class PlanWorkbook:
    """The plan sheets of one workbook; typed accessors by (sheet, coordinate)."""

    def __init__(self, path: Path):
        self.path = path
        self.findings: list[Finding] = []
        self.sheets: dict[str, _Sheet] = {}
        self._cached: Optional[dict[str, _Sheet]] = None  # data_only view, loaded lazily
        self._flagged: set[str] = set()
        self.locations: dict[str, str] = {}

    # -- opening -----------------------------------------------------------------
    def open(self) -> None:
        path = self.path
        if not path.exists():
            raise PlanError(f"规划表文件不存在: {path}")
        if path.is_dir():
            raise PlanError(f"规划表路径是一个目录，不是 .xlsx 文件: {path}")
        try:
            book = _Book(path, data_only=False)
        except InvalidFileException:
            raise PlanError(
                f"无法打开规划表 {path}: 只支持 .xlsx 格式（.xls/.csv 等请用 Excel 另存为 .xlsx 后重试）"
            ) from None
        except PermissionError:
            raise PlanError(f"无法读取规划表 {path}: 没有读取权限；请检查文件权限，"
                            "或确认文件没有被其他程序独占打开") from None
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
            if _is_ole(path):  # an encrypted workbook (or an old .xls renamed) is an OLE file
                raise PlanError(
                    f"无法打开规划表 {path}: 文件设置了打开密码（已加密），或是改了扩展名的旧版 .xls；"
                    "请在 Excel 中取消打开密码（文件 → 信息 → 保护工作簿 → 用密码进行加密，清空密码）"
                    "并另存为 .xlsx 后重试"
                ) from None
            raise PlanError(
                f"无法打开规划表 {path}: 不是有效的 .xlsx 工作簿（{type(exc).__name__}）；"
                "请用 Excel 另存为 .xlsx 格式后重试"
            ) from None
        except Exception as exc:  # openpyxl raises assorted errors on corrupt files
            raise PlanError(f"无法打开规划表 {path}: 文件已损坏或格式不受支持（{type(exc).__name__}）") from None
        try:
            missing = [s for s in C.PLAN_SHEETS if s not in book.sheetnames]
            if missing:
                raise PlanError(
                    f"规划表 {path} 缺少工作表「{'」「'.join(missing)}」；"
                    "请使用 SmartX 规划设计表模板（voyager plan new 可生成一份）"
                )
            for title in C.PLAN_SHEETS:
                if title in book.chartsheets:
                    raise PlanError(f"规划表 {path} 的「{title}」是图表，不是工作表；"
                                    "请使用 SmartX 规划设计表模板（voyager plan new 可生成一份）")
                try:
                    self.sheets[title] = book.sheet(title)
                except Exception as exc:  # corrupt sheet XML, broken shared strings...
                    raise PlanError(f"无法读取规划表 {path} 的工作表「{title}」: 内容已损坏"
                                    f"（{type(exc).__name__}）；请用 Excel 打开并另存为 .xlsx 后重试") from None
        finally:
            book.close()

    def _cached_sheets(self) -> dict[str, _Sheet]:
        """The workbook's cached formula results (data_only), loaded on first need."""
        if self._cached is None:
            self._cached = {}
            try:
                book = _Book(self.path, data_only=True)
            except Exception:
                return self._cached
            try:
                for title in C.PLAN_SHEETS:
                    self._cached[title] = book.sheet(title)
            except Exception:
                pass  # no cached values: the formula stays a read.formula finding
            finally:
                book.close()
        return self._cached

    # -- cell access -------------------------------------------------------------
    def value(self, sheet: str, coord: str, _depth: int = 0, secret: bool = False) -> Any:
        """The raw value of a cell with merged ranges and formulas resolved. With
        ``secret``, a finding about the cell does not quote its formula (it may hold
        the password)."""
        value, where, is_formula = self.sheets[sheet].raw(coord)
        if is_formula:
            # array / data-table formulas come as objects carrying the formula text
            formula = value if isinstance(value, str) else getattr(value, "text", None)
            if isinstance(formula, str):
                return self._formula(sheet, where, formula, _depth, secret)
        return value

    def _formula(self, sheet: str, coord: str, formula: str, depth: int, secret: bool) -> Any:
        m = _SIMPLE_REF.match(formula)
        if m and depth < 10:
            target = m.group("qsheet")
            target = target.replace("''", "'") if target else (m.group("sheet") or sheet)
            ref = f"{m.group('col').upper()}{m.group('row')}"
            if target in self.sheets and int(m.group("row")) <= _MAX_ROW \
                    and column_index_from_string(m.group("col").upper()) <= _MAX_COL:
                return self.value(target, ref, depth + 1, secret)
        cached = self._cached_sheets().get(sheet)
        if cached is not None:
            value, _, _ = cached.raw(coord)
            if value is not None:
                return value
        key = C.ref(sheet, coord)
        if key not in self._flagged:
            self._flagged.add(key)
            shown = "（密码单元格，公式内容不显示）" if secret else f" {formula} "
            self.finding("error", "read.formula", sheet, coord,
                         f"{key}: 公式{shown}没有计算结果，无法读取其值",
                         "请在该单元格直接填写值，或用 Excel 打开并保存一次以计算公式")
        return None

    def text(self, sheet: str, coord: str) -> Optional[str]:
        return to_text(self.value(sheet, coord))

    def tech(self, sheet: str, coord: str) -> Optional[str]:
        return technical(self.text(sheet, coord))

    def word(self, sheet: str, coord: str) -> Optional[str]:
        """Identifiers (host names, bond modes, list values): full-width folded, but
        inner spaces kept so that the validator can report them."""
        text = self.text(sheet, coord)
        return unicodedata.normalize("NFKC", text).strip() or None if text else None

    def user(self, sheet: str, coord: str) -> Optional[str]:
        text = self.word(sheet, coord)
        return None if text is None or text.lower() in _PLACEHOLDERS else text

    def secret(self, sheet: str, coord: str) -> Secret:
        value = self.value(sheet, coord, secret=True)
        if value is None:
            return Secret("")
        text = value if isinstance(value, str) else to_text(value) or ""
        text = _EDGE_SPACES.sub("", text)  # only at the edges: a secret's inside is kept as typed
        if text.lower() in _PLACEHOLDERS:
            text = ""
        return Secret(text)

    def nics(self, sheet: str, coord: str) -> list[str]:
        text = self.text(sheet, coord)
        if not text:
            return []
        text = unicodedata.normalize("NFKC", text)
        return [n for n in _NIC_SPLIT.split(text) if n]

    def integer(self, sheet: str, coord: str, rule: str, what: str, hint: str,
                severity: str = "error", suffix: str = "") -> Optional[int]:
        value = self.value(sheet, coord)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = to_text(value)
        if text is None:
            return None
        folded = unicodedata.normalize("NFKC", text)
        if not re.search(r"\d\s+\d", folded):  # "1120 1121" is two numbers, not 11201121
            digits = re.sub(r"\s+", "", folded)
            if suffix and digits.upper().endswith(suffix):
                digits = digits[: -len(suffix)]
            if re.fullmatch(r"[+-]?\d+(\.0*)?", digits):
                return int(digits.split(".")[0])
        self.finding(severity, rule, sheet, coord,
                     f"{C.ref(sheet, coord)}: {what}「{to_text(value)}」不是整数", hint)
        return None

    def vlan(self, sheet: str, coord: str) -> Optional[int]:
        return self.integer(sheet, coord, "read.vlan", "VLAN ID",
                            "请填写 0-4094 之间的整数（0 表示不打 VLAN 标签）")

    def filled(self, sheet: str, coord: str) -> bool:
        return self.value(sheet, coord) is not None and self.text(sheet, coord) is not None

    def finding(self, severity: str, rule: str, sheet: str, coord: str, message: str,
                hint: str = "", more: Optional[list[str]] = None) -> None:
        cell = C.ref(sheet, coord)
        cells = [cell] + [c for c in (more or []) if c != cell]
        self.findings.append(Finding(severity, rule, cell, message, hint,
                                     cells if len(cells) > 1 else []))
