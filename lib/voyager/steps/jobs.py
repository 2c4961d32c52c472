"""Work that survives an interrupted run: started once, recorded before
waiting, followed (not started again) by the rerun.

Two kinds of work in flight, one rule (a :class:`Form` each):

* fisheye jobs (:data:`FISHEYE_JOB`, :func:`run_job`): read with
  ``GET /api/v2/jobs/{id}``, running while ``pending``/``processing``, awaited
  with ``waiters.wait_job`` (VIP, DNS, NTP, VDS, CPU compatibility, the
  CloudTower VM and its NIC…);
* CloudTower tasks (:data:`TOWER_TASK`, :func:`run_tower_task`): read with
  ``get-tasks`` by id, running while ``PENDING``/``EXECUTING``/``PAUSED``,
  awaited with ``waiters.wait_tower_tasks`` (the cluster connection…).

A step observes first and calls :func:`run` (or its two wrappers) only when the
effect is missing. It then

* follows the work recorded for the same action in the run state (section
  ``jobs`` unless the step keeps its records elsewhere, key = the action) when
  it is still running — the run that started it was killed or timed out while
  waiting;
* otherwise (nothing recorded, or the recorded work ended or is gone) forgets
  the record, starts the action, records its id *before* waiting, and follows it.

The record (``{"job_id" | "task_id": id, "started": time}``; a bare id, as
earlier versions wrote it, is read too) is dropped once the work has ended (done
or failed); a wait that times out keeps it, so the next run follows the same
work. :func:`follow_recorded` follows recorded work that still runs without
ever starting any (a step that finds its effect already there, possibly from an
interrupted run whose work is finishing).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from voyager.clients import ApiError
from voyager.waiters import WaitFailed, wait_job, wait_tower_tasks

SECTION = "jobs"
RUNNING = ("pending", "processing")
TASK_RUNNING = ("PENDING", "EXECUTING", "PAUSED")
JOB_TIMEOUT = 1800.0


def current_job(fisheye, job_id: str) -> Optional[dict[str, Any]]:
    """The job as the cluster knows it now; None when it no longer knows it (404)."""
    try:
        job = fisheye.job(job_id)
    except ApiError as exc:
        if exc.status == 404 or exc.matches("NOT_FOUND"):
            return None
        raise
    return job or None


def current_tower_task(tower, task_id: str) -> Optional[dict[str, Any]]:
    """The CloudTower task as ``get-tasks`` lists it now; None when it is not listed."""
    answer = tower.rest("get-tasks", {"where": {"id_in": [task_id]}})
    tasks = answer if isinstance(answer, list) else []
    return next((t for t in tasks if isinstance(t, dict) and t.get("id") == task_id), None)


def _job_state(fisheye, job_id: str) -> Optional[str]:
    return (current_job(fisheye, job_id) or {}).get("state")


def _task_state(tower, task_id: str) -> Optional[str]:
    return (current_tower_task(tower, task_id) or {}).get("status")


def _wait_task(tower, task_id: str, timeout: float) -> dict[str, Any]:
    tasks = wait_tower_tasks(tower, [task_id], timeout=timeout)
    return next((t for t in tasks if t.get("id") == task_id), {"id": task_id})


@dataclass(frozen=True)
class Form:
    """One kind of work in flight: how it is named in the record, read and awaited."""
    id_field: str
    running: tuple[str, ...]
    state: Callable[[Any, str], Optional[str]]  # (client, id) -> its state; None when gone
    wait: Callable[[Any, str, float], dict[str, Any]]  # (client, id, timeout) -> the ended work


FISHEYE_JOB = Form("job_id", RUNNING, _job_state, lambda fisheye, job_id, timeout: wait_job(
    fisheye, job_id, timeout=timeout))
TOWER_TASK = Form("task_id", TASK_RUNNING, _task_state, _wait_task)


@dataclass
class Ran:
    """The ended work (None when the action answered without any to follow), its
    id, and whether it was an earlier run's, followed rather than started."""
    result: Optional[dict[str, Any]]
    work_id: Optional[str]
    followed: bool


def recorded_id(run_state, key: str, *, section: str = SECTION, id_field: str = "job_id") -> Optional[str]:
    """The id recorded for action ``key``, or None."""
    record = run_state.get(section, key) if run_state is not None else None
    if isinstance(record, dict):
        return record.get(id_field) or None
    return record if isinstance(record, str) and record else None


def forget(run_state, key: str, *, section: str = SECTION) -> None:
    if run_state is not None and run_state.get(section, key) is not None:
        run_state.delete(section, key)


def _still_running(form: Form, client, run_state, key: str, section: str) -> Optional[str]:
    """The recorded id when that work still runs; otherwise the record is forgotten."""
    work_id = recorded_id(run_state, key, section=section, id_field=form.id_field)
    if work_id is None:
        forget(run_state, key, section=section)
        return None
    if form.state(client, work_id) in form.running:
        return work_id
    forget(run_state, key, section=section)  # ended (done or failed) or gone: nothing to follow
    return None


def _await(form: Form, client, run_state, key: str, section: str, work_id: str,
           timeout: float) -> dict[str, Any]:
    try:
        result = form.wait(client, work_id, timeout)
    except WaitFailed:
        forget(run_state, key, section=section)
        raise
    forget(run_state, key, section=section)
    return result


def run(form: Form, client, run_state, key: str, start: Callable[[], Optional[str]], *,
        section: str = SECTION, timeout: float = JOB_TIMEOUT) -> Ran:
    """Follow the recorded work of action ``key`` while it runs, else ``start()``
    it (returns the new id), record the id and follow it. Raises ``WaitFailed``
    with the work's own reason when it failed."""
    work_id = _still_running(form, client, run_state, key, section)
    followed = work_id is not None
    if not followed:
        work_id = start()
        if not work_id:
            return Ran(None, None, False)
        if run_state is not None:
            run_state.set(section, key, {form.id_field: work_id,
                                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return Ran(_await(form, client, run_state, key, section, work_id, timeout), work_id, followed)


def follow_recorded(form: Form, client, run_state, key: str, *, section: str = SECTION,
                    timeout: float = JOB_TIMEOUT) -> Optional[Ran]:
    """Follow the recorded work of action ``key`` if it still runs (never starts any);
    None when nothing is running."""
    work_id = _still_running(form, client, run_state, key, section)
    if work_id is None:
        return None
    return Ran(_await(form, client, run_state, key, section, work_id, timeout), work_id, True)


def run_job(fisheye, run_state, key: str, start: Callable[[], str], *,
            timeout: float = JOB_TIMEOUT, section: str = SECTION) -> dict[str, Any]:
    """The ended fisheye job of action ``key`` (raises ``WaitFailed`` with the job's
    reason when it failed). ``start()`` performs the action and returns its job id."""
    return run(FISHEYE_JOB, fisheye, run_state, key, start, section=section, timeout=timeout).result


def run_tower_task(tower, run_state, key: str, start: Callable[[], Optional[str]], *,
                   timeout: float = JOB_TIMEOUT, section: str = SECTION) -> Optional[dict[str, Any]]:
    """The ended CloudTower task of action ``key`` (raises ``WaitFailed`` when it
    failed); None when ``start()`` (the action, returning its task id) answered
    without a task."""
    return run(TOWER_TASK, tower, run_state, key, start, section=section, timeout=timeout).result
