"""Benchmark: step 01 (plan checks, reachability, the parallel host scans and their
comparison with the plan) on a 16-host demo plan against a 3-host one.

For each size a demo plan is generated (``voyager plan new X --demo --hosts N``)
and ``pytest suites/test_01_prepare.py --sim --sim-speed 0`` is run on it, each in
its own fresh state dir; the sizes alternate over ``--runs`` rounds (so a change of
load on the machine hits both alike) and the median wall time of each counts:

    python3 bench/scan.py [--hosts 16] [--runs 3]

``seconds`` / ``seconds_3_hosts`` are the whole command (interpreter start-up,
collection, the simulator's start, the checks, the reports); ``session_seconds``
/ ``session_seconds_3_hosts`` are pytest's own session time ("in X s"). The last
line of stdout is one JSON object. Loopback only (the embedded simulator).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
SESSION = re.compile(r" in ([0-9.]+)s")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT / "lib") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def demo_plan(work: Path, hosts: int) -> Path:
    path = work / f"plan-{hosts}" / f"demo-{hosts}.xlsx"
    path.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "voyager", "plan", "new", str(path), "--demo", "--hosts", str(hosts)],
                   cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=120)
    return path


def run_prepare(plan: Path, state: Path) -> tuple[float, float, int, str]:
    """(wall seconds, pytest session seconds, checks passed, summary line) of one step-01 run."""
    cmd = [sys.executable, "-m", "pytest", "suites/test_01_prepare.py", "--sim", "--sim-speed", "0",
           "--plan", str(plan), "--state-dir", str(state), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    summary = next((line for line in reversed(proc.stdout.splitlines()) if " in " in line and "passed" in line), "")
    if proc.returncode != 0 or not summary:
        raise SystemExit(f"step 01 on {plan.name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    return wall, float(SESSION.search(summary).group(1)), passed, summary.strip("= ")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3, help="alternating rounds (median counts)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="voyager-bench-scan-"))
    try:
        plans = {n: demo_plan(work, n) for n in (args.hosts, 3)}
        times: dict[int, list[tuple[float, float, int, str]]] = {n: [] for n in plans}
        for r in range(max(1, args.runs)):
            for n, plan in plans.items():
                times[n].append(run_prepare(plan, work / f"state-{n}-{r}"))
        med = {n: statistics.median(t[0] for t in rows) for n, rows in times.items()}
        session = {n: statistics.median(t[1] for t in rows) for n, rows in times.items()}
        print(json.dumps({
            "benchmark": "scan",
            "hosts": args.hosts,
            "seconds": round(med[args.hosts], 3),
            "seconds_3_hosts": round(med[3], 3),
            "ratio": round(med[args.hosts] / med[3], 3),
            "session_seconds": round(session[args.hosts], 3),
            "session_seconds_3_hosts": round(session[3], 3),
            "session_ratio": round(session[args.hosts] / session[3], 3),
            "checks": times[args.hosts][0][2],
            "checks_3_hosts": times[3][0][2],
            "runs": max(1, args.runs),
            "all_seconds": {str(n): [round(t[0], 3) for t in rows] for n, rows in times.items()},
            "load_average": round(os.getloadavg()[0], 2),
        }, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
