"""Cluster jobs that survive an interrupted run: started once, recorded before
waiting, followed (not started again) by the rerun.

A step that changes the cluster through a fisheye job (VIP, DNS, NTP, VDS,
CPU compatibility…) observes first and calls :func:`run_job` only when the
effect is missing. :func:`run_job` then

* follows the job recorded for the same action in the run state (section
  ``jobs``, key = the action) when it is still ``pending``/``processing`` — the
  run that started it was killed or timed out while waiting;
* otherwise (nothing recorded, or the recorded job ended or is gone) starts the
  action, records the job id *before* waiting, and follows it.

The record is dropped once the job has ended (done or failed); a wait that
times out keeps it, so the next run follows the same job.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Optional

from voyager.clients import ApiError
from voyager.waiters import WaitFailed, wait_job

SECTION = "jobs"
RUNNING = ("pending", "processing")
JOB_TIMEOUT = 1800.0


def recorded_job(run_state, key: str) -> Optional[dict[str, Any]]:
    return run_state.get(SECTION, key) if run_state is not None else None


def current_job(fisheye, job_id: str) -> Optional[dict[str, Any]]:
    """The job as the cluster knows it now; None when it no longer knows it (404)."""
    try:
        job = fisheye.job(job_id)
    except ApiError as exc:
        if exc.status == 404 or exc.matches("NOT_FOUND"):
            return None
        raise
    return job or None


def run_job(fisheye, run_state, key: str, start: Callable[[], str], *,
            timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """The ended job of action ``key`` (raises ``WaitFailed`` with the job's
    reason when it failed). ``start()`` performs the action and returns its job id."""
    recorded = recorded_job(run_state, key)
    job_id = None
    if recorded:
        job = current_job(fisheye, recorded["job_id"])
        if job is not None and job.get("state") in RUNNING:
            job_id = recorded["job_id"]  # started by an earlier run: follow it
        else:
            run_state.delete(SECTION, key)
    if job_id is None:
        job_id = start()
        if run_state is not None:
            run_state.set(SECTION, key, {"job_id": job_id,
                                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    try:
        job = wait_job(fisheye, job_id, timeout=timeout)
    except WaitFailed:
        if run_state is not None:
            run_state.delete(SECTION, key)
        raise
    if run_state is not None:
        run_state.delete(SECTION, key)
    return job
