"""The fact API the workload suites use (voyager.report.facts, minimal version): rows
belong to the step they were recorded in, ``ok`` defaults to expected == found,
values are redacted."""
from __future__ import annotations

from voyager.redact import REDACTOR
from voyager.report import facts


def test_rows_belong_to_their_step_and_are_redacted():
    REDACTOR.add_secret("guest-secret-77")
    with facts.FACTS.step("suites/x.py::test_a"):
        facts.record("地址", "127.0.0.1", "127.0.0.1", cell="集群管理信息!E18")
        facts.record("IOPS", "≥ 5000", 4000, ok=False)
        facts.note("login guest-secret-77")
    with facts.FACTS.step("suites/x.py::test_b"):
        facts.record("count", 1, 2)
    rows = facts.FACTS.rows("suites/x.py::test_a")
    first = rows[0]
    assert (first.kind, first.what, first.expected, first.found, first.cell, first.ok) == (
        "check", "地址", "127.0.0.1", "127.0.0.1", "集群管理信息!E18", True)
    assert rows[1].ok is False
    assert rows[2].kind == "note" and "guest-secret-77" not in rows[2].what
    assert facts.FACTS.rows("suites/x.py::test_b")[0].ok is False
