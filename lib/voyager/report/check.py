"""HTML of one check in the delivery report: its title cell, its
expected-vs-found table, why it failed or was skipped and what to do first,
its evidence (inline, collapsible) and its traceback (collapsed).

Pure functions of already-redacted data (facts, evidence records) plus the
pytest report; every string comes from ``voyager.report.i18n``.
"""
from __future__ import annotations

import html
import re
from typing import Any, Iterable, Optional, Sequence

from voyager.redact import REDACTOR
from voyager.report.i18n import t

CELL_RE = re.compile(r"[\w\u4e00-\u9fff]+![A-Z]{1,3}\d+(?::[A-Z]{0,3}\d+)?")
DEPENDS_RE = re.compile(r"depends on (\S+)")
OUTCOME_KEYS = {"passed": "outcome.passed", "failed": "outcome.failed", "skipped": "outcome.skipped",
                "error": "outcome.error", "xfailed": "outcome.xfailed", "xpassed": "outcome.xpassed",
                "rerun": "outcome.rerun", "retried": "outcome.retried", "notrun": "outcome.notrun"}


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def outcome_label(outcome: str) -> str:
    return t(OUTCOME_KEYS.get(outcome.lower(), "outcome.notrun"))


def stage_of(nodeid: str) -> str:
    """``suites/test_02_init_cluster.py::…`` -> ``"02"``."""
    m = re.search(r"test_(\d{2})_", nodeid.split("::", 1)[0])
    return m.group(1) if m else "99"


# --------------------------------------------------------------------------- cells
def result_cell(outcome: str) -> str:
    """The result cell; ``data-outcome`` keeps pytest-html's English outcome for
    its filters while the cell shows the report language."""
    return (f'<td class="col-result" data-outcome="{esc(outcome)}">'
            f'{esc(outcome_label(outcome))}</td>')


def check_cell(title: str, nodeid: str) -> str:
    shown = title or nodeid.split("::")[-1]
    return (f'<td class="col-testId"><div class="check-title">{esc(shown)}</div>'
            f'<div class="nodeid">{esc(nodeid)}</div></td>')


def run_cell(text: str) -> str:
    return f'<td class="col-run">{esc(text)}</td>'


def duration_cell(text: str) -> str:
    return f'<td class="col-duration">{esc(text)}</td>'


