"""End to end: suites 01-06 run as subprocesses against the embedded simulator
(``python -m pytest suites/ --sim --sim-speed 0 --state-dir <tmp>``), as issue 11
accepts them:

1. a clean run passes every check of 04-06; an immediate second run passes the
   same checks and the simulator's status is unchanged (no second image, VM,
   datacenter, connection, view, graph, rack or brick); the CloudTower serial is
   written back to 集群管理信息!M3; the run state holds no secret;
2. with ``--sim-faults fail-job:VM_CREATE:1`` the VM check fails with the job's
   reason; ``--lf`` completes 04-06 with a single CloudTower VM;
3. with ``--sim-faults fail-job:CLOUDTOWER_INSTALL:1`` the installer check fails
   showing the log's tail; ``--lf`` completes and the installer ran twice.
"""
from __future__ import annotations

import json

import pytest

import e2e_support as e2e
from voyager.plan import read_plan, write_plan
from voyager.plan.demo import build_demo_plan
from voyager.redact import secret_forms
from voyager.steps import cloudtower as ct

SUITES = [*e2e.SUITES, "suites/test_04_cloudtower.py", "suites/test_05_attach_cluster.py", "suites/test_06_tower_config.py"]
pytestmark = pytest.mark.e2e

VM_TEST = "suites/test_04_cloudtower.py::test_cloudtower_vm"
INSTALLER_TEST = "suites/test_04_cloudtower.py::test_cloudtower_installer"
TOWER_MODULES = ("test_04_cloudtower", "test_05_attach_cluster", "test_06_tower_config")


def tower_checks(run: e2e.Run) -> set[str]:
    return set().union(*(e2e.suite_names(run, m) for m in TOWER_MODULES))


# --------------------------------------------------------------------------- 1. clean + rerun
@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    state = tmp_path_factory.mktemp("tower-clean") / "state"
    first = e2e.run_suites(state, suites=SUITES)
    status_first = e2e.sim_status(state)
    second = e2e.run_suites(state, suites=SUITES)
    status_second = e2e.sim_status(state)
    return state, first, status_first, second, status_second


def test_clean_run_passes_steps_04_to_06(clean):
    _, first, status, _, _ = clean
    assert first.returncode == 0, first.explain()
    assert not first.having("failed") and not first.having("error"), first.explain()
    assert not first.having("skipped"), first.having("skipped")
    checks = tower_checks(first)
    assert len(checks) >= 30 and checks <= first.having("passed")
    assert status == {"deployed": True, "hosts": 3, "vds": 3, "vlans": 4, "images": 2, "vms": 1,
                      "organizations": 1, "datacenters": 1, "connected_clusters": 1,
                      "views": 3, "graphs": 15, "racks": 1, "bricks": 3, "uploads_in_progress": 0}


def test_second_run_passes_and_creates_nothing(clean):
    _, first, status_first, second, status_second = clean
    assert second.returncode == 0, second.explain()
    assert second.having("passed") == first.having("passed")
    assert status_second == status_first


def test_tower_serial_written_back_and_state_holds_no_secret(clean):
    state = clean[0]
    text = (state / "run-state.json").read_text(encoding="utf-8")
    tower_facts = json.loads(text)["facts"]["cloudtower"]
    assert read_plan(state / "demo-plan.xlsx").cloudtower.serial == tower_facts["serial"]
    assert tower_facts["installer_runs"] == 1
    assert not {"vm_create_job", "nic_job", "connect_task"} & set(tower_facts)  # nothing left in flight
    secrets = [s.reveal() for s in build_demo_plan().secrets() if len(s) >= 6]
    for secret in secrets + [ct.ROOT_PASSWORD.reveal(), ct.ENCODED_ROOT_PASSWORD.reveal()]:
        for form in secret_forms(secret):
            assert form not in text


# --------------------------------------------------------------------------- 2. failed VM job + --lf
@pytest.fixture(scope="module")
def vm_fault(tmp_path_factory):
    state = tmp_path_factory.mktemp("tower-vm-fault") / "state"
    first = e2e.run_suites(state, "--sim-faults", "fail-job:VM_CREATE:1", suites=SUITES)
    again = e2e.run_suites(state, "--lf", suites=SUITES)
    return state, first, again


def test_failed_vm_job_fails_the_vm_check_with_its_reason(vm_fault):
    _, first, _ = vm_fault
    assert first.returncode == 1, first.explain()
    assert first.having("failed") == {VM_TEST}, first.explain()
    message = first.messages[VM_TEST]
    assert "VM_CREATE" in message and "simulated: fail-job fault" in message
    assert tower_checks(first) - {VM_TEST} - first.having("passed") == first.having("skipped")


def test_lf_completes_04_to_06_with_one_cloudtower_vm(vm_fault):
    state, first, again = vm_fault
    assert again.returncode == 0, again.explain()
    assert VM_TEST in again.having("passed")
    assert not again.having("failed") and not again.having("skipped"), again.explain()
    assert first.having("skipped") <= again.having("passed")
    status = e2e.sim_status(state)
    assert status["vms"] == 1 and status["connected_clusters"] == 1 and status["graphs"] == 15


# --------------------------------------------------------------------------- 3. failed installer + --lf
@pytest.fixture(scope="module")
def install_fault(tmp_path_factory):
    state = tmp_path_factory.mktemp("tower-install-fault") / "state"
    first = e2e.run_suites(state, "--sim-faults", "fail-job:CLOUDTOWER_INSTALL:1", suites=SUITES)
    again = e2e.run_suites(state, "--lf", suites=SUITES)
    return state, first, again


def test_failed_installer_shows_the_log_tail(install_fault):
    _, first, _ = install_fault
    assert first.returncode == 1, first.explain()
    assert first.having("failed") == {INSTALLER_TEST}, first.explain()
    message = first.messages[INSTALLER_TEST]
    assert "Install Operation Center Failed" in message and "nohup.out 最后 20 行" in message
    assert "timed out waiting for pods" in message


def test_lf_completes_after_the_installer_failure(install_fault):
    state, first, again = install_fault
    assert again.returncode == 0, again.explain()
    assert INSTALLER_TEST in again.having("passed")
    assert first.having("skipped") <= again.having("passed")
    assert not again.having("failed") and not again.having("skipped"), again.explain()
    runs = json.loads((state / "run-state.json").read_text(encoding="utf-8"))["facts"]["cloudtower"]
    assert runs["installer_runs"] == 2
    assert e2e.sim_status(state)["connected_clusters"] == 1


# --------------------------------------------------------------------------- 4. no rack planned
def test_a_plan_without_racks_skips_the_topology_with_its_reason(tmp_path):
    plan = build_demo_plan()
    for host in plan.hosts:
        host.rack, host.unit = None, None
    plan_file = tmp_path / "no-rack-plan.xlsx"
    write_plan(plan, plan_file)
    state = tmp_path / "state"
    run = e2e.run_suites(state, "--plan", str(plan_file), suites=SUITES)
    assert run.returncode == 0, run.explain()
    topology = {n for n in run.outcomes if "test_racks" in n or "test_host_rack_position" in n}
    assert len(topology) == 4 and run.having("skipped") == topology, run.explain()
    assert "规划表没有填写机架（主机规划 P 列）" in run.messages["suites/test_06_tower_config.py::test_racks"]
    assert "没有规划机架（主机规划!P3）" in run.messages[
        "suites/test_06_tower_config.py::test_host_rack_position[demo-node-01]"]
    status = e2e.sim_status(state)
    assert (status["racks"], status["bricks"], status["views"]) == (0, 0, 3)
