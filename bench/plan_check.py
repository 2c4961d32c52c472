"""Benchmark: checking the real SmartX planning template.

Two figures, as one JSON line:
  * ``seconds``: ``read_plan`` + ``validate`` in this process (median of N runs, warm);
  * ``cli_seconds``: the whole ``python -m voyager plan check TEMPLATE`` command in a
    fresh interpreter (start-up, imports, reading, checking, printing), wall clock and
    CPU (``cli_cpu_seconds``), median of N runs.
The same two figures for a generated 16-host demo plan (``voyager plan new X --demo
--hosts 16``: the largest cluster the suite plans for) under ``hosts_16``. When
../shared (with the template) is absent only the 16-host figures are given.

    python3 bench/plan_check.py [--runs N] [--plan PLAN.xlsx] [--hosts 16]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from voyager.plan import read_plan, validate  # noqa: E402

TEMPLATE = ROOT.parent / "shared" / "reference" / "planning-template-elf-v20250820.xlsx"


def _cli_run(plan: Path, sim: bool = False) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one ``voyager plan check [--sim]`` command."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "voyager", "plan", "check", str(plan), *(["--sim"] if sim else [])],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def measure(plan_file: Path, runs: int, sim: bool = False) -> dict:
    """In-process and whole-command figures of checking ``plan_file`` (medians of ``runs``);
    ``sim``: a rehearsal plan (loopback addresses allowed, ``plan check --sim``)."""
    read_plan(plan_file)  # warm-up: imports, OS file cache
    times = []
    findings = 0
    for _ in range(runs):
        start = time.perf_counter()
        plan = read_plan(plan_file)
        findings = len(validate(plan, sim=sim))
        times.append(time.perf_counter() - start)
    _cli_run(plan_file, sim)  # warm-up: byte-code cache
    cli = [_cli_run(plan_file, sim) for _ in range(runs)]
    return {
        "seconds": round(statistics.median(times), 4),
        "runs": runs,
        "min_seconds": round(min(times), 4),
        "max_seconds": round(max(times), 4),
        "cli_seconds": round(statistics.median(w for w, _, _ in cli), 4),
        "cli_min_seconds": round(min(w for w, _, _ in cli), 4),
        "cli_max_seconds": round(max(w for w, _, _ in cli), 4),
        "cli_cpu_seconds": round(statistics.median(c for _, c, _ in cli), 4),
        "cli_exit_code": cli[-1][2],
        "findings": findings,
        "plan": plan_file.name,
    }


def demo_plan(directory: Path, hosts: int) -> Path:
    from voyager.plan import new_template

    path = directory / f"demo-{hosts}-hosts.xlsx"
    new_template(path, demo=True, hosts=hosts)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--plan", type=Path, default=TEMPLATE, help="workbook to check")
    parser.add_argument("--hosts", type=int, default=16, help="hosts of the generated demo plan")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)
    result: dict = {"benchmark": "plan_check"}
    if args.plan.is_file():
        result.update(measure(args.plan, runs))
    else:
        result.update({"skipped": True, "note": f"{args.plan} not found (../shared absent)"})
    with tempfile.TemporaryDirectory(prefix="voyager-bench-plan-") as tmp:
        result[f"hosts_{args.hosts}"] = measure(demo_plan(Path(tmp), args.hosts), runs, sim=True)
    result["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
