"""A pytester project holding ``suites/`` test files and the voyager plugin, for
the plugin, ledger, run-state and report carry-over tests (rootdir-imported
helper, like ``sim_support``)."""
from __future__ import annotations

from typing import Iterable

PLUGIN = ("voyager.pytest_plugin",)


def suite_project(pytester, files: dict[str, str], plugins: Iterable[str] = PLUGIN):
    """Write ``pytest.ini``, a conftest registering ``plugins`` and ``suites/<name>``
    for each of ``files``; returns ``pytester``."""
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(f"pytest_plugins = {list(plugins)!r}\n")
    suites = pytester.path / "suites"
    suites.mkdir()
    for name, text in files.items():
        (suites / name).write_text(text, encoding="utf-8")
    return pytester
