"""Work in flight through ``voyager.steps.jobs``, both forms (fisheye jobs and
CloudTower tasks): recorded before waiting, followed while it runs on rerun
(never started again), forgotten when it ended (done or failed), kept when the
wait timed out; a bare id recorded by an earlier version is read."""
from __future__ import annotations

import pytest

from voyager import waiters
from voyager.plan.demo import build_demo_plan
from voyager.state import open_state
from voyager.steps import jobs
from voyager.waiters import WaitFailed, WaitTimeout


@pytest.fixture(autouse=True)
def instant_polls():
    waiters.configure(time_scale=0)
    yield
    waiters.configure()


@pytest.fixture
def run_state(tmp_path):
    return open_state(tmp_path / "state", build_demo_plan())


class Fisheye:
    """Jobs whose states advance one step per poll; each poll notes the run state's record."""

    def __init__(self, run_state, key, section="jobs", **states):
        self.states = {job_id: list(seq) for job_id, seq in states.items()}
        self.run_state, self.key, self.section = run_state, key, section
        self.seen = []

    def job(self, job_id):
        self.seen.append(jobs.recorded_id(self.run_state, self.key, section=self.section))
        seq = self.states.get(job_id)
        if seq is None:
            from voyager.clients import ApiError

            raise ApiError("EJOB_NOT_FOUND", "job not found", None, "GET", f"/api/v2/jobs/{job_id}", 404)
        state = seq.pop(0) if len(seq) > 1 else seq[0]
        return {"job_id": job_id, "state": state, "description": "VM_CREATE", "error_msg": "disk full"}


class Tower:
    def __init__(self, run_state, key, section="jobs", **states):
        self.states = {task_id: list(seq) for task_id, seq in states.items()}
        self.run_state, self.key, self.section = run_state, key, section
        self.seen = []

    def rest(self, operation, body=None, **kwargs):
        assert operation == "get-tasks"
        self.seen.append(jobs.recorded_id(self.run_state, self.key, section=self.section, id_field="task_id"))
        out = []
        for task_id in body["where"]["id_in"]:
            seq = self.states.get(task_id)
            if seq is not None:
                out.append({"id": task_id, "status": seq.pop(0) if len(seq) > 1 else seq[0]})
        return out


def starter(job_id, calls):
    def start():
        calls.append(job_id)
        return job_id
    return start


def test_a_job_is_recorded_before_waiting_and_forgotten_when_done(run_state):
    fe = Fisheye(run_state, "vds", j1=["pending", "processing", "done"])
    calls = []
    job = jobs.run_job(fe, run_state, "vds", starter("j1", calls))
    assert job["state"] == "done" and calls == ["j1"]
    assert fe.seen and all(seen == "j1" for seen in fe.seen)  # every poll saw the record
    assert run_state.get("jobs", "vds") is None


def test_a_recorded_running_job_is_followed_not_started_again(run_state):
    run_state.set("cloudtower", "vm_create_job", "j0")  # a bare id: an earlier version's record
    fe = Fisheye(run_state, "vm_create_job", section="cloudtower", j0=["processing", "done"])
    calls = []
    ran = jobs.run(jobs.FISHEYE_JOB, fe, run_state, "vm_create_job", starter("j9", calls), section="cloudtower")
    assert ran.followed and ran.work_id == "j0" and ran.result["state"] == "done"
    assert calls == [] and run_state.get("cloudtower", "vm_create_job") is None


@pytest.mark.parametrize("recorded", [["done"], ["failed"], None], ids=["done", "failed", "gone"])
def test_a_recorded_job_that_ended_is_forgotten_and_the_action_started(run_state, recorded):
    run_state.set("jobs", "ntp", {"job_id": "old", "started": "2026-01-01T00:00:00+00:00"})
    fe = Fisheye(run_state, "ntp", j2=["pending", "done"], **({"old": recorded} if recorded else {}))
    calls = []
    ran = jobs.run(jobs.FISHEYE_JOB, fe, run_state, "ntp", starter("j2", calls))
    assert not ran.followed and calls == ["j2"] and ran.result["job_id"] == "j2"
    assert run_state.get("jobs", "ntp") is None


