"""The simulated guests of the test VMs (voyager.sim.ssh.workload): fio figures derived
from the hardware (deterministic), ping on one VLAN only, the migration pause."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sim_support import http, plan, shared, sim  # noqa: F401 (fixtures)

from voyager.plan.demo import build_demo_plan
from voyager.sim.ssh import workload
from voyager.sim.backend.hosts import build_hosts
from voyager.sim.backend.passwords import hash_password
from voyager.steps import perf


def _vm(sim, name: str, host_ip: str, vlan_uuid: str, ip: str):
    world = sim.world
    host = world.hosts[host_ip]
    body = {"vm_name": name, "vcpu": 2, "memory": 2 * 2 ** 30, "nics": [{"vlan_uuid": vlan_uuid}],
            "disks": [{"type": "disk", "size_in_byte": 20 * 2 ** 30}], "status": "stopped",
            "node_ip": host.storage_ip}
    with world.lock:
        vm = world.vms.add_imported(body, {"voyager": hash_password("pw-123456")}, world.clock.now())
        world.vms.start_now(vm["uuid"], world.clock.now())
        vm["nics"][0].update(ip_address=ip, subnet_mask="255.255.255.0")
    return vm


def _vlans(sim) -> list[str]:
    return [v["uuid"] for v in sim.world.network.vlans.values() if v["type"] == 3 and v["name"] != "default"]


def _figures(sim, vm, profile: perf.Profile, slow: bool = False) -> tuple[float, float]:
    return workload.job_figures(sim.world, vm, profile.rw, workload._bytes(profile.bs), profile.iodepth,
                                profile.numjobs, slow)


def test_fio_figures_follow_the_host_and_its_load(http, sim):  # noqa: F811
    hosts = list(sim.world.hosts)
    vlan = _vlans(sim)[0]
    alone = _vm(sim, "alone", hosts[0], vlan, "127.10.20.231")
    shared_a = _vm(sim, "shared-a", hosts[1], vlan, "127.10.20.232")
    _vm(sim, "shared-b", hosts[1], vlan, "127.10.20.233")
    for profile in perf.PROFILES:
        solo_iops, solo_lat = _figures(sim, alone, profile)
        pair_iops, pair_lat = _figures(sim, shared_a, profile)
        slow_iops, slow_lat = _figures(sim, alone, profile, slow=True)
        assert pair_iops == pytest.approx(solo_iops / 2), profile.name  # two VMs share the host's storage
        assert pair_lat > solo_lat
        assert slow_iops == pytest.approx(solo_iops / workload.SLOW_FACTOR)
        assert slow_lat > solo_lat
        assert _figures(sim, alone, profile) == (solo_iops, solo_lat)  # deterministic


def test_fio_json_is_fio_schema_and_parses(http, sim):  # noqa: F811
    vm = _vm(sim, "json", list(sim.world.hosts)[0], _vlans(sim)[0], "127.10.20.234")
    glob, jobs = workload.parse_fio_args(perf.FioJob().command().split()[1:])
    doc = workload.fio_document(sim.world, vm, glob, jobs, slow=False)
    assert doc["fio version"].startswith("fio-3")
    figures = perf.parse_fio_json(__import__("json").dumps(doc))
    for profile in perf.PROFILES:
        job = next(j for j in doc["jobs"] if j["jobname"] == profile.name)
        side = job[profile.direction]
        assert side["bw"] == side["io_kbytes"] // 60  # bandwidth is what was moved over the runtime
        assert figures[profile.name].iops == side["iops"]
        other = job["write" if profile.direction == "read" else "read"]
        assert other["iops"] == 0


def test_all_flash_beats_hybrid_per_disk_layout():
    hybrid, flash = build_demo_plan(), build_demo_plan()
    flash.cluster.storage_arch = "全闪-不分层"
    caps = []
    for plan_ in (hybrid, flash):
        host = next(iter(build_hosts(plan_).values()))
        caps.append(workload.host_capability(SimpleNamespace(plan=plan_), host))
    assert caps[1]["randread"] > caps[0]["randread"]
    assert caps[1]["randwrite"] > caps[0]["randwrite"]


def test_slow_storage_fault_is_a_known_kind():
    from voyager.sim.backend.faults import Faults

    faults = Faults("slow-storage:127.10.20.11:1")
    assert faults.take("slow-storage", "127.10.20.11") and not faults.take("slow-storage", "127.10.20.11")


def test_ping_answers_on_the_same_vlan_only(http, sim):  # noqa: F811
    hosts = list(sim.world.hosts)
    a_vlan, b_vlan = _vlans(sim)[:2]
    src = _vm(sim, "src", hosts[0], a_vlan, "127.10.20.235")
    _vm(sim, "same", hosts[1], a_vlan, "127.10.20.236")
    _vm(sim, "other", hosts[2], b_vlan, "127.10.20.237")
    now = sim.world.clock.now()
    lines, answered = workload.ping_lines(sim.world, "127.10.20.235", "127.10.20.236", 5, 0.2, now, False)
    rtts = [float(line.split("time=")[1].split()[0]) for line in lines]
    assert answered == 5
    assert all(workload.RTT_CROSS_HOST_MS <= r < workload.RTT_CROSS_HOST_MS + 0.02 for r in rtts)  # across hosts
    assert workload.ping_lines(sim.world, "127.10.20.235", "127.10.20.237", 5, 0.2, now, False)[1] == 0
    assert src["node_ip"] != sim.world.vms.vm_by_ip("127.10.20.236")["node_ip"]


def test_a_migration_pause_loses_the_packets_due_then(http, sim):  # noqa: F811
    hosts = list(sim.world.hosts)
    vlan = _vlans(sim)[0]
    _vm(sim, "pinger", hosts[0], vlan, "127.10.20.238")
    mover = _vm(sim, "mover", hosts[1], vlan, "127.10.20.239")
    now = sim.world.clock.now()
    mover["migrations"] = [{"created": now, "pause_at": 5.0, "pause": workload.MIGRATION_PAUSE}]
    lines, answered = workload.ping_lines(sim.world, "127.10.20.238", "127.10.20.239", 50, 0.2, now, True)
    seqs = [int(line.split("icmp_seq=")[1].split()[0]) for line in lines]
    lost = sorted(set(range(1, 51)) - set(seqs))
    assert lost == list(range(26, 36))  # packets due 5.0 s .. 6.8 s after the start
    assert answered == 40
    assert lines[0].startswith("[")  # -D timestamps
