"""End to end: suites 01-11 as subprocesses against the embedded simulator, for what
issue 13 promises of suites 09-11:

1. a clean run passes 09-11; the report holds the fio charts and one perf row per VM
   and profile; the figures in the report equal those in the kept fio JSON;
2. a second run creates and removes the test VMs and uploads again: the simulator's
   counts are equal afterwards (nothing left behind, nothing doubled);
3. an impossible threshold (``--perf-threshold``) fails exactly the matching rows;
4. a slowed host (``--sim-faults slow-storage:<host>:N``) fails the rows of its VMs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import run_suites, sim_status

from voyager.plan.demo import build_demo_plan
from voyager.steps import perf, workload

pytestmark = pytest.mark.e2e
ALL = ["suites/"]
PERF = "suites/test_10_perf.py::test_perf["
SPECS = workload.plan_test_vms(build_demo_plan())


def uploads(state: Path) -> int:
    """Template uploads CloudTower keeps (``/upload-elf-file``), from the simulator's state file."""
    world = json.loads((state / "sim-world.json").read_text(encoding="utf-8"))
    return len(((world.get("tower") or {}).get("workloads") or {}).get("uploads") or [])


def _rows(run, prefix: str) -> dict[str, str]:
    return {n: o for n, o in run.outcomes.items() if n.startswith(prefix)}


def run_folders(state):
    """Per-run folders ``reports/<cluster>/<YYYYmmdd-HHMMSS>/`` (oldest first)."""
    return sorted(p.parent for p in (state.parent / "reports").glob("*/2*/report.html"))


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    state = tmp_path_factory.mktemp("workload") / "state"
    first = run_suites(state, suites=ALL)
    status_first = sim_status(state)
    first.run_dir = run_folders(state)[0]  # the first run's folder in the handover folder
    first.html = (first.run_dir / "report.html").read_text(encoding="utf-8")
    second = run_suites(state, suites=ALL)
    return state, first, status_first, second, sim_status(state)


def test_clean_run_passes_09_to_11_with_charts(twice):
    state, first, status, _, _ = twice
    for module in ("test_09_workload", "test_10_perf", "test_11_cleanup"):
        rows = _rows(first, f"suites/{module}")
        assert rows, f"{module} did not run\n{first.explain()}"
        bad = {n: o for n, o in rows.items() if o not in ("passed",) and "maintenance" not in n}
        assert not bad, f"{bad}\n{first.explain()}"
    perf_rows = _rows(first, PERF)
    assert len(perf_rows) == len(SPECS) * len(perf.PROFILES)
    for chart in ("perf-iops", "perf-bandwidth", "perf-latency"):
        assert chart in first.html
    assert status["vms"] == 1 and uploads(state) == 0  # only the CloudTower VM stays, no template upload


def test_report_figures_equal_the_kept_fio_json(twice):
    artifacts = twice[1].run_dir / "artifacts"
    table = json.loads((artifacts / "perf-table.json").read_text(encoding="utf-8"))
    for spec in SPECS:
        kept = perf.parse_fio_json((artifacts / "fio" / f"{spec.name}.fio.json").read_text(encoding="utf-8"))
        assert {p: f.as_dict() for p, f in kept.items()} == table["vms"][spec.name]


def test_second_run_leaves_the_same_counts(twice):
    _, _, status_first, second, status_second = twice
    workload_rows = {n for n in second.having("failed") | second.having("error")
                     if n.startswith(("suites/test_09", "suites/test_10", "suites/test_11"))}
    assert not workload_rows, second.explain()
    created = _rows(second, "suites/test_09_workload.py::test_vm_created")
    assert created and set(created.values()) == {"passed"}, second.explain()  # made (and removed) again
    assert status_second == status_first
    assert uploads(twice[0]) == 0


def test_impossible_threshold_fails_exactly_its_rows(tmp_path):
    run = run_suites(tmp_path / "state", "--perf-threshold", "4k-randread.iops=1000000000", suites=ALL)
    failed = run.having("failed")
    assert failed == {f"{PERF}{s.name}-4k-randread]" for s in SPECS}, run.explain()
    for nodeid in failed:
        assert "实测" in run.messages[nodeid] and "期望 ≥ 1,000,000,000" in run.messages[nodeid]


def test_slow_host_fails_the_rows_of_its_vms(tmp_path):
    host = SPECS[0].host.mgmt_ip
    on_host = [s.name for s in SPECS if s.host.mgmt_ip == host]
    run = run_suites(tmp_path / "state", "--sim-faults", f"slow-storage:{host}:{len(on_host)}", suites=ALL)
    failed_vms = {n.split("[", 1)[1].rsplit("-", 2)[0] for n in run.having("failed") if n.startswith(PERF)}
    assert failed_vms == set(on_host), run.explain()
    assert not {n for n in run.having("failed") if not n.startswith(PERF)}, run.explain()
