"""Reruns that are never wrong (dummy suites through pytester): the ledger knows
every collected check, ``--lf`` reruns what never ran after a kill, a session
with open checks fails, one run per state dir, ``-n`` refused, bad state files
give one clear line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite_project import suite_project
from voyager.ledger import Ledger

pytest_plugins = ["pytester"]

LIB = Path(__file__).resolve().parents[1] / "lib"

# test_two kills the whole pytest process (as an engineer's Ctrl-\ or an OOM
# kill would) while the file "kill" exists
SUITE = '''
import os, signal
import pytest
from pathlib import Path

ROOT = Path(__file__).parent.parent

@pytest.mark.dependency()
def test_one():
    pass

@pytest.mark.dependency(depends=["test_one"])
def test_two():
    if (ROOT / "kill").exists():
        os.kill(os.getpid(), signal.SIGKILL)

@pytest.mark.dependency(depends=["test_two"])
def test_three():
    pass

def test_no_media():
    pytest.skip("未提供 SMTX_VMTOOLS-*.iso，不上传虚拟机工具")
'''


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    # a subprocess run imports voyager from PYTHONPATH: this checkout's, not an installed copy's
    monkeypatch.setenv("PYTHONPATH", str(LIB))
    suite_project(pytester, {"test_s.py": SUITE})
    state = tmp_path / "state"

    def run(*args, subprocess_=True, timeout=120):
        argv = ["suites", "--sim", "--state-dir", str(state), "-p", "no:randomly", "-rA", *args]
        if subprocess_:
            return pytester.runpytest_subprocess(*argv, timeout=timeout)
        return pytester.runpytest(*argv)

    run.state = state
    run.path = pytester.path
    return run


def entries(state: Path) -> dict:
    (path,) = state.glob("ledger-*.json")
    return Ledger.load(state, path.stem.split("-", 1)[1]).entries


def test_killed_run_leaves_unreached_checks_open_and_lf_finishes(project):
    (project.path / "kill").write_text("")
    killed = project()
    assert killed.ret == -signal.SIGKILL
    found = entries(project.state)
    assert found["suites/test_s.py::test_one"]["outcome"] == "passed"
    assert found["suites/test_s.py::test_two"]["outcome"] == "pending"
    assert found["suites/test_s.py::test_three"]["outcome"] == "pending"

    (project.path / "kill").unlink()
    again = project("--lf")
    again.assert_outcomes(passed=2, skipped=1)  # test_no_media never ran either
    assert again.ret == 0
    out = again.stdout.str()
    assert "已通过 3 项，按设计跳过 1 项，仍未完成 0 项" in out
    assert "按设计跳过 suites/test_s.py::test_no_media：未提供 SMTX_VMTOOLS-*.iso" in out


def test_a_green_session_with_open_checks_in_scope_fails(project):
    first = project("-k", "test_one", subprocess_=False)
    first.assert_outcomes(passed=1)
    assert first.ret == 1, "test_two, test_three, test_no_media never ran: the suite is not done"
    out = first.stdout.str()
    assert "仍未完成 3 项（尚未运行 3）" in out
    assert "未完成（尚未运行） suites/test_s.py::test_two" in out
    assert project("--lf", subprocess_=False).ret == 0


def test_plain_skip_is_final_not_open(project):
    result = project(subprocess_=False)
    assert result.ret == 0
    e = entries(project.state)["suites/test_s.py::test_no_media"]
    assert e["outcome"] == "skipped" and not e["dependency_skip"]
    assert "未提供 SMTX_VMTOOLS" in e["message"]


def test_journal_torn_line_is_ignored_and_compaction_is_idempotent(tmp_path):
    led = Ledger.load(tmp_path, "fp")
    led.register([("suites/t.py::test_a", {}), ("suites/t.py::test_b", {})])
    led.compact()
    for when, outcome in (("setup", "passed"), ("call", "passed"), ("teardown", "passed")):
        led.record_phase("suites/t.py::test_a", when, outcome)
    with open(led.journal, "ab") as fh:  # a kill in the middle of the next write
        fh.write(b'{"nodeid": "suites/t.py::test_b", "entry": {"outc')
    again = Ledger.load(tmp_path, "fp")
    assert again.entries["suites/t.py::test_a"]["outcome"] == "passed"
    assert again.entries["suites/t.py::test_b"]["outcome"] == "pending"
    assert again.rerun_nodeids() == ["suites/t.py::test_b"]
    again.compact()
    assert not again.journal.exists()
    assert Ledger.load(tmp_path, "fp").entries == again.entries
    # snapshot is compact JSON (no indentation)
    assert "\n" not in again.path.read_text(encoding="utf-8")


def test_ledger_write_is_one_line_per_check(tmp_path):
    led = Ledger.load(tmp_path, "fp")
    for i in range(5):
        for when in ("setup", "call", "teardown"):
            led.record_phase(f"suites/t.py::test_{i}", when, "passed")
    assert len(led.journal.read_bytes().splitlines()) == 5
    assert not led.path.exists()  # the snapshot is written at compaction, not per check


def test_register_drops_checks_that_no_longer_exist(tmp_path):
    led = Ledger.load(tmp_path, "fp")
    led.register([("suites/t.py::test_old", {}), ("suites/u.py::test_other", {})])
    led.register([("suites/t.py::test_new", {})], complete_modules={"suites/t.py"})
    assert set(led.entries) == {"suites/t.py::test_new", "suites/u.py::test_other"}


def test_truncated_ledger_is_one_clear_line(project):
    assert project(subprocess_=False).ret == 0
    (path,) = project.state.glob("ledger-*.json")
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")
    result = project()
    assert result.ret not in (0, 3)
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text
    assert f"结果台账无法读取：{path}" in text and "请把该文件移到别处后重试" in text


def test_corrupt_simulator_state_is_one_clear_line(project):
    project.state.mkdir(parents=True)
    (project.state / "sim-world.json").write_text("{not json", encoding="utf-8")
    result = project()
    text = result.stdout.str() + result.stderr.str()
    assert result.ret not in (0, 3) and "INTERNALERROR" not in text and "Traceback" not in text
    assert "模拟器状态文件" in text and "sim-world.json" in text


def test_bad_fault_spec_is_one_clear_line(project):
    result = project("--sim-faults", "fail-job:VDS")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret not in (0, 3) and "INTERNALERROR" not in text and "Traceback" not in text
    assert "fail-job:VDS" in text and "KIND:TARGET:COUNT" in text


def test_stale_temp_files_are_removed_at_start(project):
    project.state.mkdir(parents=True)
    stale = project.state / ".run-state.json.abc123.tmp"
    stale.write_text("{")
    assert project(subprocess_=False).ret == 0
    assert not stale.exists()


def test_numprocesses_is_refused(project):
    result = project("-n", "2")
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "不能用 -n/--numprocesses 并行运行" in text
    assert not list(project.state.glob("ledger-*"))


def test_second_run_on_one_state_dir_is_refused_naming_the_holder(project, pytester):
    # the first run holds the lock while test_one waits for a file
    (pytester.path / "suites" / "test_s.py").write_text(SUITE.replace(
        "def test_one():\n    pass",
        "def test_one():\n    import time\n    (ROOT / 'started').write_text('')\n"
        "    while not (ROOT / 'go').exists():\n        time.sleep(0.05)"), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(LIB), str(pytester.path)]))
    cmd = [sys.executable, "-m", "pytest", "suites", "--sim", "--state-dir", str(project.state), "-p", "no:randomly"]
    first = subprocess.Popen(cmd, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "started").exists():
            assert first.poll() is None and time.monotonic() < deadline, "first run did not start"
            time.sleep(0.05)
        second = subprocess.run(cmd, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        text = second.stdout + second.stderr
        assert f"进程 {first.pid}" in text and "正被另一个运行" in text and "另一个 --state-dir" in text
        assert "INTERNALERROR" not in text
    finally:
        (pytester.path / "go").write_text("")
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    holder = project.state / "run.lock.json"
    assert not holder.exists()


def test_lf_runs_a_module_that_never_ran(pytester, tmp_path):
    """The first-use flow: the preflight module alone (with a failure), then the
    whole suite with --lf: the module that never ran is not forgotten."""
    suite_project(pytester, {"test_a.py": "def test_a_fails():\n    assert (__import__('pathlib').Path(__file__)"
                                          ".parent.parent / 'fixed').exists()\n\ndef test_a_ok():\n    pass\n",
                             "test_b.py": "def test_b_one():\n    pass\n\ndef test_b_two():\n    pass\n"})
    state = tmp_path / "state"
    argv = ["--sim", "--state-dir", str(state), "-p", "no:randomly"]
    pytester.runpytest("suites/test_a.py", *argv).assert_outcomes(passed=1, failed=1)
    (pytester.path / "fixed").write_text("")
    result = pytester.runpytest("suites", "--lf", *argv)
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert "已通过 4 项，按设计跳过 0 项，仍未完成 0 项" in result.stdout.str()


def test_malformed_ledger_entries_are_one_clear_line(project):
    assert project(subprocess_=False).ret == 0
    (path,) = project.state.glob("ledger-*.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["entries"]["suites/test_s.py::test_one"] = {}
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = project()
    text = result.stdout.str() + result.stderr.str()
    assert result.ret not in (0, 3) and "INTERNALERROR" not in text
    assert f"结果台账无法读取：{path}" in text and "没有有效的结果" in text


def test_negative_simulator_speed_is_a_usage_error(project):
    result = project("--sim-speed", "-1")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and "--sim-speed 不能为负数" in text and "Traceback" not in text


def test_lf_selects_from_the_ledger_not_from_pytests_cache(project, pytester):
    """pytest's lfplugin deselects nothing in a suite session: a stale pytest cache
    naming a check that passed does not choose the rerun; the ledger does."""
    (project.path / "kill").write_text("")
    assert project().ret == -signal.SIGKILL  # test_one passed; the rest never ran
    (project.path / "kill").unlink()
    cache = project.path / ".pytest_cache" / "v" / "cache" / "lastfailed"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"suites/test_s.py::test_one": True}), encoding="utf-8")
    again = project("--lf", subprocess_=False)
    again.assert_outcomes(passed=2, skipped=1, deselected=1)
    out = again.stdout.str()
    assert "voyager: --lf 依据结果台账重跑 3 项" in out and "已通过或按设计跳过的 1 项不重跑" in out
    assert "run-last-failure" not in out  # pytest's lfplugin stayed out of it
    assert "PASSED suites/test_s.py::test_one" not in out


def test_lf_with_nothing_open_follows_last_failed_no_failures(project):
    assert project(subprocess_=False).ret == 0
    everything = project("--lf", subprocess_=False)
    everything.assert_outcomes(passed=3, skipped=1)
    assert "没有尚未通过的检查，运行全部 4 项" in everything.stdout.str()
    nothing = project("--lf", "--lfnf", "none", subprocess_=False)
    nothing.assert_outcomes(deselected=4)
    assert "不运行任何检查" in nothing.stdout.str()


def test_lf_on_suites_reached_through_another_path_is_a_usage_error(project, pytester):
    """``pytest . --lf``: the suites are found only at collection, after pytest's
    lfplugin chose by its cache; one clear line says how to run instead."""
    result = pytester.runpytest(".", "--sim", "--state-dir", str(project.state), "--lf", "-p", "no:randomly")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "只在命令行参数直接指向 suites/ 时可用" in text and "pytest suites/ --plan=规划设计表.xlsx --lf" in text
    assert "Traceback" not in text


# test_one deletes the state dir's run.lock mid-run; with the file "steal" present it also
# deletes run.lock.json and lets another process take the lock (as a second run would)
LOCK_SUITE = '''
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
STATE = Path((ROOT / "state-dir").read_text())
HOLD = "import sys; from voyager.runlock import RunLock; l = RunLock(sys.argv[1]); l.acquire(); print('ok', flush=True); sys.stdin.read()"

def test_one():
    (STATE / "run.lock").unlink()
    if (ROOT / "steal").exists():
        (STATE / "run.lock.json").unlink()
        other = subprocess.Popen([sys.executable, "-c", HOLD, str(STATE)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert other.stdout.readline() == "ok\\n"
        (ROOT / "other.pid").write_text(str(other.pid))
        test_one.other = other  # kept open (and alive) until the session ends

def test_two():
    pass
'''


@pytest.mark.parametrize("stolen", [False, True], ids=["lock-file-deleted", "lock-taken-by-another-run"])
def test_a_lock_file_deleted_mid_run(pytester, tmp_path, monkeypatch, stolen):
    """run.lock deleted while the run holds it: the run locks the file again before the
    next check; when another run took it meanwhile, this run stops without touching the
    ledger again, and leaves the other run's holder file in place."""
    monkeypatch.setenv("PYTHONPATH", str(LIB))  # this checkout's code, not an installed copy's
    suite_project(pytester, {"test_l.py": LOCK_SUITE})
    state = tmp_path / "state"
    (pytester.path / "state-dir").write_text(str(state))
    if stolen:
        (pytester.path / "steal").write_text("")
    result = pytester.runpytest_subprocess("suites", "--sim", "--state-dir", str(state), "-p", "no:randomly",
                                           timeout=120)
    text = result.stdout.str() + result.stderr.str()
    if not stolen:
        result.assert_outcomes(passed=2)
        assert result.ret == 0 and "被删除或替换过，已重新加锁" in text
        assert (state / "run.lock").exists() and not (state / "run.lock.json").exists()
        return
    other = int((pytester.path / "other.pid").read_text())
    try:
        assert result.ret == pytest.ExitCode.INTERRUPTED, text
        assert "本次运行就此停止" in text and f"进程 {other}" in text
        assert entries(state)["suites/test_l.py::test_two"]["outcome"] == "pending"
        assert json.loads((state / "run.lock.json").read_text(encoding="utf-8"))["pid"] == other
    finally:
        try:
            os.kill(other, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_a_killed_run_leaves_the_evidence_of_the_checks_it_finished(project, pytester):
    (pytester.path / "suites" / "test_s.py").write_text(SUITE.replace(
        "def test_one():\n    pass",
        "def test_one():\n    from voyager.evidence import RECORDER\n"
        "    RECORDER.record_ssh(target='ssh://smartx@127.10.20.11', command='hostname', exit_status=0,"
        " elapsed=0.1, stdout='demo-node-01')"), encoding="utf-8")
    (project.path / "kill").write_text("")
    assert project().ret == -signal.SIGKILL
    (log,) = (project.state / "evidence").glob("*.log")
    text = log.read_text(encoding="utf-8")
    assert "## suites/test_s.py::test_one" in text and "hostname" in text and "demo-node-01" in text
    # the ledger's entry of test_one names this log: a later --lf run's report can show it
    assert entries(project.state)["suites/test_s.py::test_one"]["run"]["evidence"] == f"evidence/{log.name}"
