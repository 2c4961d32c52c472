"""Shared by the upload benchmarks: the simulator in its own process, and readings of a process.

``configured_sim()`` starts ``voyager sim --plan demo --speed 0`` (no state file),
deploys and configures the demo cluster over HTTP the walkthrough's way, yields
``(proc, endpoint map, plan, walk)`` and stops the simulator (SIGTERM) afterwards.
Loopback only: the demo plan's 127.x addresses.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:
    sys.path.insert(0, str(REPO / "lib"))

from voyager.plan.demo import build_demo_plan  # noqa: E402
from voyager.sim.walkthrough import Walk  # noqa: E402

MIB = 1024 * 1024


@contextlib.contextmanager
def configured_sim() -> Iterator[tuple[subprocess.Popen, dict, object, Walk]]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    proc = subprocess.Popen([sys.executable, "-m", "voyager", "sim", "--plan", "demo", "--speed", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        sim_map = json.loads(proc.stdout.readline())
        plan = build_demo_plan()
        walk = Walk(sim_map, plan, timeout=60, poll=0.01, tls=False)
        walk.deploy(walk.scan())
        walk.configure()
        yield proc, sim_map, plan, walk
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def proc_status(pid: int | str) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (peak resident set) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024 / MIB
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
