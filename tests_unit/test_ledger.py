"""The outcome ledger and ``--lf``: rerun what failed and what it held back,
trust what passed before, run nothing else (dummy suites through pytester)."""
from __future__ import annotations

import json
import os

import pytest

from suite_project import suite_project
from voyager.ledger import Ledger, dependency_names, fold_outcome

pytest_plugins = ["pytester"]

SUITE_A = '''
import pytest
from pathlib import Path

FLAG = Path(__file__).parent.parent / "fixed"

@pytest.mark.dependency()
def test_one():
    pass

@pytest.mark.dependency(depends=["test_one"])
def test_two():
    assert FLAG.exists(), "test_two 需要修复"

@pytest.mark.dependency(depends=["test_two"])
def test_three():
    pass

@pytest.mark.dependency(depends=["test_one"])
def test_four():
    pass

@pytest.mark.parametrize("n", ["a", "b"])
@pytest.mark.dependency()
def test_each(n):
    pass

@pytest.mark.dependency(name="stage_a", depends=["test_three", "test_four", "test_each"])
def test_stage_a_done():
    pass

def test_plain_skip():
    pytest.skip("未配置，按设计跳过")
'''

SUITE_B = '''
import pytest

@pytest.mark.dependency(depends=["stage_a"], scope="session")
def test_b_one():
    pass

@pytest.mark.dependency(depends=["test_b_one"])
def test_b_two():
    pass
'''


@pytest.fixture
def suite(pytester, tmp_path):
    suite_project(pytester, {"test_a.py": SUITE_A, "test_b.py": SUITE_B})
    state = tmp_path / "state"

    def run(*args):
        target = [] if args and args[0].startswith("suites") else ["suites"]
        return pytester.runpytest(*target, "--sim", "--state-dir", str(state), "-p", "no:randomly",
                                  "-rA", *args)

    run.state = state
    run.path = pytester.path
    return run


