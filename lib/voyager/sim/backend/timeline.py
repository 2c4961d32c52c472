"""The simulator's record of the timed operations that leave no other trace.

Most timed operations stay in the world's state with their own timestamps: the
deployment (``deploy.started_at``, ``cluster.created``), jobs (``ctime`` and
durations), CloudTower tasks (``created_at``/``finished_at``), the installer,
inspections. A few do not: a VM's boot or OS install (the VM may be deleted
later, e.g. the test VMs at step 11) and the guest programs that take
simulated time (``fio``, ``ping``, ``sleep``). :class:`Timeline` keeps one entry
per such operation as it starts — ``{"what", "id", "start", "end",
"real_seconds"}``, ``start``/``end`` epoch seconds of the world's clock, ``end``
= ``start`` + the real duration × speed — and saves the last
:data:`MAX_ENTRIES` with the state (``timeline``).

It is an observation log for ``bench/waits.py`` (the time the simulator was busy,
and how late each wait noticed an end); nothing in the simulator reads it to
decide anything.
"""
from __future__ import annotations

from typing import Any, Optional

MAX_ENTRIES = 2000


class Timeline:
    def __init__(self, world) -> None:
        self.world = world
        self.entries: list[dict[str, Any]] = []

    def add(self, what: str, real_seconds: float, *, ident: Optional[str] = None, start: Optional[float] = None,
            **details: Any) -> dict[str, Any]:
        """Record an operation of ``real_seconds`` (real-cluster seconds) that starts at
        ``start`` (default: now); returns the entry. Call under the world's lock."""
        clock = self.world.clock
        at = clock.now() if start is None else float(start)
        real = max(0.0, float(real_seconds))
        entry = {"what": what, "id": ident, "start": at, "end": at + clock.wall(real), "real_seconds": real,
                 **details}
        self.entries = (self.entries + [entry])[-MAX_ENTRIES:]
        return entry

    def to_state(self) -> list[dict[str, Any]]:
        return list(self.entries)

    def load_state(self, state: Any) -> None:
        self.entries = [dict(e) for e in state or [] if isinstance(e, dict)]
