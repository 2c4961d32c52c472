"""Carry-over: the report of a ``--lf`` rerun shows every check, honestly.

A ``--lf`` session runs only what failed and what it held back. Its HTML
report, JUnit XML and Allure results would list only those tests, although the
engineer delivers the *last* report. This module makes such a session also
report each suite test it did not run whose last outcome in the ledger
(``voyager.ledger``, same plan fingerprint) is passed — or a plain skip — as
exactly that earlier result, marked as carried over:

* before the test loop, for each such test, synthetic setup/call/teardown
  ``TestReport``\\ s go through ``pytest_runtest_logreport`` (pytest-html,
  JUnit XML and the terminal consume them). They carry the Chinese note
  "本次未重跑：已于 <时间> 的运行中通过", the run and time it passed in, the
  evidence that run recorded for it (``<state dir>/evidence/<run>.log``), a
  ``voyager_carried_over`` JUnit property, and count in the terminal summary
  line under their own category (``沿用先前通过``), never as ``passed``;
* Allure, which listens to the runtest protocol instead, gets a result file per
  carried test through allure-commons (``voyager.report.allure_carry``), with
  the original history id, a ``carriedOver`` label and a ``沿用先前通过`` tag;
* pytest-html shows them with the run they come from (``voyager.report.html``)
  and a summary line.

Nothing is carried in a session without ``--lf``, under xdist, or for a test
whose last outcome is failed, error, or a skip caused by a failed prerequisite.
The ledger stays the only source: every entry records its run (start time and
evidence log, set here through ``Ledger.run``) and a ``report`` block
(:func:`describe_item`: title, location, Allure identity).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytest

from voyager.report.titles import criterion, describe_title, item_doc  # noqa: F401 (re-exported)

PLUGIN_NAME = "voyager-carryover"
CATEGORY = {"passed": "沿用先前通过", "skipped": "沿用先前跳过"}
JUNIT_PROPERTY = "voyager_carried_over"


# --------------------------------------------------------------------------- what the ledger keeps
def describe_item(item: pytest.Item) -> dict[str, Any]:
    """The ``report`` block the ledger stores with an entry (its docstring,
    location and Allure identity): what a later run needs to show this test
    without collecting it."""
    doc = item_doc(item)
    path, line, domain = item.location
    block: dict[str, Any] = {"doc": doc, "location": [path, line, domain]}
    from voyager.report.allure_carry import allure_identity

    identity = allure_identity(item)
    if identity:
        block["allure"] = identity
    return block


# --------------------------------------------------------------------------- one carried test
@dataclass
class Carried:
    nodeid: str
    entry: dict[str, Any]
    evidence: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.info = self.entry.get("report") or {}

    @property
    def outcome(self) -> str:
        return self.entry["outcome"]

    @property
    def category(self) -> str:
        """The report category of a carried check (``CATEGORY``)."""
        return CATEGORY[self.outcome]

    @property
    def title(self) -> str:
        return criterion(self.info.get("doc") or "")

    @property
    def run_started(self) -> str:
        return local_time((self.entry.get("run") or {}).get("started") or self.entry.get("time"))

    @property
    def finished(self) -> str:
        return local_time(self.entry.get("time"))

    @property
    def location(self) -> tuple[str, Optional[int], str]:
        loc = self.info.get("location")
        if loc and len(loc) == 3:
            return str(loc[0]), loc[1], str(loc[2])
        parts = self.nodeid.split("::")
        return parts[0], None, ".".join(parts[1:])

    def note(self) -> str:
        """The line every report shows for this test (report language)."""
        from voyager.report.i18n import t

        text = t(f"carry.note.{self.outcome}", run=self.run_started)
        details = [t("carry.finished", time=self.finished)]
        if self.outcome == "passed":
            details.append(t("carry.took", seconds=f"{float(self.entry.get('duration') or 0):.2f}"))
        elif self.entry.get("message"):
            details.append(t("carry.reason", message=self.entry["message"]))
        return text + t("carry.details", details=t("carry.sep").join(details))

    def note_long(self) -> str:
        """The note with where the result comes from (the HTML log, Allure attachment)."""
        run = self.entry.get("run") or {}
        lines = [self.note(), ""]
        if self.title:
            lines.append(f"检查项：{self.title}")
        lines += [f"结果来源：结果台账（同一规划指纹）中的 {self.nodeid}",
                  f"原运行开始于：{self.run_started}", f"该项结果记录于：{self.finished}"]
        if run.get("evidence"):
            lines.append(f"原运行的接口与命令记录：状态目录下 {run['evidence']}")
        lines += ["", "This check was not rerun in this session; its result is carried over "
                      "from the earlier run recorded in the ledger."]
        return "\n".join(lines)


def local_time(iso: Optional[str]) -> str:
    if not iso:
        return "（时间未记录）"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


# --------------------------------------------------------------------------- selection
def select(ledger, selected: set[str], in_scope, rootpath: Path, state_dir: Optional[Path]) -> list[Carried]:
    """Ledger entries to carry: passed or plainly skipped, not run in this
    session, inside the session's arguments, their file still present."""
    evidence = EvidenceLogs(state_dir)
    found = []
    for nodeid, entry in ledger.carried_entries(exclude=selected).items():
        if not in_scope(nodeid) or not (rootpath / nodeid.split("::", 1)[0]).is_file():
            continue
        found.append(Carried(nodeid, entry, evidence.section(entry, nodeid)))
    found.sort(key=lambda c: (c.location[0], c.location[1] if c.location[1] is not None else 1 << 30,
                              c.nodeid))
    return found


