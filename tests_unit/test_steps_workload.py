"""Step logic of suites 09-11 (voyager.steps.workload / workload_config / reliability /
cleanup): the VM plan from the plan's cells, ping parsing, the config, and the whole
workload driven against a simulator whose CloudTower is installed and cluster connected."""
from __future__ import annotations

import json

import pytest
from sim_workload_support import connected

from voyager.plan.demo import build_demo_plan
from voyager.plan.model import IpRange
from voyager.redact import REDACTOR
from voyager.sim import Simulator
from voyager.sim.ssh import workload as sim_workload
from voyager.sim.backend.faults import Faults
from voyager.state import open_state
from voyager.steps import cleanup, perf, reliability, workload, workload_config


# -- the plan -------------------------------------------------------------------------------
def test_test_vms_from_the_plan():
    plan = build_demo_plan()
    specs = workload.plan_test_vms(plan)
    vlans = plan.networks.business.vlans
    assert [s.name for s in specs] == ["voyager-test-01", "voyager-test-02", "voyager-test-03", "voyager-test-04"]
    assert [s.ip for s in specs] == ["127.10.20.231", "127.10.20.232", "127.10.20.233", "127.10.20.234"]
    assert {s.vlan.name for s in specs} == {v.name for v in vlans}  # every business VLAN has one
    first = [s for s in specs if s.vlan.name == vlans[0].name]
    assert len(first) == 2 and first[0].host.mgmt_ip != first[1].host.mgmt_ip
    assert specs[2].netmask == "255.255.255.0" and specs[2].gateway == vlans[1].gateway
    assert "集群管理信息!E18:E19" in specs[0].cells and "虚拟网络!D8/H8/I8" in specs[0].cells


@pytest.mark.parametrize("change, words", [
    (lambda p: setattr(p, "test_ip_range", None), "集群管理信息!E18:E19"),
    (lambda p: setattr(p, "test_ip_range", IpRange("127.10.20.231", "127.10.20.233")), "只有 3 个地址"),
    (lambda p: setattr(p, "hosts", p.hosts[:1]), "至少两台主机"),
    (lambda p: setattr(p.networks.business.vlans[1], "gateway", None), "虚拟网络!H9/I9"),
])
def test_plan_problems_name_the_cells(change, words):
    plan = build_demo_plan()
    change(plan)
    with pytest.raises(workload.WorkloadPlanError, match=words):
        workload.plan_test_vms(plan)


PING_LOSS = """PING 10.0.0.5 (10.0.0.5) 56(84) bytes of data.
64 bytes from 10.0.0.5: icmp_seq=1 ttl=64 time=0.311 ms
64 bytes from 10.0.0.5: icmp_seq=2 ttl=64 time=0.287 ms
64 bytes from 10.0.0.5: icmp_seq=6 ttl=64 time=0.402 ms
64 bytes from 10.0.0.5: icmp_seq=7 ttl=64 time=0.299 ms

--- 10.0.0.5 ping statistics ---
8 packets transmitted, 4 received, 50% packet loss, time 1412ms
rtt min/avg/max/mdev = 0.287/0.324/0.402/0.045 ms
"""


def test_parse_ping_loss_rtt_and_longest_gap():
    result = workload.parse_ping(PING_LOSS, 0.2)
    assert (result.transmitted, result.received, result.loss_percent) == (8, 4, 50.0)
    assert (result.rtt_min, result.rtt_avg, result.rtt_max) == (0.287, 0.324, 0.402)
    assert result.longest_gap_packets == 3  # seq 3, 4, 5 unanswered
    assert result.longest_gap_seconds == pytest.approx(0.6)
    silent = workload.parse_ping("--- x ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss", 1)
    assert silent.loss_percent == 100 and silent.longest_gap_packets == 5 and silent.rtt_avg is None


