"""pytest-html report classes of the delivery report.

:class:`RunReport` replaces pytest-html's own report object for a suite run
(same path, data and CSS; see ``voyager.report.html``) and renders with the
delivery template (``resources/report.jinja2``: language, summary first, print
CSS, no external resource) while pytest-html's app.js still draws the table.
:class:`CumulativeReport` is a second instance writing ``reports/<集群名称>/report.html``
from the report history (``voyager.report.history``): every check of the suite
with its final result, the run it came from and earlier attempts collapsed.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pytest_html.report import Report
from pytest_html.selfcontained_report import SelfContainedReport

from voyager.report import check, summary
from voyager.report.i18n import html_lang, stage_name, t
from voyager.report.layout import resolve_links

RESOURCES = Path(__file__).parent / "resources"
OUTCOME_ATTR = re.compile(r'data-outcome="([^"]+)"')
STAGE_HEADING = re.compile(r'<span class="stage-heading"[^>]*>.*?</span>')
CHECK_CELL = '<td class="col-testId">'
COL_RUN = 2


def load_template():
    """The delivery template; ``app.js`` is included from pytest-html's resources."""
    import pytest_html

    env = Environment(loader=FileSystemLoader([str(RESOURCES), str(Path(pytest_html.__file__).parent / "resources")]),
                      autoescape=select_autoescape(enabled_extensions=("jinja2",)))
    return env.get_template("report.jinja2")


def table_header() -> list[str]:
    return [
        f'<th class="sortable" data-column-type="result">{check.esc(t("col.result"))}</th>',
        f'<th data-column-type="testId">{check.esc(t("col.check"))}</th>',
        f'<th data-column-type="run">{check.esc(t("col.run"))}</th>',
        f'<th class="sortable" data-column-type="duration">{check.esc(t("col.duration"))}</th>',
    ]


class DeliveryMixin:
    """What both delivery reports share (mixed into pytest-html's classes)."""

    kind = "run"

    def voyager_setup(self, run: Any, layout: Any) -> None:
        self.voyager_run = run
        self.layout = layout
        self.started = datetime.now().astimezone()
        self._template = load_template()
        self._report.data["initialSort"] = "original"
        for key, outcome in self._report.outcomes.items():
            outcome["label"] = check.outcome_label(key)

    # -- pytest-html internals --------------------------------------------------------
    def _hydrate_data(self, data, cells):
        super()._hydrate_data(data, cells)
        match = OUTCOME_ATTR.search(cells[0]) if cells else None
        if match:
            data["result"] = match.group(1)  # pytest-html's filters need the English outcome

    def _process_extras(self, report, test_id):
        # copies: both delivery reports process the same report objects
        return [dict(e) for e in super()._process_extras(report, test_id)]

    def _generate_report(self, *args, **kwargs):
        """Render with artifact links resolved relative to this report (the
        kept data, and so the history, holds them unresolved)."""
        self.order_by_stage()
        self._template.globals["voyager"] = self.page_globals()
        data = self._report.data
        kept = data["tests"]
        data["tests"] = json.loads(resolve_links(json.dumps(kept), self._report_path.parent, self.layout.root))
        try:
            super()._generate_report(*args, **kwargs)
        finally:
            data["tests"] = kept

    # -- ours ---------------------------------------------------------------------------------
    def tests(self) -> dict[str, list[dict[str, Any]]]:
        return self._report.data["tests"]

    def order_by_stage(self) -> None:
        """Checks grouped by stage (stable), the first row of each stage
        carrying the stage heading (a page break in print)."""
        tests = self.tests()
        ordered = sorted(tests.items(), key=lambda kv: check.stage_of(kv[0]))
        tests.clear()
        seen: set[str] = set()
        for nodeid, rows in ordered:
            stage = check.stage_of(nodeid)
            for i, row in enumerate(rows):
                cells = row.get("resultsTableRow") or []
                if len(cells) > 1:
                    cell = STAGE_HEADING.sub("", cells[1])
                    if stage not in seen and i == 0:
                        heading = (f'<span class="stage-heading" data-stage="{stage}">'
                                   f'{stage} {check.esc(stage_name(stage))}</span>')
                        cell = cell.replace(CHECK_CELL, CHECK_CELL + heading, 1)
                    cells[1] = cell
            seen.add(stage)
            tests[nodeid] = rows

    def page_globals(self) -> dict[str, Any]:
        return {
            "lang": html_lang(),
            "kind": self.kind,
            "kind_text": self.kind_text(),
            "text": {k: t(f"page.{k}") for k in ("running", "no_results", "filter", "expand_all",
                                                "collapse_all", "checks", "appendix")}
                    | {"generated": t("page.generated", time=datetime.now().strftime("%Y-%m-%d %H:%M:%S"))},
        }

    def kind_text(self) -> str:
        return t("kind.run", run=self.layout.run_id)

    def summary_html(self) -> str:
        totals = summary.StageTotals.of(summary.final_outcomes(self.tests()))
        return summary.render(summary.delivery_facts(self.voyager_run), totals, start=self.started,
                              end=datetime.now().astimezone(), kind=self.kind)


    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("-", t(f"term.{self.kind}", path=self._report_path.as_uri()))


class RunReport(DeliveryMixin, SelfContainedReport):
    """This run's report, self-contained (the default)."""


class RunReportWithAssets(DeliveryMixin, Report):
    """This run's report when the engineer asked for ``--html`` without
    ``--self-contained-html`` (CSS in ``assets/``)."""


class CumulativeReport(DeliveryMixin, SelfContainedReport):
    """``reports/<集群名称>/report.html``: the suite's current state."""

    kind = "cumulative"

    def voyager_setup(self, run: Any, layout: Any, history: Any = None) -> None:
        super().voyager_setup(run, layout)
        self.history = history

    def kind_text(self) -> str:
        return t("kind.cumulative")

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report):
        from voyager.report.carryover import carried_marker

        if carried_marker(report) is not None:
            return  # the history holds the run it came from
        super().pytest_runtest_logreport(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if self.history is not None and self.tests():
            self.history.add_run(self.layout, self.started, datetime.now().astimezone(), self.tests())
        if self.history is not None:
            merged = self.history.merged(self.voyager_run.ledger)
            self.tests().clear()
            self.tests().update(merged)
            self.recount()
        super().pytest_sessionfinish(session)

    def recount(self) -> None:
        for outcome in self._report.outcomes.values():
            outcome["value"] = 0
        for _nodeid, result in summary.final_outcomes(self.tests()):
            if result in self._report.outcomes:
                self._report.outcomes[result]["value"] += 1

    def summary_html(self) -> str:
        totals = summary.StageTotals.of(summary.final_outcomes(self.tests()))
        runs = self.history.runs() if self.history is not None else []
        start = self.history.first_start() if self.history is not None else None
        return summary.render(summary.delivery_facts(self.voyager_run), totals,
                              start=start or self.started, end=datetime.now().astimezone(),
                              kind=self.kind, runs=runs)


def run_report_class(self_contained: bool) -> type:
    return RunReport if self_contained else RunReportWithAssets