def outcomes(result):
    """nodeid -> outcome from the -rA short summary."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED", "ERROR"):
            if line.startswith(word + " "):
                rest = line[len(word) + 1:]
                if word == "SKIPPED":  # "SKIPPED [1] suites/test_a.py:12: reason"
                    continue
                found[rest.split(" - ")[0].strip()] = word.lower()
    return found


def ledger_entries(run):
    files = list(run.state.glob("ledger-*.json"))
    assert len(files) == 1
    return json.loads(files[0].read_text(encoding="utf-8"))["entries"]


def test_lf_reruns_failures_and_their_dependents_only(suite):
    first = suite()
    first.assert_outcomes(passed=4, failed=1, skipped=5)
    entries = ledger_entries(suite)
    assert entries["suites/test_a.py::test_two"]["outcome"] == "failed"
    assert "需要修复" in entries["suites/test_a.py::test_two"]["message"]
    for nodeid in ("suites/test_a.py::test_three", "suites/test_a.py::test_stage_a_done",
                   "suites/test_b.py::test_b_one", "suites/test_b.py::test_b_two"):
        assert entries[nodeid]["outcome"] == "skipped" and entries[nodeid]["dependency_skip"], nodeid
    assert entries["suites/test_a.py::test_plain_skip"]["dependency_skip"] is False

    (suite.path / "fixed").write_text("ok")
    second = suite("--lf")
    # only the failure and the four tests it held back run; their other
    # prerequisites (test_one, test_four, test_each[*]) passed in the first run
    second.assert_outcomes(passed=5)
    assert set(outcomes(second)) == {
        "suites/test_a.py::test_two", "suites/test_a.py::test_three",
        "suites/test_a.py::test_stage_a_done", "suites/test_b.py::test_b_one",
        "suites/test_b.py::test_b_two"}
    assert "--lf 依据结果台账重跑 5 项" in second.stdout.str()

    third = suite("--lf")  # nothing left to rerun: pytest's --lfnf default runs all
    assert "no previously failed tests" in third.stdout.str()
    third.assert_outcomes(passed=9, skipped=1)


def test_a_module_alone_trusts_prerequisites_that_passed_before(suite):
    (suite.path / "fixed").write_text("ok")
    suite().assert_outcomes(passed=9, skipped=1)
    alone = suite("suites/test_b.py")
    alone.assert_outcomes(passed=2)  # stage_a (other module) passed in the earlier run


def test_without_earlier_pass_the_dependency_is_unknown(suite):
    alone = suite("suites/test_b.py")
    alone.assert_outcomes(skipped=2)


def test_a_failure_in_this_session_wins_over_an_earlier_pass(suite):
    (suite.path / "fixed").write_text("ok")
    suite().assert_outcomes(passed=9, skipped=1)
    (suite.path / "fixed").unlink()
    again = suite()
    again.assert_outcomes(passed=4, failed=1, skipped=5)


def test_parametrized_dependency_expands_to_every_case(suite, pytester):
    (suite.path / "suites" / "test_a.py").write_text(SUITE_A.replace(
        '@pytest.mark.parametrize("n", ["a", "b"])\n@pytest.mark.dependency()\ndef test_each(n):\n    pass',
        '@pytest.mark.parametrize("n", ["a", "b"])\n@pytest.mark.dependency()\ndef test_each(n):\n'
        '    assert n == "a"'), encoding="utf-8")
    (suite.path / "fixed").write_text("ok")
    result = suite()
    found = outcomes(result)
    assert found["suites/test_a.py::test_each[b]"] == "failed"
    entries = ledger_entries(suite)
    assert entries["suites/test_a.py::test_stage_a_done"]["dependency_skip"] is True
    assert "test_each[b]" in entries["suites/test_a.py::test_stage_a_done"]["message"]


def test_ledger_is_per_plan_fingerprint(tmp_path):
    a = Ledger.load(tmp_path, "aaaa")
    a.record_phase("suites/t.py::test_x", "setup", "passed", dependency_marked=True)
    a.record_phase("suites/t.py::test_x", "call", "failed", longrepr="E   assert 1 == 2",
                   dependency_marked=True)
    entry = a.record_phase("suites/t.py::test_x", "teardown", "passed", dependency_marked=True)
    assert entry["outcome"] == "failed" and entry["message"] == "assert 1 == 2"
    assert Ledger.load(tmp_path, "aaaa").rerun_nodeids() == ["suites/t.py::test_x"]
    assert Ledger.load(tmp_path, "bbbb").entries == {}


def test_setup_error_and_dependency_names(tmp_path):
    led = Ledger.load(tmp_path, "f")
    led.record_phase("suites/t.py::test_y", "setup", "failed", longrepr="E   RuntimeError: boom")
    entry = led.record_phase("suites/t.py::test_y", "teardown", "passed")
    assert entry["outcome"] == "error"
    assert dependency_names("suites/t.py::C::test_z[a]", None) == {
        "session": "suites/t.py::C::test_z[a]", "package": "suites/t.py::C::test_z[a]",
        "module": "C::test_z[a]", "class": "test_z[a]"}
    assert dependency_names("suites/t.py::test_z", "named")["module"] == "named"


@pytest.mark.parametrize("phases, outcome", [
    ({"setup": "passed", "call": "passed", "teardown": "passed"}, "passed"),
    ({"setup": "passed", "call": "failed", "teardown": "passed"}, "failed"),
    ({"setup": "skipped", "teardown": "passed"}, "skipped"),
    ({"setup": "failed", "teardown": "passed"}, "error"),
    ({"setup": "passed", "call": "passed", "teardown": "failed"}, "error"),
    ({"setup": "passed", "call": "failed", "teardown": "failed"}, "failed"),
    ({"setup": "passed", "teardown": "passed"}, "error"),
], ids=["passed", "failed", "skipped", "setup-error", "teardown-error", "call-and-teardown-failed", "no-call"])
def test_fold_outcome(phases, outcome):
    assert fold_outcome(phases) == outcome


def test_a_finished_check_is_in_the_journal_at_once_and_on_disk_without_waiting(tmp_path, monkeypatch):
    """每个结束的检查立即写入日志文件（进程被杀也不丢）；fsync 由后台线程完成，检查之间不等磁盘。"""
    import voyager.ledger as ledger_module

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(ledger_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    led = Ledger.load(tmp_path, "f")
    for n in range(5):
        led.record_phase(f"suites/t.py::test_{n}", "setup", "passed")
        led.record_phase(f"suites/t.py::test_{n}", "call", "passed")
        led.record_phase(f"suites/t.py::test_{n}", "teardown", "passed")
        assert len(led.journal.read_bytes().splitlines()) == n + 1  # readable before any fsync
    assert led.sync() and 1 <= len(synced) <= 5  # one fsync covers the lines written before it
    assert Ledger.load(tmp_path, "f").outcome("suites/t.py::test_4") == "passed"