# -- the config ----------------------------------------------------------------------------------
def test_config_errors_name_the_file(tmp_path):
    path = tmp_path / workload_config.CONFIG_NAME
    with pytest.raises(workload_config.WorkloadConfigError, match="没有找到"):
        workload_config.load_config(path)
    path.write_text(json.dumps({"guest": {"user": "u"}}), encoding="utf-8")
    with pytest.raises(workload_config.WorkloadConfigError, match="guest.password"):
        workload_config.load_config(path)
    path.write_text(json.dumps({"guest": {"user": "u", "password": "s3cret-guest"}, "ping": {"count": "x"}}),
                    encoding="utf-8")
    with pytest.raises(workload_config.WorkloadConfigError, match=str(path)):
        workload_config.load_config(path)
    assert REDACTOR.redact("s3cret-guest") != "s3cret-guest"  # registered as soon as read


def test_rehearsal_media_carry_the_account_as_a_digest(tmp_path):
    created = workload_config.ensure_rehearsal_workload(tmp_path)
    assert len(created) == 2 and workload_config.ensure_rehearsal_workload(tmp_path) == []
    cfg = workload_config.load_config(tmp_path / workload_config.CONFIG_NAME)
    from voyager.ovf import Ova
    from voyager.sim.backend.passwords import verify_password

    ova = Ova(workload_config.find_template(tmp_path).path)
    name, size = ova.disk_files()[0]
    with ova.open(name) as fh:
        account = sim_workload.guest_account_from_image(fh.read(4096))
    assert verify_password(cfg.guest_password.reveal(), account[cfg.guest_user])
    assert cfg.guest_password.reveal().encode() not in (tmp_path / created[1].name).read_bytes()
    parsed = ova.descriptor.parsed_ovf()
    assert (parsed["vcpu"], parsed["memory"], parsed["disks"][0]["size"]) == (2, 2 * 2 ** 30, 20 * 2 ** 30)


# -- against the simulator -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    plan = build_demo_plan()
    tmp = tmp_path_factory.mktemp("workload")
    with Simulator(plan, speed=0) as sim:
        clients = connected(sim, plan, tmp)
        workload_config.ensure_rehearsal_workload(tmp / "media")
        cfg = workload_config.load_config(tmp / "media" / workload_config.CONFIG_NAME)
        template = workload_config.find_template(tmp / "media").path
        state = open_state(tmp / "state", plan)
        specs = workload.plan_test_vms(plan)
        made = [workload.ensure_ready(clients.tower, clients.fisheye, clients.endpoints, clients.cluster_id, s,
                                      template, state) for s in specs]
        yield {"sim": sim, "plan": plan, "c": clients, "cfg": cfg, "template": template, "state": state,
               "specs": specs, "made": made}
        clients.close()


def _tasks(sim, key: str) -> int:
    return sum(1 for t in sim.world.tower.tasks if t["key"] == key)


def test_vms_imported_once_on_planned_hosts(world):
    c, specs, sim = world["c"], world["specs"], world["sim"]
    assert [m.how for m in world["made"]] == ["已从模板导入"] * 4
    imports = _tasks(sim, "IMPORT_VM")
    again = [workload.ensure_test_vm(c.tower, c.cluster_id, s, world["template"], world["state"]) for s in specs]
    assert {a.how for a in again} == {"已存在，未重复创建"}
    assert _tasks(sim, "IMPORT_VM") == imports  # a rerun imports nothing
    hosts = workload.tower_hosts(c.tower, c.cluster_id)
    for spec in specs:
        vm = workload.tower_vm(c.tower, c.cluster_id, spec)
        assert vm["status"] == "RUNNING"
        assert workload.host_by_node_ip(hosts, vm["node_ip"])["management_ip"] == spec.host.mgmt_ip
        recorded = world["state"].get(workload.STATE, spec.name)
        assert recorded["id"] == vm["id"] and recorded["ip"] == spec.ip
        assert workload.nic_ip(c.fisheye.vm(vm["local_id"])) == spec.ip


def _booted_long_ago(sim, *local_ids: str) -> None:
    """The VMs have been up for an hour (so that a test may raise the simulator's speed)."""
    with sim.world.lock:
        for local_id in local_ids:
            sim.world.vms.start_now(local_id, sim.world.clock.now() - 3600)


