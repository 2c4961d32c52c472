"""The delivery report's face (pytest-html): a title naming the cluster, the
plan and run facts in the environment table, and an "验收标准" column holding
each check's acceptance criterion (the first line of its docstring), so the
customer reads what was accepted, not only test ids.

Registered by the suite plugin for suite runs only; every hook is optional, so
nothing happens when pytest-html is not active.
"""
from __future__ import annotations

import html
from typing import Any, Optional

import pytest

from voyager.report.carryover import carried_marker, describe_title

PLUGIN_NAME = "voyager-html"
CRITERION_KEY = "voyager_criterion"


class HtmlReportPlugin:
    def __init__(self, run: Any) -> None:
        self.run = run  # voyager.pytest_plugin.VoyagerRun

    # -- facts of the run ---------------------------------------------------------
    def environment(self) -> dict[str, str]:
        run, plan = self.run, self.run.plan
        hosts = "、".join(f"{h.name}（{h.mgmt_ip}）" for h in plan.hosts)
        return {
            "集群 Cluster": plan.cluster.name or "",
            "规划表 Plan": str(run.plan_path or "内置演示规划表"),
            "规划指纹 Plan fingerprint": plan.fingerprint(),
            "主机 Hosts": f"{len(plan.hosts)} 台：{hosts}",
            "集群 VIP": plan.cluster.vip or "",
            "CloudTower": plan.cloudtower.ip or "",
            "网络架构 / 存储架构": f"{plan.cluster.network_arch} / {plan.cluster.storage_arch}",
            "运行方式 Mode": "内置模拟器演练 (--sim)" if run.options.sim else "真实环境",
            "状态目录 State dir": str(run.state_dir),
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # pytest-metadata absent: no environment table to fill
            return
        metadata = session.config.stash.get(metadata_key, None)
        if metadata is not None:
            metadata.update(self.environment())

    # -- pytest-html ------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        report.title = f"SmartX 集群部署验收报告 · {self.run.plan.cluster.name}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list) -> None:
        cells.insert(2, '<th class="col-voyager-criterion">验收标准 Acceptance criterion</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells: list) -> None:
        text: Optional[str] = getattr(report, CRITERION_KEY, None)
        if text is None:  # a carried-over row: its title comes from the ledger
            text = (carried_marker(report) or {}).get("title", "")
        cells.insert(2, f'<td class="col-voyager-criterion">{html.escape(text or "")}</td>')

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        outcome = yield
        setattr(outcome.get_result(), CRITERION_KEY, describe_title(item))


def register(config: pytest.Config, run: Any) -> HtmlReportPlugin:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = HtmlReportPlugin(run)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin
