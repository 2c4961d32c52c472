"""End to end: the SVT upload of suite 03 (``python -m pytest suites/... --sim``, subprocess,
own ``--state-dir``) leaves no upload volume behind.

``--sim-faults slow:/api/v2/svt_image/create_volume:1,slow:/api/v2/elf/cluster_recommended_cpu_models:1``
(the create call times out but the simulator still creates the volume; the second
fault keeps the simulator up until it has): suites 01-03 pass, one SVT image,
``uploads_in_progress`` 0 — the uploader followed the volume instead of leaving it open.

A run killed in the middle of an upload (SVT ISO, CloudTower ISO) and resumed is a
row of ``test_interruptions_e2e.py``.
"""
from __future__ import annotations

import pytest

from e2e_support import run_suites, sim_status

pytestmark = pytest.mark.e2e

SVT_TEST = "suites/test_03_config_cluster.py::test_svt_uploaded"
SLOW_FAULTS = "slow:/api/v2/svt_image/create_volume:1,slow:/api/v2/elf/cluster_recommended_cpu_models:1"


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