def test_a_nic_job_in_flight_is_followed_not_sent_again(world):
    """Killed while the test VM's NIC job ran (recorded before the wait): the rerun follows that
    job instead of sending the address a second time."""
    import dataclasses

    from voyager import waiters
    from voyager.steps import jobs

    c, specs, state, sim = world["c"], world["specs"], world["state"], world["sim"]
    spec = specs[3]
    moved = dataclasses.replace(spec, ip="127.10.20.240")
    local_id = workload.tower_vm(c.tower, c.cluster_id, spec)["local_id"]
    clock = sim.world.clock
    speed = clock.speed

    def updates() -> int:
        return sum(1 for j in sim.world.jobs.jobs.values() if j["description"] == "VM_UPDATE"
                   and spec.name in str(j.get("resources")))

    _booted_long_ago(sim, local_id)
    clock.speed = 0.05  # the NIC job lasts about a second
    waiters.configure(time_scale=0.05)
    try:
        before = updates()
        with pytest.raises(Exception):  # the killed run: the job started and recorded, then the wait broke off
            jobs.run_job(c.fisheye, state, workload.nic_job_key(moved), lambda: c.fisheye.put(
                f"/api/v2/vms/{local_id}", json={"nics": [{**c.fisheye.vm(local_id)["nics"][0], "ip_address": moved.ip,
                                                         "subnet_mask": moved.netmask, "gateway": moved.gateway}]}
            )["job_id"], timeout=0.01)
        assert state.get(jobs.SECTION, workload.nic_job_key(moved))  # recorded before the wait
        assert workload.nic_ip(c.fisheye.vm(local_id)) != moved.ip  # still running
        workload.ensure_address(c.fisheye, local_id, moved, state)
        assert updates() == before + 1  # followed, not sent again
        assert not state.get(jobs.SECTION, workload.nic_job_key(moved))
    finally:
        clock.speed = speed
        waiters.configure(time_scale=None)
        workload.ensure_address(c.fisheye, local_id, spec, state)  # back to the planned address
    assert workload.nic_ip(c.fisheye.vm(local_id)) == spec.ip


def test_guest_login_and_ping_on_the_vlan(world):
    c, specs, cfg = world["c"], world["specs"], world["cfg"]
    a = workload.guest_login(c.ssh, specs[0], cfg)
    assert a.run("hostname").stdout.strip() == specs[0].name
    same = workload.ping(a, specs[1].ip, count=5, interval=0.2)
    assert same.loss_percent == 0 and same.rtt_avg > 0
    other = workload.ping(a, specs[2].ip, count=5, interval=0.2)  # another VLAN: no router simulated
    assert other.loss_percent == 100


def test_fio_in_the_guest_and_a_slow_host(world):
    c, specs, cfg, sim = world["c"], world["specs"], world["cfg"], world["sim"]
    job = perf.FioJob()
    b = workload.guest_login(c.ssh, specs[1], cfg)
    normal = perf.parse_fio_json(b.run(job.command(), timeout=600).stdout)
    sim.world.faults = Faults(f"slow-storage:{specs[1].host.mgmt_ip}:1")
    slow = perf.parse_fio_json(b.run(job.command(), timeout=600).stdout)
    again = perf.parse_fio_json(b.run(job.command(), timeout=600).stdout)
    sim.world.faults = Faults("")
    limits = perf.thresholds()
    for name in perf.PROFILE_NAMES:
        assert all(v.ok for v in perf.check(normal[name], limits[name])), name
        assert not all(v.ok for v in perf.check(slow[name], limits[name])), name
        assert slow[name].iops < normal[name].iops and slow[name].p99_ms > normal[name].p99_ms
        assert again[name] == normal[name]  # the fault hit once; figures are deterministic


def _fio_sessions(sim) -> int:
    return len(sim.world.vms.fio_sessions)


