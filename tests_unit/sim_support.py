"""Fixtures shared by the simulator tests (not a test module).

A test module imports the fixtures it uses by name, e.g.
``from sim_support import http, plan, shared, sim  # noqa: F401 (fixtures)``;
a module that needs another variant defines that fixture itself.

``plan``    the demo plan, one per module;
``shared``  one started simulator (HTTP only, speed 0) with its checkpoints (``SharedSim``);
``sim``     that simulator, in the stage the test's other fixture restored;
``http``    the ``configured`` checkpoint restored: deployed and configured, logged in.
"""
from __future__ import annotations

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.testing import SharedSim


@pytest.fixture(scope="module")
def plan():
    return build_demo_plan()


@pytest.fixture(scope="module")
def shared(plan):
    with Simulator(plan, speed=0, ssh=False) as s:
        yield SharedSim(s, plan)


@pytest.fixture
def sim(shared):
    """The module's simulator, in the stage the test's other fixture restored."""
    return shared.sim


@pytest.fixture
def http(shared):
    """Deployed and configured (root, VIP, DNS, NTP, IPMI, business network), logged in."""
    return shared.restore("configured")
