"""When a wait polls next: one rule for every wait of the project.

The rule
--------
The pause before the next poll is ::

    clamp(share × age, floor, cap)

where ``age`` is the time since the awaited *operation* started — its own start
when the API gives it (a fisheye job's ``ctime``, a CloudTower task's
``local_created_at``, a VM's ``last_start_time``, the deployment's trigger as the
run state recorded it), else the start of the wait. A wait therefore notices the
end of an operation of duration ``D`` at most ``share × D`` late (0.5 % with the
default :data:`SHARE`: a quarter of the 2 % the acceptance asks, so that the read's
own latency fits in the rest, and small enough that the lag of the long operations
does not weigh in a rehearsal's overhead) once ``D`` exceeds ``floor / share``, and
at most ``floor`` late below that. The number of polls grows with the logarithm of
the duration, not linearly (``1/share`` polls at the floor, then
``ln(share·D/floor) / share``): a 20-minute deployment polled from a 5 s floor is
read about 240 times, every 5 s on average (the walkthrough polls every 10 s),
every 6 s near its end.

* ``floor`` and ``cap`` are **API seconds**: how often a real cluster may be asked
  (e.g. a fisheye job every 0.25 s at first, at most every 5 s). They are
  multiplied by the process-wide time scale (:func:`configure`: 1.0 = real time;
  a ``--sim`` run sets the simulator clock's speed, the factor by which it
  compresses every simulated duration), so a rehearsal polls as often,
  relative to each operation, as a real run does.
* No pause is shorter than :data:`MIN_SLEEP` **wall** seconds, whatever the
  scale (a rehearsal at speed 0.04 does not spin the CPU: a floor of 0.25 API
  s would be 0.01 s there; it becomes 0.02 s, i.e. 0.5 API s).
* ``share`` is dimensionless (the lag bound as a share of the duration): ages
  and pauses are both wall seconds, so it needs no scaling.

Progress
--------
Where the API reports the share of the operation done (deploy stage x/y, a job's
or task's ``progress``, an inspection's ``progress``), :meth:`Pacer.observe` is
told each new value; from the rate observed since the first value the pacer
predicts the end and never sleeps past it (one poll lands at the predicted end,
but never sooner than ``floor``). A prediction that has passed without the end
is ignored: the rule alone applies again, so a wrong prediction costs at most
one extra poll, never a burst of polls at the floor.

Clock skew
----------
An operation's start read from the API is the cluster's clock, the age is
computed with ours (``epoch``). The age used is ``max(age reported, time since
the wait began)``: a cluster clock ahead of ours cannot make polls denser than
the wait's own elapsed time warrants; one behind ours makes them sparser, never
sparser than ``cap``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

SHARE = 0.005  # lag bound as a share of the operation's duration
MIN_SLEEP = 0.02  # wall seconds: the shortest pause between two polls


@dataclass
class Pacing:
    """Process-wide pacing of every wait (see :func:`configure`)."""

    time_scale: float = 1.0


PACING = Pacing()


def configure(*, time_scale: Optional[float] = None) -> None:
    """Set the process-wide time scale of every wait's floor and cap: wall seconds
    per API second. ``None`` (or 1.0) is real time; a ``--sim`` run sets the
    simulator's speed (0 = operations are instant: polls are then
    :data:`MIN_SLEEP` apart)."""
    scale = 1.0 if time_scale is None else float(time_scale)
    if scale < 0:
        raise ValueError("time_scale must be >= 0")
    PACING.time_scale = scale


def wall_bounds(floor: float, cap: float, scale: Optional[float] = None) -> tuple[float, float]:
    """``(floor, cap)`` in wall seconds for API-second bounds at ``scale``
    (default: the process-wide time scale); the floor never below :data:`MIN_SLEEP`."""
    s = PACING.time_scale if scale is None else float(scale)
    low = max(MIN_SLEEP, max(0.0, float(floor)) * s)
    return low, max(low, max(0.0, float(cap)) * s)


def epoch_of(value: Any) -> Optional[float]:
    """An operation's start as the APIs give it, in epoch seconds: a number
    (fisheye's ``ctime``/``last_start_time``: epoch seconds; milliseconds when it
    is that large) or an ISO 8601 text (CloudTower's ``local_created_at``,
    ``2025-09-30T18:30:42.192Z``; a naive one is UTC). None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e11:  # epoch milliseconds
            seconds /= 1000.0
        return seconds if seconds > 0 else None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # nanoseconds (fisheye's create_time) -> microseconds
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


class Pacer:
    """The pauses of one wait, in the wait's own clock (wall seconds).

    ``floor``/``cap`` arrive already in wall seconds (:meth:`scaled` converts API
    seconds); ``origin`` is the clock reading at which the operation started (by
    default the wait's start). ``started(origin)`` moves it earlier when the API
    reports an earlier start; ``observe(now, fraction)`` is told the share done
    after each poll; ``next_sleep(now)`` is the pause before the next poll."""

    def __init__(self, floor: float, cap: float, *, share: float = SHARE, origin: float = 0.0):
        self.floor = max(0.0, float(floor))
        self.cap = max(self.floor, float(cap))
        self.share = max(0.0, float(share))
        self.origin = float(origin)
        self.samples: list[tuple[float, float]] = []  # (first time seen, fraction) per new value

    @classmethod
    def scaled(cls, interval: float, max_interval: float, *, share: float = SHARE, origin: float = 0.0,
               scale: Optional[float] = None) -> "Pacer":
        """A pacer for bounds in API seconds (``interval`` = floor, ``max_interval`` = cap)."""
        floor, cap = wall_bounds(interval, max_interval, scale)
        return cls(floor, cap, share=share, origin=origin)

    def started(self, origin: Optional[float]) -> None:
        """The operation started at clock reading ``origin`` (the earliest start counts)."""
        if origin is not None:
            self.origin = min(self.origin, float(origin))

    def observe(self, now: float, fraction: Optional[float]) -> None:
        if fraction is None:
            return
        value = min(1.0, max(0.0, float(fraction)))
        if self.samples and value <= self.samples[-1][1]:
            return
        self.samples.append((now, value))

    def eta(self, now: float) -> Optional[float]:
        """Seconds until the end the observed rate of progress predicts (None: unknown;
        negative: the predicted end has passed)."""
        if len(self.samples) < 2:
            return None
        (t0, f0), (t1, f1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or f1 <= f0:
            return None
        return t1 + (1.0 - f1) * (t1 - t0) / (f1 - f0) - now

    def rule(self, now: float) -> float:
        """``clamp(share × age, floor, cap)``."""
        age = max(0.0, now - self.origin)
        return min(max(self.share * age, self.floor), self.cap)

    def next_sleep(self, now: float) -> float:
        sleep = self.rule(now)
        eta = self.eta(now)
        if eta is not None and eta > 0:
            sleep = min(sleep, max(eta, self.floor))
        return sleep


__all__ = ["MIN_SLEEP", "PACING", "Pacer", "Pacing", "SHARE", "configure", "epoch_of", "wall_bounds"]
