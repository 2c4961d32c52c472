"""Benchmark: ``read_plan`` + ``validate`` on the real SmartX planning template.

Prints one JSON line: {"benchmark": "plan_check", "seconds": <median per run>, "runs": N, ...}.
When ../shared (with the template) is absent it prints a JSON note and exits 0.

    python3 bench/plan_check.py [--runs N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from voyager.plan import read_plan, validate  # noqa: E402

TEMPLATE = ROOT.parent / "shared" / "reference" / "planning-template-elf-v20250820.xlsx"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--plan", type=Path, default=TEMPLATE, help="workbook to check")
    args = parser.parse_args(argv)
    if not args.plan.is_file():
        print(json.dumps({"benchmark": "plan_check", "skipped": True,
                          "note": f"{args.plan} not found (../shared absent)"}))
        return 0
    read_plan(args.plan)  # warm-up: imports, OS file cache
    times = []
    findings = 0
    for _ in range(max(1, args.runs)):
        start = time.perf_counter()
        plan = read_plan(args.plan)
        findings = len(validate(plan))
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "benchmark": "plan_check",
        "seconds": round(statistics.median(times), 4),
        "runs": len(times),
        "min_seconds": round(min(times), 4),
        "max_seconds": round(max(times), 4),
        "findings": findings,
        "plan": args.plan.name,
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
