"""Shared helpers for the unit tests.

``../shared`` (a sibling of the repository) holds read-only reference material such as
the real planning template; tests that need it skip cleanly when it is absent.
"""
from __future__ import annotations

import gc
import glob
import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
REAL_TEMPLATE = SHARED_DIR / "reference" / "planning-template-elf-v20250820.xlsx"


@pytest.fixture(scope="session", autouse=True)
def _no_simulator_temp_dir_left():
    """After the session (every simulator stopped or collected) this process has left no
    ``voyager-sim-*-<pid>-*`` directory in the temp dir (torn down last: a leftover fails
    the run as an error of the last test)."""
    yield
    gc.collect()  # stores of worlds nobody stopped remove their directory when collected
    left = sorted(glob.glob(os.path.join(tempfile.gettempdir(), f"voyager-sim-*-{os.getpid()}-*")))
    assert not left, f"测试会话留下了模拟器临时目录（simulator temp dirs left behind）：{left}"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared reference folder (skips the test when it is absent)."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is not available")
    return SHARED_DIR


@pytest.fixture(scope="session")
def real_template(shared_dir: Path) -> Path:
    """The real SmartX planning template in ../shared (read-only: copy before writing)."""
    if not REAL_TEMPLATE.is_file():
        pytest.skip(f"{REAL_TEMPLATE.name} is not in ../shared/reference")
    return REAL_TEMPLATE


@pytest.fixture
def demo_plan():
    """A fresh in-memory demo plan (3 hosts, loopback addresses)."""
    from voyager.plan import build_demo_plan

    return build_demo_plan()


@pytest.fixture(scope="session")
def _demo_plan_workbook(tmp_path_factory) -> Path:
    from voyager.plan import new_template

    return new_template(tmp_path_factory.mktemp("demo") / "demo-plan.xlsx", demo=True)


@pytest.fixture
def demo_plan_file(tmp_path: Path, _demo_plan_workbook: Path) -> Path:
    """A demo plan workbook written by ``voyager plan new --demo``, copied into tmp_path
    (written once per session: tests may change their copy)."""
    path = tmp_path / _demo_plan_workbook.name
    shutil.copyfile(_demo_plan_workbook, path)
    return path
