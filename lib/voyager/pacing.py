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
  scale (a rehearsal at speed 0.025 does not spin the CPU: a floor of 0.25 API
  s would be 0.006 s there; it becomes 0.01 s, i.e. 0.4 API s), except the few
  polls aimed at a predicted end (below).
* ``share`` is dimensionless (the lag bound as a share of the duration): ages
  and pauses are both wall seconds, so it needs no scaling.

Progress
--------
Where the API reports the share of the operation done (deploy stage x/y, a job's
or task's ``progress``, an inspection's ``progress``), :meth:`Pacer.observe` is
told each new value, at the middle of the read that returned it; from the rate
observed between the first value and the latest the pacer predicts the end and
aims one poll just after it (the predicted end plus a guard of :data:`GUARD_SHARE`
of the predicted duration, at least :data:`GUARD` wall seconds: the error of a
prediction from rounded values and read times). That poll may come
sooner than ``floor`` — down to :data:`FINE_SLEEP` wall seconds or a tenth of
the floor, whichever is longer (a real cluster with a 0.25 s floor: 25 ms) — at most
:data:`FINE_POLLS` times in one wait: an operation shorter than a few floors (a
4 s CloudTower task is 0.1 s wall at speed 0.025, a floor of 0.01 s there is a
tenth of it) is then noticed a guard and one read after its end, not up to a
floor after it. A value of 0 is dated by the *last* read that still showed 0 (a
task pending before it executes would otherwise stretch the predicted
duration); an API that says when the progress began (a task's ``started_at``)
gives that 0 sample directly (:meth:`Pacer.progress_began`), so the first value
read already predicts the end. A prediction that has passed without the end is ignored (the rule
alone applies again) unless the latest read brought a new value (the operation
is moving and its end is near: one more fine poll, within the budget): a wrong
prediction costs at most :data:`FINE_POLLS` extra polls, never a burst at the
floor.

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
MIN_SLEEP = 0.01  # wall seconds: the shortest pause between two polls of the rule
FINE_SLEEP = 0.002  # wall seconds: the shortest pause before a poll aimed at a predicted end
FINE_POLLS = 3  # polls aimed at a predicted end sooner than the floor, per wait
GUARD = 0.001  # wall seconds: the least margin after a predicted end
GUARD_SHARE = 0.001  # the margin after a predicted end, as a share of the predicted duration


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
        self.fresh = False  # the latest observe() brought a new value (and a prediction exists)
        self.fine_left = FINE_POLLS  # polls sooner than the floor still allowed

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
        self.fresh = False
        if fraction is None:
            return
        value = min(1.0, max(0.0, float(fraction)))
        if value == 0.0 and self.samples and self.samples[-1][1] == 0.0:
            self.samples[-1] = (now, 0.0)  # still 0: it started (if at all) after this read
            return
        if self.samples and value <= self.samples[-1][1]:
            return
        self.samples.append((now, value))
        self.fresh = len(self.samples) >= 2

    def progress_began(self, at: float) -> None:
        """The operation's reported progress was 0 at clock reading ``at`` (e.g. a CloudTower
        task's ``started_at``: it executes from there): a first sample, so that one
        reported value already predicts the end."""
        at = float(at)
        positive = [s for s in self.samples if s[1] > 0.0]
        if positive and positive[0][0] <= at:
            return
        self.samples = [(at, 0.0)] + positive

    def predicted_end(self) -> Optional[float]:
        """The clock reading at which the observed rate of progress reaches 1 (None: unknown)."""
        if len(self.samples) < 2:
            return None
        (t0, f0), (t1, f1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or f1 <= f0:
            return None
        return t1 + (1.0 - f1) * (t1 - t0) / (f1 - f0)

    def rule(self, now: float) -> float:
        """``clamp(share × age, floor, cap)``."""
        age = max(0.0, now - self.origin)
        return min(max(self.share * age, self.floor), self.cap)

    def next_sleep(self, now: float) -> float:
        sleep = self.rule(now)
        end = self.predicted_end()
        if end is None:
            return sleep
        guard = max(GUARD, GUARD_SHARE * (end - self.samples[0][0]))
        target = end + guard - now
        if target <= 0:
            if not self.fresh:
                return sleep  # the prediction passed and nothing moved since: the rule alone
            target = guard  # it moved on the latest read and its end is overdue: look again shortly
        if target >= sleep:
            return sleep
        if target >= self.floor:
            return target
        if self.fine_left > 0:
            self.fine_left -= 1
            self.fresh = False
            return max(target, FINE_SLEEP, self.floor / 10)  # a real cluster: a tenth of its floor
        return self.floor


__all__ = ["FINE_POLLS", "FINE_SLEEP", "GUARD", "GUARD_SHARE", "MIN_SLEEP", "PACING", "Pacer", "Pacing", "SHARE",
           "configure", "epoch_of", "wall_bounds"]
