"""The plugin with a plan file: refuses to resume on a changed plan unless
accepted, ignores written-back serials, and keeps secrets out of reports."""
from __future__ import annotations

import json

import pytest

from suite_project import suite_project
from voyager.plan import write_back, write_plan
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret

pytest_plugins = ["pytester"]
PLUGINS = ("voyager.pytest_plugin", "fixtures.plan", "fixtures.state")

SUITE = '''
import pytest

@pytest.mark.dependency()
def test_learn(run_state, plan):
    run_state.merge("hosts", plan.hosts[0].mgmt_ip, {"uuid": "u-1"})
    assert run_state.get("hosts", plan.hosts[0].mgmt_ip)["uuid"] == "u-1"

@pytest.mark.dependency(depends=["test_learn"])
def test_attach(request, plan):
    from voyager.report.attach import attach_json
    attach_json(request, "载荷 payload", {"hosts": [{"password": "c+G6KvJYsKyQyY4U", "ip": plan.hosts[0].mgmt_ip}],
                                        "note": "admin " + plan.cluster.admin_password.reveal()})

def test_secret_in_a_failure(plan):
    value = plan.cluster.admin_password.reveal()
    assert value == "something else", "the password was " + value
'''


@pytest.fixture
def project(pytester, tmp_path):
    suite_project(pytester, {"test_s.py": SUITE}, PLUGINS)
    plan = build_demo_plan()
    plan.cluster.admin_password = Secret("Adm1n-Secret-9")
    plan_file = tmp_path / "plan.xlsx"
    write_plan(plan, plan_file)
    state = tmp_path / "state"

    def run(*args):
        return pytester.runpytest("suites", "--plan", str(plan_file), "--state-dir", str(state), *args)

    run.plan_file, run.state, run.plan = plan_file, state, plan
    return run


def test_changed_plan_is_refused_then_accepted(project):
    first = project("-k", "learn")
    first.assert_outcomes(passed=1, deselected=2)
    changed = project.plan
    changed.hosts[1].mgmt_ip = "127.10.20.99"
    changed.networks.business.vlans[2].vlan = 1199
    write_plan(changed, project.plan_file)

    refused = project("-k", "learn")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    err = refused.stderr.str()
    assert "hosts[1].mgmt_ip: '127.10.20.12' → '127.10.20.99'" in err
    assert "networks.business.vlans[2].vlan: 1122 → 1199" in err
    assert "--plan-changed=accept" in err

    accepted = project("-k", "learn", "--plan-changed=accept")
    accepted.assert_outcomes(passed=1, deselected=2)
    facts = json.loads((project.state / "run-state.json").read_text(encoding="utf-8"))["facts"]
    assert facts["hosts"]["127.10.20.11"] == {"uuid": "u-1"}
    assert "plan_changes_accepted" in facts["history"]
    assert len(list(project.state.glob("ledger-*.json"))) == 2  # a fresh ledger for the new plan


def test_written_back_serial_is_not_a_change(project):
    project("-k", "learn").assert_outcomes(passed=1, deselected=2)
    write_back(project.plan_file, {"cluster_serial": "c8b39907-464c-44b4-94bb-7c2ac243f390"})
    project("-k", "learn").assert_outcomes(passed=1, deselected=2)


def test_secrets_stay_out_of_report_state_and_output(project, tmp_path):
    html = tmp_path / "report.html"
    result = project(f"--html={html}", "--self-contained-html")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str() + result.stderr.str()
    report = html.read_text(encoding="utf-8")
    state = (project.state / "run-state.json").read_text(encoding="utf-8")
    ledger = next(project.state.glob("ledger-*.json")).read_text(encoding="utf-8")
    assert "载荷 payload" in report or "payload" in report
    for text in (output, report, state, ledger):
        assert "Adm1n-Secret-9" not in text
        assert "c+G6KvJYsKyQyY4U" not in text
    assert "the password was" in output  # the failure is shown, its secret masked
