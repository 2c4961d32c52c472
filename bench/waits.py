"""Benchmark: how much the suite adds to the time the (simulated) cluster's own
operations take, and how late each wait notices that an operation ended.

Runs the whole ``pytest suites/ --sim --sim-speed S`` (01-11) once, on a fresh state
dir, and reads two independent sets of timestamps afterwards:

* the simulator's, from its saved world (``<state dir>/sim-world.json``): the
  deployment (``deploy.started_at`` → ``cluster.created``), each fisheye job
  (``ctime`` + (``pending_for`` + ``processing_for``) × speed), each CloudTower task
  (``created_at`` → ``finished_at``), the CloudTower installer (``started_at`` + its
  duration × speed), the inspection job and its export (``tower.inspector``), and
  the world's ``timeline`` (VM boots and OS installs, guest ``fio`` and ``ping``
  runs: what the state keeps no other trace of);
* the suite's, from its evidence log (``<state dir>/evidence/*.log``, one entry
  per exchange: start to the millisecond, duration, request, answer, SSH command
  and output): the end of the first exchange whose answer showed the operation
  ended — a job ``done``/``failed``; ``deploy_verify`` after ``deploy_status``
  stopped saying ``running``; a ``get-tasks`` answer with the task SUCCESSED (a
  cluster connection: ``connect_state`` CONNECTED; an application: ``RUNNING``);
  the VM's ``ga_state`` Running; the installer log's success line; the inspection
  job SUCCEEDED, the export EXPORT_SUCCEEDED; a guest command returning; the first
  read of a background ping's log after its end.

The lag of a wait is the second minus the first, in wall seconds and in
real-cluster seconds (÷ speed), and as a share of the operation's simulated
duration (per kind in ``lag_by_kind``; ``operations_without_lag`` names any
operation no wait saw end). ``sim_busy_seconds`` is the wall time during which at
least one operation was running; ``overhead_seconds`` = the suite's wall time
minus it; ``idle_by_check`` and ``quiet_gaps`` show where it goes. A human table
goes to stderr; the last line of stdout is one JSON object:

    python3 bench/waits.py [--speed 0.025] [--state-dir DIR] [--keep]
    python3 bench/waits.py --reanalyse DIR   # the figures of a run kept with --keep

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
VM_PATH = re.compile(r"/api/v2/vms/([0-9a-f-]{36})$")
INSPECTION_JOB = re.compile(r"/api/inspector/api/v3/jobs/([^/:?]+)$")
EXPORT_STATUS = "/api/inspector/api/v3/export/status"
DEPLOY_STATUS = "/api/v2/deployment/host/deploy_status"
DEPLOY_VERIFY = "/api/v2/deployment/deploy_verify"
GET_TASKS = "/v2/api/get-tasks"
GET_CLUSTERS = "/v2/api/get-clusters"
GET_APPLICATIONS = "/v2/api/get-cloudtower-applications"
INSTALL_LOG = "nohup.out"
INSTALL_DONE = "Install Operation Center Successfully"  # voyager.steps.cloudtower.SUCCESS_MARKER
DEFAULT_SPEED = 0.025


def parse_evidence(path: Path) -> list[dict[str, Any]]:
    """Every exchange of an evidence log: start (epoch s), end, method, path (or ssh://user@ip), the
    request and response bodies, an SSH command and its output (the entry's text), the check."""
    out: list[dict[str, Any]] = []
    current: Optional[dict[str, Any]] = None
    step = ""
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("## "):
            step = raw[3:].strip()
            current = None
            continue
        m = LINE.match(raw)
        if m:
            stamp, ms, method, url, _outcome, elapsed = m.groups()
            start = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000.0
            current = {"start": start, "end": start + float(elapsed), "method": method, "url": url,
                       "path": url if method == "SSH" else re.sub(r"^[a-z]+://[^/]+", "", url).split("?")[0],
                       "query": url.split("?", 1)[1] if "?" in url else "", "request": "", "response": "",
                       "command": "", "text": "", "step": step}
            out.append(current)
        elif current is not None:
            if raw.startswith("  响应 (response): "):
                current["response"] = raw.split(": ", 1)[1]
            elif raw.startswith("  请求 (request): "):
                current["request"] = raw.split(": ", 1)[1]
            elif raw.startswith("  命令 (command): "):
                current["command"] = raw.split(": ", 1)[1]
            current["text"] += raw + "\n"
    return sorted(out, key=lambda e: e["start"])


def _job_state(text: str) -> Optional[str]:
    m = re.search(r'"job": \{"job_id": "[^"]+", "state": "([a-z]+)"', text)
    return m.group(1) if m else None


def _sim_constant(name: str, *modules: str) -> Optional[float]:
    """A duration constant of the simulator (its module moved with the sim layout)."""
    import importlib

    sys.path.insert(0, str(ROOT / "lib"))
    for module in modules:
        try:
            return float(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return None


def operations(world: dict[str, Any], speed: float) -> list[dict[str, Any]]:
    """The simulator's own record of each timed operation: ``what``, ``kind`` (how a wait notices
    its end, see :func:`noticed`), its identity, start and end (wall epoch s) and simulated
    duration (real-cluster s). Sources: the deployment (``deploy.started_at`` → ``cluster.created``),
    fisheye jobs (``ctime`` + durations × speed), CloudTower tasks (``created_at`` → ``finished_at``),
    the installer, the inspection job and its export (``tower.inspector``, the module's durations),
    and the world's ``timeline`` (VM boots and OS installs, guest fio and ping runs)."""
    ops = []
    deploy, cluster = world.get("deploy") or {}, world.get("cluster") or {}
    if deploy.get("started_at") and cluster.get("created"):
        ops.append({"what": "DEPLOY_CLUSTER", "kind": "deploy", "id": None, "start": deploy["started_at"],
                    "end": cluster["created"], "real_seconds": (cluster["created"] - deploy["started_at"]) / speed})
    for job in ((world.get("jobs") or {}).get("jobs") or {}).values():
        real = float(job["pending_for"]) + float(job["processing_for"])
        ops.append({"what": job["description"], "kind": "job", "id": job["job_id"], "start": job["ctime"],
                    "end": job["ctime"] + real * speed, "real_seconds": real})
    timeline = world.get("timeline") or []
    for entry in timeline:
        kind = {"VM_BOOT": "vm_boot", "GUEST_FIO": "guest", "GUEST_PING": "ping_bg" if entry.get("background")
                else "guest"}.get(entry.get("what"))
        if kind:
            what = f"VM_BOOT {entry.get('name')}" if kind == "vm_boot" else entry["what"]
            ops.append({"what": what, "kind": kind, "id": entry.get("id"), "start": entry["start"],
                        "end": entry["end"], "real_seconds": entry["real_seconds"]})
    pings = sorted((o for o in ops if o["kind"] == "ping_bg"), key=lambda o: o["start"])
    for op in pings:  # where the series of reads of a background ping's log ends at the latest
        after = [o["start"] for o in pings if o["id"] == op["id"] and o["start"] > op["start"]]
        if after:
            op["next_start"] = min(after)
    if not any(e.get("what") == "VM_BOOT" for e in timeline):  # a world saved before the timeline existed
        os_install = _sim_constant("OS_INSTALL", "voyager.sim.backend.vms")
        boot = _sim_constant("BOOT", "voyager.sim.backend.vms")
        for vm in ((world.get("vms") or {}).get("vms") or {}).values():
            needed = os_install if vm.get("profile") == "cloudtower" else boot
            if vm.get("boot_started") and vm.get("profile") != "plain" and needed:
                ops.append({"what": f"VM_BOOT {vm.get('vm_name')}", "kind": "vm_boot", "id": vm.get("uuid"),
                            "start": vm["boot_started"], "end": vm["boot_started"] + needed * speed,
                            "real_seconds": needed})
    install = _sim_constant("INSTALL", "voyager.sim.backend.installer")
    installer = world.get("installer") or {}
    if installer.get("started_at") and installer.get("result") == "ok" and install:
        ops.append({"what": "CLOUDTOWER_INSTALL", "kind": "installer", "id": None, "start": installer["started_at"],
                    "end": installer["started_at"] + install * speed, "real_seconds": install})
    tower = world.get("tower") or {}
    for task in tower.get("tasks") or []:
        if isinstance(task, dict) and task.get("created_at") and task.get("finished_at"):
            ops.append({"what": f"TASK {task.get('key')}", "kind": "task", "id": task.get("id"),
                        "key": task.get("key"), "resource": task.get("resource_id"), "start": task["created_at"],
                        "end": task["finished_at"], "real_seconds": (task["finished_at"] - task["created_at"]) / speed})
    inspector = tower.get("inspector") or {}
    job_seconds = _sim_constant("JOB_SECONDS", "voyager.sim.tower.inspection")
    export_seconds = _sim_constant("EXPORT_SECONDS", "voyager.sim.tower.inspection")
    jobs = inspector.get("jobs") or {}
    for job in jobs.values():
        if job_seconds and job.get("created_at"):
            ops.append({"what": "INSPECTION_JOB", "kind": "inspection", "id": job.get("id"),
                        "start": job["created_at"], "end": job["created_at"] + job_seconds * speed,
                        "real_seconds": job_seconds})
    for filename, export in (inspector.get("exports") or {}).items():
        job = jobs.get(export.get("job_id")) or {}
        if export_seconds and job_seconds and export.get("created_at") and job.get("created_at"):
            begin = max(export["created_at"], job["created_at"] + job_seconds * speed)
            ops.append({"what": "INSPECTION_EXPORT", "kind": "export", "id": filename, "start": export["created_at"],
                        "end": begin + export_seconds * speed, "real_seconds": (begin - export["created_at"]) / speed
                        + export_seconds})
    return sorted(ops, key=lambda o: o["start"])


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _task_done(response: str, task_id: str) -> bool:
    """A ``get-tasks`` answer shows the task SUCCESSED (the evidence may have cut a long answer)."""
    answer = _json(response)
    if isinstance(answer, list):
        return any(isinstance(t, dict) and t.get("id") == task_id and t.get("status") == "SUCCESSED" for t in answer)
    at = response.find(f'"id": "{task_id}"')
    if at < 0:
        return False
    following = response[at:].split('"id": "c', 2)  # up to the next object's id (cuids start with "c")
    return '"status": "SUCCESSED"' in following[0] + (following[1] if len(following) > 1 else "")


def noticed(op: dict[str, Any], exchanges: list[dict[str, Any]]) -> Optional[float]:
    """When the suite learnt that ``op`` had ended: the end of the first exchange, from the
    operation's start on, whose answer showed it (None: no wait of the suite saw it end)."""
    kind = op["kind"]
    later = [e for e in exchanges if e["start"] >= op["start"] - 0.002]
    if kind == "deploy":
        ended = False  # deploy_status answered something other than "running" ...
        for e in later:
            if e["path"] == DEPLOY_STATUS and '"state": "running"' not in e["response"]:
                ended = True
            elif ended and e["path"] == DEPLOY_VERIFY and '"is_deployed": true' in e["response"]:
                return e["end"]  # ... and deploy_verify, read in the same poll, confirmed it
        return None
    if kind == "guest":  # the command returned: the suite has its output
        program = "fio" if op["what"] == "GUEST_FIO" else "ping"
        for e in exchanges:  # the exchange's start is logged to the millisecond: it may precede the op's
            if e["method"] == "SSH" and f"@{op['id']}" in e["url"] and e["command"].split(" ", 1)[0] == program \
                    and e["start"] <= op["start"] + 0.05 and e["end"] >= op["end"] - 0.002:
                return e["end"]
        return None
    if kind == "ping_bg":  # the wait reading its log stops at the read that showed the statistics: the
        # last read of the series (the evidence keeps the head of a long output, so the statistics
        # line itself may be cut; a read is logged to the millisecond, so "the first read after the
        # end" cannot be told apart from one that began a moment before it)
        reads = [e for e in later if e["method"] == "SSH" and f"@{op['id']}" in e["url"]
                 and e["command"].startswith("cat ")]
        series = [e for e in reads if e["start"] < op.get("next_start", float("inf"))]
        return series[-1]["end"] if series and series[-1]["end"] >= op["end"] else None
    for e in later:
        if kind == "job":
            m = JOB_PATH.search(e["path"])
            hit = bool(m) and m.group(1) == op["id"] and _job_state(e["response"]) in ("done", "failed")
        elif kind == "vm_boot":
            m = VM_PATH.search(e["path"])
            hit = bool(m) and e["method"] == "GET" and m.group(1) == op["id"] \
                and '"ga_state": "Running"' in e["response"]
        elif kind == "installer":
            hit = e["method"] == "SSH" and INSTALL_LOG in e["command"] and "tail" in e["command"] \
                and INSTALL_DONE in e["text"]
        elif kind == "task":
            hit = (e["path"] == GET_TASKS and _task_done(e["response"], op["id"])) or \
                (op.get("key") == "CONNECT_CLUSTER" and e["path"] == GET_CLUSTERS
                 and '"connect_state": "CONNECTED"' in e["response"]) or \
                (op.get("key") == "DEPLOY_CLOUDTOWER_APPLICATION" and e["path"] == GET_APPLICATIONS
                 and bool(op.get("resource")) and f'"id": "{op["resource"]}"' in e["response"]
                 and '"state": "RUNNING"' in e["response"])
        elif kind == "inspection":
            m = INSPECTION_JOB.search(e["path"])
            hit = bool(m) and e["method"] == "GET" and m.group(1) == op["id"] and '"status": "SUCCEEDED"' in e["response"]
        elif kind == "export":
            hit = e["path"] == EXPORT_STATUS and "EXPORT_SUCCEEDED" in e["response"]
        else:
            hit = False
        if hit:
            return e["end"]
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


def idle_by_step(exchanges: list[dict[str, Any]], ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per check, the wall seconds between its first and last exchange during which no operation
    ran (the suite's own time inside the check), largest first."""
    spans: dict[str, list[float]] = {}
    for e in exchanges:
        span = spans.setdefault(e["step"] or "-", [e["start"], e["end"]])
        span[0], span[1] = min(span[0], e["start"]), max(span[1], e["end"])
    rows = []
    for step, (a, b) in spans.items():
        covered = busy_seconds([{"start": max(a, o["start"]), "end": min(b, o["end"])} for o in ops
                                if o["end"] > a and o["start"] < b])
        rows.append({"step": step, "seconds": round(b - a - covered, 3)})
    return sorted(rows, key=lambda r: -r["seconds"])[:12]


POLL_PATHS = (DEPLOY_STATUS, DEPLOY_VERIFY, GET_TASKS, GET_CLUSTERS, GET_APPLICATIONS, EXPORT_STATUS)


def is_poll(e: dict[str, Any]) -> bool:
    """A read some wait repeats: job, VM, deployment, task, cluster, application, inspection and
    export reads, and the installer log's tail."""
    if e["method"] == "SSH":
        return INSTALL_LOG in e["command"] and "tail" in e["command"]
    return e["path"] in POLL_PATHS or (e["method"] == "GET" and bool(
        JOB_PATH.search(e["path"]) or VM_PATH.search(e["path"]) or INSPECTION_JOB.search(e["path"])))


def lag_rows(ops: list[dict[str, Any]], exchanges: list[dict[str, Any]], speed: float) -> list[dict[str, Any]]:
    rows = []
    for op in ops:
        seen = noticed(op, exchanges)
        op["noticed"] = seen
        if seen is None or op["real_seconds"] <= 0:
            continue
        lag = seen - op["end"]
        rows.append({"what": op["what"], "kind": op["kind"], "real_seconds": round(op["real_seconds"], 3),
                     "lag_wall_s": round(lag, 3), "lag_real_s": round(lag / speed, 3),
                     "lag_share": round(lag / speed / op["real_seconds"], 4)})
    return rows


def by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        out[kind] = {"n": len(mine), "lag_wall_p50_s": round(statistics.median(r["lag_wall_s"] for r in mine), 3),
                     "lag_share_p50": round(statistics.median(r["lag_share"] for r in mine), 4),
                     "lag_share_max": round(max(r["lag_share"] for r in mine), 4)}
    return out


def analyse(state: Path, speed: float, start: float, suite_seconds: float) -> dict[str, Any]:
    """The figures of one finished run on ``state`` (see the module docstring)."""
    world = json.loads((state / "sim-world.json").read_text(encoding="utf-8"))
    (log,) = sorted((state / "evidence").glob("*.log"))[-1:]
    exchanges = parse_evidence(log)
    ops = operations(world, speed)
    rows = lag_rows(ops, exchanges, speed)
    busy = busy_seconds(ops)
    first = min(o["start"] for o in ops) if ops else start
    last = max(o["end"] for o in ops) if ops else start
    lags = [r["lag_wall_s"] for r in rows]
    for r in rows:
        sys.stderr.write(f"{r['what']:<32} 模拟时长 {r['real_seconds']:>7.1f} s  发现延迟 {r['lag_wall_s']:6.3f} s 墙钟"
                         f" = {r['lag_real_s']:7.2f} s 真实集群 = {r['lag_share'] * 100:5.2f}%\n")
    return {
        "benchmark": "waits",
        "speed": speed,
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
        "lag_by_kind": by_kind(rows),
        "poll_requests": sum(1 for e in exchanges if is_poll(e)),
        "requests": len(exchanges),
        "operations": len(ops),
        "waits": rows,
        "operations_without_lag": sorted(o["what"] for o in ops if o.get("noticed") is None and o["real_seconds"] > 0),
        "before_first_operation_s": round(first - start, 3),
        "after_last_operation_s": round(start + suite_seconds - last, 3),
        "quiet_gaps": quiet_gaps(exchanges, ops),
        "idle_by_check": idle_by_step(exchanges, ops),
    }


RUN_FILE = "bench-waits-run.json"  # in the kept state dir: what --reanalyse needs


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                        help=f"simulator speed (default {DEFAULT_SPEED}: the whole suite in about two minutes; "
                             "0.04 is the simulator's default speed, about three and a half)")
    parser.add_argument("--state-dir", type=Path, default=None, help="state dir of the run (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp state dir")
    parser.add_argument("--suites", nargs="*", default=["suites/"])
    parser.add_argument("--reanalyse", type=Path, default=None, metavar="STATE_DIR",
                        help="analyse a run kept with --keep again instead of running the suite")
    args = parser.parse_args(argv)
    if args.reanalyse is not None:
        run = json.loads((args.reanalyse / RUN_FILE).read_text(encoding="utf-8"))
        print(json.dumps({**analyse(args.reanalyse, run["speed"], run["start"], run["suite_seconds"]),
                          "load_average": run.get("load_average")}, ensure_ascii=False))
        return 0
    if args.speed <= 0:
        parser.error("--speed must be > 0 (at speed 0 nothing takes time)")
    work = Path(tempfile.mkdtemp(prefix="voyager-bench-waits-"))
    state = args.state_dir or work / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT / "lib") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "pytest", *args.suites, "--sim", "--sim-speed", str(args.speed),
           "--state-dir", str(state), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    load_before = os.getloadavg()[0]
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    suite_seconds = time.time() - start
    load = {"at_start_1min": round(load_before, 2), "at_end_1min": round(os.getloadavg()[0], 2),
            "at_end_5min": round(os.getloadavg()[1], 2)}
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        print(json.dumps({"benchmark": "waits", "error": f"pytest exit status {proc.returncode}"}))
        return 1
    (state / RUN_FILE).write_text(json.dumps({"speed": args.speed, "start": start, "suite_seconds": suite_seconds,
                                              "load_average": load}), encoding="utf-8")
    result = {**analyse(state, args.speed, start, suite_seconds), "load_average": load}
    print(json.dumps(result, ensure_ascii=False))
    if args.state_dir is None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif args.keep:
        sys.stderr.write(f"state dir kept: {state}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
