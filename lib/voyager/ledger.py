"""Outcome ledger: which acceptance step passed, failed or was skipped, per plan.

pytest-dependency only knows the current session and pytest's own ``--lf`` forgets
skipped tests, so neither can say "rerun what failed and what it held back,
trusting what already passed". The ledger can: it keeps the last outcome of
every suite test, together with the names pytest-dependency knows the test by
in each scope. Every collected check is in the ledger from collection on
(:meth:`Ledger.register`, outcome ``pending`` until it first runs), so a run
that is killed or interrupted leaves the checks it never reached visibly open.
The pytest plugin uses it to

* select, on ``--lf`` (``voyager.rerun``), every check that has not passed:
  failed, errored, skipped because a prerequisite had not succeeded, and never
  run (:meth:`Ledger.rerun_nodeids`); a plain skip (a final reason such as "no
  SVT ISO provided") is not open;
* tell pytest-dependency that a prerequisite which is not part of this session
  passed in an earlier run (:meth:`Ledger.passed_dependency`).

Storage, crash-safe and linear in the number of checks: the snapshot
``<state dir>/ledger-<fingerprint>.json`` (compact JSON, written atomically)
plus an append-only journal ``ledger-<fingerprint>.journal`` with one JSON line
per finished check, flushed at once (a killed run keeps it) and fsynced by a
background thread (:class:`_Durable`) within milliseconds, so the next check
does not wait for the disk (a power cut loses at most the last few lines: those
checks run again, which they may, since each one observes before it acts). :meth:`Ledger.load` folds the journal
into the snapshot (a torn last line from a killed run is ignored);
:meth:`Ledger.compact` rewrites the snapshot and then empties the journal
(replaying a journal over a snapshot that already holds it changes nothing).

A test's outcome combines its phases: a failing setup or teardown is an
``error``, a skip in any phase is ``skipped`` (``dependency_skip`` when
pytest-dependency skipped it), otherwise ``passed`` or ``failed``.

Each entry also says when and in which run it was recorded (``time``; ``run``:
the session's start and its evidence log, set through :attr:`Ledger.run`) and
may carry a ``report`` block (title, location, parameters; see
``voyager.report.carryover``) so that a later ``--lf`` run can show a test it
did not rerun with its earlier result (:meth:`Ledger.carried_entries`).
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from voyager.redact import REDACTOR
from voyager.fsutil import atomic_write, read_json

SCOPES = ("session", "package", "module", "class")
RERUN_OUTCOMES = ("failed", "error", "pending")
PENDING = "pending"
OUTCOMES = ("passed", "failed", "error", "skipped", PENDING)
_DEPENDENCY_SKIP_MARK = " depends on "  # pytest-dependency: "<name> depends on <dep>"


class _Durable:
    """fsync of the journal off the checks' path: :meth:`request` after each flushed line wakes
    a thread that fsyncs the file (several requests, one fsync); :meth:`wait` waits until every
    line requested so far is on disk. The thread ends after a second without requests."""

    IDLE_EXIT = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._synced = threading.Event()
        self._synced.set()
        self._thread: Optional[threading.Thread] = None

    def request(self) -> None:
        with self._lock:
            self._synced.clear()
            self._wanted.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ledger-fsync", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wanted.wait(self.IDLE_EXIT):
                with self._lock:
                    if not self._wanted.is_set():
                        self._thread = None
                        return
                continue
            self._wanted.clear()
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass  # the journal was compacted away meanwhile: nothing left to make durable
            with self._lock:
                if not self._wanted.is_set():
                    self._synced.set()

    def wait(self, timeout: float = 10.0) -> bool:
        return self._synced.wait(timeout)


def ledger_path(state_dir: Path, fingerprint: str) -> Path:
    return Path(state_dir) / f"ledger-{fingerprint}.json"


def journal_path(state_dir: Path, fingerprint: str) -> Path:
    return Path(state_dir) / f"ledger-{fingerprint}.journal"


def dependency_names(nodeid: str, name: Optional[str]) -> dict[str, str]:
    """The name pytest-dependency registers a test under, per scope."""
    nodeid = nodeid.replace("::()::", "::")
    if name:
        return {scope: name for scope in SCOPES}
    parts = nodeid.split("::")
    return {
        "session": nodeid,
        "package": nodeid,
        "module": "::".join(parts[1:]),
        "class": "::".join(parts[2:]),
    }


def scope_container(nodeid: str, scope: str) -> str:
    """The node a scope's dependency manager belongs to, as a nodeid prefix."""
    parts = nodeid.split("::")
    if scope == "module":
        return parts[0]
    if scope == "class":
        return "::".join(parts[:2])
    if scope == "package":
        return parts[0].rsplit("/", 1)[0] if "/" in parts[0] else ""
    return ""


