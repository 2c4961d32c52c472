"""One run per state dir: an exclusive lock held for the whole pytest session.

Two runs on one state dir would share one run state, one ledger and one
simulator world: both would deploy, both would write the serial back. The lock
is ``filelock``'s (an OS-level lock, released by the kernel when the process
dies, so a killed run never blocks the next one). Who holds it — pid, start
time, command — is written beside it in ``run.lock.json`` so the refused run
can name the holder.

A lock on a file is only as good as the file: ``run.lock`` deleted while a run
holds it would let a second run lock a new file of the same name. So the lock's
identity (device, inode) is recorded in the holder file, and

* a run that gets the lock refuses anyway when ``run.lock.json`` names another
  live process whose lock was a different file (the lock file was deleted under
  it: it still runs);
* the holding run checks before each suite check that ``run.lock`` is still its
  file (:meth:`RunLock.check`): deleted or replaced, it locks the file now at the
  path again, and when another run holds that one it stops (:class:`LockLost`)
  before touching the shared state again.

Only the holder's own ``run.lock.json`` is removed at release.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from filelock import FileLock, Timeout

from voyager.fsutil import atomic_write

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"


class StateDirBusy(Exception):
    """Another run holds the state dir (message in Chinese, naming the holder)."""


class LockLost(StateDirBusy):
    """The run's lock file was deleted or replaced and another run holds the new one."""


Identity = tuple[int, int]


def file_identity(path: Path) -> Optional[Identity]:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def process_alive(pid: Any) -> bool:
    """Is process ``pid`` running? (POSIX; elsewhere a lock file cannot be deleted
    while it is open, and this answers False.)"""
    if os.name != "posix" or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_FILE
        self._lock = FileLock(str(self.path))
        self._identity: Optional[Identity] = None

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
        self._identity = file_identity(self.path)
        holder = self.holder()
        if holder is not None and self._holder_still_runs(holder):
            self._lock.release()
            raise StateDirBusy(busy_message(self.state_dir, holder, lock_deleted=True))
        self._write_holder()

    def _holder_still_runs(self, holder: dict) -> bool:
        """``run.lock.json`` names another live run whose lock was another file."""
        recorded = holder.get("lock")
        return (holder.get("pid") != os.getpid() and isinstance(recorded, list)
                and tuple(recorded) != self._identity and process_alive(holder.get("pid")))

    def _write_holder(self) -> None:
        atomic_write(self.state_dir / HOLDER_FILE, json.dumps({
            "pid": os.getpid(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
            "lock": list(self._identity) if self._identity else None,
        }, ensure_ascii=False), fsync=False)

    def check(self) -> bool:
        """Is ``run.lock`` still the file this run locked? True when it is; False
        when it was deleted or replaced and this run locked the file now at the
        path instead (the lock is whole again). Raises :class:`LockLost` when
        another run holds that file."""
        if not self.held or file_identity(self.path) == self._identity:
            return True
        fresh = FileLock(str(self.path))
        try:
            fresh.acquire(timeout=0)
        except Timeout:
            raise LockLost(lost_message(self.state_dir, self.holder())) from None
        old, self._lock = self._lock, fresh
        old.release()
        self._identity = file_identity(self.path)
        self._write_holder()
        return False

    def holder(self) -> Optional[dict]:
        try:
            doc = json.loads((self.state_dir / HOLDER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        holder = self.holder()
        if holder is None or holder.get("pid") == os.getpid():  # never another run's holder file
            try:
                (self.state_dir / HOLDER_FILE).unlink()
            except FileNotFoundError:
                pass
        self._lock.release()


def _who(holder: Optional[dict]) -> str:
    who = "另一个运行"
    if holder:
        who = f"另一个运行（进程 {holder.get('pid')}，开始于 {holder.get('started')}"
        who += f"，命令 {holder['command']}）" if holder.get("command") else "）"
    return who


def busy_message(state_dir: Path, holder: Optional[dict], *, lock_deleted: bool = False) -> str:
    who = _who(holder)
    if lock_deleted:
        return (f"状态目录 {state_dir} 正被{who}使用：它的锁文件 {LOCK_FILE} 在运行中被删除过，但该运行仍在进行；"
                "同一状态目录同时只能有一个运行。请等待它结束后再运行（如果该进程并不是 smtx-voyager 的运行，"
                f"删除 {HOLDER_FILE} 后重试）；要同时演练另一份规划表，请用另一个 --state-dir。")
    return (f"状态目录 {state_dir} 正被{who}使用；同一状态目录同时只能有一个运行。"
            "请等待它结束后再运行；要同时演练另一份规划表，请用另一个 --state-dir。")


def lost_message(state_dir: Path, holder: Optional[dict]) -> str:
    return (f"状态目录 {state_dir} 的锁文件 {LOCK_FILE} 在本次运行中被删除或替换，{_who(holder)}已经取得了它；"
            "两个运行不能共用同一状态目录（运行状态、结果台账、模拟器环境），本次运行就此停止，不再改动状态目录。"
            "请等该运行结束后，用同一命令加上 --lf 继续。")


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
