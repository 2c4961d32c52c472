"""The HTML delivery report of a suite run: titled with the cluster, the run's
facts in the environment table, and every row carrying its acceptance criterion
(the first line of the test's docstring). Runs step 01 against the simulator."""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = "suites/test_01_prepare.py"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    state = tmp_path_factory.mktemp("html") / "state"
    cmd = [sys.executable, "-m", "pytest", SUITE, "--sim", "--sim-speed", "0", "--state-dir", str(state),
           "-o", f"cache_dir={state.parent / 'cache'}", "-q", "-p", "no:randomly"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return (state / "report" / "report.html").read_text(encoding="utf-8")


def report_data(page: str) -> dict:
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "no data-jsonblob in the HTML report"
    return json.loads(html.unescape(blob.group(1)))


def test_the_title_names_the_cluster(page):
    assert "SmartX 集群部署验收报告 · DEMO-SMTX-Cls01" in page


def test_the_environment_lists_the_plan_facts(page):
    env = report_data(page)["environment"]
    assert env["集群 Cluster"] == "DEMO-SMTX-Cls01"
    assert env["集群 VIP"] == "127.10.20.10"
    assert env["主机 Hosts"].startswith("3 台：demo-node-01（127.10.20.11）")
    assert env["运行方式 Mode"] == "内置模拟器演练 (--sim)"


def test_every_row_shows_its_acceptance_criterion(page):
    from suites import test_01_prepare

    tests = report_data(page)["tests"]
    assert tests
    assert "验收标准 Acceptance criterion" in page
    for nodeid, results in tests.items():
        name = nodeid.split("::")[-1].split("[")[0]
        first_line = getattr(test_01_prepare, name).__doc__.strip().splitlines()[0]
        row = results[-1]["resultsTableRow"]
        assert any(html.escape(first_line) in cell for cell in row), (nodeid, row)
