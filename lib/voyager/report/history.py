"""The report history: every attempt of every suite check, across runs, as
pytest-html rendered it (redacted at capture), kept in the state dir
(``report-history-<fingerprint>.json``) so the cumulative report can show each
check's final result, the run it came from and its earlier attempts.

The ledger (``voyager.ledger``) stays the list of the suite's checks and their
last outcome; a check the ledger knows and the history does not (never shown
by this version of the report) gets a row from its ledger entry.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from voyager.fsutil import atomic_write, read_json
from voyager.report import check
from voyager.report.i18n import t

LEDGER_OUTCOME = {"passed": "Passed", "failed": "Failed", "error": "Error", "skipped": "Skipped"}
MAX_ATTEMPTS = 20
SHOWN_IN_FULL = 3  # earlier attempts shown with their details in the cumulative report


def history_path(state_dir: Path, fingerprint: str) -> Path:
    return Path(state_dir) / f"report-history-{fingerprint}.json"


class ReportHistory:
    def __init__(self, path: Path):
        self.path = Path(path)
        doc = read_json(self.path, "报告历史", "请删除该文件后重试（只影响累计报告中的先前尝试）") or {}
        self.doc: dict[str, Any] = {"runs": doc.get("runs") or {}, "checks": doc.get("checks") or {}}

    @classmethod
    def open(cls, state_dir: Path, fingerprint: str) -> "ReportHistory":
        return cls(history_path(state_dir, fingerprint))

    # -- recording --------------------------------------------------------------
    def add_run(self, layout: Any, started: datetime, ended: datetime,
                tests: dict[str, list[dict[str, Any]]]) -> None:
        """Record this run's rows (one attempt per check it ran) and save."""
        run_id = layout.run_id
        self.doc["runs"][run_id] = {"started": started.isoformat(timespec="seconds"),
                                    "ended": ended.isoformat(timespec="seconds")}
        for nodeid, rows in tests.items():
            attempts = self.doc["checks"].setdefault(nodeid, [])
            attempts[:] = [a for a in attempts if a["run"] != run_id]
            results = [r.get("result", "") for r in rows]
            attempts.append({"run": run_id, "result": _worst(results), "rows": rows})
            del attempts[:-MAX_ATTEMPTS]
        atomic_write(self.path, json.dumps(self.doc, ensure_ascii=False))

    def known(self, ledger: Any) -> Optional[set[str]]:
        """The suite's checks per the ledger (None when the ledger knows none)."""
        entries = getattr(ledger, "entries", None) or {}
        return set(entries) or None

    # -- reading ----------------------------------------------------------------------
    def runs(self) -> list[str]:
        return sorted(self.doc["runs"])

    def last_extras(self, nodeid: str) -> list[dict[str, Any]]:
        """The html extras (facts, attachments, evidence) of the check's last
        recorded attempt, for a report that carries it over."""
        attempts = self.doc["checks"].get(nodeid) or []
        if not attempts:
            return []
        return [dict(e) for row in attempts[-1].get("rows") or [] for e in row.get("extras") or []
                if e.get("format_type") == "html"][:1]

    def first_start(self) -> Optional[datetime]:
        starts = [r.get("started") for r in self.doc["runs"].values() if r.get("started")]
        return datetime.fromisoformat(min(starts)) if starts else None

    def merged(self, ledger: Any = None) -> dict[str, list[dict[str, Any]]]:
        """pytest-html test data for the cumulative report: per check, the rows
        of its last attempt, the run cell naming that run (and the attempt
        number after reruns), earlier attempts collapsed under the rows."""
        out: dict[str, list[dict[str, Any]]] = {}
        entries = dict(getattr(ledger, "entries", {}) or {})
        known = self.known(ledger)
        for nodeid, attempts in self.doc["checks"].items():
            if not attempts or (known is not None and nodeid not in known):
                continue  # a check the suite no longer has
            final = attempts[-1]
            rows = json.loads(json.dumps(final["rows"]))  # a copy: the history stays as recorded
            n = len(attempts)
            run_text = t("run.rerun", run=final["run"], n=n) if n > 1 else final["run"]
            for row in rows:
                cells = row.get("resultsTableRow") or []
                if len(cells) > 2:
                    cells[2] = check.run_cell(run_text)
                if n > 1:
                    row.setdefault("extras", []).append({"format_type": "html", "name": None,
                                                         "content": earlier_html(attempts[:-1]),
                                                         "mime_type": None, "extension": None})
            out[nodeid] = rows
        for nodeid, entry in entries.items():
            if nodeid not in out:
                out[nodeid] = [ledger_row(nodeid, entry)]
        return out


def _worst(results: list[str]) -> str:
    order = ["Error", "Failed", "Skipped", "XFailed", "XPassed", "Passed"]
    known = [r for r in results if r in order]
    return min(known, key=order.index) if known else (results[0] if results else "Skipped")


def earlier_html(attempts: list[dict[str, Any]]) -> str:
    """Earlier attempts, newest first, collapsed: the last ``SHOWN_IN_FULL``
    with their facts, evidence and traceback, older ones as one line each."""
    parts = []
    for i, a in enumerate(reversed(attempts)):
        title = t("history.attempt", run=a["run"], outcome=check.outcome_label(a["result"]))
        if i >= SHOWN_IN_FULL:
            parts.append(f'<p class="attempt">{check.esc(title)}</p>')
            continue
        inner = "".join(e.get("content") or "" for row in a.get("rows") or [] for e in row.get("extras") or []
                        if e.get("format_type") == "html")
        logs = "".join(row.get("log") or "" for row in a.get("rows") or [])
        parts.append(f'<div class="attempt">{check.details(title, inner + logs)}</div>')
    return check.details(t("history.summary", n=len(attempts)), "".join(parts), "history")


def ledger_row(nodeid: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A row for a check known only from the ledger."""
    outcome = LEDGER_OUTCOME.get(entry.get("outcome") or "", "Skipped")
    label_outcome = outcome if entry.get("outcome") in LEDGER_OUTCOME else "notrun"
    from voyager.report.titles import criterion

    title = criterion((entry.get("report") or {}).get("doc") or "")
    run = (entry.get("run") or {}).get("started") or entry.get("time") or ""
    cells = [check.result_cell(outcome).replace(f">{check.esc(check.outcome_label(outcome))}<",
                                                f">{check.esc(check.outcome_label(label_outcome))}<"),
             check.check_cell(title, nodeid), check.run_cell(run[:19].replace("T", " ")),
             check.duration_cell(f"{float(entry.get('duration') or 0):.2f} s")]
    body = (check.skip_block(entry["message"]) if entry.get("message") else "") + check.facts_table(
        [], skipped=outcome == "Skipped")
    return {"extras": [{"format_type": "html", "name": None, "content": body, "mime_type": None,
                        "extension": None}],
            "resultsTableRow": cells, "result": outcome, "log": ""}
