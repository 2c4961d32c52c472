"""The delivery report in pytest-html: registered by the suite plugin for
suite runs (``register``), installed over pytest-html's own report object once
pytest-html is configured (``install``, from ``voyager.report.options``).

* the per-run report (``reports/<集群名称>/<run>/report.html`` or ``--html``)
  and the cumulative report (``reports/<集群名称>/report.html``) are
  ``voyager.report.pages`` objects: the delivery template and CSS, summary
  first (``pytest_html_results_summary``), language from ``--report-lang``;
* each row (``pytest_html_results_table_row``) shows the result in the report
  language, the check's criterion (its docstring) with the node id small, the
  run it came from and its duration;
* under it (an html extra added at teardown): why it failed and what to do
  first, or why it was skipped; its expected-vs-found facts
  (``voyager.report.facts``); its attachments and its evidence
  (``voyager.evidence``), inline and collapsible; the traceback and captured
  log collapsed (``pytest_html_results_table_html``).
"""
from __future__ import annotations

import re
from typing import Any, Optional

import pytest

from voyager.report import check
from voyager.report.carryover import carried_marker
from voyager.report.titles import describe_title
from voyager.report.i18n import t

PLUGIN_NAME = "voyager-html"
RUN_PLUGIN = "voyager-html-run"
CUMULATIVE_PLUGIN = "voyager-html-cumulative"
CRITERION_KEY = "voyager_criterion"
PHASES_KEY = pytest.StashKey[dict]()
DURATION_RE = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("smtx-voyager", "pytest", "pytest-html", "allure-pytest"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


class HtmlReportPlugin:
    def __init__(self, run: Any) -> None:
        self.run = run  # voyager.pytest_plugin.VoyagerRun
        self.reports: list[Any] = []  # the delivery report objects (per run, cumulative)

    # -- installation ------------------------------------------------------------------
    def install(self, config: pytest.Config) -> None:
        """Replace pytest-html's report object by the per-run delivery report
        and add the cumulative one (after pytest-html's ``pytest_configure``)."""
        from pytest_html.basereport import BaseReport

        from voyager.report.history import ReportHistory
        from voyager.report.layout import get_layout
        from voyager.report.pages import CumulativeReport, run_report_class

        layout = get_layout(config)
        if layout is None or self.reports:
            return
        pm = config.pluginmanager
        original = next((p for p in pm.get_plugins() if isinstance(p, BaseReport)), None)
        if original is not None:
            pm.unregister(original)
            cls = run_report_class(bool(config.getoption("self_contained_html")))
            per_run = cls(original._report_path, config, original._report, None, original._css)
            per_run.voyager_setup(self.run, layout)
            pm.register(per_run, RUN_PLUGIN)
            self.reports.append(per_run)
        if hasattr(config, "workerinput"):
            return
        from pytest_html.report_data import ReportData

        cumulative = CumulativeReport(layout.cumulative, config, ReportData(config), None,
                                      original._css if original is not None else "")
        cumulative.voyager_setup(self.run, layout,
                                 ReportHistory.open(self.run.state_dir, self.run.plan.fingerprint()))
        pm.register(cumulative, CUMULATIVE_PLUGIN)
        self.reports.append(cumulative)

    # -- environment: only the tool's versions, in the appendix ------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # pytest-metadata absent: no environment table to fill
            return
        metadata = session.config.stash.get(metadata_key, None)
        if metadata is not None:
            metadata.clear()
            metadata.update({f"{t('app.tool')}: {k}": v for k, v in tool_versions().items()})

    # -- pytest-html ------------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        report.title = t("title", cluster=self.run.plan.cluster.name or "")

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_html_results_table_header(self, cells: list) -> None:
        from voyager.report.pages import table_header

        cells[:] = table_header()

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_html_results_table_row(self, report, cells: list) -> None:
        if not cells:
            return
        from pytest_html.basereport import _process_outcome

        from voyager.report.layout import get_layout

        outcome = _process_outcome(report)
        duration = DURATION_RE.search(cells[2]) if len(cells) > 2 else None
        marker = carried_marker(report)
        title: Optional[str] = getattr(report, CRITERION_KEY, None)
        if marker is not None:
            title = title or marker.get("title", "")
            run_text = t("run.carried", run=marker.get("run", ""))
        else:
            layout = get_layout(self.run.config)
            run_text = layout.run_id if layout is not None else ""
        cells[:] = [check.result_cell(outcome), check.check_cell(title or "", report.nodeid),
                    check.run_cell(run_text), check.duration_cell(duration.group(1) if duration else "")]

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_html_results_table_html(self, report, data: list) -> None:
        failed = report.outcome == "failed"
        data[:] = [check.log_block(report.longreprtext if failed else "", report.sections, failed)]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list, session) -> None:
        for page in self.reports:
            if page._report.additional_summary["prefix"] is prefix:
                prefix.insert(0, page.summary_html())

    # -- per check -------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        outcome = yield
        report = outcome.get_result()
        setattr(report, CRITERION_KEY, describe_title(item))
        phases = item.stash.setdefault(PHASES_KEY, {})
        exc = call.excinfo.value if call.excinfo is not None else None
        phases[report.when] = (report.outcome, report.longrepr, exc)
        if report.when == "teardown":
            report.extras = list(getattr(report, "extras", [])) + [self.check_extra(item, phases)]
            del item.stash[PHASES_KEY]

    def check_extra(self, item: pytest.Item, phases: dict) -> dict:
        from pytest_html import extras

        from voyager.evidence import RECORDER
        from voyager.report.allure_steps import is_tool_error
        from voyager.report.attach import pending
        from voyager.report.facts import FACTS

        facts = FACTS.rows(item.nodeid)
        parts = []
        skipped = False
        for when in ("setup", "call", "teardown"):
            got = phases.get(when)
            if got is None:
                continue
            outcome, longrepr, exc = got
            if outcome == "failed":
                cause = check.crash_message(longrepr)
                parts.append(check.failure_block(cause, check.first_action(cause, facts),
                                                 broken=exc is not None and is_tool_error(exc)))
                break
            if outcome == "skipped":
                parts.append(check.skip_block(check.skip_reason(longrepr)))
                skipped = True
                break
        parts.append(check.facts_table(facts, skipped=skipped))
        parts += [check.image_block(a.name, a.link) if a.image else check.attachment_block(a.name, a.text, a.link)
                  for a in pending(item)]
        parts.append(check.evidence_block(RECORDER.shown(item.nodeid), RECORDER.dropped(item.nodeid)))
        FACTS.clear(item.nodeid)
        return extras.html("".join(parts))


def register(config: pytest.Config, run: Any) -> HtmlReportPlugin:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = HtmlReportPlugin(run)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin


def install(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        plugin.install(config)
