"""The report of a ``--lf`` rerun shows every check (``voyager.report.carryover``).

Against the simulator (subprocesses, one state dir): a run with
``--sim-faults fail-job:NETWORK_CREATE_VDS:1`` fails the VDS check and skips
what depends on it; ``pytest suites/ --lf`` reruns those. The rerun's HTML
report, JUnit XML and Allure results then list all 58 checks: the 52 that
passed in the first run carried over (marked, with the Chinese note and the
first run's time), the 6 rerun as passed; the first run's reports carry
nothing; no secret appears anywhere. A small pytester suite covers carried
skips and the argument scope.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from suite_project import suite_project
from voyager.ledger import Ledger
from voyager.plan.demo import build_demo_plan
from voyager.redact import secret_forms
from voyager.report.carryover import JUNIT_PROPERTY, Carried, EvidenceLogs, local_time

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 58
SUITES_01_03 = ["suites/test_01_prepare.py", "suites/test_02_init_cluster.py", "suites/test_03_config_cluster.py"]
VDS_TEST = "suites/test_03_config_cluster.py::test_business_vds"
DEFAULT_PASSWORDS = ("P@ssw0rd!123", "HC!r0cks")


# --------------------------------------------------------------------------- helpers
def run_suites(state: Path, junit: Path, *args: str) -> subprocess.CompletedProcess:
    # the steps 01-03 (58 checks); later suites need a CloudTower and have their own e2e tests
    cmd = [sys.executable, "-m", "pytest", *SUITES_01_03, "--sim", "--sim-speed", "0",
           "--state-dir", str(state), "-o", f"cache_dir={state.parent / 'cache'}",
           "-p", "no:randomly", "-q", f"--junitxml={junit}", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        cases[nodeid] = case
    return cases


def junit_outcome(case: ET.Element) -> str:
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        if case.find(tag) is not None:
            return outcome
    return "passed"


def junit_props(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def html_tests(page: str) -> dict[str, list[dict]]:
    """pytest-html 4 embeds its data as JSON in ``data-jsonblob``."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "no data-jsonblob in the HTML report"
    return json.loads(html.unescape(blob.group(1)))["tests"]


def decoded_extras(page: str) -> list[str]:
    return [base64.b64decode(m).decode("utf-8", "replace")
            for m in re.findall(r"data:[\w/+.-]+;charset=utf-8;base64,([A-Za-z0-9+/=]+)", page)]


def allure_results(directory: Path) -> dict[str, dict]:
    return {f.name: json.loads(f.read_text(encoding="utf-8")) for f in directory.glob("*-result.json")}


def labels(result: dict) -> list[tuple[str, str]]:
    return [(label["name"], label["value"]) for label in result.get("labels", [])]


# --------------------------------------------------------------------------- the scenario
@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    base = tmp_path_factory.mktemp("carry")
    state = base / "state"
    report_dir = state / "report"
    started = time.monotonic()
    first = run_suites(state, base / "junit-1.xml", "--sim-faults", "fail-job:NETWORK_CREATE_VDS:1")
    first_html = (report_dir / "report.html").read_text(encoding="utf-8")
    first_allure = allure_results(report_dir / "allure-results")
    second = run_suites(state, base / "junit-2.xml", "--lf")
    elapsed = time.monotonic() - started
    ledger = json.loads(next(state.glob("ledger-*.json")).read_text(encoding="utf-8"))["entries"]
    new_allure = {k: v for k, v in allure_results(report_dir / "allure-results").items()
                  if k not in first_allure}
    return {
        "base": base, "state": state, "first": first, "second": second, "elapsed": elapsed,
        "first_junit": junit_cases(base / "junit-1.xml"), "second_junit": junit_cases(base / "junit-2.xml"),
        "first_html": first_html, "second_html": (report_dir / "report.html").read_text(encoding="utf-8"),
        "first_allure": first_allure, "second_allure": new_allure, "ledger": ledger,
    }


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"returncode {proc.returncode}\n{(proc.stdout + proc.stderr)[-5000:]}"


def first_outcomes(rerun) -> dict[str, str]:
    return {n: junit_outcome(c) for n, c in rerun["first_junit"].items()}


def test_first_run_report_carries_nothing(rerun):
    first = rerun["first"]
    assert first.returncode == 1, explain(first)
    outcomes = first_outcomes(rerun)
    assert len(outcomes) == TOTAL
    assert [n for n, o in outcomes.items() if o == "failed"] == [VDS_TEST]
    assert not any(JUNIT_PROPERTY in junit_props(c) for c in rerun["first_junit"].values())
    assert "沿用" not in first.stdout and "col-voyager-note" not in rerun["first_html"]
    assert "沿用" not in rerun["first_html"]
    assert not any(name == "carriedOver" for r in rerun["first_allure"].values() for name, _ in labels(r))


