"""The delivery report (``voyager.report``) after real suite runs against the
simulator (subprocesses): a run with an injected VDS job failure, then a
``--lf`` rerun that fixes it.

* ``reports/<集群名称>/`` holds only deliverables (a folder per run, the
  cumulative ``report.html``, the Allure results); plan, ledger, state and
  evidence logs are in the state dir;
* the HTML is parsed (``html_support``, html.parser): language, no ``data:``
  link, an ``@page`` A4 rule, every check once with its criterion, status and
  expected/found table; the summary's figures equal the run's (checks per
  stage from its JUnit XML, serial, versions and S/N from the run state);
* the failure shows its Chinese cause and what to do first, the traceback
  collapsed; the skips say which prerequisite did not pass;
* the cumulative report shows every check passed, the rerun ones marked, their
  failed attempt collapsed; the first run's folder is not overwritten;
* Allure: one results folder across runs, readable names, labels, one step per
  exchange, the job failure ``failed`` (not ``broken``);
* headless Chromium (when installed) renders the table and prints A4 pages;
* a plan with unusual passwords through a failing run and its rerun with
  ``--tb=long -l`` leaves no secret anywhere under ``reports/`` or the state dir.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from html_support import Element, fragment, parse, report_data
from voyager.plan import write_plan
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret
from voyager.redact import secret_forms

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "DEMO-SMTX-Cls01"
TOTAL = 58  # suites 01-03 (the later suites have their own end-to-end tests)
VDS_TEST = "suites/test_03_config_cluster.py::test_business_vds"
RERUN = {VDS_TEST, "suites/test_03_config_cluster.py::test_vlans_count",
         "suites/test_03_config_cluster.py::test_cluster_configured",
         *(f"suites/test_03_config_cluster.py::test_business_vlan[VLAN-{n}]" for n in (1120, 1121, 1122))}
A4 = (595.0, 842.0)

pytestmark = pytest.mark.e2e


# --------------------------------------------------------------------------- helpers
SUITES_01_03 = ("suites/test_01_prepare.py", "suites/test_02_init_cluster.py", "suites/test_03_config_cluster.py")


def run_suites(base: Path, *args: str, suites=SUITES_01_03) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", *suites, "--sim", "--sim-speed", "0",
           "--state-dir", str(base / "state"), "--reports-dir", str(base / "reports"),
           "-o", f"cache_dir={base / 'cache'}", "-p", "no:randomly", "-q", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"returncode {proc.returncode}\n{(proc.stdout + proc.stderr)[-5000:]}"


class Report:
    """One delivery report, parsed."""

    def __init__(self, path: Path):
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.root = parse(self.text)
        self.data = report_data(self.root)

    @property
    def html(self) -> Element:
        return self.root.find("html")

    def css(self) -> str:
        return "\n".join(s.text() for s in self.root.find_all("style"))

    def checks(self) -> dict[str, dict]:
        """Per node id: result, criterion, node id shown, run cell, and the
        parsed extras (facts, failure, skip, evidence)."""
        out = {}
        for nodeid, rows in self.data["tests"].items():
            row = rows[0]
            cells = fragment(row["resultsTableRow"])
            extras = fragment("".join(e["content"] for r in rows for e in r["extras"]
                                      if e["format_type"] == "html"))
            logs = fragment("".join(r.get("log") or "" for r in rows))
            out[nodeid] = {
                "result": row["result"],
                "shown": cells.find("td", cls="col-result").text(),
                "title": cells.find("div", cls="check-title").text(),
                "nodeid": cells.find("div", cls="nodeid").text(),
                "run": cells.find("td", cls="col-run").text(),
                "extras": extras, "logs": logs, "rows": rows,
            }
        return out

    def summary(self) -> Element:
        return self.root.find("section", cls="delivery-summary")

    def stage_counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for tr in self.summary().find_all("tr", cls="stage"):
            out[tr.attrs["data-stage"]] = {
                o: int(tr.find("td", cls=o).text()) for o in ("checks", "passed", "failed", "error", "skipped")}
        return out

    def summary_value(self, cls: str) -> str:
        return self.summary().find("tr", cls=cls).find("td").text()


def junit_counts(path: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        stage = re.search(r"test_(\d{2})_", case.get("classname")).group(1)
        outcome = "passed"
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if case.find(tag) is not None:
                outcome = name
                break
        c = counts.setdefault(stage, {"checks": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0})
        c["checks"] += 1
        c[outcome] += 1
    return counts


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser(*args: str) -> subprocess.CompletedProcess:
    exe = chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--user-data-dir=" + str(Path(args[-1]).parent / ".chromium-profile"), *args[:-1],
           Path(args[-1]).as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- the scenario
@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    base = tmp_path_factory.mktemp("delivery")
    first = run_suites(base, "--sim-faults", "fail-job:NETWORK_CREATE_VDS:1")
    folder = base / "reports" / CLUSTER
    (run1,) = [p for p in folder.iterdir() if p.is_dir() and p.name != "allure-results"]
    run1_html = (run1 / "report.html").read_bytes()
    allure_first = {f.name for f in (folder / "allure-results").glob("*-result.json")}
    second = run_suites(base, "--lf")
    runs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "allure-results")
    return {"base": base, "first": first, "second": second, "folder": folder, "runs": runs,
            "run1_html": run1_html, "allure_first": allure_first, "state": base / "state"}


def test_runs_behave(scenario):
    assert scenario["first"].returncode == 1, explain(scenario["first"])
    assert scenario["second"].returncode == 0, explain(scenario["second"])


def test_reports_hold_only_deliverables(scenario):
    folder, runs = scenario["folder"], scenario["runs"]
    assert len(runs) == 2 and runs[0].name < runs[1].name
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(r.name for r in runs), "allure-results",
                                                                "report.html"])
    for run in runs:
        assert {"report.html", "junit.xml"} <= {p.name for p in run.iterdir()}
    files = [p for p in (scenario["base"] / "reports").rglob("*") if p.is_file()]
    forbidden = [p for p in files if p.suffix in (".xlsx", ".log") or p.name.startswith(
        ("ledger-", "run-state", "report-history", "sim-world", "known_hosts")) or "evidence" in p.parts]
    assert not forbidden, forbidden
    # the state, the ledger, the evidence, the demo plan and the report history are in the state dir
    state = scenario["state"]
    for pattern in ("run-state.json", "ledger-*.json", "evidence/*.log", "demo-plan.xlsx", "report-history-*.json"):
        assert list(state.glob(pattern)), pattern
    # the first run's folder was not overwritten by the rerun
    assert (runs[0] / "report.html").read_bytes() == scenario["run1_html"]
    assert (runs[0] / "artifacts" / "deploy-cluster-payload.json").is_file()


@pytest.mark.parametrize("which", ["run1", "run2", "cumulative"])
def test_report_structure(scenario, which):
    path = {"run1": scenario["runs"][0] / "report.html", "run2": scenario["runs"][1] / "report.html",
            "cumulative": scenario["folder"] / "report.html"}[which]
    report = Report(path)
    assert report.html.attrs.get("lang") == "zh-CN"
    assert 'href="data:' not in report.text and "data:text" not in report.text
    assert not [e for e in report.root.iter() if (e.attrs.get("href") or e.attrs.get("src") or "").startswith(
        ("http:", "https:", "//"))], "nothing may load from the network"
    css = report.css()
    assert re.search(r"@page\s*\{[^}]*size:\s*A4", css), "no @page A4 rule"
    assert re.search(r"font-family:[^;]*PingFang SC[^;]*Microsoft YaHei[^;]*Noto Sans CJK SC", css)
    title = report.root.find("h1").text()
    assert title == f"SmartX 超融合集群交付验收报告 — {CLUSTER}"
    checks = report.checks()
    assert len(checks) == TOTAL
    from suites import test_01_prepare, test_02_init_cluster, test_03_config_cluster

    modules = {m.__name__.split(".")[-1]: m for m in (test_01_prepare, test_02_init_cluster, test_03_config_cluster)}
    for nodeid, c in checks.items():
        assert c["nodeid"] == nodeid
        module = modules[nodeid.split("/")[-1].split(".py")[0]]
        doc = getattr(module, nodeid.split("::")[-1].split("[")[0]).__doc__
        criterion = "".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
        assert c["title"] == criterion, nodeid
        assert c["shown"] in ("通过", "失败", "跳过", "错误"), c["shown"]
        facts = c["extras"].find("div", cls="facts")
        assert facts is not None, nodeid
        table = facts.find("table", cls="facts-table")
        if c["result"] == "Passed":
            notes = facts.find_all("p", cls="fact-note")
            assert table is not None or [n for n in notes if "none" not in n.classes], (
                f"{nodeid}: a passed check shows expected/found facts or says why it has none")
        if table is not None:
            heads = [th.text() for th in table.find_all("th")]
            assert heads[:3] == ["核对项", "期望（规划）", "实际"], heads
            assert table.find_all("td")


def test_summary_matches_the_run(scenario):
    state = json.loads((scenario["state"] / "run-state.json").read_text(encoding="utf-8"))["facts"]
    for run, cumulative in ((scenario["runs"][0], False), (scenario["runs"][1], False),
                            (scenario["folder"], True)):
        report = Report(run / "report.html")
        counts = report.stage_counts()
        if cumulative:
            expected = {s: dict(c, passed=c["checks"], failed=0, skipped=0, error=0)
                        for s, c in junit_counts(scenario["runs"][0] / "junit.xml").items()}
        else:
            expected = junit_counts(run / "junit.xml")
        for stage in [f"{n:02d}" for n in range(1, 12)]:
            want = expected.get(stage, {"checks": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0})
            assert counts[stage] == want, (run.name, stage)
        assert report.summary_value("cluster-serial") == state["cluster"]["serial"]
        versions = {h["version"] + h["patch_version"] for h in state["hosts"].values()}
        assert report.summary_value("smtx-version") == "、".join(sorted(versions))
        rows = report.summary().find("tr", cls="hosts").find_all("tr")[1:]
        shown = {tr.find_all("td")[1].text(): tr.find_all("td")[2].text() for tr in rows}
        assert shown == {ip: h["sn"] for ip, h in state["hosts"].items()}
        assert "模拟器演练" in report.summary_value("target")
        assert report.summary_value("plan").startswith("demo-plan.xlsx（指纹 ")
        assert "/tmp" not in report.summary().text() and str(scenario["base"]) not in report.summary().text()
    first = Report(scenario["runs"][0] / "report.html")
    assert "未通过：1 项检查失败" in first.summary().find("p", cls="verdict").text()
    assert "验收通过" in Report(scenario["folder"] / "report.html").summary().find("p", cls="verdict").text()


def test_failure_shows_cause_action_and_collapsed_traceback(scenario):
    checks = Report(scenario["runs"][0] / "report.html").checks()
    vds = checks[VDS_TEST]
    assert vds["result"] == "Failed" and vds["shown"] == "失败"
    failure = vds["extras"].find("div", cls="failure")
    assert failure is not None
    cause = failure.find("pre", cls="cause").text()
    assert "NETWORK_CREATE_VDS" in cause and "failed" in cause
    assert "首先处理" in failure.text() and "--lf" in failure.text()
    traceback = vds["logs"].find("details", cls="traceback")
    assert traceback is not None and "open" not in traceback.attrs
    assert "def test_business_vds" not in traceback.text()  # short by default (--tb=short)
    assert "Traceback" not in vds["extras"].text()  # the cause comes first, the traceback only collapsed
    # the facts recorded before the failure are shown
    facts = vds["extras"].find("table", cls="facts-table")
    assert facts is not None and "vDS-Prod-Network" in facts.text()


def test_skips_say_why_in_chinese(scenario):
    checks = Report(scenario["runs"][0] / "report.html").checks()
    skipped = {n: c for n, c in checks.items() if c["result"] == "Skipped"}
    assert set(skipped) == RERUN - {VDS_TEST}
    for nodeid, c in skipped.items():
        reason = c["extras"].find("div", cls="skip").text()
        assert "前置检查" in reason and "未通过" in reason, reason
        assert "site-packages" not in reason and "depends on" not in reason
    vlan = skipped["suites/test_03_config_cluster.py::test_business_vlan[VLAN-1120]"]
    assert "前置检查 test_business_vds 未通过" in vlan["extras"].text()


def test_evidence_is_inline_and_collapsible(scenario):
    checks = Report(scenario["runs"][0] / "report.html").checks()
    deploy = checks["suites/test_02_init_cluster.py::test_deploy_triggered"]["extras"]
    evidence = deploy.find("details", cls="evidence")
    assert evidence is not None and "open" not in evidence.attrs
    assert "POST" in evidence.text() and "/api/v2/deployment/cluster" in evidence.text()
    payload = checks["suites/test_02_init_cluster.py::test_deploy_payload"]["extras"]
    attached = payload.find("details", cls="attachment")
    assert attached is not None and '"hosts"' in attached.text()
    link = payload.find("a", cls="artifact")
    assert link.attrs["href"] == "artifacts/deploy-cluster-payload.json"
    assert (scenario["runs"][0] / link.attrs["href"]).is_file()


def test_cumulative_shows_every_check_passed_with_rerun_marked(scenario):
    run1, run2 = (r.name for r in scenario["runs"])
    checks = Report(scenario["folder"] / "report.html").checks()
    assert len(checks) == TOTAL
    assert {c["result"] for c in checks.values()} == {"Passed"}
    for nodeid, c in checks.items():
        if nodeid in RERUN:
            assert c["run"] == f"{run2}（第 2 次尝试，重跑后）", c["run"]
            history = c["extras"].find("details", cls="history")
            assert history is not None and "open" not in history.attrs
            assert f"运行 {run1}：" in history.text()
        else:
            assert c["run"] == run1, (nodeid, c["run"])
            assert c["extras"].find("details", cls="history") is None
    assert "失败" in checks[VDS_TEST]["extras"].find("details", cls="history").text()
    # an artifact link of the cumulative report points into the run folder
    link = checks["suites/test_02_init_cluster.py::test_deploy_payload"]["extras"].find("a", cls="artifact")
    assert link.attrs["href"] == f"{run1}/artifacts/deploy-cluster-payload.json"
    summary = Report(scenario["folder"] / "report.html").summary_value("runs")
    assert summary == f"{run1}、{run2}"


def allure(folder: Path) -> dict[str, dict]:
    return {f.name: json.loads(f.read_text(encoding="utf-8"))
            for f in (folder / "allure-results").glob("*-result.json")}


def labels(result: dict) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result.get("labels", [])}


def test_allure_results(scenario):
    results = allure(scenario["folder"])
    first = [r for name, r in results.items() if name in scenario["allure_first"]]
    assert len(first) == TOTAL  # one folder across runs: the rerun added to it
    assert len(results) > TOTAL
    vds = [r for r in first if r["fullName"].endswith("#test_business_vds")]
    assert [r["status"] for r in vds] == ["failed"]  # a failed job is a verification failure
    for r in first:
        lab = labels(r)
        assert re.match(r"0[1-3] \S", lab["epic"]), lab
        assert lab["feature"] and lab["severity"] in ("blocker", "critical", "minor")
        assert not r["name"].startswith("test_"), r["name"]
        assert not any("Host(" in p["value"] for p in r.get("parameters", []))
    host = next(r for r in first if "test_host_nics" in r["fullName"] and "demo-node-02" in r["name"])
    assert labels(host)["story"] == "demo-node-02"
    deploy = next(r for r in first if r["fullName"].endswith("#test_deploy_triggered"))
    steps = deploy.get("steps") or []
    assert any(s["name"].startswith("POST ") and "/api/v2/deployment/cluster" in s["name"] for s in steps)
    assert all(s.get("attachments") for s in steps)


# --------------------------------------------------------------------------- browser
def pdf_pages(path: Path) -> list[tuple[float, float]]:
    data = path.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    return [(float(x2) - float(x1), float(y2) - float(y1)) for x1, y1, x2, y2 in boxes]


@pytest.mark.skipif(chromium() is None, reason="没有安装 Chromium（apt-get install chromium），跳过浏览器渲染与打印检查")
def test_chromium_renders_and_prints_a4(scenario, tmp_path):
    shots = scenario["base"] / "shots"
    shots.mkdir(exist_ok=True)
    for name, page in (("run1", scenario["runs"][0] / "report.html"), ("cumulative", scenario["folder"] / "report.html")):
        copy = shots / f"{name}.html"
        shutil.copy(page, copy)
        dom = browser("--dump-dom", str(copy))
        assert dom.returncode == 0, dom.stderr[-2000:]
        rendered = parse(dom.stdout)
        bodies = rendered.find("table", id="results-table").find_all("tbody", cls="results-table-row")
        assert len(bodies) == TOTAL, len(bodies)  # app.js drew every check, offline
        assert rendered.find("section", cls="delivery-summary") is not None
        pdf = shots / f"{name}.pdf"
        printed = browser("--no-pdf-header-footer", f"--print-to-pdf={pdf}", str(copy))
        assert pdf.is_file(), printed.stderr[-2000:]
        pages = pdf_pages(pdf)
        assert len(pages) >= 3, pages  # summary, then the stages on their own pages
        assert all(abs(w - A4[0]) < 2 and abs(h - A4[1]) < 2 for w, h in pages), set(pages)
        browser("--window-size=1280,2400", f"--screenshot={shots / (name + '.png')}", str(copy))
    print(f"\n[screenshots and PDFs in {shots}]")


# --------------------------------------------------------------------------- language
def test_english_report(tmp_path):
    proc = run_suites(tmp_path, "--report-lang", "en", suites=("suites/test_01_prepare.py",))
    assert proc.returncode == 0, explain(proc)
    report = Report(tmp_path / "reports" / CLUSTER / "report.html")
    assert report.html.attrs["lang"] == "en"
    assert report.root.find("h1").text() == f"SmartX HCI cluster delivery acceptance report — {CLUSTER}"
    assert {c["shown"] for c in report.checks().values()} == {"Passed"}
    heads = [th.text() for th in report.root.find("thead", id="results-table-head").find_all("th")]
    assert heads == ["Result", "Check (acceptance criterion)", "Run", "Duration"]
    assert report.summary().find("h2").text() == "Delivery summary"


# --------------------------------------------------------------------------- secrets
UNUSUAL = {
    "admin": 'Adm "in"<&>中文-9',
    "ssh": "sm@rt x'$(id)`x`9",
    "root": "r00t%s{0}\\n;|&Q",
    "bmc": "bmc Pa$$ü/#?=&9",
}


def test_unusual_passwords_leave_no_trace(tmp_path):
    plan = build_demo_plan()
    plan.cluster.admin_password = Secret(UNUSUAL["admin"])
    for host in plan.hosts:
        host.ssh_password = Secret(UNUSUAL["ssh"])
        host.admin_password = Secret(UNUSUAL["root"])
        host.bmc_password = Secret(UNUSUAL["bmc"])
    plan_file = tmp_path / "plan" / "plan.xlsx"
    plan_file.parent.mkdir()
    write_plan(plan, plan_file)
    first = run_suites(tmp_path, "--plan", str(plan_file), "--sim-faults", "fail-job:NETWORK_CREATE_VDS:1",
                       "--tb=long", "-l")
    assert first.returncode == 1, explain(first)
    second = run_suites(tmp_path, "--plan", str(plan_file), "--lf", "--tb=long", "-l")
    assert second.returncode == 0, explain(second)
    values = [s.reveal() for s in plan.secrets() if len(s.reveal()) >= 6]
    assert set(UNUSUAL.values()) <= set(values)
    forms = {f for v in values for f in secret_forms(v)}
    assert not list((tmp_path / "reports").rglob("*.xlsx"))  # no plan copy among the deliverables
    texts = {"stdout": first.stdout + first.stderr + second.stdout + second.stderr}
    for top in (tmp_path / "reports", tmp_path / "state"):
        for f in top.rglob("*"):
            if f.is_file() and f.suffix != ".xlsx":
                texts[str(f.relative_to(tmp_path))] = f.read_text(encoding="utf-8", errors="replace")
    assert len([k for k in texts if k.startswith("reports")]) > TOTAL
    leaks = sorted({name for name, text in texts.items() for form in forms if form in text})
    assert not leaks, leaks
