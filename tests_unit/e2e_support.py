"""Helpers of the end-to-end tests: the suites run as subprocesses against the
embedded simulator, their JUnit XML read back (rootdir-imported, like ``sim_support``)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["suites/test_01_prepare.py", "suites/test_02_init_cluster.py", "suites/test_03_config_cluster.py"]
TIMEOUT = 600

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


def ledger_of(state_dir: Path) -> dict:
    """The plan's ledger entries (``{nodeid: entry}``) in a state dir."""
    from voyager.ledger import Ledger

    (path,) = state_dir.glob("ledger-*.json")
    return Ledger.load(state_dir, path.stem.split("-", 1)[1]).entries


def plan_without_serial(state_dir: Path) -> dict:
    """The content of the run's plan copy, but the serial cells (written back by step 03)."""
    from voyager.plan import read_plan

    fields = read_plan(state_dir / "demo-plan.xlsx").content_fields()
    return {k: v for k, v in fields.items() if "serial" not in k}


def workbook_cells_without_serial(plan_file: Path) -> dict:
    """Every sheet of a plan file, in order, with every cell that holds something (as stored:
    formulas as formulas), but the serial cells the suite writes back (``cells.WRITE_BACK``)."""
    import openpyxl

    from voyager.plan.cells import WRITE_BACK

    written = set(WRITE_BACK.values())
    book = openpyxl.load_workbook(plan_file, read_only=True)
    try:
        return {ws.title: {cell.coordinate: cell.value for row in ws.iter_rows() for cell in row
                           if getattr(cell, "value", None) is not None and (ws.title, cell.coordinate) not in written}
                for ws in book.worksheets}
    finally:
        book.close()


def suite_names(run: Run, module: str) -> set[str]:
    return {n for n in run.outcomes if n.startswith(f"suites/{module}")}



def suites_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def start_suites(state_dir: Path, *args: str, speed: str = "0", suites=SUITES) -> subprocess.Popen:
    """The suites in the background, verbose and unbuffered (each check's node id
    is printed as it starts), for tests that interrupt a run."""
    cmd = [sys.executable, "-u", "-m", "pytest", *suites, "--sim", "--sim-speed", speed,
           "--state-dir", str(state_dir), "--reports-dir", str(state_dir.parent / "reports"),
           "-o", f"cache_dir={state_dir.parent / 'cache'}", "-p", "no:randomly", "-v", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=suites_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_when(proc: subprocess.Popen, ready: Callable[[str], bool], *, timeout: float = 300) -> str:
    """SIGKILL ``proc`` as soon as ``ready(output so far)`` holds (checked after every
    chunk of output and every 50 ms: pytest -v prints a check's node id, without a
    newline, as it starts); returns the output. Fails when the run ends first."""
    import selectors

    out: list[str] = []
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if ready("".join(out)):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return "".join(out)
            if sel.select(timeout=0.05):
                chunk = os.read(fd, 65536)
                if not chunk and proc.poll() is not None:
                    break
                out.append(chunk.decode("utf-8", "replace"))
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail("the run ended (or timed out) before the kill point:\n" + "".join(out)[-4000:])
    finally:
        sel.close()
        proc.stdout.close()


def sim_world(state_dir: Path) -> dict:
    """The simulator's saved world (``{}`` while there is none, or mid-write)."""
    try:
        return json.loads((state_dir / "sim-world.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def world_has(state_dir: Path, predicate: Callable[[dict], bool]) -> bool:
    """``predicate(saved world)`` once the simulator has saved one."""
    world = sim_world(state_dir)
    return bool(world) and bool(predicate(world))


def deploying(world: dict) -> bool:
    """The simulator's deployment has started and not ended."""
    rec = world.get("deploy")
    return bool(rec) and rec.get("result") is None


def run_state_facts(state_dir: Path) -> dict:
    """The run state's facts (``{}`` while there is none)."""
    try:
        return json.loads((state_dir / "run-state.json").read_text(encoding="utf-8")).get("facts") or {}
    except (OSError, ValueError):
        return {}


def open_checks(state_dir: Path) -> list[str]:
    """The checks ``--lf`` would run again (failed, errored, skipped for a prerequisite, never run)."""
    from voyager.ledger import Ledger

    (path,) = state_dir.glob("ledger-*.json")
    return Ledger.load(state_dir, path.stem.split("-", 1)[1]).rerun_nodeids()


def operations(world: dict) -> dict[str, int]:
    """What the simulator was asked to do, as counts: fisheye jobs (description and
    resource names), CloudTower tasks (their descriptions name the VM, host or
    cluster), inspection jobs, installer runs, deployments, finished images, packages
    and applications; failed jobs and tasks apart. Two runs that did the same work
    have equal counts; work started twice shows as a count one higher."""
    from collections import Counter

    ops: Counter = Counter()
    for job in ((world.get("jobs") or {}).get("jobs") or {}).values():
        names = sorted(str(r.get("name") or r.get("vm_name") or "") for r in (job.get("resources") or {}).values()
                       if isinstance(r, dict))
        ops[f"job {job.get('description')} {','.join(names)}" + (" (failed)" if job.get("state") == "failed" else "")] += 1
    tower = world.get("tower") or {}
    for task in tower.get("tasks") or []:
        what = re.sub(r"\bc[a-z0-9]{24}\b", "<id>", str(task.get("description")))  # CloudTower ids differ
        ops[f"task {what}" + (" (failed)" if task.get("status") == "FAILED" else "")] += 1
    ops["inspection jobs"] = len(((tower.get("inspector") or {}).get("jobs") or {}))
    installer = world.get("installer") or {}
    ops["installer runs"] = int(bool(installer.get("started_at")))
    ops["deployments"] = int(bool(world.get("deploy")))
    ops["images"] = len(((world.get("images") or {}).get("images") or {}))
    packages = tower.get("packages") or {}
    ops["packages"] = len(packages.get("packages") or [])
    ops["applications"] = len((tower.get("applications") or {}).get("apps") or [])
    return dict(ops)
