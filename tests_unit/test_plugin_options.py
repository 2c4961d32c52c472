"""The suite plugin's options, its usage error, and that it stays inert for
anything but suites/."""
from __future__ import annotations

import pytest

from suite_project import suite_project
from voyager.pytest_plugin import parse_sim_hosts, safe_dirname

pytest_plugins = ["pytester"]
PLUGINS = ("voyager.pytest_plugin", "fixtures.plan", "fixtures.state")

PARAM_SUITE = '''
def test_host(host):
    assert host.mgmt_ip.startswith("127.10.20.")

def test_vlan(vlan):
    assert 1120 <= vlan.vlan <= 1122

def test_plan(plan, run_state, voyager_run):
    assert plan.cluster.name == "DEMO-SMTX-Cls01"
    run_state.set("cluster", "name", plan.cluster.name)
'''


@pytest.fixture
def project(pytester):
    suite_project(pytester, {"test_p.py": PARAM_SUITE}, PLUGINS)
    (pytester.path / "other").mkdir()
    (pytester.path / "other" / "test_o.py").write_text(
        "def test_o(pytestconfig):\n    assert pytestconfig.getoption('voyager_plan') is None\n",
        encoding="utf-8")
    return pytester


def test_suites_without_plan_or_sim_stop_with_a_chinese_usage_message(project):
    result = project.runpytest("suites")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "pytest suites/ --plan=规划设计表.xlsx" in err
    assert "pytest suites/ --sim" in err
    assert "passed" not in result.stdout.str()  # nothing ran


def test_suites_reached_through_another_path_stop_too(project):
    result = project.runpytest(".")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--plan" in result.stderr.str()


def test_plugin_is_inert_outside_suites(project):
    result = project.runpytest("other")
    result.assert_outcomes(passed=1)
    assert "voyager:" not in result.stdout.str()
    assert not (project.path / "reports").exists()


def test_hosts_and_vlans_are_rows_with_readable_ids(project, tmp_path):
    result = project.runpytest("suites", "--sim", "--state-dir", str(tmp_path / "st"), "-v")
    result.assert_outcomes(passed=7)
    out = result.stdout.str()
    for row in ("test_host[demo-node-01]", "test_host[demo-node-03]", "test_vlan[VLAN-1120]",
                "test_vlan[VLAN-1122]"):
        assert row in out
    assert "voyager: 状态目录" in out
    assert (tmp_path / "st" / "run-state.json").exists()


def test_suites_run_without_the_cache_plugin(project, tmp_path):
    # ``-p no:cacheprovider`` removes --lf with its plugin; the ledger must not ask for it
    result = project.runpytest("suites", "--sim", "--state-dir", str(tmp_path / "st"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_default_state_dir_is_per_cluster(project):
    result = project.runpytest("suites/test_p.py::test_plan", "--sim")
    result.assert_outcomes(passed=1)
    state = project.path / ".voyager" / "DEMO-SMTX-Cls01"
    assert (state / "run-state.json").exists() and (state / "demo-plan.xlsx").exists()
    # reports/ holds only the deliverables: a folder per run and the cumulative report
    reports = project.path / "reports" / "DEMO-SMTX-Cls01"
    assert (reports / "report.html").exists()
    assert not [p for p in reports.rglob("*") if p.suffix in (".xlsx", ".log") or p.name.startswith(
        ("run-state", "ledger-", "report-history"))]


def test_state_dir_moves_only_the_state(project, tmp_path):
    result = project.runpytest("suites/test_p.py::test_plan", "--sim", "--state-dir", str(tmp_path / "st"))
    result.assert_outcomes(passed=1)
    assert (tmp_path / "st" / "run-state.json").exists()
    runs = [p for p in (project.path / "reports" / "DEMO-SMTX-Cls01").iterdir() if p.is_dir()]
    assert any((p / "report.html").exists() and (p / "junit.xml").exists() for p in runs)
    assert not (tmp_path / "st" / "report").exists()


def test_given_report_paths_are_respected(project, tmp_path):
    html, allure = tmp_path / "mine.html", tmp_path / "allure"
    result = project.runpytest("suites/test_p.py::test_plan", "--sim", "--state-dir", str(tmp_path / "st"),
                               f"--html={html}", f"--alluredir={allure}")
    result.assert_outcomes(passed=1)
    assert html.exists() and list(allure.glob("*-result.json"))
    assert 'lang="zh-CN"' in html.read_text(encoding="utf-8")  # still the delivery report


def test_missing_plan_file_is_a_usage_error(project):
    result = project.runpytest("suites", "--plan", "nope.xlsx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "找不到规划表文件" in result.stderr.str()


def test_bad_sim_host_is_a_usage_error(project):
    result = project.runpytest("suites", "--sim", "--sim-host", "127.10.20.12:colour=blue")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "missing_nics" in result.stderr.str()


def test_sim_host_for_an_unplanned_address_is_a_usage_error(project, tmp_path):
    result = project.runpytest("suites", "--sim", "--state-dir", str(tmp_path / "st"),
                               "--sim-host", "127.10.20.99:missing_nics=ens224")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "127.10.20.99" in result.stderr.str()


def test_parse_sim_hosts():
    assert parse_sim_hosts([
        "127.10.20.12:missing_nics=ens224",
        "127.10.20.12:down_nics=ens161,ens256:version=6.1.0",
        "127.10.20.13:deployed=true",
    ]) == {
        "127.10.20.12": {"missing_nics": ["ens224"], "down_nics": ["ens161", "ens256"], "version": "6.1.0"},
        "127.10.20.13": {"deployed": True},
    }
    for bad in ("127.10.20.12", "127.10.20.12:missing_nics", "127.10.20.12:deployed=perhaps"):
        with pytest.raises(pytest.UsageError):
            parse_sim_hosts([bad])


def test_safe_dirname():
    assert safe_dirname("CN-BJ-SMTX-Prod-Cls01") == "CN-BJ-SMTX-Prod-Cls01"
    assert safe_dirname("集群 01/../x") == "集群_01_.._x"
    assert safe_dirname("") == "cluster"


@pytest.mark.parametrize("target", ["suites", "other"])
def test_lf_without_the_cache_plugin_is_a_chinese_usage_error(project, tmp_path, target):
    result = project.runpytest(target, "--sim", "--state-dir", str(tmp_path / "st"), "-p", "no:cacheprovider",
                               "--lf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "-p no:cacheprovider 关闭了 pytest 的缓存插件" in err and "请去掉 -p no:cacheprovider" in err
    assert "unrecognized arguments" not in err
    assert "passed" not in result.stdout.str()
