"""End to end: suites 01-03 run as subprocesses against the embedded simulator
(``python -m pytest suites/... --sim --sim-speed 0 --state-dir <tmp>``) and the
outcomes the issue promises are asserted:

1. a clean run passes; an identical second run passes and creates nothing
   (simulator status unchanged);
2. with ``--sim-faults fail-job:NETWORK_CREATE_VDS:1`` exactly the VDS check
   fails and its dependents are skipped; ``--lf`` runs only those and passes,
   and the simulator then holds one business VDS with the planned VLANs;
3. a host lacking a planned NIC, or a plan with a duplicate address, fails in
   test_01 naming the host / cell, and nothing reaches a deployment endpoint;
   once the NIC is there, ``--lf`` reruns that row and what it held back, and deploys.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from voyager.clients import Endpoints, FisheyeClient
from voyager.plan import read_plan, write_plan
from voyager.plan.demo import build_demo_plan
from voyager.redact import secret_forms
from voyager.sim import Simulator

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["suites/test_01_prepare.py", "suites/test_02_init_cluster.py", "suites/test_03_config_cluster.py"]
TIMEOUT = 600

pytestmark = pytest.mark.e2e


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, junit: Path):
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.carried: set[str] = set()  # reported with an earlier run's result, not run now
        if not junit.exists():
            return
        for case in ET.parse(junit).getroot().iter("testcase"):
            nodeid = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            if any(p.get("name") == "voyager_carried_over" and p.get("value") == "true"
                   for p in case.iter("property")):
                self.carried.add(nodeid)
                continue
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = case.find(tag)
                if el is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                    message = (el.get("message") or "") + "\n" + (el.text or "")
                    break
            self.outcomes[nodeid] = outcome
            self.messages[nodeid] = message

    def having(self, outcome: str) -> set[str]:
        return {n for n, o in self.outcomes.items() if o == outcome}

    def explain(self) -> str:
        return f"returncode {self.returncode}\n{self.output[-6000:]}"


def run_suites(state_dir: Path, *args: str, suites=SUITES) -> Run:
    junit = state_dir.parent / f"junit-{len(list(state_dir.parent.glob('junit-*.xml')))}.xml"
    cmd = [sys.executable, "-m", "pytest", *suites, "--sim", "--sim-speed", "0",
           "--state-dir", str(state_dir), "--reports-dir", str(state_dir.parent / "reports"),
           "-o", f"cache_dir={state_dir.parent / 'cache'}",
           "-p", "no:randomly", "-q", "-rA", f"--junitxml={junit}", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    return Run(proc, junit)


def sim_status(state_dir: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"))
    out = subprocess.run([sys.executable, "-m", "voyager", "sim", "status", "--state",
                          str(state_dir / "sim-world.json")], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def suite_names(run: Run, module: str) -> set[str]:
    return {n for n in run.outcomes if n.startswith(f"suites/{module}")}


# --------------------------------------------------------------------------- 1. clean + rerun
@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    state = tmp_path_factory.mktemp("clean") / "state"
    first = run_suites(state)
    status_first = sim_status(state) if (state / "sim-world.json").exists() else None
    second = run_suites(state)
    status_second = sim_status(state) if (state / "sim-world.json").exists() else None
    return state, first, status_first, second, status_second


def test_clean_run_passes_every_step(clean):
    state, first, status, _, _ = clean
    assert first.returncode == 0, first.explain()
    assert not first.having("failed") and not first.having("error"), first.explain()
    assert not first.having("skipped"), first.having("skipped")
    for module in ("test_01_prepare", "test_02_init_cluster", "test_03_config_cluster"):
        assert suite_names(first, module), f"{module} did not run"
    assert status["deployed"] is True
    assert status["hosts"] == 3
    assert status["vds"] == 3  # management, storage, business (三网独立)
    assert status["vlans"] >= 3
    assert status["uploads_in_progress"] == 0


def test_identical_rerun_creates_nothing(clean):
    _, first, status_first, second, status_second = clean
    assert second.returncode == 0, second.explain()
    assert second.having("passed") == first.having("passed")
    assert status_second == status_first


def test_serial_written_back_and_state_holds_no_secret(clean):
    state = clean[0]
    facts = json.loads((state / "run-state.json").read_text(encoding="utf-8"))["facts"]
    assert read_plan(state / "demo-plan.xlsx").cluster.serial == facts["cluster"]["serial"]
    assert set(facts["vlans"]) == {"VLAN-1120", "VLAN-1121", "VLAN-1122"}
    text = (state / "run-state.json").read_text(encoding="utf-8")
    for secret in build_demo_plan().secrets():
        if len(secret) >= 6:
            for form in secret_forms(secret.reveal()):
                assert form not in text


# --------------------------------------------------------------------------- 2. fault + --lf
VDS_DEPENDENTS = {
    "suites/test_03_config_cluster.py::test_business_vlan[VLAN-1120]",
    "suites/test_03_config_cluster.py::test_business_vlan[VLAN-1121]",
    "suites/test_03_config_cluster.py::test_business_vlan[VLAN-1122]",
    "suites/test_03_config_cluster.py::test_vlans_count",
    "suites/test_03_config_cluster.py::test_cluster_configured",
}
VDS_TEST = "suites/test_03_config_cluster.py::test_business_vds"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    state = tmp_path_factory.mktemp("fault") / "state"
    first = run_suites(state, "--sim-faults", "fail-job:NETWORK_CREATE_VDS:1")
    again = run_suites(state, "--lf")
    return state, first, again


def test_failed_vds_job_fails_exactly_the_vds_check(faulty):
    _, first, _ = faulty
    assert first.returncode == 1, first.explain()
    assert first.having("failed") == {VDS_TEST}, first.explain()
    assert "NETWORK_CREATE_VDS" in first.messages[VDS_TEST]
    assert first.having("skipped") == VDS_DEPENDENTS
    for nodeid in VDS_DEPENDENTS:
        assert "depends on" in first.messages[nodeid]


def test_lf_reruns_only_the_failure_and_its_dependents(faulty):
    state, first, again = faulty
    assert again.returncode == 0, again.explain()
    assert set(again.outcomes) == {VDS_TEST} | VDS_DEPENDENTS, sorted(again.outcomes)
    assert again.having("passed") == {VDS_TEST} | VDS_DEPENDENTS
    # the rerun's report still shows every check: the earlier passes are carried over
    assert again.carried == first.having("passed")


def test_after_lf_one_business_vds_holds_the_planned_vlans(faulty):
    state = faulty[0]
    plan = read_plan(state / "demo-plan.xlsx")
    with Simulator(plan, speed=0, state_file=state / "sim-world.json") as sim:
        with Endpoints.simulated(sim.endpoints, plan) as endpoints:
            fisheye = FisheyeClient(endpoints, plan.cluster.vip)
            fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
            business = [v for v in fisheye.get("/api/v2/network/vds") if v["name"] == "vDS-Prod-Network"]
            assert len(business) == 1
            vlans = fisheye.get(f"/api/v2/network/vds/{business[0]['uuid']}/vlans")["entities"]
            assert sorted((v["name"], v["vlan_id"]) for v in vlans) == [
                ("VLAN-1120", 1120), ("VLAN-1121", 1121), ("VLAN-1122", 1122)]
            assert fisheye.get(f"/api/v2/network/vds/{business[0]['uuid']}")["vlans_count"] == 3


# --------------------------------------------------------------------------- 3. bad host / bad plan
def assert_nothing_deployed(run: Run, state: Path):
    for nodeid in suite_names(run, "test_02_init_cluster") | suite_names(run, "test_03_config_cluster"):
        assert run.outcomes[nodeid] == "skipped", (nodeid, run.outcomes[nodeid])
    status = sim_status(state)
    assert status["deployed"] is False
    assert status["vds"] == 0 and status["vlans"] == 0
    # the run's evidence (every exchange it made) shows the scans and no deployment call
    logs = sorted((state / "evidence").glob("*.log"))
    assert logs, "no evidence written"
    lines = logs[-1].read_text(encoding="utf-8").splitlines()
    assert any(" GET " in ln and "/api/v2/deployment/host " in ln for ln in lines)
    calls = [ln for ln in lines if ln.startswith("[") and "/api/v2/deployment/" in ln]
    assert calls and all(" GET " in ln for ln in calls), [ln for ln in calls if " GET " not in ln]


def test_missing_nic_fails_test_01_naming_host_and_cell(tmp_path):
    state = tmp_path / "state"
    run = run_suites(state, "--sim-host", "127.10.20.12:missing_nics=ens224")
    assert run.returncode == 1, run.explain()
    failed = "suites/test_01_prepare.py::test_host_nics[demo-node-02]"
    assert run.having("failed") == {failed}, run.explain()
    message = run.messages[failed]
    assert "demo-node-02" in message and "ens224" in message and "虚拟网络!J4" in message
    assert run.outcomes["suites/test_01_prepare.py::test_ready_to_deploy"] == "skipped"
    assert_nothing_deployed(run, state)

    # the NIC is cabled: --lf reruns the failed row and everything it held back, and deploys
    fixed = run_suites(state, "--lf")
    assert fixed.returncode == 0, fixed.explain()
    held_back = {n for n, o in run.outcomes.items() if o == "skipped" and "depends on" in run.messages[n]}
    assert set(fixed.outcomes) == {failed} | held_back
    assert not fixed.having("failed") and not fixed.having("skipped")
    assert sim_status(state)["deployed"] is True


def test_duplicate_address_fails_test_01_naming_the_cells(tmp_path):
    plan = build_demo_plan()
    plan.hosts[1].bmc_ip = plan.hosts[0].bmc_ip
    plan_file = tmp_path / "dup-plan.xlsx"
    write_plan(plan, plan_file)
    state = tmp_path / "state"
    run = run_suites(state, "--plan", str(plan_file))
    assert run.returncode == 1, run.explain()
    failed = "suites/test_01_prepare.py::test_plan_rules[addresses]"
    assert run.having("failed") == {failed}, run.explain()
    message = run.messages[failed]
    assert "主机规划!E4" in message and "主机规划!E3" in message and "127.10.19.11" in message
    assert_nothing_deployed(run, state)


# --------------------------------------------------------------------------- 4. 存储独立
def test_storage_separate_architecture_puts_vlans_on_the_management_vds(tmp_path):
    plan = build_demo_plan()
    plan.cluster.network_arch = "存储独立"
    business = plan.networks.business
    business.vds, business.nics, business.bond = plan.networks.mgmt.vds, list(plan.networks.mgmt.nics), \
        plan.networks.mgmt.bond
    plan_file = tmp_path / "storage-separate.xlsx"
    write_plan(plan, plan_file)
    state = tmp_path / "state"
    run = run_suites(state, "--plan", str(plan_file))
    assert run.returncode == 0, run.explain()
    assert not run.having("skipped") and not run.having("failed")
    status = sim_status(state)
    assert status["vds"] == 2  # management (with the business VLANs) and storage only

    plan = read_plan(plan_file)
    with Simulator(plan, speed=0, state_file=state / "sim-world.json") as sim:
        with Endpoints.simulated(sim.endpoints, plan) as endpoints:
            fisheye = FisheyeClient(endpoints, plan.cluster.vip)
            fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
            mgmt = next(v for v in fisheye.get("/api/v2/network/vds") if v["name"] == "vDS-MgMt-Network")
            names = {v["name"] for v in fisheye.get(f"/api/v2/network/vds/{mgmt['uuid']}/vlans")["entities"]}
            assert {"VLAN-1120", "VLAN-1121", "VLAN-1122"} <= names