def test_fio_runs_detached_recorded_and_read_once(world):
    """fio runs in the background in the guest, recorded while it runs; the record goes once read."""
    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    client = workload.guest_login(c.ssh, specs[2], cfg)
    before = _fio_sessions(sim)
    run = perf.run_fio(client, perf.FioJob(), state, specs[2].name)
    assert run.how == f"已在 {specs[2].name} 中启动 fio" and _fio_sessions(sim) == before + 1
    assert set(perf.parse_fio_json(run.output)) == set(perf.PROFILE_NAMES)
    assert "fio" not in state.get(workload.STATE, specs[2].name)
    assert client.run("pgrep -x fio").exit_status == 1  # nothing left running


def _killed_run_started_fio(client, state, name: str, job: perf.FioJob) -> None:
    """What an interrupted run left behind: the record, and fio started in the guest."""
    state.merge(workload.STATE, name, {"fio": {"command": job.command(), "started": "2026-01-01T00:00:00+00:00"}})
    client.run(perf.background_command(job)).check("start fio")


def test_a_recorded_fio_that_finished_is_taken_not_run_again(world):
    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    client = workload.guest_login(c.ssh, specs[2], cfg)
    job = perf.FioJob()
    _killed_run_started_fio(client, state, specs[2].name, job)
    started = _fio_sessions(sim)
    run = perf.run_fio(client, job, state, specs[2].name)
    assert "沿用其结果" in run.how and _fio_sessions(sim) == started  # not run a second time
    assert run.output == sim.world.vms.fio_sessions[-1]["frozen"]
    assert "fio" not in state.get(workload.STATE, specs[2].name)


def test_a_recorded_fio_still_running_is_followed_and_never_two_at_once(world):
    """A rerun finds the interrupted run's fio still running: it waits for that one (no second
    fio); a fio the runner did not record (another command) is waited out before one is started."""
    from voyager import waiters

    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    client = workload.guest_login(c.ssh, specs[2], cfg)
    job = perf.FioJob(ramp_time=5, runtime=45)  # 4 × 50 real seconds
    clock = sim.world.clock
    speed = clock.speed
    _booted_long_ago(sim, workload.tower_vm(c.tower, c.cluster_id, specs[2])["local_id"])
    clock.speed = 0.005  # 1 s wall per run
    waiters.configure(time_scale=0.005)
    try:
        _killed_run_started_fio(client, state, specs[2].name, job)
        started = _fio_sessions(sim)
        assert client.run("pgrep -x fio").exit_status == 0 and perf.fio_output(client) == ""
        run = perf.run_fio(client, job, state, specs[2].name)
        assert run.how.startswith("继续跟踪上次运行") and _fio_sessions(sim) == started
        assert set(perf.parse_fio_json(run.output)) == set(perf.PROFILE_NAMES)

        other = perf.FioJob(ramp_time=5, runtime=20)
        client.run(perf.background_command(other)).check("start another fio")  # not recorded
        first = sim.world.vms.fio_sessions[-1]
        run = perf.run_fio(client, job, state, specs[2].name)
        mine = sim.world.vms.fio_sessions[-1]
        assert run.how == f"已在 {specs[2].name} 中启动 fio" and mine is not first
        assert mine["started"] >= first["started"] + clock.wall(4 * 25)  # started once the other had ended
    finally:
        clock.speed = speed
        waiters.configure(time_scale=None)


def test_a_recorded_fio_that_died_is_started_again(world):
    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    client = workload.guest_login(c.ssh, specs[2], cfg)
    job = perf.FioJob()
    state.merge(workload.STATE, specs[2].name, {"fio": {"command": job.command(), "started": "earlier"}})
    client.run(f"rm -f {perf.FIO_OUTPUT}").check("rm")  # no output, nothing running: it died
    before = _fio_sessions(sim)
    run = perf.run_fio(client, job, state, specs[2].name)
    assert run.how == f"已在 {specs[2].name} 中启动 fio" and _fio_sessions(sim) == before + 1