def test_rerun_terminal_counts_carried_checks_apart(rerun):
    second = rerun["second"]
    assert second.returncode == 0, explain(second)
    passed_first = sum(1 for o in first_outcomes(rerun).values() if o == "passed")
    summary = [ln for ln in second.stdout.splitlines() if " in " in ln and "passed" in ln][-1]
    assert re.search(rf"\b{TOTAL - passed_first} passed\b", summary), summary
    assert f"{passed_first} 沿用先前通过" in summary, summary
    assert f"沿用先前通过 {passed_first}" in second.stdout  # the voyager section


def test_rerun_junit_lists_every_check(rerun):
    outcomes = first_outcomes(rerun)
    cases = rerun["second_junit"]
    assert set(cases) == set(outcomes)
    assert {n: junit_outcome(c) for n, c in cases.items()} == {n: "passed" for n in outcomes}
    carried = {n for n, c in cases.items() if junit_props(c).get(JUNIT_PROPERTY) == "true"}
    assert carried == {n for n, o in outcomes.items() if o == "passed"}
    rerun_ids = set(cases) - carried
    assert VDS_TEST in rerun_ids and len(rerun_ids) == 6
    first_start = local_time(rerun["ledger"][next(iter(carried))]["run"]["started"])
    for nodeid in carried:
        assert junit_props(cases[nodeid])["voyager_carried_run"] == first_start


def test_rerun_html_report_lists_every_check(rerun):
    page = rerun["second_html"]
    tests = html_tests(page)
    assert len(tests) == TOTAL
    assert {rows[0]["result"] for rows in tests.values()} == {"Passed"}
    ledger = rerun["ledger"]
    outcomes = first_outcomes(rerun)
    for nodeid, rows in tests.items():
        row = "".join(rows[0]["resultsTableRow"])
        if outcomes[nodeid] == "passed":
            started = local_time(ledger[nodeid]["run"]["started"])
            assert f"〔沿用〕本次未重跑：已于 {started} 的运行中通过" in row, row
            assert "沿用先前结果 carried over" in rows[0]["log"]
        else:
            assert "本次重跑" in row and "沿用" not in row, row
    assert "重跑 6 项" in page and f"另有 {TOTAL - 6} 项本次未重跑" in page
    # the evidence of the first run is attached to the carried deployment check
    deploy = tests["suites/test_02_init_cluster.py::test_deploy_triggered"][0]
    names = [e["name"] for e in deploy["extras"]]
    assert any(n.startswith("原运行的接口与命令记录") for n in names), names
    assert any("POST" in text and "/api/v2/deployment" in text for text in decoded_extras(page))


def test_rerun_allure_results_list_every_check(rerun):
    new = list(rerun["second_allure"].values())
    assert len(new) == TOTAL
    carried = [r for r in new if ("carriedOver", "true") in labels(r)]
    assert len(carried) == TOTAL - 6
    assert all(r["status"] == "passed" for r in new)
    for r in carried:
        assert ("tag", "沿用先前通过") in labels(r)
        assert r["statusDetails"]["message"].startswith("本次未重跑：已于 ")
        assert any(p["name"] == "沿用 carried over" and p.get("excluded") for p in r["parameters"])
    # same history id as the first run's result: Allure groups them
    first_ids = {(r["fullName"], r["name"]): r["historyId"] for r in rerun["first_allure"].values()}
    assert {(r["fullName"], r["name"]): r["historyId"] for r in carried}.items() <= first_ids.items()
    assert len({r["historyId"] for r in new}) == TOTAL


def test_no_secret_in_any_report(rerun):
    values = [s.reveal() for s in build_demo_plan().secrets() if len(s.reveal()) >= 6]
    values += list(DEFAULT_PASSWORDS)
    forms = {f for v in values for f in secret_forms(v)}
    base, state = rerun["base"], rerun["state"]
    texts = {"html-1": rerun["first_html"], "html-2": rerun["second_html"],
             "ledger": next(state.glob("ledger-*.json")).read_text(encoding="utf-8"),
             "out": rerun["second"].stdout + rerun["second"].stderr}
    texts["html-2-extras"] = "\n".join(decoded_extras(rerun["second_html"]))
    for junit in base.glob("junit-*.xml"):
        texts[junit.name] = junit.read_text(encoding="utf-8")
    for f in (state / "report" / "allure-results").iterdir():
        texts[f.name] = f.read_text(encoding="utf-8", errors="replace")
    leaks = sorted({name for name, text in texts.items() for form in forms if form in text})
    assert not leaks, leaks


def test_added_time_is_reported(rerun, capsys):
    with capsys.disabled():
        print(f"\n[carry-over scenario: fault run + --lf in {rerun['elapsed']:.1f} s]")
    assert rerun["elapsed"] < 120


