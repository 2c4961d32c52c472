"""Scan data of simulated hosts: shaped like the real capture, derived from the plan."""
from __future__ import annotations

import json

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.sim.backend.clock import Clock, ManualClock
from voyager.sim.backend.hosts import build_hosts, link_local, speed_bits
from voyager.sim.backend.world import World


@pytest.fixture
def plan():
    return build_demo_plan()


def scan_of(plan, ip="127.10.20.11", overrides=None):
    return build_hosts(plan, overrides)[ip].scan()


def test_scan_has_the_fields_of_the_real_capture(plan, shared_dir):
    sample = json.loads((shared_dir / "reference" / "api-samples" / "scan-host-response.json").read_text())["data"]
    scan = scan_of(plan)
    assert set(sample) <= set(scan)  # every top-level field of the capture
    assert set(sample["cgroup_profile_env"]) == set(scan["cgroup_profile_env"])
    node = scan["cgroup_profile_env"]["numa_info"]["numa_nodes"][0]
    assert set(node) == set(sample["cgroup_profile_env"]["numa_info"]["numa_nodes"][0])
    assert len(node["cpus"]) == scan["cpu"]["logical_cores"]
    assert node["mem_size_mb"] == scan["cgroup_profile_env"]["memory_total"] // 2**20 > node["free_mem_mb"]
    assert set(sample["ifaces"][0]) == set(scan["ifaces"][0])
    assert set(sample["disks"][0]) == set(scan["disks"][0])
    assert set(sample["cpu"]) <= set(scan["cpu"]) | {"flags"}


def test_nics_follow_the_plan(plan):
    scan = scan_of(plan)
    physical = {i["name"]: i for i in scan["ifaces"] if i["pci_slot_name"]}
    assert set(physical) == {"ens192", "ens224", "ens161", "ens256", "ens225", "ens257"}
    assert physical["ens192"]["speed"] == 10_000_000_000 and physical["ens161"]["speed"] == 25_000_000_000
    for nic in physical.values():
        assert nic["up"] and nic["running"] and nic["physical_link_up"]
        assert nic["ipv6"] == link_local(nic["hwaddr"]) and nic["ipv6"].startswith("fe80::")
    names = [i["name"] for i in scan["ifaces"]]
    assert "port-mgt" in names and "ovsbr-internal" in names and any(n.startswith("ovsbr-") for n in names)
    port_mgt = next(i for i in scan["ifaces"] if i["name"] == "port-mgt")
    assert port_mgt["ipv4"] == "127.10.20.11" and port_mgt["ipv6"].startswith("fe80::")
    assert next(i for i in scan["ifaces"] if i["name"] == "port-storage")["ipv4"] == "127.10.21.11"
    assert len({i["hwaddr"] for i in physical.values()}) == len(physical)


def test_link_local_is_eui64():
    assert link_local("00:50:56:b5:25:ba") == "fe80::250:56ff:feb5:25ba"
    assert speed_bits("25G") == 25_000_000_000 and speed_bits("100M") == 100_000_000 and speed_bits(None) is None


def test_disks_by_storage_architecture(plan):
    hybrid = scan_of(plan)
    kinds = [(d["function"], d["type"], d["drive"][:4]) for d in hybrid["disks"]]
    assert ("boot", "SSD", "sda") in kinds
    assert [k for k in kinds if k[0] == "cache"] == [("cache", "SSD", "nvme")] * 2
    assert [k for k in kinds if k[0] == "data"] == [("data", "HDD", "sdb"), ("data", "HDD", "sdc"),
                                                     ("data", "HDD", "sdd"), ("data", "HDD", "sde")]
    assert hybrid["is_all_flash"] is False
    plan.cluster.storage_arch = "全闪-不分层"
    flash = scan_of(plan)
    assert flash["is_all_flash"] is True
    assert {(d["function"], d["type"]) for d in flash["disks"]} == {("boot", "SSD"), ("data", "SSD")}


def test_uuids_and_serials_are_unique_and_stable(plan):
    hosts = build_hosts(plan)
    scans = [h.scan() for h in hosts.values()]
    assert len({s["host_uuid"] for s in scans}) == 3
    serials = [d["serial"] for s in scans for d in s["disks"]]
    assert len(set(serials)) == len(serials)
    again = [h.scan() for h in build_hosts(build_demo_plan()).values()]
    assert [s["host_uuid"] for s in again] == [s["host_uuid"] for s in scans]
    assert [s["ifaces"] for s in again] == [s["ifaces"] for s in scans]


def test_overrides(plan):
    scan = scan_of(plan, overrides={"127.10.20.11": {"missing_nics": ["ens257"], "down_nics": ["ens224"],
                                                      "version": "6.1.0P2"}})
    names = [i["name"] for i in scan["ifaces"]]
    assert "ens257" not in names
    down = next(i for i in scan["ifaces"] if i["name"] == "ens224")
    assert down["up"] and not down["running"] and not down["physical_link_up"] and down["speed"] is None
    assert down["ipv6"] is None
    assert (scan["version"], scan["patch_version"]) == ("6.1.0", "P2")
    with pytest.raises(ValueError, match="127.1.1.1"):
        build_hosts(plan, {"127.1.1.1": {}})


def test_world_status_and_addresses_before_deployment(plan):
    world = World(plan, clock=Clock(0))
    try:
        assert world.status()["deployed"] is False and world.status()["hosts"] == 3
        assert world.machine("127.10.20.11", 80).kind == "host"
        assert world.machine("127.10.20.10", 443) is None and world.machine("127.10.20.2", 22) is None
        assert world.ssh_ips()[:4] == ["127.10.20.11", "127.10.20.12", "127.10.20.13", "127.10.20.2"]
        assert len(world.ssh_ips()) == 4 + 9  # plus the test IP range .231-.239
        assert world.check_login("127.10.20.11", "smartx", "P@ssw0rd!123")
        assert not world.check_login("127.10.20.11", "nobody", "P@ssw0rd!123")
        assert world.users("127.10.20.11") == ["root", "smartx"]
        assert world.files("127.10.20.2")["/etc/resolv.conf"].startswith("#")
        assert world.cluster_info() is None
    finally:
        world.close()


def test_manual_clock_scales_real_durations():
    clock = ManualClock(speed=0.5, start=100.0)
    assert not clock.reached(100.0, 10)
    clock.advance_real(10)
    assert clock.now() == 105.0 and clock.reached(100.0, 10) and clock.progress(100.0, 20) == 0.5
    instant = Clock(0)
    assert instant.reached(instant.now(), 1e9) and instant.wall(1200) == 0
    with pytest.raises(ValueError):
        Clock(-1)
