"""The simulator's layout (docs/architecture.md, "Simulator"): entry points on top,
one subpackage per API or the backend, nothing importing upwards."""
from __future__ import annotations

from import_graph import LIB, graph

SIM = LIB / "voyager" / "sim"
SUBPACKAGES = {"backend", "web", "fisheye", "tower", "ssh"}
FRONT_ENDS = ("voyager.sim.web", "voyager.sim.fisheye", "voyager.sim.tower", "voyager.sim.ssh")


def _top_modules() -> list[str]:
    return sorted(p.name for p in SIM.glob("*.py"))


def test_at_most_twelve_modules_directly_in_sim():
    """lib/voyager/sim/ 目录下直接存放的模块不超过 12 个，其余按关注点放在子包中。"""
    top = _top_modules()
    assert "simulator.py" in top and len(top) <= 12, f"{len(top)} 个模块：{', '.join(top)}"


def test_one_subpackage_per_concern():
    """模拟器的子包正是 backend、web、fisheye、tower、ssh，每个都是带 __init__.py 的包。"""
    found = {p.name for p in SIM.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert found == SUBPACKAGES
    assert all((SIM / name / "__init__.py").is_file() for name in SUBPACKAGES)


def test_nothing_imports_upwards():
    """子包中的模块不导入 voyager.sim 顶层的入口模块（simulator、cli、testing、walkthrough）；
    后端（backend）不导入任何前端（web、fisheye、tower、ssh），HTTP 基础层（web）不导入任何 API 前端。"""
    edges = graph()
    entry_points = {f"voyager.sim.{p[:-3]}" for p in _top_modules() if p != "__init__.py"}
    upward = sorted(f"{m} -> {t}" for m, ts in edges.items()
                    if m.startswith(tuple(f"voyager.sim.{s}" for s in SUBPACKAGES))
                    for t in ts if t in entry_points)
    backend_to_front = sorted(f"{m} -> {t}" for m, ts in edges.items() if m.startswith("voyager.sim.backend")
                              for t in ts if t.startswith(FRONT_ENDS))
    web_to_api = sorted(f"{m} -> {t}" for m, ts in edges.items() if m.startswith("voyager.sim.web")
                        for t in ts if t.startswith(FRONT_ENDS[1:]))
    assert upward == [] and backend_to_front == [] and web_to_api == []