# --------------------------------------------------------------------------- pytester: skips and scope
SUITE_A = '''
import pytest
from pathlib import Path

FLAG = Path(__file__).parent.parent / "fixed"

@pytest.mark.dependency()
def test_ok():
    """第一项：总是通过。"""

def test_optional():
    """可选项：未配置时跳过。"""
    pytest.skip("未配置，按设计跳过")

@pytest.mark.dependency(depends=["test_ok"])
def test_fix():
    assert FLAG.exists(), "需要修复"

@pytest.mark.dependency(depends=["test_fix"])
def test_after():
    pass
'''

SUITE_B = '''
def test_other():
    """另一个模块的检查。"""
'''


@pytest.fixture
def small(pytester, tmp_path):
    suite_project(pytester, {"test_a.py": SUITE_A, "test_b.py": SUITE_B})
    state = tmp_path / "state"

    def run(*args, target="suites"):
        junit = tmp_path / f"junit-{len(list(tmp_path.glob('junit-*.xml')))}.xml"
        result = pytester.runpytest(target, "--sim", "--state-dir", str(state), "-p", "no:randomly",
                                    f"--junitxml={junit}", *args)
        return result, junit_cases(junit)

    run.path = pytester.path
    return run


def test_plain_skip_is_carried_as_skipped_and_scope_follows_arguments(small):
    first, _ = small()
    first.assert_outcomes(passed=2, failed=1, skipped=2)
    (small.path / "fixed").write_text("ok")
    second, cases = small("--lf", target="suites/test_a.py")
    second.assert_outcomes(passed=2)
    out = second.stdout.str()
    assert "1 沿用先前通过" in out and "1 沿用先前跳过" in out
    # test_b.py was not an argument: not carried
    assert set(cases) == {f"suites/test_a.py::{n}" for n in ("test_ok", "test_optional", "test_fix",
                                                             "test_after")}
    optional = cases["suites/test_a.py::test_optional"]
    assert junit_outcome(optional) == "skipped"
    message = optional.find("skipped").get("message")
    assert "本次未重跑：已于" in message and "跳过" in message and "未配置" in message
    assert junit_props(optional)[JUNIT_PROPERTY] == "true"
    assert JUNIT_PROPERTY not in junit_props(cases["suites/test_a.py::test_fix"])

    # without --lf nothing is carried, even with earlier results in the ledger
    plain, cases = small(target="suites/test_a.py")
    plain.assert_outcomes(passed=3, skipped=1)
    assert "沿用" not in plain.stdout.str()
    assert not any(JUNIT_PROPERTY in junit_props(c) for c in cases.values())


# --------------------------------------------------------------------------- units
def test_ledger_keeps_run_and_report_block(tmp_path):
    led = Ledger.load(tmp_path, "f")
    led.run = {"started": "2026-01-02T03:04:05+00:00", "evidence": "evidence/x.log"}
    for when in ("setup", "call", "teardown"):
        led.record_phase("suites/t.py::test_x", when, "passed",
                         report={"doc": "检查 x。", "location": ["suites/t.py", 3, "test_x"]}
                         if when == "teardown" else None)
    led.record_phase("suites/t.py::test_y", "setup", "skipped",
                     longrepr=("suites/t.py", 9, "Skipped: demo-node-01 depends on test_x"),
                     dependency_marked=True)
    led.record_phase("suites/t.py::test_y", "teardown", "passed", dependency_marked=True)
    again = Ledger.load(tmp_path, "f")
    entry = again.entries["suites/t.py::test_x"]
    assert entry["run"] == led.run and entry["report"]["doc"] == "检查 x。"
    assert set(again.carried_entries()) == {"suites/t.py::test_x"}  # a dependency skip is never carried
    assert again.carried_entries(exclude=["suites/t.py::test_x"]) == {}

    carried = Carried("suites/t.py::test_x", entry, "")
    assert carried.note().startswith(f"本次未重跑：已于 {local_time(led.run['started'])} 的运行中通过")
    assert carried.title == "检查 x。" and carried.location == ("suites/t.py", 3, "test_x")


def test_evidence_sections_by_nodeid(tmp_path):
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "r.log").write_text(
        "## suites/t.py::test_a\n\n[2026-01-01 00:00:00.000] GET http://h/a → 200 (0.001 s)\n"
        "  响应 (response): {}\n\n## suites/t.py::test_b[x]\n\n[t] POST http://h/b → 200\n",
        encoding="utf-8")
    logs = EvidenceLogs(tmp_path)
    run = {"run": {"evidence": "evidence/r.log"}}
    assert logs.section(run, "suites/t.py::test_a").startswith(
        "[2026-01-01 00:00:00.000] GET http://h/a")
    assert logs.section(run, "suites/t.py::test_b[x]") == "[t] POST http://h/b → 200"
    assert logs.section(run, "suites/t.py::test_c") == ""
    assert logs.section({"run": {"evidence": "evidence/missing.log"}}, "suites/t.py::test_a") == ""
    assert logs.section({}, "suites/t.py::test_a") == ""