def test_a_second_background_ping_into_the_same_file_replaces_it(world):
    """A background program's output file is the user's: a second run writing it shows there."""
    c, specs, cfg = world["c"], world["specs"], world["cfg"]
    client = workload.guest_login(c.ssh, specs[0], cfg)
    for count in (3, 5):
        result = client.run(f"rm -f out.log; nohup ping -c {count} -i 0.2 {specs[1].ip} > out.log 2>&1 &")
        assert result.exit_status == 0 and result.stderr == ""
        assert f"{count} packets transmitted" in client.run("cat out.log").stdout
    assert client.run("pgrep -x ping").exit_status == 1 and client.run("pgrep -x sshd").exit_status == 1


def test_live_migration_under_ping(world):
    c, specs, cfg, state = world["c"], world["specs"], world["cfg"], world["state"]
    pinger = workload.guest_login(c.ssh, specs[0], cfg)
    outcome = reliability.migrate_while_pinging(c.tower, c.cluster_id, specs[1].name, pinger, specs[1].ip, state,
                                                interval=0.2, seconds=120, avoid=(specs[0].host.mgmt_ip,))
    assert outcome.from_host == specs[1].host.mgmt_ip
    assert outcome.now_host == outcome.to_host != outcome.from_host
    assert outcome.to_host != specs[0].host.mgmt_ip
    lost = int(sim_workload.MIGRATION_PAUSE / 0.2)
    assert (outcome.ping.transmitted, outcome.ping.received) == (600, 600 - lost)
    assert outcome.ping.longest_gap_seconds == pytest.approx(sim_workload.MIGRATION_PAUSE)
    assert not outcome.followed
    assert "migrate_task" not in state.get(workload.STATE, specs[1].name)  # the outcome is known: forgotten


def _migration_start(world):
    """What a migration begins with: the pinging VM's login, the VM to move, its host and the target."""
    c, specs, cfg = world["c"], world["specs"], world["cfg"]
    pinger = workload.guest_login(c.ssh, specs[0], cfg)
    vm = workload.tower_vm(c.tower, c.cluster_id, specs[1])
    source = vm["host"]["management_ip"]
    target = reliability.pick_target(workload.tower_hosts(c.tower, c.cluster_id), source, (specs[0].host.mgmt_ip,))
    return c, specs, world["state"], world["sim"], pinger, vm, source, target


def test_a_recorded_migration_is_followed_not_started_again(world):
    """A run killed while its migration was in flight left the task, the hosts and the ping's
    output file recorded: the rerun waits for that task and reads that ping, no second migration."""
    c, specs, state, sim, pinger, vm, source, target = _migration_start(world)
    # what the killed run did: the background ping, the migration, the record; then it died
    path = reliability.start_background_ping(pinger, specs[1].ip, interval=0.2, seconds=120)
    answer = c.tower.rest("migrate-vm", {"where": {"id": vm["id"]}, "data": {"host_id": target["id"]}})
    task_id = (answer[0] if isinstance(answer, list) else answer)["task_id"]
    state.merge(workload.STATE, specs[1].name, {"migrate_task": task_id, "migrate_from": source,
                                                "migrate_to": target["management_ip"], "ping_log": path})
    migrations = _tasks(sim, "MIGRATE_VM")
    outcome = reliability.migrate_while_pinging(c.tower, c.cluster_id, specs[1].name, pinger, specs[1].ip, state,
                                                interval=0.2, seconds=120, avoid=(specs[0].host.mgmt_ip,))
    assert _tasks(sim, "MIGRATE_VM") == migrations  # followed, not started again
    assert outcome.followed and outcome.task_id == task_id
    assert (outcome.from_host, outcome.to_host, outcome.now_host) == (source, target["management_ip"],
                                                                        target["management_ip"])
    assert outcome.ping.transmitted == 600 and outcome.ping.loss_percent < 5
    assert "migrate_task" not in state.get(workload.STATE, specs[1].name)


