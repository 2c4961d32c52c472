"""The simulator's state file: JSON, written atomically after every change.

Atomically means a temporary file renamed over the old one: a simulator killed
at any moment leaves the previous or the new state, never a torn file. The file
is not fsync'ed (a rerun after a process exit is what it serves; ~10 ms per
change saved) — after an OS crash the last changes may be missing.

The file holds ids, timestamps and salted digests, never a password or a token
(see :mod:`voyager.sim.backend.passwords`). ``status`` (the counts of
``voyager sim status``) is stored with it so that the counts can be read
without the plan.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from voyager.fsutil import atomic_write

FORMAT = 1


class StateFileError(RuntimeError):
    pass


def save_state(path: Path, state: dict[str, Any]) -> None:
    data = json.dumps({"format": FORMAT, **state}, ensure_ascii=False)  # keeps creation order
    atomic_write(path, data, fsync=False)


def load_state(path: Optional[Path]) -> Optional[dict[str, Any]]:
    if path is None or not Path(path).exists():
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateFileError(f"模拟器状态文件 {path} 无法读取（{exc.__class__.__name__}）；"
                             f"请删除该文件后重新开始 (cannot read the simulator state file)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateFileError(f"模拟器状态文件 {path} 的格式不受支持；请删除该文件后重新开始 "
                             f"(unsupported simulator state file format)")
    return data


EMPTY_STATUS = {"deployed": False, "hosts": 0, "vds": 0, "vlans": 0, "images": 0, "vms": 0,
                "organizations": 0, "datacenters": 0, "connected_clusters": 0, "views": 0, "graphs": 0,
                "racks": 0, "bricks": 0, "uploads_in_progress": 0}


def status_from_file(path: Path) -> dict[str, Any]:
    """The counts saved with the state (``voyager sim status --state FILE``)."""
    data = load_state(path)
    if data is None:
        raise StateFileError(f"模拟器状态文件 {path} 不存在 (state file not found)")
    status = dict(EMPTY_STATUS)
    status.update(data.get("status") or {})
    return status
