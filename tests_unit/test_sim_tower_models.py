"""CloudTower backend rules tested without HTTP (voyager.sim.tower.models and its parts)."""
from __future__ import annotations

import json
import re

import pytest

from sim_tower_support import timed_tower
from voyager.plan.demo import build_demo_plan
from voyager.sim.backend.clock import Clock
from voyager.sim.tower.models import (CONNECTED, ENCODED_DEFAULT_ROOT_PASSWORD, INITIALIZING, TowerBackend,
                                      TowerError, cuid, iso)
from voyager.sim.backend.world import World


@pytest.fixture
def tower():
    return World(build_demo_plan(), clock=Clock(0)).tower


def test_ids_and_dates():
    assert re.fullmatch(r"c[0-9a-z]{24}", cuid()) and cuid() != cuid()
    assert iso(1759257642.192) == "2025-09-30T18:40:42.192Z"


def test_tower_ids_of_cluster_objects_are_stable(tower):
    first = tower.tower_id("host", "uuid-1")
    assert tower.tower_id("host", "uuid-1") == first != tower.tower_id("vm", "uuid-1")


def test_setup_rules_and_secret_free_state(tower):
    with pytest.raises(TowerError, match="decrypt"):
        tower.create_root_user("c29tZXRoaW5nLWVsc2U=")
    tower.create_root_user(ENCODED_DEFAULT_ROOT_PASSWORD)
    with pytest.raises(TowerError) as exc:
        tower.create_root_user(ENCODED_DEFAULT_ROOT_PASSWORD)
    assert exc.value.code == "UserAlreadyExists"
    assert not tower.is_setup
    tower.create_organization({"name": "org"})
    assert tower.is_setup
    with pytest.raises(TowerError, match="already exists"):
        tower.create_organization({"name": "org"})
    token = tower.login("root", "HC!r0cks")
    with pytest.raises(TowerError):
        tower.login("root", "hc!r0cks")
    assert tower.authenticate(token) == tower.authenticate(f"bearer {token}") == tower.root["id"]
    assert tower.authenticate("") is None and tower.authenticate(None) is None
    state = json.dumps(tower.to_state())
    assert token not in state and "HC!r0cks" not in state and ENCODED_DEFAULT_ROOT_PASSWORD not in state
    again = TowerBackend(tower.world)
    again.load_state(json.loads(state))
    assert again.authenticate(token) == tower.root["id"] and again.organizations == tower.organizations


@pytest.mark.parametrize("value, ok", [
    ("127.10.0.2", True), ("ntp.demo.local,127.10.0.3", True), ("a-b.example", True),
    ("1.2.3", False), ("256.1.1.1", False), ("bad_host", False), ("-x.example", False), ("a,,b", False), ("", False),
])
def test_ntp_addresses(tower, value, ok):
    if ok:
        assert tower.update_ntp({"ntp_service_url": value}) == value.replace(",", ";")
        assert tower.ntp_servers == value.split(",")
    else:
        with pytest.raises(TowerError):
            tower.update_ntp({"ntp_service_url": value})


def test_objects_of_a_cluster_still_initializing_are_refused():
    plan = build_demo_plan()
    with timed_tower(plan) as (sim, clock):
        tower = sim.world.tower
        with sim.world.lock:
            tower.create_root_user(ENCODED_DEFAULT_ROOT_PASSWORD)
            org = tower.create_organization({"name": "o"})
            dc = tower.create_datacenter({"organization_id": org["id"], "name": "dc"})
            cluster, task_id = tower.connect_cluster({"datacenter_id": dc["id"], "ip": plan.cluster.vip,
                                                      "username": "root",
                                                      "password": plan.cluster.admin_password.reveal()})
            assert cluster["connect_state"] == INITIALIZING and tower.status_counts()["connected_clusters"] == 0
            with pytest.raises(TowerError) as exc:
                tower.dashboards.create_view({"cluster_id": cluster["id"], "name": "v", "time_unit": "HOUR",
                                              "time_span": 2})
            assert exc.value.code == "CLUSTER_NOT_CONNECTED"
            assert tower.alerts.all() and not any(r["alert_rules"] for r in tower.alerts.all())
        clock.advance(60)
        sim.world.tick()
        with sim.world.lock:
            assert cluster["connect_state"] == CONNECTED and tower.task(task_id)["status"] == "SUCCESSED"
            storage = next(r for r in tower.alerts.all() if r["name"] == "zbs_cluster_data_space_use_rate")
            assert [a["cluster_id"] for a in storage["alert_rules"]] == [cluster["id"]]
            assert not next(r for r in tower.alerts.all() if r["name"].startswith("vsphere_"))["alert_rules"]
            assert len([n for n in tower.topo.nodes if n["cluster_id"] == cluster["id"]]) == len(plan.hosts)
            zone = tower.topo.zone_of_cluster(cluster["id"])
            for bad in ({"height": 0}, {"height": 61}, {"height": "42"}, {"name": ""}, {"zone_topo_id": "cnope"}):
                params = {"cluster_id": cluster["id"], "zone_topo_id": zone["id"], "height": 42, "name": "r", **bad}
                with pytest.raises(TowerError):
                    tower.topo.create_rack(params)
