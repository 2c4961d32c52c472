"""Benchmark: checking the real SmartX planning template.

Two figures, as one JSON line:
  * ``seconds``: ``read_plan`` + ``validate`` in this process (median of N runs, warm);
  * ``cli_seconds``: the whole ``python -m voyager plan check TEMPLATE`` command in a
    fresh interpreter (start-up, imports, reading, checking, printing), wall clock and
    CPU (``cli_cpu_seconds``), median of N runs.
When ../shared (with the template) is absent it prints a JSON note and exits 0.

    python3 bench/plan_check.py [--runs N] [--plan PLAN.xlsx]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from voyager.plan import read_plan, validate  # noqa: E402

TEMPLATE = ROOT.parent / "shared" / "reference" / "planning-template-elf-v20250820.xlsx"


def _cli_run(plan: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one ``voyager plan check`` command."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "voyager", "plan", "check", str(plan)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--plan", type=Path, default=TEMPLATE, help="workbook to check")
    args = parser.parse_args(argv)
    if not args.plan.is_file():
        print(json.dumps({"benchmark": "plan_check", "skipped": True,
                          "note": f"{args.plan} not found (../shared absent)"}))
        return 0
    runs = max(1, args.runs)
    read_plan(args.plan)  # warm-up: imports, OS file cache
    times = []
    findings = 0
    for _ in range(runs):
        start = time.perf_counter()
        plan = read_plan(args.plan)
        findings = len(validate(plan))
        times.append(time.perf_counter() - start)
    _cli_run(args.plan)  # warm-up: byte-code cache
    cli = [_cli_run(args.plan) for _ in range(runs)]
    print(json.dumps({
        "benchmark": "plan_check",
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
        "plan": args.plan.name,
        "load_average": round(os.getloadavg()[0], 2),
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
