"""The report's fact API: what each check expected, what it found, and where
the expectation comes from in the plan.

    from voyager.report import facts
    facts.record("网卡 ens192 速率", "10G", "10G", cell="虚拟网络!L4")
    facts.note("规划表没有带外地址（主机规划 E 列），不配置 IPMI")

Facts belong to the check currently running, set by the suite plugin with
``with FACTS.step(item.nodeid):`` around each suite test (a contextvar, like
``voyager.evidence.RECORDER.step``, so worker threads started with a copied
context record against the calling check). Values are shown as text and
redacted at capture (``voyager.redact.REDACTOR``): nothing stored here can leak
a secret. The report renders ``FACTS.rows(nodeid)`` as the check's
expected-vs-found table.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Optional

from voyager.plan.model import Secret
from voyager.redact import REDACTOR

NO_STEP = "(none)"
MAX_VALUE = 600  # characters of one shown value
MAX_ROWS = 500  # rows kept per check

_current: contextvars.ContextVar[str] = contextvars.ContextVar("voyager_fact_step", default=NO_STEP)


@dataclass(frozen=True)
class Fact:
    """One row of a check's table (already redacted). ``kind`` is ``"check"``
    (expected vs found) or ``"note"`` (free text in ``what``)."""

    kind: str
    what: str
    expected: str = ""
    found: str = ""
    cell: str = ""
    ok: Optional[bool] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def show(value: Any) -> str:
    """A value as the report shows it: lists joined, mappings as JSON, None as
    "—", booleans as 是/否 (true/false in English reports use the same cells);
    a ``Secret`` never shows its value."""
    if isinstance(value, Secret):
        text = "******" if value else ""
    elif value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        text = "、".join(show(v) for v in items) if items else "（无）"
    elif isinstance(value, dict):
        text = json.dumps(REDACTOR.redact_obj(value), ensure_ascii=False, sort_keys=True, default=str)
    else:
        text = str(value)
    if len(text) > MAX_VALUE:
        text = text[:MAX_VALUE] + "…"
    return REDACTOR.redact(text)


def _same(expected: Any, found: Any) -> bool:
    try:
        return bool(expected == found)
    except Exception:  # noqa: BLE001 - odd types compare as different
        return False


class Facts:
    """Thread-safe store of :class:`Fact` rows grouped by check (node id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: "OrderedDict[str, list[Fact]]" = OrderedDict()

    @contextlib.contextmanager
    def step(self, nodeid: str) -> Iterator[str]:
        """Record every fact inside the block against check ``nodeid``."""
        token = _current.set(str(nodeid))
        try:
            yield str(nodeid)
        finally:
            _current.reset(token)

    @staticmethod
    def current() -> str:
        return _current.get()

    def add(self, fact: Fact) -> Fact:
        with self._lock:
            rows = self._rows.setdefault(self.current(), [])
            if len(rows) < MAX_ROWS:
                rows.append(fact)
        return fact

    def record(self, what: str, expected: Any, found: Any, *, cell: Optional[str] = None,
               ok: Optional[bool] = None) -> Fact:
        if ok is None:
            ok = _same(expected, found)
        return self.add(Fact("check", show(what), show(expected), show(found),
                             REDACTOR.redact(cell or ""), bool(ok)))

    def note(self, text: str) -> Fact:
        return self.add(Fact("note", show(text)))

    def rows(self, nodeid: str) -> list[Fact]:
        with self._lock:
            return list(self._rows.get(nodeid, ()))

    def clear(self, nodeid: Optional[str] = None) -> None:
        with self._lock:
            if nodeid is None:
                self._rows.clear()
            else:
                self._rows.pop(nodeid, None)


FACTS = Facts()


def record(what: str, expected: Any, found: Any, *, cell: Optional[str] = None,
           ok: Optional[bool] = None) -> None:
    """One expected-vs-found row for the check currently running (``ok``
    defaults to ``expected == found``); ``cell`` names the plan cell(s)."""
    FACTS.record(what, expected, found, cell=cell, ok=ok)


def note(text: str) -> None:
    """A free-text fact, e.g. why a check has nothing to compare."""
    FACTS.note(text)
