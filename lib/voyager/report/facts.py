"""Expected-vs-found facts of each check, for the report (minimal version).

``record(what, expected, found, *, cell=None, ok=None)`` adds one row to the
check currently running (``FACTS.step(nodeid)``); ``ok`` defaults to
``expected == found``. ``note(text)`` adds a free-text fact. Values are
redacted at capture. Outside any step the rows go to the ``""`` bucket.
(The report helper's full version replaces this module on merge; the
interface is the shared contract of COMMON.md.)
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from voyager.redact import REDACTOR


class FactStore:
    def __init__(self) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._current: list[str] = []
        self._lock = threading.Lock()

    @contextmanager
    def step(self, nodeid: str) -> Iterator[None]:
        with self._lock:
            self._current.append(nodeid)
            self._rows.setdefault(nodeid, [])
        try:
            yield
        finally:
            with self._lock:
                self._current.remove(nodeid)

    def _add(self, row: dict[str, Any]) -> None:
        with self._lock:
            key = self._current[-1] if self._current else ""
            self._rows.setdefault(key, []).append(REDACTOR.redact_obj(row))

    def record(self, what: str, expected: Any, found: Any, *, cell: Optional[str] = None,
               ok: Optional[bool] = None) -> None:
        self._add({"what": what, "expected": expected, "found": found, "cell": cell,
                   "ok": (expected == found) if ok is None else bool(ok)})

    def note(self, text: str) -> None:
        self._add({"note": text})

    def rows(self, nodeid: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._rows.get(nodeid, []))

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


FACTS = FactStore()


def record(what: str, expected: Any, found: Any, *, cell: Optional[str] = None, ok: Optional[bool] = None) -> None:
    FACTS.record(what, expected, found, cell=cell, ok=ok)


def note(text: str) -> None:
    FACTS.note(text)
