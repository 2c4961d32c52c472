"""End to end: the README's main command, ``pytest suites/ --sim``, as a delivery
engineer types it — every suite 01-11 at the simulator's default speed (the
waits pace themselves against the simulated clock as in a rehearsal), in a
subprocess. Only where it keeps its files is redirected (``--state-dir``,
``--reports-dir``, the cache): a test must not write into the checkout.

This is the one run at the default speed in CI; every other end-to-end test
runs at speed 0.
"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from e2e_support import ROOT, TIMEOUT, suites_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme")
    junit = base / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "suites/", "--sim",
           "--state-dir", str(base / "state"), "--reports-dir", str(base / "reports"),
           "-o", f"cache_dir={base / 'cache'}", f"--junitxml={junit}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=suites_env())
    return base, proc, junit


def test_the_readme_main_command_passes_every_step(readme_run):
    """README 主命令 `pytest suites/ --sim`（默认速度）完整通过 01–11 每个步骤：退出码 0，
    没有失败或出错的检查，唯一允许的跳过是需要 --destructive 的维护模式检查。"""
    base, proc, junit = readme_run
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    modules = {c.get("classname", "").split(".")[-1] for c in cases}
    assert {f"test_{n:02d}" for n in range(1, 12)} <= {m[:7] for m in modules}, sorted(modules)
    bad = [c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None]
    assert bad == []
    skipped = [(c.get("name"), c.find("skipped").get("message", "")) for c in cases if c.find("skipped") is not None]
    assert all("--destructive" in message for _, message in skipped), skipped


def test_the_readme_main_command_leaves_the_deliverables(readme_run):
    """演练结束后交付文件夹里有本次运行的 HTML 报告（中文、含每一项检查）和 Allure 结果。"""
    base, proc, junit = readme_run
    reports = base / "reports"
    [cluster] = [p for p in reports.iterdir() if p.is_dir()]
    html = (cluster / "report.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in html
    names = {c.get("name").split("[")[0] for c in ET.parse(junit).getroot().iter("testcase")}
    missing = [n for n in names if n not in html]
    assert missing == []
    assert any((cluster / "allure-results").glob("*-result.json"))
