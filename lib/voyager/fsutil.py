"""Atomic file writes and JSON reads with a clear error, shared by the run state, the ledger, the evidence log,
the client's known-certs file and the simulator's state and host keys."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` atomically: a temp file in the same folder
    (created 0600 by ``mkstemp``, so private files stay private), optionally
    fsynced, then renamed over ``path``. A reader sees the old or the new
    content, never a mix; on failure the temp file is removed.

    ``fsync=False`` keeps the rename atomic but lets the OS choose when the data
    reaches the disk (the simulator saves after every change and can afford to
    lose the last ones in an OS crash, not ~10 ms per request)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path, what: str, advice: str) -> Any:
    """The JSON document at ``path``, or None when there is no such file. A file
    that cannot be read or parsed raises ValueError naming ``what`` (e.g.
    "运行状态文件"), the path, the cause and ``advice`` (what the engineer should do)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what}无法读取：{path}（{exc}）；{advice}") from None
