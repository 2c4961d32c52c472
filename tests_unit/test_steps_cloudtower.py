"""Steps 04-06 (voyager.steps.cloudtower_vm / cloudtower_setup / attach / tower_config) against the
simulator: the whole flow through the suite's own clients, a second pass that
changes nothing, a recorded pending VM job and a recorded pending connection
task followed (not a second VM or connection), a failed
VM job reported with its reason, a failed installation reported with the log's
tail and installed again on the rerun, graphs created only when missing, and
the plan-derived rules (alert threshold, rack heights)."""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import replace

import pytest

from voyager.clients import Endpoints, FisheyeClient, SSHClient, TowerClient
from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from voyager.sim.backend.faults import parse_faults
from voyager.sim.testing import SharedSim
from voyager.state import open_state
from voyager.steps import attach, cloudtower as ct, cloudtower_setup as tower_setup, cloudtower_vm as tower_vm
from voyager.steps import jobs, tower_config as tc
from voyager.steps.config import StepError
from voyager.steps.media import MediaFile

ISO_NAME = "cloudtower-v4.7.1.oe2003.x86_64.iso"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    plan = build_demo_plan()
    clock = ManualClock(speed=0)
    with Simulator(plan, clock=clock) as sim:
        yield SharedSim(sim, plan), clock, tmp_path_factory.mktemp("media")