def test_a_recorded_migration_that_failed_or_is_gone_is_started_again(world):
    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    pinger = workload.guest_login(c.ssh, specs[0], cfg)
    state.merge(workload.STATE, specs[1].name, {"migrate_task": "c000000000000000000000gone", "migrate_from": "x",
                                                "migrate_to": "y", "ping_log": "elsewhere.log"})
    migrations = _tasks(sim, "MIGRATE_VM")
    outcome = reliability.migrate_while_pinging(c.tower, c.cluster_id, specs[1].name, pinger, specs[1].ip, state,
                                                interval=0.2, seconds=120, avoid=(specs[0].host.mgmt_ip,))
    assert _tasks(sim, "MIGRATE_VM") == migrations + 1 and not outcome.followed
    assert outcome.now_host == outcome.to_host != outcome.from_host


def test_a_migration_whose_answer_was_not_recorded_is_adopted(world):
    """Killed after /migrate-vm was sent but before its task id was stored: the hosts, the
    ping's file and the VM's earlier tasks were recorded first, and the rerun adopts the VM's
    new task instead of migrating again."""
    c, specs, state, sim, pinger, vm, source, target = _migration_start(world)
    path = reliability.start_background_ping(pinger, specs[1].ip, interval=0.2, seconds=120)
    known = [t["id"] for t in reliability.vm_tasks(c.tower, vm["id"])]
    state.merge(workload.STATE, specs[1].name, {"migrate_from": source, "migrate_to": target["management_ip"],
                                                "ping_log": path, "migrate_known_tasks": known})
    answer = c.tower.rest("migrate-vm", {"where": {"id": vm["id"]}, "data": {"host_id": target["id"]}})
    task_id = (answer[0] if isinstance(answer, list) else answer)["task_id"]  # ... and the run died here
    migrations = _tasks(sim, "MIGRATE_VM")
    outcome = reliability.migrate_while_pinging(c.tower, c.cluster_id, specs[1].name, pinger, specs[1].ip, state,
                                                interval=0.2, seconds=120, avoid=(specs[0].host.mgmt_ip,))
    assert _tasks(sim, "MIGRATE_VM") == migrations and outcome.followed and outcome.task_id == task_id
    assert outcome.now_host == target["management_ip"] != source
    assert not set(reliability.IN_FLIGHT) & set(state.get(workload.STATE, specs[1].name))


def test_a_migration_recorded_before_its_call_was_sent_is_started(world):
    c, specs, cfg, state, sim = world["c"], world["specs"], world["cfg"], world["state"], world["sim"]
    pinger = workload.guest_login(c.ssh, specs[0], cfg)
    vm = workload.tower_vm(c.tower, c.cluster_id, specs[1])
    known = [t["id"] for t in reliability.vm_tasks(c.tower, vm["id"])]
    state.merge(workload.STATE, specs[1].name, {"migrate_from": "x", "migrate_to": "y", "ping_log": "z",
                                                "migrate_known_tasks": known})  # killed before /migrate-vm
    migrations = _tasks(sim, "MIGRATE_VM")
    outcome = reliability.migrate_while_pinging(c.tower, c.cluster_id, specs[1].name, pinger, specs[1].ip, state,
                                                interval=0.2, seconds=120, avoid=(specs[0].host.mgmt_ip,))
    assert _tasks(sim, "MIGRATE_VM") == migrations + 1 and not outcome.followed
    assert outcome.now_host == outcome.to_host != outcome.from_host


class _ImportingTower:
    """A CloudTower whose VM ``name`` exists with its import still running (task t-1)."""

    def __init__(self, name: str):
        self.vm = {"id": "vm-1", "local_id": "local-1", "name": name, "host": {"management_ip": "127.10.20.11"}}
        self.polls = 0
        self.calls: list = []

    def rest(self, op, body):
        self.calls.append((op, body))
        if op == "get-vms":
            return [self.vm]
        if op == "get-tasks" and "resource_id" in body["where"]:
            return [{"id": "t-1", "status": "EXECUTING", "resource_id": "vm-1"}]
        if op == "get-tasks":
            self.polls += 1
            return [{"id": "t-1", "status": "SUCCESSED" if self.polls > 1 else "EXECUTING", "progress": 0.5}]
        raise AssertionError(f"unexpected call {op}")


