"""The report fact API contract (COMMON.md) that suites 04-06 record through:
rows go to the check currently running, ``ok`` defaults to expected == found,
notes are kept, and secrets are redacted at capture."""
from __future__ import annotations

from voyager.redact import REDACTOR
from voyager.report import facts


def test_rows_belong_to_the_running_check():
    with facts.FACTS.step("suites/t.py::test_a"):
        facts.record("VLAN", 1120, 1120, cell="虚拟网络!F8")
        facts.record("主机数", 3, 2)
        facts.note("说明")
    with facts.FACTS.step("suites/t.py::test_b"):
        facts.record("状态", "CONNECTED", "INITIALIZING", ok=True)
    rows = facts.FACTS.rows("suites/t.py::test_a")
    assert [(r.what, r.ok) for r in rows if r.kind == "check"] == [("VLAN", True), ("主机数", False)]
    assert rows[0].cell == "虚拟网络!F8"
    assert [r.what for r in rows if r.kind == "note"] == ["说明"]
    assert [r.ok for r in facts.FACTS.rows("suites/t.py::test_b")] == [True]


def test_secrets_are_redacted_at_capture():
    REDACTOR.add_secret("Zq9-very-secret")
    with facts.FACTS.step("suites/t.py::test_secret"):
        facts.record("密码", "Zq9-very-secret", "Zq9-very-secret")
    assert "Zq9-very-secret" not in str(facts.FACTS.rows("suites/t.py::test_secret"))