def scope_matcher(config: pytest.Config):
    """A predicate: is this nodeid inside one of the session's arguments?"""
    root = Path(config.rootpath).resolve()
    invocation = Path(config.invocation_params.dir)
    targets = []
    for arg in config.args:
        path_part, sep, rest = str(arg).partition("::")
        p = Path(path_part)
        p = (p if p.is_absolute() else invocation / p).resolve()
        targets.append((p, rest if sep else ""))

    def in_scope(nodeid: str) -> bool:
        file_part, _, tail = nodeid.partition("::")
        path = (root / file_part).resolve()
        for target, rest in targets:
            if path != target and target not in path.parents:
                continue
            if not rest or tail == rest or tail.startswith(rest + "::") or tail.startswith(rest + "["):
                return True
        return False

    return in_scope


class EvidenceLogs:
    """Per-test sections of the state dir's evidence logs (``## <nodeid>``
    headers, written by the plugin at the end of each run; redacted at capture)."""

    def __init__(self, state_dir: Optional[Path]):
        self.state_dir = Path(state_dir) if state_dir else None
        self._files: dict[str, dict[str, str]] = {}

    def section(self, entry: dict[str, Any], nodeid: str) -> str:
        rel = (entry.get("run") or {}).get("evidence")
        if not rel or self.state_dir is None:
            return ""
        if rel not in self._files:
            self._files[rel] = self._parse(self.state_dir / rel)
        return self._files[rel].get(nodeid, "")

    @staticmethod
    def _parse(path: Path) -> dict[str, str]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return {}
        sections: dict[str, list[str]] = {}
        current: Optional[list[str]] = None
        for line in text.splitlines():
            if line.startswith("## "):
                current = sections.setdefault(line[3:].strip(), [])
                continue
            if current is not None:
                current.append(line)
        return {k: "\n".join(v).strip() for k, v in sections.items()}


# --------------------------------------------------------------------------- synthetic reports
def reports_for(carried: Carried, earlier: Optional[list[dict[str, Any]]] = None) -> list[pytest.TestReport]:
    """setup / call / teardown reports standing for the earlier result;
    ``earlier`` = the delivery report's extras of that result (its facts and
    evidence, ``voyager.report.history``), else its evidence log section."""
    from voyager.redact import REDACTOR, redact_report

    now = datetime.now().timestamp()
    location = carried.location
    keywords = {carried.nodeid.split("::")[-1]: 1, "voyager_carried_over": 1}
    props = [(JUNIT_PROPERTY, "true"), ("voyager_carried_run", carried.run_started),
             ("voyager_carried_time", carried.finished)]
    marker = {"outcome": carried.outcome, "note": REDACTOR.redact(carried.note()),
              "title": carried.title, "run": carried.run_started}
    call_outcome = carried.outcome
    longrepr: Any = None
    if call_outcome == "skipped":
        longrepr = (location[0], location[1] if location[1] is not None else 0,
                    "Skipped: " + REDACTOR.redact(carried.note()))
    from voyager.report.check import details, esc

    from voyager.report.i18n import t

    body = f'<p class="carried-note">{esc(t("carry.mark") + REDACTOR.redact(carried.note()))}</p>'
    if carried.evidence and not earlier:  # the earlier report's extras hold its evidence already
        name = t("carry.evidence", run=carried.run_started)
        body += details(name, f"<pre>{esc(REDACTOR.redact(carried.evidence))}</pre>", "evidence")
    extras = [{"name": None, "format_type": "html", "content": body, "mime_type": None, "extension": None},
              *(dict(e, content=REDACTOR.redact(e["content"])) for e in earlier or [])]
    sections = [("沿用先前结果 carried over", REDACTOR.redact(carried.note_long()))]
    reports = []
    for when, outcome in (("setup", "passed"), ("call", call_outcome), ("teardown", "passed")):
        rep = pytest.TestReport(
            carried.nodeid, location, keywords, outcome, longrepr if when == "call" else None, when,
            sections=sections if when == "call" else (), duration=0.0, start=now, stop=now,
            user_properties=props, voyager_carried=marker,
            extras=extras if when == "call" else [])
        redact_report(rep)
        reports.append(rep)
    return reports


