"""Expected-vs-found facts of the check currently running (minimal version;
the report helper's implementation replaces this module on merge, same interface).

``record(what, expected, found, *, cell=None, ok=None)`` adds one row for the
check running now (``ok`` defaults to ``expected == found``); ``note(text)``
adds a free-text fact. ``FACTS.step(nodeid)`` scopes the rows to a check (the
plugin wraps each suite test in it); ``FACTS.rows(nodeid)`` reads them back.
Values are redacted when recorded.
"""
from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from voyager.redact import REDACTOR

OUTSIDE = "(no step)"


class Facts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._step: contextvars.ContextVar[str] = contextvars.ContextVar("voyager_facts_step", default=OUTSIDE)

    def current(self) -> str:
        return self._step.get()

    @contextmanager
    def step(self, nodeid: str) -> Iterator[None]:
        token = self._step.set(nodeid)
        try:
            yield
        finally:
            self._step.reset(token)

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.setdefault(self.current(), []).append(REDACTOR.redact_obj(row))

    def rows(self, nodeid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rows.get(nodeid, [])]

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


FACTS = Facts()


def record(what: str, expected: Any, found: Any, *, cell: Optional[str] = None, ok: Optional[bool] = None) -> None:
    FACTS.add({"what": what, "expected": expected, "found": found, "cell": cell,
               "ok": (expected == found) if ok is None else bool(ok)})


def note(text: str) -> None:
    FACTS.add({"note": text})
