"""Fisheye jobs: ``pending -> processing -> done | failed``.

A job is created with its resources already filled (as the real API shows
them while pending), a pending and a processing duration (real seconds,
scaled by the clock) and an *effect*: the name of a world operation applied
when the job completes (``create_vds``, ``vm_create`` ...), with JSON-able
arguments so that a job survives a restart. Whether it fails is decided when it
is created (``fail-job`` fault), so faults stay deterministic; an effect may
also refuse at completion time (a :class:`SimError`), which fails the job with
that message. A failed job carries its reason as API-FACTS.md documents it:
``error_code`` / ``error_msg`` on the job and a failed ``task_list`` entry
(``name``, ``state``, ``error_code``, ``msg``) for the step that failed.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Optional

from voyager.sim.backend.errors import SimError
from voyager.sim.backend.faults import job_failure

PENDING, PROCESSING, DONE, FAILED = "pending", "processing", "done", "failed"

# description -> (pending, processing) real seconds
DURATIONS: dict[str, tuple[float, float]] = {
    "NETWORK_CREATE_VDS": (2, 10),
    "VM_CREATE": (2, 12),
    "VM_UPDATE": (2, 20),
    "VM_START": (1, 8),
    "VM_STOP": (1, 8),
    "VM_REBOOT": (1, 10),
    "VM_DELETE": (1, 5),
    "UPDATE_VIP": (1, 8),
    "UPDATE_DNS": (1, 5),
    "UPDATE_NTP": (1, 5),
}
DEFAULT_DURATION = (1, 5)


def _resource_name(resources: dict) -> Optional[str]:
    """The name of a job's (first) resource: a VDS's ``name``, a VM's ``vm_name``."""
    first = next(iter(resources.values()), None) if resources else None
    if not isinstance(first, dict):
        return None
    name = first.get("name") or first.get("vm_name")
    return str(name) if name else None


class JobTable:
    def __init__(self, world) -> None:
        self.world = world
        self.jobs: dict[str, dict[str, Any]] = {}
        self.effects: dict[str, Callable[[dict], Any]] = {}

    def register(self, name: str, fn: Callable[[dict], Any]) -> None:
        self.effects[name] = fn

    def create(self, description: str, *, resources: dict, effect: str, args: dict,
               event: Optional[dict] = None) -> str:
        if effect not in self.effects:
            raise KeyError(effect)
        job_id = str(uuid.uuid4())
        pending, processing = DURATIONS.get(description, DEFAULT_DURATION)
        self.jobs[job_id] = {
            "job_id": job_id,
            "description": description,
            "state": PENDING,
            "ctime": self.world.clock.now(),
            "pending_for": pending,
            "processing_for": processing,
            "resources": resources,
            "effect": effect,
            "args": args,
            "fail": self.world.faults.take_job(description, _resource_name(resources)),
            "error": None,
            "event": event,
        }
        return job_id

    def tick(self) -> bool:
        """Advance every unfinished job; True when something changed."""
        changed = False
        clock = self.world.clock
        for job in sorted(self.jobs.values(), key=lambda j: j["ctime"]):
            if job["state"] in (DONE, FAILED):
                continue
            total = job["pending_for"] + job["processing_for"]
            if clock.reached(job["ctime"], total):
                self._finish(job)
                changed = True
            elif clock.reached(job["ctime"], job["pending_for"]) and job["state"] == PENDING:
                job["state"] = PROCESSING
                changed = True
        return changed

    def _finish(self, job: dict[str, Any]) -> None:
        if job["fail"]:
            self._fail(job, *job_failure(job["description"], **self._failure_fields(job)))
            return
        args = dict(job["args"])
        args["_at"] = job["ctime"] + self.world.clock.wall(job["pending_for"] + job["processing_for"])
        try:
            self.effects[job["effect"]](args)
        except SimError as exc:
            self._fail(job, job["effect"], exc.ec, exc.msg)
            return
        job["state"] = DONE

    @staticmethod
    def _fail(job: dict[str, Any], step: str, code: str, reason: str) -> None:
        job.update(state=FAILED, error=reason, error_code=code, failed_step=step)

    def _failure_fields(self, job: dict[str, Any]) -> dict[str, str]:
        """Names for a fault's reason text: the job's resource, a cluster host, the VIP asked for."""
        resource = next(iter(job["resources"].values()), {}) if job["resources"] else {}
        cluster = self.world.cluster
        host = self.world.hosts.get(cluster.master_ip) if cluster is not None else None
        fields = {"name": str(resource.get("name") or resource.get("vm_name") or "-")}
        if host is not None:
            fields["host"] = f"{host.hostname} ({host.mgmt_ip})"
        vip = (job["args"].get("body") or {}).get("management_vip") if isinstance(job["args"], dict) else None
        if vip:
            fields["vip"] = str(vip)
        return fields

    def get(self, job_id: str) -> Optional[dict[str, Any]]:
        return self.jobs.get(job_id)

    def render(self, job: dict[str, Any]) -> dict[str, Any]:
        """The ``data.job`` object of ``GET /api/v2/jobs/{id}``."""
        out = {
            "job_id": job["job_id"],
            "state": job["state"],
            "life_cycle": "run",
            "description": job["description"],
            "type": "action",
            "user": "",
            "resources": job["resources"],
            "schedule_task": None,
            "one_time_task": None,
            "ctime": int(job["ctime"]),
            "task_list": [],
            "queue": None,
            "resource_group": None,
            "event": job["event"],
        }
        if job["state"] == FAILED:
            code = job.get("error_code") or "EJOB_TASK_FAILED"
            out["error_code"] = code
            out["error_msg"] = job["error"]
            out["task_list"] = [{"name": job.get("failed_step") or job["effect"], "state": FAILED,
                                 "error_code": code, "msg": job["error"]}]
        return out

    def to_state(self) -> dict[str, Any]:
        return {"jobs": self.jobs}

    def load_state(self, state: dict[str, Any]) -> None:
        self.jobs = dict(state.get("jobs") or {})
