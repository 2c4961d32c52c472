"""End to end: the SVT upload of suite 03 (``python -m pytest suites/... --sim``, subprocess,
own ``--state-dir``) leaves no upload volume behind and resumes after a kill.

1. ``--sim-faults slow:/api/v2/svt_image/create_volume:1,slow:/api/v2/elf/cluster_recommended_cpu_models:1``
   (the create call times out but the simulator still creates the volume; the second
   fault keeps the simulator up until it has): suites 01-03 pass, one SVT image,
   ``uploads_in_progress`` 0 — the uploader followed the volume instead of leaving it open.
2. SIGKILL of pytest in the middle of the SVT upload (a 400 MiB ISO in ``--media-dir``),
   then a rerun: the rerun passes, ``uploads_in_progress`` 0, and the simulator accepted
   fewer than 1.5 × the chunk count in total (the upload was resumed, not restarted).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e_support import ROOT, SUITES, run_suites, sim_status

pytestmark = pytest.mark.e2e

SVT_TEST = "suites/test_03_config_cluster.py::test_svt_uploaded"
SLOW_FAULTS = "slow:/api/v2/svt_image/create_volume:1,slow:/api/v2/elf/cluster_recommended_cpu_models:1"
CHUNK = 8 * 1024 * 1024
SVT_CHUNKS = 50
KILL_TIMEOUT = 300


def world(state: Path) -> dict:
    return json.loads((state / "sim-world.json").read_text())


def write_media(folder: Path) -> Path:
    """A 400 MiB SVT ISO (50 upload chunks) and a small CloudTower ISO."""
    folder.mkdir(parents=True)
    svt = folder / "SMTX_VMTOOLS-3.2.0-e2e.iso"
    block = bytes(range(256)) * (CHUNK // 256)
    with open(svt, "wb") as fh:
        for i in range(SVT_CHUNKS):
            fh.write(i.to_bytes(4, "big") + block[4:])
    (folder / "cloudtower-4.7.1-e2e.iso").write_bytes(b"cloudtower" * 1000)
    return svt


def test_two_slow_faults_pass_and_leave_no_upload_volume(tmp_path):
    """创建上传卷超时（模拟器随后仍创建了该卷）时，上传沿用该卷完成，测试 01-03 全部通过，
    模拟器中只有一个 SVT 镜像，uploads_in_progress 为 0；随后重跑也不新建任何东西。"""
    state = tmp_path / "state"
    run = run_suites(state, "--sim-faults", SLOW_FAULTS)
    assert run.returncode == 0, run.explain()
    assert run.outcomes.get(SVT_TEST) == "passed", run.explain()
    status = sim_status(state)
    assert status["uploads_in_progress"] == 0 and status["images"] == 1, status
    again = run_suites(state)
    assert again.returncode == 0, again.explain()
    assert sim_status(state) == status


def test_sigkill_during_the_svt_upload_then_rerun_resumes_it(tmp_path):
    """SVT 上传进行中强制结束（SIGKILL）pytest 后重跑：上传从记录的上传卷续传完成，
    uploads_in_progress 为 0，两次运行共发送的块数少于总块数的 1.5 倍（续传而不是重新上传）。"""
    media = tmp_path / "media"
    svt = write_media(media)
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "pytest", *SUITES, "--sim", "--sim-speed", "0", "--state-dir", str(state),
           "--media-dir", str(media), "-o", f"cache_dir={tmp_path / 'cache'}", "-p", "no:randomly", "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    received, deadline = None, time.monotonic() + KILL_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                uploads = world(state)["images"]["uploads"].values()
            except (OSError, ValueError, KeyError):
                uploads = []
            svt_uploads = [u for u in uploads if u["kind"] == "svt"]
            if svt_uploads and 10 <= len(svt_uploads[0]["received"]) <= SVT_CHUNKS - 10:
                received = len(svt_uploads[0]["received"])
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and received is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert received is not None, "未能在 SVT 上传过程中结束 pytest（上传太快或没有开始）"
    killed = world(state)
    [upload] = killed["images"]["uploads"].values()
    recorded = json.loads((state / "run-state.json").read_text())["facts"]["uploads"][f"svt/{svt.name}"]
    assert recorded["image_uuid"] == upload["image_uuid"]  # recorded before the chunks were sent
    assert sim_status(state)["uploads_in_progress"] == 1

    rerun = run_suites(state, "--media-dir", str(media))
    assert rerun.returncode == 0, rerun.explain()
    assert rerun.outcomes.get(SVT_TEST) == "passed", rerun.explain()
    status = sim_status(state)
    assert status["uploads_in_progress"] == 0 and status["images"] == 1, status
    after = world(state)["images"]
    [image] = after["images"].values()
    assert image["uuid"] == upload["image_uuid"] and image["size"] == svt.stat().st_size  # the same volume
    print(f"killed after {received} chunks; chunks accepted in total: {after['chunks_accepted']} of {SVT_CHUNKS}")
    assert after["chunks_accepted"] < 1.5 * SVT_CHUNKS, after["chunks_accepted"]
    facts = json.loads((state / "run-state.json").read_text())["facts"]
    assert not facts.get("uploads"), facts.get("uploads")  # nothing left in flight