# --------------------------------------------------------------------------- facts
def facts_table(rows: Sequence[Any], *, skipped: bool = False) -> str:
    """The check's expected-vs-found table (``voyager.report.facts.Fact`` rows
    or their dicts); notes follow the table."""
    rows = [r if isinstance(r, dict) else r.to_dict() for r in rows]
    checks = [r for r in rows if r["kind"] == "check"]
    notes = [r for r in rows if r["kind"] == "note"]
    parts = ['<div class="facts">']
    if checks:
        head = "".join(f"<th>{esc(t(k))}</th>" for k in
                       ("facts.what", "facts.expected", "facts.found", "facts.cell", "facts.ok"))
        body = []
        for r in checks:
            mark = "✓" if r["ok"] else "✗"
            cls = "ok" if r["ok"] else "mismatch"
            body.append(f'<tr class="{cls}"><td>{esc(r["what"])}</td><td>{esc(r["expected"])}</td>'
                        f'<td>{esc(r["found"])}</td><td class="cell">{esc(r["cell"])}</td>'
                        f'<td class="mark">{mark}</td></tr>')
        parts.append(f'<table class="facts-table"><thead><tr>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
    for r in notes:
        parts.append(f'<p class="fact-note"><b>{esc(t("facts.note"))}：</b>{esc(r["what"])}</p>')
    if not rows:
        parts.append(f'<p class="fact-note none">{esc(t("facts.skipped" if skipped else "facts.none"))}</p>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- failures and skips
def crash_message(longrepr: Any) -> str:
    """The exception message of a failure (the Chinese cause the check raised)."""
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = crash.message
    else:
        text = str(longrepr or "").strip().splitlines()[-1:] or [""]
        text = text[0]
    text = re.sub(r"^(?:[\w.]+(?:Error|Exception|Failed|Timeout|Failure)|Failed):\s*", "", text)
    text = re.sub(r"\n(?:assert|where) .*", "", text, flags=re.S)
    return REDACTOR.redact(text.strip())


def skip_reason(longrepr: Any) -> str:
    """Why a test was skipped, in the report language."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr or "")
    text = re.sub(r"^Skipped:\s*", "", text)
    names = DEPENDS_RE.findall(text)
    if names:
        return t("skip.dependency", names="、".join(dict.fromkeys(names)))
    return REDACTOR.redact(text)


def first_action(cause: str, facts: Iterable[Any]) -> str:
    """What to do first: fix the plan cell a mismatching fact or the cause
    names, else remove the cause and rerun with --lf."""
    for r in facts:
        r = r if isinstance(r, dict) else r.to_dict()
        if r["kind"] == "check" and not r["ok"] and r["cell"]:
            return t("fail.fix_cell", cell=r["cell"])
    m = CELL_RE.search(cause or "")
    if m:
        return t("fail.fix_cell", cell=m.group(0))
    return t("fail.fix_generic")


MAX_CAUSE = 500  # characters of the cause shown first; the whole message is in the traceback


def failure_block(cause: str, action: str, broken: bool = False) -> str:
    if len(cause) > MAX_CAUSE:
        cause = cause[:MAX_CAUSE] + t("fail.more")
    extra = f'<p class="broken">{esc(t("fail.broken"))}</p>' if broken else ""
    return (f'<div class="failure"><p><b>{esc(t("fail.cause"))}：</b></p>'
            f'<pre class="cause">{esc(cause)}</pre>'
            f'<p><b>{esc(t("fail.first"))}：</b>{esc(action)}</p>{extra}</div>')


def skip_block(reason: str) -> str:
    return f'<div class="skip"><p><b>{esc(t("skip.reason"))}：</b>{esc(reason)}</p></div>'


# --------------------------------------------------------------------------- evidence
def details(summary: str, body_html: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<details{klass}><summary>{esc(summary)}</summary>{body_html}</details>"


def evidence_block(exchanges: Sequence[Any], dropped: int = 0) -> str:
    """Every request/response and SSH command of the check (already redacted at
    capture): one collapsible block, one collapsible entry per exchange. Polls a
    wait repeated are left out but its first and last ones
    (``voyager.evidence.Recorder.shown``): a ``PollGap`` item (no ``to_text``)
    says how many, in one line."""
    if not exchanges:
        return ""
    items = [details(e.summary(), f"<pre>{esc(e.to_text())}</pre>", "exchange") if hasattr(e, "to_text")
             else f'<p class="elided">{esc(e.summary())}</p>' for e in exchanges]
    if dropped:
        items.insert(0, f"<p>{esc(t('evidence.dropped', n=dropped))}</p>")
    count = sum(1 for e in exchanges if hasattr(e, "to_text")) + sum(getattr(e, "exchanges", 0) for e in exchanges
                                                                     if not hasattr(e, "to_text"))
    return details(t("evidence.summary", n=count), "".join(items), "evidence")


def attachment_block(name: str, text: str, link: Optional[str] = None) -> str:
    """An attached document (redacted before it gets here) shown inline, with a
    relative link to its file in the run folder when there is one."""
    href = f' · <a class="artifact" href="{esc(link)}">{esc(t("evidence.file"))}</a>' if link else ""
    return (f'<details class="attachment"><summary>{esc(t("evidence.attachment", name=name))}</summary>'
            f'<pre>{esc(text)}</pre></details>' + (f'<p class="artifact-link">{href[3:]}</p>' if link else ""))


def image_block(name: str, link: Optional[str]) -> str:
    """A chart (PNG in the run folder) shown inline, by relative link."""
    if not link:
        return f"<p>{esc(name)}</p>"
    return (f'<figure class="chart"><img src="{esc(link)}" alt="{esc(name)}" style="max-width:100%">'
            f'<figcaption>{esc(name)}</figcaption></figure>')


def log_block(longreprtext: str, sections: Sequence[tuple[str, str]], failed: bool) -> str:
    """The collapsed technical part: traceback (failures) and captured log."""
    parts = []
    if failed and longreprtext:
        parts.append(details(t("fail.traceback"), f"<pre>{esc(REDACTOR.redact(longreprtext))}</pre>",
                             "traceback"))
    logs = [f"{esc(REDACTOR.redact(content))}" for header, content in sections
            if header.startswith("Captured") and content.strip()]
    if logs:
        parts.append(details(t("log.captured"), f"<pre>{''.join(logs)}</pre>", "captured-log"))
    return "".join(parts)