class Ctx:
    """The configured cluster (03 done), the suite's clients and a fresh run state."""

    def __init__(self, shared, tmp_path):
        self.shared, self.clock, media_dir = shared
        self.sim, self.plan = self.shared.sim, self.shared.plan
        self.shared.restore("configured")
        self.sim.world.faults.rules = []
        self.endpoints = Endpoints.simulated(self.sim.endpoints, self.plan)
        self.fisheye = FisheyeClient(self.endpoints, self.plan.cluster.vip)
        self.fisheye.login(self.plan.cluster.admin_user, self.plan.cluster.admin_password)
        self.run_state = open_state(tmp_path / "state", self.plan)
        path = media_dir / ISO_NAME
        if not path.exists():
            path.write_bytes(hashlib.sha256(b"iso").digest() * (3 * 1024 * 1024 // 32))
        self.media = MediaFile(path, path.stat().st_size)
        self.known_hosts = tmp_path / "known_hosts"
        self._ssh = None

    def close(self):
        if self._ssh is not None:
            self._ssh.close()
        self.endpoints.close()

    def faults(self, spec: str):
        self.sim.world.faults.rules = parse_faults(spec)

    @property
    def ssh(self) -> SSHClient:
        if self._ssh is None:
            self._ssh = SSHClient(self.endpoints, self.plan.cloudtower.ip, ct.SSH_USER, ct.ROOT_PASSWORD,
                                  known_hosts=self.known_hosts)
        return self._ssh

    def tower(self, login: bool = True) -> TowerClient:
        client = TowerClient(self.endpoints, self.plan.cloudtower.ip)
        if login:
            client.login(ct.ROOT_USER, ct.ROOT_PASSWORD)
        return client

    # -- the steps, in the suites' order ---------------------------------------------------------------
    def vm(self):
        tower_vm.ensure_iso(self.fisheye, self.media, self.run_state)
        where = tower_vm.placement(self.fisheye, self.plan)
        return tower_vm.ensure_vm(self.fisheye, self.plan, self.run_state, where, tower_vm.iso_image(self.fisheye, self.media))

    def step04(self) -> list[str]:
        vm, how = self.vm()
        notes = [how]
        tower_vm.wait_guest_agent(self.fisheye, vm["uuid"], timeout=30)
        notes.append(tower_vm.ensure_vm_ip(self.fisheye, self.plan, vm["uuid"], self.run_state, timeout=30))
        notes.append(tower_setup.install(self.ssh, self.endpoints, self.plan, self.run_state, timeout=30))
        notes.append(tower_setup.wait_https(self.endpoints, self.plan, interval=0.1))
        anon = self.tower(login=False)
        notes.append(tower_setup.ensure_root_user(anon))
        notes.append(tower_setup.ensure_organization(anon, self.plan)[1])
        tower = self.tower(login=False)
        notes.append(tower_setup.login(tower, self.plan))
        notes.append(tower_setup.ensure_ntp(tower, self.plan))
        notes.append(tower_setup.ensure_dns(self.ssh, self.plan))
        return notes

    def step05(self) -> tuple[str, list[str]]:
        tower = self.tower()
        org = attach.find_organization(tower, self.plan)
        dc, how_dc = attach.ensure_datacenter(tower, self.plan, org["id"])
        cluster, how_cluster = attach.ensure_connected(tower, self.plan, dc["id"], self.run_state, timeout=30)
        attach.check_cluster(attach.connected_cluster(tower, cluster["id"], timeout=30), self.plan)
        for host in self.plan.hosts:
            attach.check_host_listed(cluster, host)
        return cluster["id"], [how_dc, how_cluster]

    def step06(self, cluster_id: str) -> list[str]:
        tower = self.tower()
        notes = [tc.ensure_storage_policy(tower, cluster_id),
                 tc.ensure_storage_alert(tower, cluster_id, len(self.plan.hosts))]
        notes += [tc.ensure_view(tower, cluster_id, name) for name in tc.VIEWS]
        notes.append(tc.ensure_racks(tower, cluster_id, self.plan))
        notes += [tc.ensure_host_position(tower, cluster_id, self.plan, h) for h in self.plan.hosts]
        return notes


@pytest.fixture
def ctx(shared, tmp_path):
    c = Ctx(shared, tmp_path)
    yield c
    c.close()


@contextmanager
def time_running(clock: ManualClock, step: float = 200.0):
    """Simulated time passing in the background (speed 1, ``step`` s every 20 ms)."""
    stop = threading.Event()

    def run():
        while not stop.wait(0.02):
            clock.advance(step)

    clock.speed = 1.0
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
        clock.advance(100_000)
        clock.speed = 0


def test_steps_04_to_06_then_a_second_pass_changes_nothing(ctx):
    first = ctx.step04()
    assert first[0] == "已创建 CloudTower 虚拟机 cloudtower"
    cluster_id, how = ctx.step05()
    assert how == ["已创建数据中心 DEMO-DC", f"已在 CloudTower 中关联集群 {ctx.plan.cluster.vip}"]
    ctx.step06(cluster_id)
    status = ctx.sim.status()
    assert (status["images"], status["vms"], status["datacenters"], status["connected_clusters"]) == (1, 1, 1, 1)
    assert (status["views"], status["graphs"], status["racks"], status["bricks"]) == (3, 15, 1, 3)
    assert ctx.run_state.get("cloudtower", "vm_create_job") is None  # followed to done, then forgotten

    again = ctx.step04()
    assert again[0] == "CloudTower 虚拟机 cloudtower 已存在"
    assert again[1].startswith("CloudTower 虚拟机网卡已是") and again[2].startswith("CloudTower 已安装")
    assert again[4] == "CloudTower 管理员 root 已存在" and again[5] == "CloudTower 组织 演示客户 已存在"
    assert again[7].startswith("CloudTower NTP 已是") and again[8].startswith("/etc/resolv.conf 已是")
    assert ctx.step05()[1] == ["数据中心 DEMO-DC 已存在", "CloudTower 已关联集群 DEMO-SMTX-Cls01（127.10.20.10）"]
    notes = ctx.step06(cluster_id)
    assert notes[0].startswith("默认存储策略已是") and notes[1].startswith("集群存储使用率告警已是")
    assert ctx.sim.status() == status
    assert ctx.run_state.get("cloudtower", "installer_runs") == 1


def test_a_recorded_pending_vm_job_is_followed_not_created_again(ctx):
    tower_vm.ensure_iso(ctx.fisheye, ctx.media, ctx.run_state)
    where = tower_vm.placement(ctx.fisheye, ctx.plan)
    image = tower_vm.iso_image(ctx.fisheye, ctx.media)
    ctx.clock.speed = 1.0  # time stands still: the job stays pending
    job_id = ctx.fisheye.post("/api/v2/vms", json=tower_vm.vm_body(ctx.plan, where, image["path"]))["job_id"]
    ctx.run_state.set("cloudtower", "vm_create_job", job_id)  # an earlier run, interrupted while waiting
    assert ctx.fisheye.job(job_id)["state"] == "pending" and not tower_vm.vms_named(ctx.fisheye, "cloudtower")
    with time_running(ctx.clock, step=0.5):  # the job needs 14 s of simulated time: about 0.5 s here
        vm, how = tower_vm.ensure_vm(ctx.fisheye, ctx.plan, ctx.run_state, where, image)
    assert how.startswith("跟踪上次记录的创建作业")
    assert len(tower_vm.vms_named(ctx.fisheye, "cloudtower")) == 1 and ctx.sim.status()["vms"] == 1
    assert ctx.run_state.get("cloudtower", "vm_uuid") == vm["uuid"]


def test_a_failed_vm_job_names_its_reason_and_the_rerun_creates_one_vm(ctx, monkeypatch):
    ctx.faults("fail-job:VM_CREATE:1")
    polls, read = [], ctx.fisheye.job
    monkeypatch.setattr(ctx.fisheye, "job", lambda job_id: polls.append(
        jobs.recorded_id(ctx.run_state, tower_vm.VM_CREATE_JOB, section="cloudtower")) or read(job_id))
    with pytest.raises(StepError) as err:
        ctx.vm()
    assert "VM_CREATE" in str(err.value) and "(simulated: fail-job fault)" in str(err.value)
    assert polls and all(polls)  # recorded before waiting: every poll of the job saw the record
    assert ctx.run_state.get("cloudtower", "vm_create_job") is None  # the job ended: forgotten
    vm, how = ctx.vm()
    assert how == "已创建 CloudTower 虚拟机 cloudtower"
    assert ctx.sim.status()["vms"] == 1


def test_a_recorded_pending_connect_task_is_followed_not_connected_again(ctx):
    ctx.step04()
    tower = ctx.tower()
    org = attach.find_organization(tower, ctx.plan)
    dc, _ = attach.ensure_datacenter(tower, ctx.plan, org["id"])
    ctx.clock.speed = 1.0  # time stands still: the connection's task stays in flight
    ctx.clock.advance(100_000)  # (what step 04 started at speed 0 has finished at this speed too)
    body = {"datacenter_id": dc["id"], "password": ctx.plan.cluster.admin_password.reveal(),
            "username": ctx.plan.cluster.admin_user, "ip": ctx.plan.cluster.vip}
    item = attach.first_item(tower.rest("connect-cluster", body))
    # an earlier run, interrupted while waiting (the record as steps.jobs writes it)
    ctx.run_state.set("cloudtower", "cluster_id", item["data"]["id"])
    ctx.run_state.set("cloudtower", attach.CONNECT_TASK, {"task_id": item["task_id"]})
    assert jobs.current_tower_task(tower, item["task_id"])["status"] in jobs.TASK_RUNNING
    with time_running(ctx.clock, step=0.5):
        cluster, how = attach.ensure_connected(tower, ctx.plan, dc["id"], ctx.run_state, timeout=60)
    assert cluster["id"] == item["data"]["id"] and cluster["connect_state"] == "CONNECTED"
    assert jobs.current_tower_task(tower, item["task_id"])["status"] == "SUCCESSED"
    assert ctx.sim.status()["connected_clusters"] == 1
    assert ctx.run_state.get("cloudtower", attach.CONNECT_TASK) is None


def test_a_failed_installation_shows_the_log_tail_and_the_rerun_installs(ctx):
    vm, _ = ctx.vm()
    tower_vm.wait_guest_agent(ctx.fisheye, vm["uuid"], timeout=30)
    tower_vm.ensure_vm_ip(ctx.fisheye, ctx.plan, vm["uuid"], ctx.run_state, timeout=30)
    ctx.faults("fail-job:CLOUDTOWER_INSTALL:1")
    with pytest.raises(StepError) as err:
        tower_setup.install(ctx.ssh, ctx.endpoints, ctx.plan, ctx.run_state, timeout=30)
    text = str(err.value)
    assert "Install Operation Center Failed" in text and "nohup.out 最后 20 行" in text
    assert "timed out waiting for pods" in text
    assert not ctx.endpoints.tcp_open(ctx.plan.cloudtower.ip, 443)
    how = tower_setup.install(ctx.ssh, ctx.endpoints, ctx.plan, ctx.run_state, timeout=30)
    assert "（第 2 次）" in how and tower_setup.SUCCESS_MARKER in how
    assert ctx.run_state.get("cloudtower", "installer_runs") == 2
    assert tower_setup.wait_https(ctx.endpoints, ctx.plan, interval=0.1)


def test_a_view_gets_only_its_missing_graphs(ctx):
    ctx.step04()
    cluster_id, _ = ctx.step05()
    tower = ctx.tower()
    view = tower.rest("create-view", [{"time_unit": "HOUR", "time_span": 2, "cluster_id": cluster_id,
                                       "name": "Cluster"}])[0]["data"]
    title, metric = tc.VIEWS["Cluster"][0]
    kept = tower.rest("create-graph", [tc.graph_body("Cluster", title, metric, cluster_id, view["id"], [])])[0]
    how = tc.ensure_view(tower, cluster_id, "Cluster")
    assert how == "监控视图 Cluster 已存在，图表 3 个（新建 2 个）"
    graphs = tower.rest("get-graphs", {"where": {"view": {"id": view["id"]}}})
    assert sorted(g["metric_name"] for g in graphs) == sorted(m for _, m in tc.VIEWS["Cluster"])
    assert kept["data"]["id"] in {g["id"] for g in graphs}


@pytest.mark.parametrize("hosts, notice", [(3, 61), (4, 70), (5, 75), (8, 82), (16, 88)])
def test_storage_alert_notice_threshold(hosts, notice):
    assert tc.notice_threshold(hosts) == notice


def test_rack_plan_rules():
    plan = build_demo_plan()
    racks = tc.planned_racks(plan)
    assert list(racks) == ["A01"] and [h.unit for h in racks["A01"]] == [1, 3, 5]
    assert tc.brick_heights(racks["A01"]) == {"demo-node-01": 2, "demo-node-02": 2, "demo-node-03": 2}
    close = [replace(h, unit=u) for h, u in zip(plan.hosts, (1, 2, 5))]
    assert tc.brick_heights(close) == {"demo-node-01": 1, "demo-node-02": 2, "demo-node-03": 2}
    assert tc.rack_height(close) == tc.RACK_HEIGHT
    no_rack = replace(plan, hosts=[replace(h, rack=None) for h in plan.hosts])
    assert tc.planned_racks(no_rack) == {}
    no_unit = replace(plan, hosts=[replace(plan.hosts[0], unit=None)] + plan.hosts[1:])
    with pytest.raises(StepError, match="主机规划!Q3"):
        tc.planned_racks(no_unit)


@pytest.mark.parametrize("tail, state", [
    (None, "none"), ("", "none"), ("level=info msg=\"[3/14] install k3s ...\"\n", "running"),
    (f"...\n{tower_setup.SUCCESS_MARKER}\n", "ok"), ("...\nInstall Operation Center Failed\n", "failed"),
])
def test_installer_state_from_the_log(tail, state):
    assert tower_setup.installer_state(tail) == state


def test_nameservers_are_read_from_resolv_conf():
    assert tower_setup.nameservers("search demo.local\nnameserver 1.1.1.1\n# nameserver 9.9.9.9\nnameserver 8.8.8.8\n") == [
        "1.1.1.1", "8.8.8.8"]


def test_dns_rewritten_when_changed_behind_its_back_other_lines_kept(ctx):
    ctx.step04()
    ctx.ssh.sudo("tee /etc/resolv.conf", stdin="search demo.local\nnameserver 9.9.9.9\n").check("reset")
    how = tower_setup.ensure_dns(ctx.ssh, ctx.plan)
    assert how == f"已写入 /etc/resolv.conf：{ctx.plan.dns}"
    text = tower_setup.read_resolv_conf(ctx.ssh)
    assert tower_setup.nameservers(text) == ctx.plan.dns and "search demo.local" in text