def carried_marker(report: Any) -> Optional[dict[str, Any]]:
    return getattr(report, "voyager_carried", None)


# --------------------------------------------------------------------------- the plugin
class CarryOverPlugin:
    """Registered by ``voyager.pytest_plugin``; inert unless a suite session
    runs with ``--lf``."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.started = datetime.now().astimezone()
        self.carried: list[Carried] = []
        self._rerun_count = 0

    # -- the run's identity, stored with every ledger entry ----------------------
    @property
    def evidence_name(self) -> str:
        return self.started.strftime("%Y%m%d-%H%M%S-%f") + ".log"

    def _run(self):
        from voyager.run_context import get_run

        run = get_run(self.config)
        return run if run.active else None

    def _wanted(self, run) -> bool:
        cfg = self.config
        return bool(run is not None and run.lf_applied and not cfg.option.collectonly
                    and not hasattr(cfg, "workerinput")
                    and not cfg.pluginmanager.has_plugin("dsession"))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        run = self._run()
        if run is not None and run.ledger is not None:
            run.ledger.run = {"started": self.started.isoformat(timespec="seconds"),
                              "evidence": f"evidence/{self.evidence_name}"}
        collection_failed = session.testsfailed and not self.config.option.continue_on_collection_errors
        if self._wanted(run) and not collection_failed:
            self.emit(session, run)
        yield

    def emit(self, session: pytest.Session, run) -> None:
        selected = {item.nodeid for item in session.items}
        self._rerun_count = len(selected)
        self.carried = select(run.ledger, selected, scope_matcher(self.config), run.rootpath,
                              run.state_dir)
        from voyager.report.history import ReportHistory

        history = ReportHistory.open(run.state_dir, run.plan.fingerprint()) if run.state_dir else None
        hook = self.config.hook
        for carried in self.carried:
            earlier = history.last_extras(carried.nodeid) if history is not None else []
            for rep in reports_for(carried, earlier):
                hook.pytest_runtest_logreport(report=rep)
        if self.carried:
            from voyager.report.allure_carry import write_carried

            write_carried(self.config, self.carried)

    # -- terminal -------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        marker = carried_marker(report)
        if marker is None:
            return None
        if report.when != "call":
            return "", "", ""
        return CATEGORY[marker["outcome"]], "", ""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.carried:
            return
        counts: dict[str, int] = {}
        for c in self.carried:
            counts[CATEGORY[c.outcome]] = counts.get(CATEGORY[c.outcome], 0) + 1
        text = "，".join(f"{k} {v}" for k, v in counts.items())
        terminalreporter.write_sep("-", "voyager 本次未重跑的检查")
        terminalreporter.write_line(
            f"{text}：结果台账记录其在先前运行中的结果，本次未重跑；"
            f"报告（HTML / JUnit / Allure）中逐项列出并标注“沿用”。")

    # -- pytest-html ------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list, session) -> None:
        if not self.carried:
            return
        passed = sum(1 for c in self.carried if c.outcome == "passed")
        skipped = len(self.carried) - passed
        rerun = self._rerun_count
        from voyager.report.i18n import t

        counts = t("carry.counts.passed", n=passed) + (t("carry.counts.skipped", n=skipped) if skipped else "")
        line = t("carry.summary", rerun=rerun, carried=len(self.carried), counts=counts)
        prefix.append(f"<p class=\"voyager-carryover\">{html.escape(line)}</p>")


def register(config: pytest.Config) -> CarryOverPlugin:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = CarryOverPlugin(config)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin


def evidence_name(config: pytest.Config) -> Optional[str]:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin.evidence_name if plugin is not None else None
