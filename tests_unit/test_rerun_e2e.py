"""End to end: reruns that are never wrong (suites 01-03 as subprocesses against
the embedded simulator).

* a failed deployment (``fail-job:DEPLOY_CLUSTER:1``) is retried by ``--lf``;
* a run killed (SIGKILL) during the business VDS job, during the host password
  changes, or after an earlier failure, followed by ``--lf``: rc 0, every check
  of suites 01-03 passed in the ledger and in the report, the simulator holds
  exactly what a clean run leaves (no second VDS, VLAN, image or job), no upload
  left open, the plan file intact but for the serial cell (the kill points of
  the whole suite, steps 02-11, are in ``test_interruptions_e2e.py``);
* ``-n 2`` is refused before anything is deployed; two plans rehearsed at
  once in two state dirs both pass.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from e2e_support import (SUITES, kill_when, ledger_of, plan_without_serial, run_suites, sim_status, sim_world,
                         start_suites, world_has)
from voyager.plan import read_plan

pytestmark = pytest.mark.e2e

SUITE_CHECKS = 58  # suites 01-03 on the 3-host demo plan


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean run's state dir and simulator status: what every recovery must equal."""
    state = tmp_path_factory.mktemp("clean") / "state"
    run = run_suites(state)
    assert run.returncode == 0, run.explain()
    return state, sim_status(state)


def assert_recovered(state: Path, lf, clean) -> None:
    clean_state, clean_status = clean
    assert lf.returncode == 0, lf.explain()
    entries = ledger_of(state)
    assert len(entries) == SUITE_CHECKS
    assert {n: e["outcome"] for n, e in entries.items() if e["outcome"] != "passed"} == {}
    # the report of the --lf run shows every check: rerun now or carried over
    assert set(lf.outcomes) | lf.carried == set(entries), sorted(set(entries) - set(lf.outcomes) - lf.carried)
    status = sim_status(state)
    assert status == clean_status
    assert status["uploads_in_progress"] == 0
    jobs = sim_world(state)["jobs"]["jobs"].values()
    assert sum(j["description"] == "NETWORK_CREATE_VDS" and j["state"] != "failed" for j in jobs) == 1
    assert plan_without_serial(state) == plan_without_serial(clean_state)
    assert read_plan(state / "demo-plan.xlsx").cluster.serial


def test_failed_deployment_is_retried_by_lf(tmp_path, clean):
    state = tmp_path / "state"
    first = run_suites(state, "--sim-faults", "fail-job:DEPLOY_CLUSTER:1")
    finished = "suites/test_02_init_cluster.py::test_deploy_finished"
    assert first.returncode == 1 and first.outcomes[finished] == "failed", first.explain()
    assert sim_status(state)["deployed"] is False
    lf = run_suites(state, "--lf")
    assert finished in lf.having("passed"), lf.explain()
    assert_recovered(state, lf, clean)


def vds_job_started(world: dict) -> bool:
    return any(j.get("description") == "NETWORK_CREATE_VDS" for j in (world.get("jobs") or {}).get("jobs", {}).values())


def vds_job_recorded(state: Path) -> bool:
    """The suite recorded the VDS job's id (the kill point is *during* the wait, after the
    record: between the simulator creating the job and the answer reaching the client
    there is nothing a client could have recorded yet)."""
    try:
        facts = json.loads((state / "run-state.json").read_text(encoding="utf-8"))["facts"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(((facts.get("jobs") or {}).get("business_vds") or {}).get("job_id"))


PASSWORDS_01 = "test_host_passwords[demo-node-01]"

# name -> (speed, extra args of the killed run, kill when (output, state) holds, deploy first at speed 0)
KILL_POINTS = {
    "during-vds-job": ("0.3", (), lambda out, st: world_has(st, vds_job_started) and vds_job_recorded(st), True),
    "during-host-passwords": ("0", (), lambda out, st: PASSWORDS_01 in out, False),
    "after-an-earlier-failure": ("0", ("--sim-faults", "fail-job:UPDATE_NTP:1"),
                                 lambda out, st: PASSWORDS_01 in out and "test_ntp FAILED" in out, False),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_lf_completes(point, tmp_path, clean):
    speed, extra, ready, deploy_first = KILL_POINTS[point]
    state = tmp_path / "state"
    if deploy_first:  # reach step 03 quickly; the kill lands in a job that lasts seconds
        pre = run_suites(state, suites=SUITES[:2])
        assert pre.returncode == 0, pre.explain()
    proc = start_suites(state, *extra, speed=speed)
    output = kill_when(proc, lambda out: ready(out, state))
    assert proc.returncode == -9, output[-3000:]
    if point == "during-vds-job":  # recorded before waiting: the rerun follows this job
        facts = json.loads((state / "run-state.json").read_text(encoding="utf-8"))["facts"]
        assert facts["jobs"]["business_vds"]["job_id"]
    lf = run_suites(state, "--lf", "--sim-speed", speed)
    assert_recovered(state, lf, clean)


def test_numprocesses_refused_before_anything_is_deployed(tmp_path):
    state = tmp_path / "state"
    run = run_suites(state, "-n", "2")
    assert run.returncode != 0
    assert "不能用 -n/--numprocesses 并行运行" in run.output
    assert not (state / "sim-world.json").exists()
    assert not list(state.glob("ledger-*"))


def test_two_plans_rehearsed_at_once_both_pass(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    procs = [start_suites(s, "-q") for s in (a, b)]
    outputs = [p.communicate(timeout=600)[0].decode("utf-8", "replace") for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    assert sim_status(a)["deployed"] and sim_status(b)["deployed"]


def test_second_run_on_a_busy_state_dir_is_refused(tmp_path):
    state = tmp_path / "state"
    first = start_suites(state, speed="0.01")
    try:
        import time

        deadline = time.monotonic() + 120
        while not (state / "run.lock.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, "first run did not take the lock"
            time.sleep(0.05)
        second = run_suites(state)
        assert second.returncode not in (0, 3), second.explain()
        assert f"进程 {first.pid}" in second.output and "正被另一个运行" in second.output
        assert "INTERNALERROR" not in second.output
    finally:
        first.kill()
        try:
            first.communicate(timeout=30)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def test_a_rehearsal_never_writes_into_the_engineers_plan(tmp_path):
    """--sim with --plan: the simulated serial is not written into the plan file
    (a live run writes 主机规划!E19; a rehearsal only notes that it did not)."""
    from voyager.plan import new_template

    plan_file = new_template(tmp_path / "plan.xlsx", demo=True)
    before = plan_file.read_bytes()
    run = run_suites(tmp_path / "state", "--plan", str(plan_file))
    assert run.returncode == 0, run.explain()
    assert plan_file.read_bytes() == before
    assert not list(tmp_path.glob("plan.bak-*"))
