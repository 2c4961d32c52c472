"""One run per state dir even when ``run.lock`` is deleted mid-run
(``voyager.runlock``): the second run is refused while the first one lives, the
first one locks the recreated file again, and a run whose lock another run took
stops with a clear message; a run never removes another run's holder file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voyager.runlock import HOLDER_FILE, LOCK_FILE, LockLost, RunLock, StateDirBusy, file_identity

LIB = Path(__file__).resolve().parents[1] / "lib"

# another run, in its own process: takes the lock; with "hold", keeps it until stdin closes
OTHER = '''
import sys
from voyager.runlock import RunLock, StateDirBusy
lock = RunLock(sys.argv[1])
try:
    lock.acquire()
except StateDirBusy as exc:
    print("REFUSED", exc, flush=True)
    sys.exit(0)
print("ACQUIRED", flush=True)
if len(sys.argv) > 2:
    sys.stdin.read()
    lock.release()
'''


def other_run(state: Path, *, hold: bool = False):
    env = dict(os.environ, PYTHONPATH=str(LIB))
    cmd = [sys.executable, "-c", OTHER, str(state)] + (["hold"] if hold else [])
    if not hold:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60).stdout
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("ACQUIRED")
    return proc


@pytest.fixture
def lock(tmp_path):
    held = RunLock(tmp_path / "state")
    held.acquire()
    yield held
    held.release()


def test_a_second_run_is_refused_naming_the_holder(lock):
    out = other_run(lock.state_dir)
    assert out.startswith("REFUSED") and f"进程 {os.getpid()}" in out
    holder = json.loads((lock.state_dir / HOLDER_FILE).read_text(encoding="utf-8"))
    assert tuple(holder["lock"]) == file_identity(lock.state_dir / LOCK_FILE)


def test_a_deleted_lock_file_does_not_let_a_second_run_in(lock):
    (lock.state_dir / LOCK_FILE).unlink()
    out = other_run(lock.state_dir)
    assert out.startswith("REFUSED") and "被删除过" in out and f"进程 {os.getpid()}" in out
    assert lock.check() is False  # the holding run locks the recreated file again
    assert lock.check() is True
    holder = json.loads((lock.state_dir / HOLDER_FILE).read_text(encoding="utf-8"))
    assert holder["pid"] == os.getpid() and tuple(holder["lock"]) == file_identity(lock.state_dir / LOCK_FILE)
    out = other_run(lock.state_dir)
    assert out.startswith("REFUSED") and "被删除过" not in out


def test_a_run_whose_lock_another_run_took_stops_and_leaves_its_holder_file(lock):
    for name in (LOCK_FILE, HOLDER_FILE):
        (lock.state_dir / name).unlink()
    other = other_run(lock.state_dir, hold=True)
    try:
        with pytest.raises(LockLost) as err:
            lock.check()
        assert f"进程 {other.pid}" in str(err.value) and "本次运行就此停止" in str(err.value)
        assert isinstance(err.value, StateDirBusy)
        lock.release()
        holder = json.loads((lock.state_dir / HOLDER_FILE).read_text(encoding="utf-8"))
        assert holder["pid"] == other.pid  # the other run's holder file stays
    finally:
        other.communicate("", timeout=60)
    assert not (lock.state_dir / HOLDER_FILE).exists()


@pytest.mark.parametrize("lock_deleted", [False, True], ids=["same-lock-file", "lock-file-deleted-too"])
def test_a_killed_runs_holder_file_does_not_block(tmp_path, lock_deleted):
    state = tmp_path / "state"
    first = RunLock(state)
    first.acquire()
    first._lock.release()  # as the kernel does for a killed run; run.lock.json stays behind
    stale = json.loads((state / HOLDER_FILE).read_text(encoding="utf-8"))
    stale["pid"] = 2 ** 22 + 12345  # no such process
    (state / HOLDER_FILE).write_text(json.dumps(stale), encoding="utf-8")
    if lock_deleted:
        (state / LOCK_FILE).unlink()
    assert other_run(state).startswith("ACQUIRED")
