"""One run per state dir: an exclusive lock held for the whole pytest session.

Two runs on one state dir would share one run state, one ledger and one
simulator world: both would deploy, both would write the serial back. The lock
is ``filelock``'s (an OS-level lock, released by the kernel when the process
dies, so a killed run never blocks the next one). Who holds it — pid, start
time, command — is written beside it in ``run.lock.json`` so the refused run
can name the holder.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

from filelock import FileLock, Timeout

from voyager.fsutil import atomic_write

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"


class StateDirBusy(Exception):
    """Another run holds the state dir (message in Chinese, naming the holder)."""


class RunLock:
    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self._lock = FileLock(str(self.state_dir / LOCK_FILE))

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        """Take the lock at once or raise :class:`StateDirBusy`."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StateDirBusy(busy_message(self.state_dir, self.holder())) from None
        atomic_write(self.state_dir / HOLDER_FILE, json.dumps({
            "pid": os.getpid(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
        }, ensure_ascii=False), fsync=False)

    def holder(self) -> Optional[dict]:
        try:
            doc = json.loads((self.state_dir / HOLDER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            (self.state_dir / HOLDER_FILE).unlink()
        except FileNotFoundError:
            pass
        self._lock.release()


def busy_message(state_dir: Path, holder: Optional[dict]) -> str:
    who = "另一个运行"
    if holder:
        who = f"另一个运行（进程 {holder.get('pid')}，开始于 {holder.get('started')}"
        who += f"，命令 {holder['command']}）" if holder.get("command") else "）"
    return (f"状态目录 {state_dir} 正被{who}使用；同一状态目录同时只能有一个运行。"
            "请等待它结束后再运行；要同时演练另一份规划表，请用另一个 --state-dir。")


def remove_stale_temp_files(state_dir: Path) -> list[Path]:
    """Temp files of atomic writes (``.<name>.<random>.tmp``, see
    ``voyager.fsutil.atomic_write``) left by a killed run; call only while
    holding the lock (no write of ours is in flight then)."""
    removed = []
    for path in Path(state_dir).rglob(".*.tmp"):
        if path.is_file():
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed
