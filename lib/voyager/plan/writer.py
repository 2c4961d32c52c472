"""Write deployment results (serial numbers) back into the planning workbook.

Only the cells of ``cells.WRITE_BACK`` change. The write is atomic: the workbook is
saved to a temporary file in the same folder, flushed to disk and renamed over the
original, after a timestamped copy of the original was made next to it
(``<stem>.bak-YYYYmmdd-HHMMSS.xlsx``). The target cells are patched in the package's
XML (:mod:`voyager.plan.xlsx_patch`), so everything else is kept exactly: cell values
and cached formula results, sheets, merged ranges, data validations, sheet protection,
comments, drawings. A layout the patcher does not handle goes through openpyxl instead.

If the workbook is open in Excel (a ``~$<name>`` lock file beside it), read-only, or in
a read-only folder, :class:`PlanWriteError` says so in Chinese and the original is left
untouched. Writing values that are already there is a no-op (no backup either).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Mapping, Optional

from voyager.plan.xl import openpyxl  # first: openpyxl without numpy

from voyager.plan import cells as C
from voyager.plan.workbook import to_text
from voyager.plan.xlsx_patch import Unsupported, patch_cells

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class PlanWriteError(Exception):
    """The workbook cannot be written; the message (Chinese) says what to do."""


def lock_files(path: Path) -> list[Path]:
    """Lock files an office suite keeps beside an open workbook: Excel's ``~$name``
    (Word-style ``~$`` + name without its first two characters for long names) and
    LibreOffice's ``.~lock.name#``."""
    names = [f"~${path.name}", f".~lock.{path.name}#"]
    if len(path.name) > 2:
        names.append(f"~${path.name[2:]}")
    return [path.with_name(n) for n in names if path.with_name(n).exists()]


def _writable(p: Path) -> bool:
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    # root passes os.access() on read-only files: honour the read-only attribute too
    return bool(mode & _WRITE_BITS) and os.access(p, os.W_OK)


def check_writable(path: Path) -> None:
    """Raise :class:`PlanWriteError` when ``path`` cannot be replaced safely."""
    if not path.is_file():
        raise PlanWriteError(f"规划表文件不存在: {path}")
    locks = lock_files(path)
    if locks:
        raise PlanWriteError(
            f"规划表 {path.name} 正在被 Excel 或 WPS 打开（发现锁文件 {locks[0].name}），无法写回；"
            "请先保存并关闭该文件，再重新运行。如果确认没有程序打开它，请删除该锁文件"
        )
    if not _writable(path):
        raise PlanWriteError(
            f"规划表 {path} 是只读文件，无法写回；请取消文件的只读属性（或复制到可写的位置并用 --plan 指向副本）后重新运行"
        )
    folder = path.parent
    if not _writable(folder):
        raise PlanWriteError(
            f"规划表所在的文件夹 {folder} 不可写（写回需要在同一文件夹创建临时文件和备份）；"
            "请把规划表复制到可写的文件夹后重新运行"
        )


def _targets(values: Mapping[str, object]) -> dict[tuple[str, str], str]:
    unknown = sorted(set(values) - set(C.WRITE_BACK))
    if unknown:
        raise ValueError(f"unknown write-back keys: {unknown}; known: {sorted(C.WRITE_BACK)}")
    out: dict[tuple[str, str], str] = {}
    for key, value in values.items():
        if value is None:
            continue
        text = to_text(value)
        if text is None:
            continue
        out[C.WRITE_BACK[key]] = text
    return out


def _current(path: Path, targets: dict[tuple[str, str], str]) -> dict[tuple[str, str], Optional[str]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return {(s, c): to_text(wb[s][c].value) for s, c in targets}
    finally:
        wb.close()


def _save(path: Path, out: BinaryIO, targets: dict[tuple[str, str], str]) -> None:
    """The workbook at ``path`` with ``targets`` written, into ``out``: patched in place
    (every other part and byte kept) or, for a layout the patcher does not handle,
    through openpyxl (which keeps values, sheets, merges, validations and protection,
    but not cached formula results or shapes)."""
    try:
        patch_cells(str(path), out, targets)
        return
    except Unsupported:
        out.seek(0)
        out.truncate()
    wb = openpyxl.load_workbook(path)
    try:
        for (sheet, coord), text in targets.items():
            cell = wb[sheet][coord]
            cell.value = text
            cell.data_type = "s"  # a serial is text, even if it starts with "="
        wb.save(out)
    finally:
        wb.close()


def _backup_path(path: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.bak-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.bak-{stamp}-{n}{path.suffix}")
        n += 1
    return candidate


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform (Windows)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_back(path: str | Path, values: Mapping[str, object]) -> Optional[Path]:
    """Write ``values`` (keys of ``cells.WRITE_BACK``: cluster_serial, cloudtower_serial,
    obs_serial, backup_serial; ``None`` values are skipped) into the workbook at ``path``.

    Returns the path of the backup of the original, or ``None`` when every value was
    already in place (nothing written). Raises :class:`PlanWriteError` when the workbook
    is locked, read-only or cannot be saved; the original is then unchanged."""
    link = Path(path)
    path = link.resolve() if link.is_symlink() else link  # replace the file, keep the link
    targets = _targets(values)
    if not targets:
        return None
    if link != path:
        check_writable(link)  # a lock file may sit beside the link the engineer opened
    check_writable(path)
    try:
        current = _current(path, targets)
    except Exception as exc:
        raise PlanWriteError(f"无法读取规划表 {path}（{type(exc).__name__}），未写回任何内容") from None
    if all(current[k] == v for k, v in targets.items()):
        return None

    backup = _backup_path(path)
    tmp_name: Optional[str] = None
    try:
        shutil.copyfile(path, backup)
        with contextlib.suppress(OSError):  # times/mode: best effort (SMB shares refuse some)
            shutil.copystat(path, backup)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "w+b") as fh:
            _save(path, fh, targets)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # keep the original's mode where the filesystem allows
            os.chmod(tmp_name, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except Exception as exc:
        with contextlib.suppress(OSError):
            backup.unlink()
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise PlanWriteError(
            f"写回规划表 {path} 失败（{reason}），原文件未改动；"
            "请确认文件没有被其他程序打开、磁盘空间充足且文件夹可写后重新运行"
        ) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return backup
