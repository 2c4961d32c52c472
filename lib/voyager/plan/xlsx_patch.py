"""Set a few text cells of an .xlsx package in place, leaving everything else as it is.

openpyxl rewrites a whole workbook when it saves it and drops what it does not model:
cached results of formulas (so a plan cell computed by a formula could no longer be
read), shapes and text boxes (a topology diagram), custom XML parts, and more. The
write-back of serial numbers must not touch any of that, so it goes through here: only
the XML of the target cells changes (each becomes an inline string keeping its style);
every other part of the package is copied unchanged, and every other byte of the
changed worksheets stays as it was.

A layout this module does not handle safely (a target cell holding a formula, rows or
cells without ``r`` coordinates, a non-UTF-8 worksheet) raises :class:`Unsupported`;
the caller then falls back to openpyxl.
"""
from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import BinaryIO, Mapping
from xml.sax.saxutils import escape

_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_OFFICE_DOC = _REL_NS + "/officeDocument"
# characters XML 1.0 cannot carry
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_COORD = re.compile(r"([A-Z]{1,3})(\d+)")


class Unsupported(Exception):
    """The package has a layout this module does not patch safely."""


def column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index


def _column_letters(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _resolve(base_part: str, target: str) -> str:
    """A relationship target relative to the part that holds the relationship."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """{sheet name: worksheet part name} of the package."""
    try:
        return _sheet_parts(zf)
    except (KeyError, ET.ParseError) as exc:
        raise Unsupported(f"package structure: {type(exc).__name__}") from None


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    workbook = "xl/workbook.xml"
    try:
        rels = ET.fromstring(zf.read("_rels/.rels"))
        for rel in rels.iter(f"{{{_PKG_REL_NS}}}Relationship"):
            if rel.get("Type") == _OFFICE_DOC:
                workbook = _resolve("", rel.get("Target", workbook))
    except KeyError:
        pass
    rels_part = posixpath.join(posixpath.dirname(workbook), "_rels",
                               posixpath.basename(workbook) + ".rels")
    targets = {rel.get("Id"): _resolve(workbook, rel.get("Target", ""))
               for rel in ET.fromstring(zf.read(rels_part)).iter(f"{{{_PKG_REL_NS}}}Relationship")}
    book = ET.fromstring(zf.read(workbook))
    return {sheet.get("name"): targets.get(sheet.get(f"{{{_REL_NS}}}id"), "")
            for sheet in book.iter(f"{{{_MAIN_NS}}}sheet")}


def _cell_xml(prefix: str, coord: str, style: str | None, text: str) -> str:
    style_attr = f' s="{style}"' if style is not None else ""
    return (f'<{prefix}c r="{coord}"{style_attr} t="inlineStr"><{prefix}is>'
            f'<{prefix}t xml:space="preserve">{escape(text)}</{prefix}t></{prefix}is></{prefix}c>')


def _attr(tag: str, name: str) -> str | None:
    m = re.search(rf'\s{name}="([^"]*)"', tag)
    return m.group(1) if m else None


def _set_cell(xml: str, coord: str, text: str) -> str:
    m = _COORD.fullmatch(coord)
    if not m:
        raise ValueError(f"bad cell coordinate {coord!r}")
    col, row = column_index(m.group(1)), int(m.group(2))
    data = re.search(r"<(\w+:)?sheetData\b[^>]*?(/>|>)", xml)
    if not data:
        raise Unsupported("no sheetData")
    prefix = data.group(1) or ""
    if data.group(2) == "/>":  # an empty sheet
        new_row = f'<{prefix}row r="{row}">{_cell_xml(prefix, coord, None, text)}</{prefix}row>'
        return (xml[:data.start()] + f"<{prefix}sheetData>{new_row}</{prefix}sheetData>"
                + xml[data.end():])
    end = xml.index(f"</{prefix}sheetData>", data.end())
    row_re = re.compile(rf"<{re.escape(prefix)}row\b[^>]*?(/>|>)")
    for rm in row_re.finditer(xml, data.end(), end):
        r = _attr(rm.group(0), "r")
        if r is None:
            raise Unsupported("a row without its r attribute")
        if int(r) < row:
            continue
        if int(r) > row:  # insert the row before this one
            new_row = f'<{prefix}row r="{row}">{_cell_xml(prefix, coord, None, text)}</{prefix}row>'
            return xml[:rm.start()] + new_row + xml[rm.start():]
        return _set_in_row(xml, rm, prefix, coord, col, text)
    new_row = f'<{prefix}row r="{row}">{_cell_xml(prefix, coord, None, text)}</{prefix}row>'
    return xml[:end] + new_row + xml[end:]


def _set_in_row(xml: str, rm: re.Match, prefix: str, coord: str, col: int, text: str) -> str:
    p = re.escape(prefix)
    row_tag = _widen_spans(rm.group(0), col)
    if rm.group(1) == "/>":  # <row r="19"/>: an empty row
        open_tag = row_tag[:-2].rstrip() + ">"
        return (xml[:rm.start()] + open_tag + _cell_xml(prefix, coord, None, text)
                + f"</{prefix}row>" + xml[rm.end():])
    row_end = xml.index(f"</{prefix}row>", rm.end())
    cell_re = re.compile(rf"<{p}c\b([^>]*?)(/>|>.*?</{p}c>)", re.S)
    before = xml[:rm.start()] + row_tag
    for cm in cell_re.finditer(xml, rm.end(), row_end):
        r = _attr(cm.group(1), "r")
        cmatch = _COORD.fullmatch(r or "")
        if not cmatch:
            raise Unsupported(f"a cell without a usable r attribute ({r!r})")
        here = column_index(cmatch.group(1))
        if here < col:
            continue
        if here == col:  # replace the cell, keeping its style
            if re.search(rf"<{p}f\b", cm.group(2)):
                raise Unsupported(f"{coord} holds a formula")
            new = _cell_xml(prefix, coord, _attr(cm.group(1), "s"), text)
            return before + xml[rm.end():cm.start()] + new + xml[cm.end():]
        new = _cell_xml(prefix, coord, None, text)  # insert before the next column
        return before + xml[rm.end():cm.start()] + new + xml[cm.start():]
    return before + xml[rm.end():row_end] + _cell_xml(prefix, coord, None, text) + xml[row_end:]


def _widen_spans(row_tag: str, col: int) -> str:
    """``spans="1:17"`` (an optional hint) must include the new cell's column."""
    spans = _attr(row_tag, "spans")
    m = re.fullmatch(r"(\d+):(\d+)", spans or "")
    if not m or int(m.group(1)) <= col <= int(m.group(2)):
        return row_tag
    lo, hi = min(int(m.group(1)), col), max(int(m.group(2)), col)
    return row_tag.replace(f'spans="{spans}"', f'spans="{lo}:{hi}"', 1)


def _widen_dimension(xml: str, coords: list[str]) -> str:
    """``<dimension ref="A1:R30"/>`` must include the written cells (readers use it)."""
    m = re.search(r'<(\w+:)?dimension\b[^>]*?\sref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"', xml)
    if not m:
        return xml
    c1, r1 = column_index(m.group(2)), int(m.group(3))
    c2, r2 = (column_index(m.group(4)), int(m.group(5))) if m.group(4) else (c1, r1)
    for coord in coords:
        cm = _COORD.fullmatch(coord)
        col, row = column_index(cm.group(1)), int(cm.group(2))
        c1, r1, c2, r2 = min(c1, col), min(r1, row), max(c2, col), max(r2, row)
    ref = f"{_column_letters(c1)}{r1}:{_column_letters(c2)}{r2}"
    old = m.group(0)
    new = re.sub(r'\sref="[^"]*"', f' ref="{ref}"', old, count=1)
    return xml[:m.start()] + new + xml[m.end():]


def patch_cells(src: str, out: BinaryIO, values: Mapping[tuple[str, str], str]) -> None:
    """Copy the .xlsx package ``src`` to ``out`` with ``values`` ({(sheet, "E19"): text})
    written as text cells. Raises :class:`Unsupported` (nothing useful written to
    ``out``) when the package cannot be patched in place."""
    for text in values.values():
        if _XML_INVALID.search(text):
            raise ValueError("value contains characters an .xlsx cell cannot hold")
    with zipfile.ZipFile(src) as zin:
        parts = sheet_parts(zin)
        by_part: dict[str, dict[str, str]] = {}
        for (sheet, coord), text in values.items():
            part = parts.get(sheet)
            if not part:
                raise Unsupported(f"sheet {sheet!r} not found")
            by_part.setdefault(part, {})[coord] = text
        patched: dict[str, bytes] = {}
        for part, cells in by_part.items():
            raw = zin.read(part)
            head = raw[:100].lower()
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"encoding=" in head and b"utf-8" not in head):
                raise Unsupported(f"{part} is not UTF-8")
            xml = raw.decode("utf-8")
            for coord, text in cells.items():
                xml = _set_cell(xml, coord, text)
            xml = _widen_dimension(xml, list(cells))
            data = xml.encode("utf-8")
            try:
                ET.fromstring(data)  # still well-formed
            except ET.ParseError:
                raise Unsupported(f"{part}: unexpected XML layout") from None
            patched[part] = data
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                data = patched.get(info.filename)
                zout.writestr(info, zin.read(info) if data is None else data,
                              compress_type=info.compress_type)