def test_a_failed_job_is_forgotten_and_its_reason_raised(run_state):
    fe = Fisheye(run_state, "vip", j3=["processing", "failed"])
    with pytest.raises(WaitFailed) as err:
        jobs.run_job(fe, run_state, "vip", starter("j3", []))
    assert "disk full" in err.value.reason and "j3" in err.value.describe
    assert "j3" in fe.seen and run_state.get("jobs", "vip") is None


def test_a_wait_that_times_out_keeps_the_record_for_the_rerun(run_state):
    fe = Fisheye(run_state, "dns", j4=["pending"])
    with pytest.raises(WaitTimeout):
        jobs.run_job(fe, run_state, "dns", starter("j4", []), timeout=0.1)
    assert jobs.recorded_id(run_state, "dns") == "j4"
    fe.states["j4"] = ["processing", "done"]
    calls = []
    assert jobs.run(jobs.FISHEYE_JOB, fe, run_state, "dns", starter("j5", calls)).followed and calls == []


def test_a_tower_task_is_recorded_followed_and_forgotten(run_state):
    tower = Tower(run_state, "connect_task", section="cloudtower", t1=["PENDING", "EXECUTING", "SUCCESSED"])
    calls = []
    task = jobs.run_tower_task(tower, run_state, "connect_task", starter("t1", calls), section="cloudtower")
    assert task == {"id": "t1", "status": "SUCCESSED"} and calls == ["t1"]
    assert tower.seen and all(seen == "t1" for seen in tower.seen)
    assert run_state.get("cloudtower", "connect_task") is None

    # an earlier run recorded a task that still runs: followed, nothing started
    run_state.set("cloudtower", "connect_task", {"task_id": "t2", "started": "2026-01-01T00:00:00+00:00"})
    tower.states["t2"] = ["EXECUTING", "SUCCESSED"]
    ran = jobs.run(jobs.TOWER_TASK, tower, run_state, "connect_task", starter("t3", calls), section="cloudtower")
    assert ran.followed and ran.work_id == "t2" and calls == ["t1"]
    assert run_state.get("cloudtower", "connect_task") is None


def test_a_failed_tower_task_is_forgotten(run_state):
    tower = Tower(run_state, "k", t4=["EXECUTING", "FAILED"])
    with pytest.raises(WaitFailed, match="t4"):
        jobs.run_tower_task(tower, run_state, "k", starter("t4", []))
    assert run_state.get("jobs", "k") is None


def test_an_action_without_a_task_has_nothing_to_follow(run_state):
    tower = Tower(run_state, "k")
    ran = jobs.run(jobs.TOWER_TASK, tower, run_state, "k", lambda: None)
    assert (ran.result, ran.work_id, ran.followed) == (None, None, False)
    assert run_state.get("jobs", "k") is None and tower.seen == []


def test_follow_recorded_never_starts_anything(run_state):
    tower = Tower(run_state, "k", t5=["SUCCESSED"], t6=["PAUSED", "SUCCESSED"])
    assert jobs.follow_recorded(jobs.TOWER_TASK, tower, run_state, "k") is None  # nothing recorded
    run_state.set("jobs", "k", {"task_id": "t5"})
    assert jobs.follow_recorded(jobs.TOWER_TASK, tower, run_state, "k") is None  # ended: forgotten
    assert run_state.get("jobs", "k") is None
    run_state.set("jobs", "k", {"task_id": "t6"})
    ran = jobs.follow_recorded(jobs.TOWER_TASK, tower, run_state, "k")
    assert ran.followed and ran.result["status"] == "SUCCESSED" and run_state.get("jobs", "k") is None
