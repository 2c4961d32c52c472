"""Simulated time.

Every duration in the simulator is written as the *real* duration on a real
cluster (e.g. a deployment takes about 1200 s). The clock scales it by the
speed factor: a real duration ``d`` takes ``d * speed`` wall seconds.
``speed = 0`` makes everything instant (tests, CI); ``DEFAULT_SPEED`` makes a
whole demo (deployment ~20 min real + CloudTower OS install ~10 min + its
installer ~20 min + jobs) take about two minutes with visible progress.

Timestamps are wall-clock epoch seconds (``now()``), so a state file reloaded
by a second simulator continues where the first one stopped. Tests inject a
:class:`ManualClock` to drive progress without sleeping.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

# 1 real second = 0.04 wall seconds: deployment 1200 s -> 48 s, CloudTower OS
# install 600 s -> 24 s, installer 1200 s -> 48 s; a whole demo ~2 minutes.
DEFAULT_SPEED = 0.04


class Clock:
    def __init__(self, speed: float = DEFAULT_SPEED, now: Callable[[], float] = time.time):
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = float(speed)
        self._now = now

    def now(self) -> float:
        """Wall-clock epoch seconds."""
        return self._now()

    def wall(self, real_seconds: float) -> float:
        """Wall seconds that a real duration takes at this speed."""
        return real_seconds * self.speed

    def elapsed_real(self, since: float) -> float:
        """Real (unscaled) seconds elapsed since the wall timestamp ``since``;
        infinite at speed 0."""
        if self.speed == 0:
            return float("inf")
        return max(0.0, (self.now() - since) / self.speed)

    def reached(self, since: float, real_seconds: float) -> bool:
        """Has a real duration started at ``since`` run out?"""
        return self.elapsed_real(since) >= real_seconds

    def progress(self, since: float, real_seconds: float) -> float:
        """Fraction 0..1 of a real duration started at ``since``."""
        if real_seconds <= 0:
            return 1.0
        return min(1.0, self.elapsed_real(since) / real_seconds)


class ManualClock(Clock):
    """A clock that only moves when told to (for tests)."""

    def __init__(self, speed: float = 1.0, start: float = 1_760_000_000.0):
        self._t = float(start)
        self._lock = threading.Lock()
        super().__init__(speed, now=self._read)

    def _read(self) -> float:
        with self._lock:
            return self._t

    def advance(self, wall_seconds: float) -> None:
        with self._lock:
            self._t += wall_seconds

    def advance_real(self, real_seconds: float) -> None:
        """Advance by the wall time that ``real_seconds`` of real duration take."""
        self.advance(real_seconds * self.speed)
