"""No import cycle anywhere in the ``voyager`` package (lazy imports included,
``if TYPE_CHECKING:`` excepted); the graph is read with ``ast`` (tests_unit/import_graph.py)."""
from __future__ import annotations

import textwrap

from import_graph import a_cycle_path, cycles, graph


def test_no_import_cycle_in_voyager():
    """voyager 包内任何模块之间都没有循环导入（函数内的延迟导入也算，TYPE_CHECKING 下的除外）。"""
    edges = graph()
    assert "voyager.sim.backend.world" in edges and "voyager.pytest_plugin" in edges  # the graph is real
    loops = [" -> ".join(a_cycle_path(edges, c)) for c in cycles(edges)]
    assert loops == [], "循环导入：\n" + "\n".join(loops)


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_detector_finds_lazy_and_relative_cycles_but_not_type_checking(tmp_path):
    """检测器能发现函数内延迟导入与相对导入形成的循环，而只在 TYPE_CHECKING 下的导入不算循环。"""
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def thing():\n    from . import a\n    return a\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n",
        "pkg/d.py": "import pkg.c\nclass D: pass\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/e.py": "from ..sub import f\n",
        "pkg/sub/f.py": "from pkg.sub.e import x\n",
    })
    edges = graph(tmp_path, "pkg")
    assert edges["pkg.b"] == {"pkg.a"} and edges["pkg.c"] == set() and edges["pkg.sub.e"] == {"pkg.sub.f"}
    assert cycles(edges) == [["pkg.a", "pkg.b"], ["pkg.sub.e", "pkg.sub.f"]]
