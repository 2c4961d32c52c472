"""Where a suite run's context lives: ``config.stash[RUN_KEY]``.

The plugin (:mod:`voyager.pytest_plugin`) stores its ``VoyagerRun`` there at
configure time; the report modules read it through :func:`get_run` without
importing the plugin (which imports them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from voyager.pytest_plugin import VoyagerRun

RUN_KEY = pytest.StashKey["VoyagerRun"]()


def get_run(config: pytest.Config) -> "VoyagerRun":
    return config.stash[RUN_KEY]