def _short(text: str, limit: int = 300) -> str:
    text = REDACTOR.redact(" ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def skip_message(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text[len("Skipped: "):] if text.startswith("Skipped: ") else text
    return str(longrepr or "")


class Ledger:
    """Last outcome of each suite test for one plan fingerprint."""

    def __init__(self, path: Path, fingerprint: str, entries: Optional[dict[str, dict]] = None):
        self.path = Path(path)
        self.journal = self.path.with_suffix(".journal")
        self._durable = _Durable(self.journal)
        self.fingerprint = fingerprint
        self.entries: dict[str, dict[str, Any]] = entries or {}
        self._lock = threading.RLock()
        self._pending: dict[str, dict[str, Any]] = {}
        # facts about the current session stored with every entry it records
        # (e.g. {"started": ISO time, "evidence": "evidence/<stamp>.log"})
        self.run: dict[str, Any] = {}

    @classmethod
    def load(cls, state_dir: Path, fingerprint: str) -> "Ledger":
        path = ledger_path(state_dir, fingerprint)
        advice = "请把该文件移到别处后重试（所有检查将重新运行一次）"
        entries: dict[str, dict] = {}
        doc = read_json(path, "结果台账", advice)
        if doc is not None:
            if not isinstance(doc, dict) or not isinstance(doc.get("entries", {}), dict):
                raise ValueError(f"结果台账无法读取：{path}（内容不是结果台账）；{advice}")
            if doc.get("fingerprint") == fingerprint:
                entries = doc.get("entries") or {}
                bad = [n for n, e in entries.items() if not isinstance(e, dict) or e.get("outcome") not in OUTCOMES]
                if bad:
                    raise ValueError(f"结果台账无法读取：{path}（{len(bad)} 项记录没有有效的结果，例如 {bad[0]!r}）；"
                                     f"{advice}")
        ledger = cls(path, fingerprint, entries)
        ledger._replay_journal()
        return ledger

    def _replay_journal(self) -> None:
        """Apply the journal's lines over the snapshot. A line that does not
        parse (the torn last write of a killed run) is skipped."""
        try:
            raw = self.journal.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ValueError(f"结果台账日志无法读取：{self.journal}（{exc}）；"
                             "请把该文件移到别处后重试") from None
        for line in raw.splitlines():
            try:
                record = json.loads(line.decode("utf-8"))
                nodeid, entry = record["nodeid"], record["entry"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
            if isinstance(nodeid, str) and isinstance(entry, dict) and entry.get("outcome"):
                self.entries[nodeid] = entry

    # -- the suite -------------------------------------------------------------
    def register(self, checks: Iterable[tuple[str, dict[str, str]]], *,
                 complete_modules: Iterable[str] = ()) -> int:
        """Make every collected check known: ``checks`` = ``(nodeid, names)``
        (``names`` as :func:`dependency_names`, empty when not dependency-marked).
        A new check is ``pending`` until it runs; a known one keeps its outcome
        and gets its current names. Entries of ``complete_modules`` (modules
        collected whole this session) that were not collected are dropped: the
        check no longer exists. Returns the number of new checks."""
        with self._lock:
            seen: set[str] = set()
            added = 0
            for nodeid, names in checks:
                seen.add(nodeid)
                entry = self.entries.get(nodeid)
                if entry is None:
                    self.entries[nodeid] = {"outcome": PENDING, "dependency_skip": False, "names": dict(names),
                                            "message": "", "duration": 0.0, "time": None}
                    added += 1
                else:
                    entry["names"] = dict(names)
            modules = set(complete_modules)
            for nodeid in [n for n in self.entries if n.split("::", 1)[0] in modules and n not in seen]:
                del self.entries[nodeid]
            return added

    # -- recording ------------------------------------------------------------
    def record_phase(self, nodeid: str, when: str, outcome: str, *, longrepr: Any = None,
                     duration: float = 0.0, dependency_name: Optional[str] = None,
                     dependency_marked: bool = False,
                     report: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
        """Feed one phase report (setup / call / teardown). The entry is written
        when the teardown phase arrives; returns it then. ``report`` (given with
        any phase) is kept, redacted, as the entry's ``report`` block."""
        with self._lock:
            cur = self._pending.setdefault(nodeid, {"phases": {}, "duration": 0.0, "message": ""})
            cur["phases"][when] = outcome
            cur["duration"] += float(duration or 0.0)
            if report:
                cur["report"] = REDACTOR.redact_obj(report)
            if outcome in ("failed", "skipped") and not cur["message"]:
                cur["message"] = _short(skip_message(longrepr) if outcome == "skipped" else
                                        _failure_line(longrepr))
            if when != "teardown":
                return None
            self._pending.pop(nodeid)
            phases = cur["phases"]
            result = fold_outcome(phases)
            entry = {
                "outcome": result,
                "dependency_skip": bool(result == "skipped" and dependency_marked
                                        and phases.get("setup") == "skipped"
                                        and _DEPENDENCY_SKIP_MARK in cur["message"]),
                "names": dependency_names(nodeid, dependency_name) if dependency_marked else {},
                "message": cur["message"] if result != "passed" else "",
                "duration": round(cur["duration"], 3),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            if self.run:
                entry["run"] = dict(self.run)
            if cur.get("report"):
                entry["report"] = cur["report"]
            self.entries[nodeid] = entry
            self._append(nodeid, entry)
            return entry

    def _append(self, nodeid: str, entry: dict[str, Any]) -> None:
        """One journal line per finished check: O(1) per check, written through
        before the next check starts, on disk milliseconds later (:class:`_Durable`)."""
        line = json.dumps({"nodeid": nodeid, "entry": entry}, ensure_ascii=False, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "ab") as fh:
            fh.write(line.encode("utf-8") + b"\n")
        self._durable.request()

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every journal line written so far is on disk."""
        return self._durable.wait(timeout)

    def compact(self) -> None:
        """Rewrite the snapshot with every entry (atomic), then empty the journal."""
        self.sync()
        with self._lock:
            doc = {"fingerprint": self.fingerprint, "entries": self.entries}
            atomic_write(self.path, json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
            try:
                os.unlink(self.journal)
            except FileNotFoundError:
                pass

    save = compact

    # -- queries -------------------------------------------------------------
    def outcome(self, nodeid: str) -> Optional[str]:
        entry = self.entries.get(nodeid)
        return entry["outcome"] if entry else None

    def rerun_nodeids(self, in_scope: Optional[Callable[[str], bool]] = None) -> list[str]:
        """The open checks, to run again: failed, errored, skipped because a
        prerequisite had not succeeded, and never run (``pending``); only those
        ``in_scope`` accepts when given. A check skipped because its prerequisite
        was skipped for a final reason (no package provided…) is final too."""
        final = self._final_skips()
        return [nodeid for nodeid, e in self.entries.items()
                if (e["outcome"] in RERUN_OUTCOMES or (e.get("dependency_skip") and nodeid not in final))
                and (in_scope is None or in_scope(nodeid))]

    def _final_skips(self) -> set[str]:
        """Dependency-skipped checks whose prerequisite (as named in the skip
        message) is itself a final skip, transitively."""
        by_name: dict[str, list[str]] = {}
        for nodeid, e in self.entries.items():
            for name in set((e.get("names") or {}).values()):
                by_name.setdefault(name, []).append(nodeid)
        final: set[str] = set()

        def is_final(nodeid: str, seen: frozenset) -> bool:
            e = self.entries.get(nodeid) or {}
            if e.get("outcome") != "skipped":
                return False
            if not e.get("dependency_skip"):
                return True
            if nodeid in seen:
                return False
            dep = str(e.get("message") or "").rpartition(_DEPENDENCY_SKIP_MARK)[2].strip()
            owners = by_name.get(dep) or []
            return bool(owners) and all(is_final(o, seen | {nodeid}) for o in owners)

        for nodeid, e in self.entries.items():
            if e.get("dependency_skip") and is_final(nodeid, frozenset()):
                final.add(nodeid)
        return final

    open_nodeids = rerun_nodeids

    def passed_dependency(self, name: str, scope: str, item_nodeid: str) -> Optional[str]:
        """The nodeid of a test that pytest-dependency would know as ``name`` in
        ``scope`` seen from ``item_nodeid`` and whose last outcome is passed."""
        container = scope_container(item_nodeid, scope)
        found: Optional[str] = None
        for nodeid, e in self.entries.items():
            if e.get("names", {}).get(scope) != name:
                continue
            if container and not _within(nodeid, container, scope):
                continue
            if e["outcome"] != "passed":
                return None  # the latest outcome under this name did not pass
            found = nodeid
        return found

    def carried_entries(self, exclude: Iterable[str] = (),
                        outcomes: Iterable[str] = ("passed", "skipped")) -> dict[str, dict[str, Any]]:
        """Entries a session that did not run them can show with their earlier
        result: last outcome in ``outcomes`` (a plain skip only, never a skip
        because a prerequisite failed), nodeid not in ``exclude``."""
        wanted = set(outcomes)
        skip = set(exclude)
        return {nodeid: e for nodeid, e in self.entries.items()
                if nodeid not in skip and e.get("outcome") in wanted
                and not e.get("dependency_skip")}

    def summary(self, in_scope: Optional[Callable[[str], bool]] = None) -> dict[str, int]:
        """``{outcome: count}`` (``dependency_skip`` apart from plain skips)."""
        counts: dict[str, int] = {}
        for nodeid, e in self.entries.items():
            if in_scope is not None and not in_scope(nodeid):
                continue
            key = "dependency_skip" if e.get("dependency_skip") else e["outcome"]
            counts[key] = counts.get(key, 0) + 1
        return counts

def fold_outcome(phases: dict[str, str]) -> str:
    """One test's outcome from its phases' (``setup``/``call``/``teardown``):
    a failed setup or teardown is an ``error`` (``failed`` if the call failed
    too), any skip is ``skipped``, else the call's outcome."""
    if phases.get("setup") == "failed" or phases.get("teardown") == "failed":
        return "error" if phases.get("call") != "failed" else "failed"
    if "skipped" in phases.values():
        return "skipped"
    if phases.get("call") in ("failed", "passed"):
        return phases["call"]
    return "error"


def _within(nodeid: str, container: str, scope: str) -> bool:
    if scope == "module":
        return nodeid.split("::")[0] == container
    if scope == "class":
        return "::".join(nodeid.split("::")[:2]) == container
    return nodeid.startswith(container + "/") if container else True


def _failure_line(longrepr: Any) -> str:
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    if crash:
        return str(crash)
    text = str(longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return lines[-1][2:].strip() if lines else (text.splitlines()[-1] if text else "")
