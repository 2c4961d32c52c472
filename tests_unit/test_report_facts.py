"""Units of the delivery report: the fact API (``voyager.report.facts``), the
check HTML helpers (``voyager.report.check``), the catalogue and the history
rows for checks known only from the ledger."""
from __future__ import annotations

import contextvars
import json
import threading
from types import SimpleNamespace

import pytest

from html_support import fragment, parse, report_data
from suite_project import suite_project
from voyager.plan.model import Secret
from voyager.redact import REDACTOR
from voyager.report import check, facts, i18n
from voyager.report.facts import FACTS
from voyager.report.history import ReportHistory

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def clean_facts():
    FACTS.clear()
    yield
    FACTS.clear()


def test_record_and_note_belong_to_the_running_check():
    with FACTS.step("suites/t.py::test_a"):
        facts.record("VLAN ID", 1120, 1120, cell="虚拟网络!F8")
        facts.record("速率", "10G", "1G", cell="虚拟网络!L4")
        facts.record("链路", "已连接", "未连接", ok=True)  # explicit ok wins
        facts.note("规划表没有带外地址，不配置 IPMI")
    with FACTS.step("suites/t.py::test_b"):
        facts.record("x", [1, 2], [1, 2])
    rows = FACTS.rows("suites/t.py::test_a")
    assert [(r.kind, r.what, r.expected, r.found, r.cell, r.ok) for r in rows] == [
        ("check", "VLAN ID", "1120", "1120", "虚拟网络!F8", True),
        ("check", "速率", "10G", "1G", "虚拟网络!L4", False),
        ("check", "链路", "已连接", "未连接", "", True),
        ("note", "规划表没有带外地址，不配置 IPMI", "", "", "", None),
    ]
    assert FACTS.rows("suites/t.py::test_b")[0].expected == "1、2"
    FACTS.clear("suites/t.py::test_a")
    assert FACTS.rows("suites/t.py::test_a") == [] and FACTS.rows("suites/t.py::test_b")


def test_worker_threads_with_a_copied_context_record_for_the_caller():
    with FACTS.step("suites/t.py::test_threads"):
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(facts.record, "地址", "未被占用", "未被占用"))
        worker.start()
        worker.join()
    assert [r.what for r in FACTS.rows("suites/t.py::test_threads")] == ["地址"]


def test_facts_are_redacted_at_capture():
    REDACTOR.add_secret("Zq9-unusual-Secret")
    with FACTS.step("suites/t.py::test_secret"):
        facts.record("密码 Zq9-unusual-Secret", Secret("Zq9-unusual-Secret"), "Zq9-unusual-Secret")
        facts.record("body", {"password": "whatever-123456"}, None)
        facts.note("登录用 Zq9-unusual-Secret")
    text = repr(FACTS.rows("suites/t.py::test_secret"))
    assert "Zq9-unusual-Secret" not in text and "whatever-123456" not in text
    row = FACTS.rows("suites/t.py::test_secret")[0]
    assert row.expected == "******" and row.found != "Zq9-unusual-Secret"
    assert FACTS.rows("suites/t.py::test_secret")[1].found == "—"


def test_facts_table_html():
    rows = [facts.Fact("check", "VLAN ID", "1120", "1121", "虚拟网络!F8", False),
            facts.Fact("note", "说明 <b>")]
    root = fragment(check.facts_table(rows))
    table = root.find("table", cls="facts-table")
    assert [th.text() for th in table.find_all("th")] == ["核对项", "期望（规划）", "实际", "规划单元格", "一致"]
    assert [td.text() for td in table.find("tr", cls="mismatch").find_all("td")] == [
        "VLAN ID", "1120", "1121", "虚拟网络!F8", "✗"]
    assert root.find("p", cls="fact-note").text() == "说明：说明 <b>"
    assert "没有记录" in fragment(check.facts_table([])).text()
    assert "跳过" in fragment(check.facts_table([], skipped=True)).text()


def test_skip_reason_and_first_action():
    longrepr = ("/x/site-packages/pytest_dependency.py", 101,
                "Skipped: test_business_vlan[VLAN-1120] depends on test_business_vds")
    assert check.skip_reason(longrepr) == "前置检查 test_business_vds 未通过"
    assert check.skip_reason(("f", 1, "Skipped: 未提供 SMTX_VMTOOLS-*.iso")) == "未提供 SMTX_VMTOOLS-*.iso"
    bad = [facts.Fact("check", "VLAN ID", "1120", "1121", "虚拟网络!F8", False)]
    assert check.first_action("x", bad) == "核对并修正规划表 虚拟网络!F8，然后加 --lf 重跑。"
    assert "主机规划!I19" in check.first_action("VIP 为 x，应为 y（主机规划!I19）", [])
    assert "--lf" in check.first_action("连接被拒绝", [])