def test_a_found_vm_whose_import_was_not_recorded_is_waited_for(tmp_path):
    """Killed after /import-vm answered but before the task was stored: the rerun finds the VM
    by name and waits for its unfinished task instead of taking a half-imported VM."""
    from voyager import waiters

    plan = build_demo_plan()
    spec = workload.plan_test_vms(plan)[0]
    tower = _ImportingTower(spec.name)
    state = open_state(tmp_path / "state", plan)
    waiters.configure(time_scale=0.001)
    try:
        made = workload.ensure_test_vm(tower, "cluster-1", spec, tmp_path / "unused.ova", state)
    finally:
        waiters.configure(time_scale=None)
    assert made.how == "已存在，未重复创建" and tower.polls == 2  # followed to SUCCESSED
    assert ("get-tasks", {"where": {"resource_id": "vm-1", "status_in": ["PENDING", "EXECUTING"]}}) in tower.calls
    assert not any(op in ("import-vm", "upload-elf-file") for op, _ in tower.calls)


class _DeletingTower:
    """A CloudTower listing test VM ``name`` while its deletion (task d-1) runs."""

    def __init__(self, name: str, mutation: str = "deleteVm"):
        self.vm = {"id": "vm-1", "name": name}
        self.mutation = mutation
        self.polls = 0
        self.calls: list = []

    def rest(self, op, body):
        self.calls.append(op)
        if op == "get-vms":
            return [self.vm] if self.polls < 2 else []
        if op == "get-tasks" and "resource_id" in body["where"]:
            return [{"id": "d-1", "status": "EXECUTING", "resource_mutation": self.mutation}]
        if op == "get-tasks":
            self.polls += 1
            return [{"id": "d-1", "status": "SUCCESSED" if self.polls > 1 else "EXECUTING"}]
        if op == "delete-vm":
            return [{"task_id": "d-2", "data": {"id": "vm-1"}}]
        raise AssertionError(f"unexpected call {op}")


@pytest.mark.parametrize("recorded, mutation", [("d-1", "other"), (None, "deleteVm")],
                         ids=["recorded", "answer-not-recorded"])
def test_a_deletion_in_flight_is_followed_not_sent_again(tmp_path, recorded, mutation):
    from voyager import waiters

    plan = build_demo_plan()
    state = open_state(tmp_path / "state", plan)
    if recorded:
        state.merge(workload.STATE, "voyager-test-01", {"delete_task": recorded})
    tower = _DeletingTower("voyager-test-01", mutation)
    waiters.configure(time_scale=0.001)
    try:
        assert cleanup.remove_test_vms(tower, "cluster-1", state, task_timeout=5) == ["voyager-test-01"]
    finally:
        waiters.configure(time_scale=None)
    assert "delete-vm" not in tower.calls and tower.polls == 2


def test_maintenance_round_trip(world):
    c, specs = world["c"], world["specs"]
    host_ip = specs[2].host.mgmt_ip
    notes = reliability.maintenance_round_trip(c.tower, c.cluster_id, host_ip)
    assert len(notes) == 3
    vm = workload.tower_vm(c.tower, c.cluster_id, specs[2])
    assert vm["host"]["management_ip"] != host_ip and vm["status"] == "RUNNING"
    assert reliability.host_healthy(c.tower, c.cluster_id)[0]


def test_cleanup_removes_only_the_test_vms_and_uploads(world):
    c, state, plan, sim = world["c"], world["state"], world["plan"], world["sim"]
    assert len(cleanup.recorded_uploads(state)) == 4
    removed = cleanup.remove_test_vms(c.tower, c.cluster_id, state)
    assert sorted(removed) == [s.name for s in world["specs"]]
    assert cleanup.remove_test_uploads(c.tower, state)
    assert sim.world.tower.workloads.uploads == [] and sim.status()["vms"] == 1
    assert cleanup.kept(c.tower, c.cluster_id, plan) == {
        "cloudtower_vm": True, "vlans": {v.name: True for v in plan.networks.business.vlans}}
    assert cleanup.remove_test_vms(c.tower, c.cluster_id, state) == []  # nothing left to do
    assert state.section(workload.STATE) == {}
