"""Benchmark: how much the suite adds to the time the (simulated) cluster's own
operations take, and how late each wait notices that an operation ended.

Runs ``pytest suites/ --sim --sim-speed S`` once (a fresh state dir) and reads two
independent sets of timestamps afterwards:

* the simulator's, from its saved world (``<state dir>/sim-world.json``): the
  deployment's ``started_at`` and the cluster's ``created`` (the moment the
  deployment finished), each job's ``ctime`` + (``pending_for`` +
  ``processing_for``) × speed (the moment it finished);
* the suite's, from its evidence log (``<state dir>/evidence/*.log``, one line
  per exchange: start time to the millisecond and duration): the end of the
  first poll whose answer showed the operation ended (a job ``done``/``failed``;
  for the deployment, the ``deploy_verify`` read after ``deploy_status`` stopped
  saying ``running``).

The lag of a wait is the second minus the first, in wall seconds and in
real-cluster seconds (÷ speed), and as a share of the operation's simulated
duration. ``sim_busy_seconds`` is the wall time during which at least one
operation was running; ``overhead_seconds`` = the suite's wall time minus it.
A human table goes to stderr; the last line of stdout is one JSON object:

    python3 bench/waits.py [--speed 0.1] [--state-dir DIR] [--keep]

Loopback only (the embedded simulator).
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
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3})\] (\S+) (\S+) → (.*) \(([0-9.]+) s\)$")
JOB_PATH = re.compile(r"/api/v2/jobs/([0-9a-f-]{36})$")
DEPLOY_STATUS = "/api/v2/deployment/host/deploy_status"
DEPLOY_VERIFY = "/api/v2/deployment/deploy_verify"


def parse_evidence(path: Path) -> list[dict[str, Any]]:
    """Every exchange of an evidence log: start (epoch s), end, method, path, response text."""
    out: list[dict[str, Any]] = []
    current: Optional[dict[str, Any]] = None
    step = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("## "):
            step = raw[3:].strip()
        m = LINE.match(raw)
        if m:
            stamp, ms, method, url, _outcome, elapsed = m.groups()
            start = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000.0
            current = {"start": start, "end": start + float(elapsed), "method": method,
                       "path": re.sub(r"^[a-z]+://[^/]+", "", url).split("?")[0], "response": "",
                       "step": step}
            out.append(current)
        elif current is not None and raw.startswith("  响应 (response): "):
            current["response"] = raw.split(": ", 1)[1]
    return sorted(out, key=lambda e: e["start"])


def _job_state(text: str) -> Optional[str]:
    m = re.search(r'"job": \{"job_id": "[^"]+", "state": "([a-z]+)"', text)
    return m.group(1) if m else None


def operations(world: dict[str, Any], speed: float) -> list[dict[str, Any]]:
    """The simulator's own record of each timed operation: what, start, end (wall epoch s),
    simulated duration (real-cluster s)."""
    ops = []
    deploy, cluster = world.get("deploy") or {}, world.get("cluster") or {}
    if deploy.get("started_at") and cluster.get("created"):
        ops.append({"what": "DEPLOY_CLUSTER", "id": None, "start": deploy["started_at"], "end": cluster["created"],
                    "real_seconds": (cluster["created"] - deploy["started_at"]) / speed})
    for job in ((world.get("jobs") or {}).get("jobs") or {}).values():
        real = float(job["pending_for"]) + float(job["processing_for"])
        ops.append({"what": job["description"], "id": job["job_id"], "start": job["ctime"],
                    "end": job["ctime"] + real * speed, "real_seconds": real})
    ops += later_step_operations(world, speed)
    return sorted(ops, key=lambda o: o["start"])


def _sim_constant(name: str, *modules: str) -> Optional[float]:
    """A duration constant of the simulator (its module moved with the sim layout)."""
    import importlib

    for module in modules:
        try:
            return float(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return None


def later_step_operations(world: dict[str, Any], speed: float) -> list[dict[str, Any]]:
    """Timed operations of the CloudTower steps (04+), for the busy time only (``id``
    ``"-"``: no detection lag is computed for them, but for a VM's boot — noticed when the
    VM's ``guest_info.ga_state`` reads ``Running``): the CloudTower VM's OS install and other
    VMs' boots, the CloudTower installer, CloudTower tasks."""
    ops: list[dict[str, Any]] = []
    sys.path.insert(0, str(ROOT / "lib"))
    os_install = _sim_constant("OS_INSTALL", "voyager.sim.backend.vms", "voyager.sim.vms")
    boot = _sim_constant("BOOT", "voyager.sim.backend.vms", "voyager.sim.vms")
    install = _sim_constant("INSTALL", "voyager.sim.backend.installer", "voyager.sim.installer")
    for vm in ((world.get("vms") or {}).get("vms") or {}).values():
        needed = os_install if vm.get("profile") == "cloudtower" else boot
        if vm.get("boot_started") and vm.get("profile") != "plain" and needed:
            ops.append({"what": f"VM_BOOT {vm.get('vm_name')}", "id": "-", "vm": vm.get("uuid"),
                        "start": vm["boot_started"],
                        "end": vm["boot_started"] + needed * speed, "real_seconds": needed})
    installer = world.get("installer") or {}
    if installer.get("started_at") and installer.get("result") == "ok" and install:
        ops.append({"what": "CLOUDTOWER_INSTALL", "id": "-", "start": installer["started_at"],
                    "end": installer["started_at"] + install * speed, "real_seconds": install})
    for task in (world.get("tower") or {}).get("tasks") or []:
        if isinstance(task, dict) and task.get("created_at") and task.get("finished_at"):
            ops.append({"what": f"TASK {task.get('key')}", "id": "-", "start": task["created_at"],
                        "end": task["finished_at"],
                        "real_seconds": (task["finished_at"] - task["created_at"]) / speed})
    return ops


def noticed(op: dict[str, Any], exchanges: list[dict[str, Any]]) -> Optional[float]:
    """When the suite learnt that ``op`` had ended: the end of the poll that showed it."""
    if op.get("vm"):  # the guest agent reported running
        for e in exchanges:
            if e["path"].endswith(f"/api/v2/vms/{op['vm']}") and '"ga_state": "Running"' in e["response"]:
                return e["end"]
        return None
    if op["id"] == "-":
        return None  # busy time only
    if op["id"] is not None:
        for e in exchanges:
            m = JOB_PATH.search(e["path"])
            if m and m.group(1) == op["id"] and _job_state(e["response"]) in ("done", "failed"):
                return e["end"]
        return None
    ended = False  # deploy_status answered something other than "running" ...
    for e in exchanges:
        if e["start"] < op["start"]:
            continue
        if e["path"] == DEPLOY_STATUS and '"state": "running"' not in e["response"]:
            ended = True
        elif ended and e["path"] == DEPLOY_VERIFY and '"is_deployed": true' in e["response"]:
            return e["end"]  # ... and deploy_verify, read in the same poll, confirmed it
    return None


def busy_seconds(ops: list[dict[str, Any]]) -> float:
    """Wall seconds during which at least one operation ran (union of the intervals)."""
    total, cur_start, cur_end = 0.0, None, None
    for op in sorted(ops, key=lambda o: o["start"]):
        if cur_end is None or op["start"] > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = op["start"], op["end"]
        else:
            cur_end = max(cur_end, op["end"])
    return total + ((cur_end - cur_start) if cur_end is not None else 0.0)


def quiet_gaps(exchanges: list[dict[str, Any]], ops: list[dict[str, Any]], least: float = 0.3) -> list[dict[str, Any]]:
    """Pauses of at least ``least`` s between two exchanges while no operation ran (where the
    overhead goes): the step of the exchange after the pause, and its length."""
    gaps = []
    for a, b in zip(exchanges, exchanges[1:]):
        start, end = a["end"], b["start"]
        if end - start < least or any(o["start"] < end and o["end"] > start for o in ops):
            continue
        gaps.append({"before": b["step"] or "-", "seconds": round(end - start, 3)})
    return sorted(gaps, key=lambda g: -g["seconds"])[:8]


def is_poll(e: dict[str, Any]) -> bool:
    return e["method"] == "GET" and (bool(JOB_PATH.search(e["path"])) or e["path"] in (DEPLOY_STATUS, DEPLOY_VERIFY))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=0.1,
                        help="simulator speed (0.1: suites 01-03 take about two minutes; 0.04 is the default speed)")
    parser.add_argument("--state-dir", type=Path, default=None, help="state dir of the run (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp state dir")
    parser.add_argument("--suites", nargs="*", default=["suites/"])
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be > 0 (at speed 0 nothing takes time)")
    work = Path(tempfile.mkdtemp(prefix="voyager-bench-waits-"))
    state = args.state_dir or work / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT / "lib") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "pytest", *args.suites, "--sim", "--sim-speed", str(args.speed),
           "--state-dir", str(state), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    suite_seconds = time.time() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        print(json.dumps({"benchmark": "waits", "error": f"pytest exit status {proc.returncode}"}))
        return 1
    world = json.loads((state / "sim-world.json").read_text(encoding="utf-8"))
    (log,) = sorted((state / "evidence").glob("*.log"))[-1:]
    exchanges = parse_evidence(log)
    ops = operations(world, args.speed)
    rows = []
    for op in ops:
        seen = noticed(op, exchanges)
        if seen is None:
            continue
        lag = seen - op["end"]
        rows.append({"what": op["what"], "real_seconds": round(op["real_seconds"], 3),
                     "lag_wall_s": round(lag, 3), "lag_real_s": round(lag / args.speed, 3),
                     "lag_share": round(lag / args.speed / op["real_seconds"], 4)})
    busy = busy_seconds(ops)
    first = min(o["start"] for o in ops) if ops else start
    last = max(o["end"] for o in ops) if ops else start
    lags = [r["lag_wall_s"] for r in rows]
    for r in rows:
        sys.stderr.write(f"{r['what']:<20} 模拟时长 {r['real_seconds']:>7.1f} s  发现延迟 {r['lag_wall_s']:6.3f} s 墙钟"
                         f" = {r['lag_real_s']:7.2f} s 真实集群 = {r['lag_share'] * 100:5.2f}%\n")
    result = {
        "benchmark": "waits",
        "speed": args.speed,
        "sim_busy_seconds": round(busy, 3),
        "suite_seconds": round(suite_seconds, 3),
        "overhead_seconds": round(suite_seconds - busy, 3),
        "overhead_ratio": round((suite_seconds - busy) / suite_seconds, 4),
        "detect_lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "detect_lag_max_s": round(max(lags), 3) if lags else None,
        "detect_lag_p50_real_s": round(statistics.median(r["lag_real_s"] for r in rows), 3) if rows else None,
        "detect_lag_share_p50": round(statistics.median(r["lag_share"] for r in rows), 4) if rows else None,
        "detect_lag_share_max": round(max(r["lag_share"] for r in rows), 4) if rows else None,
        "detect_lag_sum_s": round(sum(lags), 3),
        "poll_requests": sum(1 for e in exchanges if is_poll(e)),
        "requests": len(exchanges),
        "waits": rows,
        "operations_without_lag": sorted({o["what"] for o in ops if o["id"] == "-" and not o.get("vm")}),
        "before_first_operation_s": round(first - start, 3),
        "after_last_operation_s": round(start + suite_seconds - last, 3),
        "quiet_gaps": quiet_gaps(exchanges, ops),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    if args.state_dir is None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif args.keep:
        sys.stderr.write(f"state dir kept: {state}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
