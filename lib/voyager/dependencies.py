"""pytest-dependency, made to survive reruns (used by ``voyager.pytest_plugin``).

Suite tests declare their order with pytest-dependency markers. Two additions:

* ``expand_parametrized_dependencies``: a dependency may name a parametrized
  test without its parameter — ``depends=["test_host_scanned"]`` means every
  ``test_host_scanned[...]`` case, as collected now or as recorded in the
  ledger (a case whose module ``--lf`` did not collect).
* ``satisfy_from_ledger``: before pytest-dependency checks a test's
  prerequisites, each prerequisite that is not part of this session and passed
  in an earlier run (per the ledger) is registered with pytest-dependency's
  manager as passed. A prerequisite that runs in this session keeps its own
  fresh result.
"""
from __future__ import annotations

from typing import Iterable

import pytest
from pytest_dependency import DependencyItemStatus, DependencyManager

from voyager.ledger import Ledger, dependency_names, scope_container


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def _within(nodeid: str, item_nodeid: str, scope: str) -> bool:
    container = scope_container(item_nodeid, scope)
    if not container:
        return True
    if scope == "module":
        return nodeid.split("::")[0] == container
    if scope == "class":
        return "::".join(nodeid.split("::")[:2]) == container
    return nodeid.startswith(container + "/")


def expand_parametrized_dependencies(items: Iterable[pytest.Item], ledger: Ledger | None) -> None:
    items = list(items)
    known: list[tuple[str, dict[str, str]]] = []
    for item in items:
        marker = item.get_closest_marker("dependency")
        if marker is not None:
            known.append((item.nodeid, dependency_names(item.nodeid, marker.kwargs.get("name"))))
    collected = {nodeid for nodeid, _ in known}
    if ledger is not None:
        known += [(nodeid, e["names"]) for nodeid, e in ledger.entries.items()
                  if e.get("names") and nodeid not in collected]

    visible: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (scope, container) -> (nodeid, name)
    for item in items:
        marker = item.get_closest_marker("dependency")
        if marker is None or not marker.kwargs.get("depends"):
            continue
        scope = marker.kwargs.get("scope", "module")
        expanded: list[str] = []
        changed = False
        key = (scope, scope_container(item.nodeid, scope))
        if key not in visible:  # the same for every item of a module (class, package): computed once
            visible[key] = [(n, names.get(scope, "")) for n, names in known if _within(n, item.nodeid, scope)]
        in_scope = visible[key]
        for dep in marker.kwargs["depends"]:
            if any(name == dep for _, name in in_scope):
                expanded.append(dep)
                continue
            cases = sorted({name for _, name in in_scope if "[" in name and _base(name) == dep})
            if cases:
                expanded.extend(c for c in cases if c not in expanded)
                changed = True
            else:
                expanded.append(dep)
        if changed:
            kwargs = dict(marker.kwargs)
            kwargs["depends"] = expanded
            item.add_marker(pytest.mark.dependency(*marker.args, **kwargs), append=False)


def satisfy_from_ledger(item: pytest.Item, ledger: Ledger | None, selected: set[str]) -> list[str]:
    """Register earlier-passed prerequisites of ``item``; returns their names."""
    marker = item.get_closest_marker("dependency")
    if ledger is None or marker is None or not marker.kwargs.get("depends"):
        return []
    scope = marker.kwargs.get("scope", "module")
    manager = DependencyManager.getManager(item, scope=scope)
    if manager is None:
        return []
    satisfied = []
    for name in marker.kwargs["depends"]:
        if name in manager.results:
            continue
        nodeid = ledger.passed_dependency(name, scope, item.nodeid)
        if nodeid and nodeid not in selected:
            status = DependencyItemStatus()
            for phase in status.Phases:
                status.results[phase] = "passed"
            manager.results[name] = status
            satisfied.append(name)
    return satisfied