def test_crash_message_strips_the_exception_type():
    crash = SimpleNamespace(reprcrash=SimpleNamespace(
        message="voyager.steps.config.StepError: 业务网络 A 的 VLAN ID 为 1，应为 2（虚拟网络!F8）"))
    assert check.crash_message(crash) == "业务网络 A 的 VLAN ID 为 1，应为 2（虚拟网络!F8）"
    assert check.crash_message(SimpleNamespace(reprcrash=SimpleNamespace(
        message="AssertionError: 缺少网卡\nassert [] == ['x']"))) == "缺少网卡"


def test_stage_of_and_catalogue_languages():
    assert check.stage_of("suites/test_02_init_cluster.py::test_x") == "02"
    assert i18n.stage_name("08") == "集群巡检"
    assert all(len(pair) == 2 and all(pair) for pair in i18n.CATALOGUE.values())
    i18n.set_language("en")
    try:
        assert check.outcome_label("Passed") == "Passed" and i18n.html_lang() == "en"
        assert i18n.t("title", cluster="C1").startswith("SmartX HCI cluster")
    finally:
        i18n.set_language("zh")
    assert check.outcome_label("failed") == "失败" and i18n.html_lang() == "zh-CN"
    with pytest.raises(ValueError):
        i18n.set_language("fr")


def test_history_rows_for_checks_known_only_from_the_ledger(tmp_path):
    history = ReportHistory.open(tmp_path, "fp")
    ledger = SimpleNamespace(entries={
        "suites/test_01_x.py::test_a": {"outcome": "failed", "message": "连接失败", "duration": 1.5,
                                        "time": "2026-01-02T03:04:05+00:00",
                                        "report": {"doc": "检查 A 的标准。\n\n细节"}},
        "suites/test_01_x.py::test_b": {"outcome": "collected"},
    })
    merged = history.merged(ledger)
    a = fragment(merged["suites/test_01_x.py::test_a"][0]["resultsTableRow"])
    assert merged["suites/test_01_x.py::test_a"][0]["result"] == "Failed"
    assert a.find("div", cls="check-title").text() == "检查 A 的标准。"
    assert a.find("td", cls="col-run").text() == "2026-01-02 03:04:05"
    b = merged["suites/test_01_x.py::test_b"][0]
    assert fragment(b["resultsTableRow"]).find("td", cls="col-result").text() == "未运行"


# --------------------------------------------------------------------------- failed vs broken

BROKEN_SUITE = '''
from voyager.redact import RedactedError


def test_wrong_read_back():
    """读回的值与规划不一致时判为失败。"""
    raise RedactedError("设置后读到的 VIP 为 127.0.0.9，应为 127.10.20.10（主机规划!I19）")


def test_tool_bug():
    """工具自身的错误判为 broken。"""
    {}["missing"]
'''


def test_verification_failures_are_failed_tool_errors_broken(pytester, tmp_path):
    suite_project(pytester, {"test_01_x.py": BROKEN_SUITE})
    allure = tmp_path / "allure"
    result = pytester.runpytest("suites", "--sim", "--state-dir", str(tmp_path / "st"), f"--alluredir={allure}")
    result.assert_outcomes(failed=2)
    status = {}
    for f in allure.glob("*-result.json"):
        r = json.loads(f.read_text(encoding="utf-8"))
        status[r["fullName"].split("#")[-1]] = r["status"]
    assert status == {"test_wrong_read_back": "failed", "test_tool_bug": "broken"}
    page = parse((pytester.path / "reports" / "DEMO-SMTX-Cls01" / "report.html").read_text(encoding="utf-8"))
    tests = report_data(page)["tests"]
    extras = {n.split("::")[-1]: fragment("".join(e["content"] for r in rows for e in r["extras"]))
              for n, rows in tests.items()}
    wrong = extras["test_wrong_read_back"].find("div", cls="failure")
    assert "127.10.20.10（主机规划!I19）" in wrong.text() and "核对并修正规划表 主机规划!I19" in wrong.text()
    assert wrong.find("p", cls="broken") is None
    assert extras["test_tool_bug"].find("p", cls="broken") is not None
