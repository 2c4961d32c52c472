"""The walkthrough's requests, in its order, against the simulator (acceptance of issue 3)."""
from __future__ import annotations

import importlib.util

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.walkthrough import Walk

NEEDED = ("voyager.sim.ssh", "voyager.sim.tower_rest", "voyager.sim.tower_graphql", "voyager.sim.tower_models")


def test_the_whole_walkthrough_leaves_a_deployed_and_connected_cluster(tmp_path):
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"CloudTower/SSH front-ends not present: {', '.join(missing)}")
    plan = build_demo_plan()
    state = tmp_path / "walk.json"
    with Simulator(plan, speed=0, state_file=state) as sim:
        walk = Walk(sim.endpoints, plan, timeout=30, poll=0.01)
        status = walk.run()
        assert walk.facts["ipmi_valid"] == 3
    assert status == {"deployed": True, "hosts": 3, "vds": 3, "vlans": 4, "images": 2, "vms": 1,
                      "organizations": 1, "datacenters": 1, "connected_clusters": 1, "uploads_in_progress": 0}
    # what a rerun of failed checks meets: the same world
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        assert sim.status() == status
        assert sim.world.tower_ready()
