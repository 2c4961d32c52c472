"""voyager.waiters: wait_for outcomes, adaptive interval, progress logging, typed helpers."""
import logging
from contextlib import contextmanager

import pytest

from voyager.clients import Endpoints, FisheyeClient, RetryPolicy
from voyager.clients.errors import ApiError, TransportError, UnreachableError
from voyager.clients.ssh import CommandResult
from voyager.plan.demo import build_demo_plan
from voyager.redact import REDACTOR
from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from voyager.sim.backend.deployer import FAIL_AT, STAGES
from voyager.sim.backend.jobs import DURATIONS as JOB_DURATIONS
from voyager.sim.testing import deployed
from voyager.sim.walkthrough import Walk
from voyager.pacing import SHARE
from voyager.progress import TransferProgress, format_duration, stage_text
from voyager.waiters import (
    MIN_SLEEP,
    Pacer,
    WaitFailed,
    WaitTimeout,
    configure,
    job_failure_reason,
    job_fraction,
    wait_cluster_connected,
    wait_deploy,
    wait_for,
    wait_installer_log,
    wait_job,
    wait_port,
    wait_tower_tasks,
    wait_vm_guest_agent,
)


class FakeTime:
    """A clock that only moves when the waiter sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def sequence(*states):
    it = iter(states)
    last = [None]

    def probe():
        try:
            last[0] = next(it)
        except StopIteration:
            pass
        if isinstance(last[0], BaseException):
            raise last[0]
        return last[0]

    return probe


def test_done_returns_the_final_state():
    t = FakeTime()
    state = wait_for("作业完成", sequence("pending", "processing", "done"), lambda s: s == "done", 60,
                     interval=1, max_interval=10, clock=t.clock, sleep=t.sleep)
    assert state == "done" and len(t.sleeps) == 2


def test_done_immediately_does_not_sleep():
    t = FakeTime()
    assert wait_for("x", lambda: 1, bool, 10, clock=t.clock, sleep=t.sleep) == 1
    assert t.sleeps == []


def test_interval_grows_toward_the_ceiling():
    """间隔随操作已进行的时间增长（share × 已用时间），从 interval 到 max_interval 为止；不会睡过截止时间。"""
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 100, interval=1, max_interval=8, share=1,
                 clock=t.clock, sleep=t.sleep)
    assert t.sleeps[:6] == [1, 1, 2, 4, 8, 8]
    assert max(t.sleeps) == 8
    assert sum(t.sleeps) == pytest.approx(100)  # never sleeps past the deadline


def test_failed_state_ends_early_and_names_it():
    t = FakeTime()
    with pytest.raises(WaitFailed) as exc:
        wait_for("创建虚拟交换机", sequence({"state": "pending"}, {"state": "failed", "code": "E42"}),
                 lambda s: s["state"] == "done", 600, failed=lambda s: s["state"] == "failed",
                 clock=t.clock, sleep=t.sleep)
    msg = str(exc.value)
    assert msg.startswith("创建虚拟交换机 失败") and "E42" in msg and "failed" in msg
    assert t.now < 1010


def test_failed_reason_string_is_used():
    with pytest.raises(WaitFailed, match="导出状态 EXPORT_FAILED"):
        wait_for("导出", lambda: "EXPORT_FAILED", lambda s: False, 5,
                 failed=lambda s: f"导出状态 {s}" if s == "EXPORT_FAILED" else None, sleep=lambda s: None)


def test_timeout_names_what_how_long_and_last_state():
    t = FakeTime()
    REDACTOR.add_secret("WaitSecret#9")
    with pytest.raises(WaitTimeout) as exc:
        wait_for("CloudTower 443 端口可连接", sequence("closed-1", "closed-2", {"last": "closed-3",
                                                                           "password": "WaitSecret#9"}),
                 lambda s: False, 90, interval=5, max_interval=30, clock=t.clock, sleep=t.sleep)
    msg = str(exc.value)
    assert msg.startswith("等待超时：CloudTower 443 端口可连接")
    assert "1 分 30 秒" in msg and "closed-3" in msg and "WaitSecret#9" not in msg
    assert exc.value.elapsed == pytest.approx(90) and exc.value.attempts >= 3


def test_transient_probe_errors_are_ridden_out_others_raise():
    t = FakeTime()
    probe = sequence(UnreachableError("无法连接"), TransportError("重置"), "up")
    assert wait_for("x", probe, lambda s: s == "up", 60, retry_on=TransportError,
                    clock=t.clock, sleep=t.sleep) == "up"
    with pytest.raises(ValueError):
        wait_for("x", sequence(ValueError("bug")), bool, 60, retry_on=TransportError, clock=t.clock, sleep=t.sleep)
    with pytest.raises(WaitTimeout) as exc:
        wait_for("x", sequence(UnreachableError("无法连接 127.10.20.2")), bool, 10,
                 retry_on=lambda e: isinstance(e, TransportError), clock=t.clock, sleep=t.sleep)
    assert "查询失败" in str(exc.value) and "无法连接 127.10.20.2" in str(exc.value)


def test_progress_is_logged_at_a_steady_cadence(caplog):
    t = FakeTime()
    states = iter(range(1, 1000))
    with caplog.at_level(logging.INFO, logger="voyager.wait"):
        wait_for("部署", lambda: next(states), lambda s: s >= 60, 1000, interval=1, max_interval=1,
                 progress=lambda s: stage_text(s, 60, "stage"), report_every=10, clock=t.clock, sleep=t.sleep)
    lines = [r.getMessage() for r in caplog.records]
    progress = [line for line in lines if line.startswith("等待中：部署")]
    assert lines[0].startswith("开始等待：部署") and lines[-1].startswith("完成：部署")
    assert 5 <= len(progress) <= 7  # 59 s of polling, reported every 10 s
    assert "阶段 1/60（1%） stage" in progress[0] and "（已等待" in progress[1]


def test_transfer_progress_reports_percent_rate_and_eta(caplog):
    t = FakeTime()
    mib = 1024 * 1024
    with caplog.at_level(logging.INFO, logger="voyager.wait"):
        p = TransferProgress("上传 cloudtower.iso", 100 * mib, report_every=5, clock=t.clock)
        for _ in range(10):
            t.now += 1
            p.advance(5 * mib)
        p.finish()
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 3  # at 1 s, at 6 s, and the final line
    assert msgs[1] == "上传 cloudtower.iso：30%（30.0/100.0 MiB），5.0 MiB/s，预计剩余 14 秒"
    assert "完成 100.0 MiB" in msgs[-1]


def test_small_formatters():
    assert stage_text(3, 7, "x") == "阶段 3/7（42%） x"
    assert stage_text(None, None) == "阶段 None/None"
    assert format_duration(5) == "5 秒" and format_duration(3725) == "1 小时 2 分"


# -- typed helpers with fake clients ------------------------------------------------------------
class FakeFisheye:
    def __init__(self, jobs=(), statuses=(), verify=None, vms=()):
        self.jobs, self.statuses, self.vms = list(jobs), list(statuses), list(vms)
        self.verify = verify
        self.calls = []

    def job(self, job_id):
        return self.jobs.pop(0) if len(self.jobs) > 1 else self.jobs[0]

    def vm(self, uuid):
        return self.vms.pop(0) if len(self.vms) > 1 else self.vms[0]

    def deployment(self, method, path, **kw):
        self.calls.append(path)
        if path.endswith("deploy_status"):
            item = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            if isinstance(item, Exception):
                raise item
            return item
        return self.verify


FAST = dict(interval=0, sleep=lambda s: None)


def test_wait_job_done_and_failed():
    fe = FakeFisheye(jobs=[{"state": "pending"}, {"state": "processing"},
                           {"state": "done", "resources": {"u": {"type": "NETWORK_VDS"}}}])
    assert wait_job(fe, "j1", **FAST)["resources"]["u"]["type"] == "NETWORK_VDS"
    fe = FakeFisheye(jobs=[{"state": "failed", "description": "NETWORK_CREATE_VDS", "error": "nic busy"}])
    with pytest.raises(WaitFailed, match="NETWORK_CREATE_VDS"):
        wait_job(fe, "j2", **FAST)


def test_wait_deploy_reads_verify_after_running_ends():
    running = {"state": "running", "current_stage": 2, "total_stages": 5, "stage_info": "config"}
    fe = FakeFisheye(statuses=[running, UnreachableError("网络重启"), running,
                               ApiError("DEPLOY_FINISHED", "not running", status=400)],
                     verify={"is_deployed": True, "platform": "kvm"})
    assert wait_deploy(fe, "127.10.20.11", **FAST) == {"is_deployed": True, "platform": "kvm"}
    assert fe.calls[-1] == "/api/v2/deployment/deploy_verify"
    fe = FakeFisheye(statuses=[{"state": "failed"}], verify={"is_deployed": False})
    with pytest.raises(WaitFailed, match="is_deployed=false"):
        wait_deploy(fe, "127.10.20.11", **FAST)


def test_wait_port():
    class E:
        answers = [False, False, True]

        def tcp_open(self, ip, port):
            return self.answers.pop(0)

    assert wait_port(E(), "127.10.20.2", 443, **FAST) is True


class FakeTower:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def rest(self, op, body=None, **kw):
        self.calls.append((op, body))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_wait_tower_tasks():
    tower = FakeTower([[{"id": "t1", "status": "EXECUTING", "progress": 0.5}],
                       [{"id": "t1", "status": "SUCCESSED", "progress": 1}, {"id": "t2", "status": "PENDING"}],
                       [{"id": "t1", "status": "SUCCESSED"}, {"id": "t2", "status": "SUCCESSED"}]])
    assert len(wait_tower_tasks(tower, ["t1", "t2"], **FAST)) == 2
    assert tower.calls[0] == ("get-tasks", {"where": {"id_in": ["t1", "t2"]}})
    tower = FakeTower([[{"id": "t1", "status": "FAILED", "error_code": "E1", "error_message": "boom"}]])
    with pytest.raises(WaitFailed, match="任务 t1 失败 E1 boom"):
        wait_tower_tasks(tower, ["t1"], **FAST)
    assert wait_tower_tasks(FakeTower([]), [None]) == []


def test_wait_cluster_connected():
    tower = FakeTower([[{"id": "c", "connect_state": "INITIALIZING"}], [{"id": "c", "connect_state": "CONNECTED"}]])
    assert wait_cluster_connected(tower, "c", **FAST)["connect_state"] == "CONNECTED"
    with pytest.raises(WaitFailed, match="REMOVING"):
        wait_cluster_connected(FakeTower([[{"id": "c", "connect_state": "REMOVING"}]]), "c", **FAST)
    t = FakeTime()
    with pytest.raises(WaitTimeout, match="DISCONNECTED"):
        wait_cluster_connected(FakeTower([[{"id": "c", "connect_state": "DISCONNECTED"}]]), "c", timeout=30,
                               clock=t.clock, sleep=t.sleep)


def test_wait_vm_guest_agent():
    fe = FakeFisheye(vms=[{"status": "running", "guest_info": {}},
                          {"status": "running", "guest_info": {"ga_state": "Running", "os_version": "openEuler"}}])
    assert wait_vm_guest_agent(fe, "vm-1", **FAST)["guest_info"]["os_version"] == "openEuler"


def test_wait_installer_log():
    class FakeSSH:
        def __init__(self, outputs):
            self.outputs = outputs
            self.commands = []

        def run(self, cmd, **kw):
            self.commands.append(cmd)
            out = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
            return CommandResult(0 if out is not None else 1, out or "", "" if out is not None else "No such file")

    ssh = FakeSSH([None, "step 1\n", "step 1\nstep 2\nInstall Operation Center Successfully\n"])
    tail = wait_installer_log(ssh, "/home/cloudtower/nohup.out", "Install Operation Center Successfully", **FAST)
    assert tail.endswith("Successfully\n") and ssh.commands[0] == "tail -n 200 /home/cloudtower/nohup.out"
    ssh = FakeSSH(["x\nERROR: install failed\n"])
    with pytest.raises(WaitFailed, match="install failed"):
        wait_installer_log(ssh, "/tmp/log", "Successfully", failure_markers=["install failed"], **FAST)
    t = FakeTime()
    with pytest.raises(WaitTimeout) as exc:
        wait_installer_log(FakeSSH(["line a\nlast line b\n"]), "/tmp/log", "Done", timeout=60,
                           clock=t.clock, sleep=t.sleep)
    assert "last line b" in str(exc.value)


# -- transient is not final (issue 8) -----------------------------------------------------------
@pytest.fixture
def pacing():
    """Restores the process-wide time scale after a test that sets it."""
    yield configure
    configure(time_scale=None)


def server_error(path="/api/v2/deployment/host/deploy_status"):
    """A 5xx in the API's own error shape (the simulator's http-500 fault answers this way)."""
    return ApiError("REST_UNKNOWN_ERROR", "simulated internal error", None, "GET", path, 500)


def test_transient_errors_are_retried_within_the_timeout_and_counted():
    """5xx 应答、连接重置、读超时都只是临时错误：在超时之内继续查询；超时消息写明期间的临时错误次数。"""
    t = FakeTime()
    probe = sequence(server_error(), TransportError("连接被重置"), TransportError("读取超时"), {"state": "done"})
    assert wait_job(FakeFisheyeCalls(probe), "j1", clock=t.clock, sleep=t.sleep)["state"] == "done"
    assert len(t.sleeps) == 3
    t = FakeTime()
    with pytest.raises(WaitTimeout) as exc:
        wait_job(FakeFisheyeCalls(sequence({"state": "processing", "description": "VM_CREATE"}, server_error(),
                                           server_error(), {"state": "processing", "description": "VM_CREATE"})),
                 "j2", timeout=30, clock=t.clock, sleep=t.sleep)
    msg = str(exc.value)
    assert "期间 2 次临时错误" in msg and exc.value.transient_errors == 2
    assert "最后状态：VM_CREATE 状态 processing" in msg and "已等待 30 秒" in msg


def test_a_4xx_answer_is_not_transient_and_propagates():
    """4xx 等非临时错误不被吞掉，也不被当作等待失败。"""
    bad = ApiError("JOB_NOT_FOUND", "no such job", None, "GET", "/api/v2/jobs/x", 404)
    with pytest.raises(ApiError, match="JOB_NOT_FOUND"):
        wait_job(FakeFisheyeCalls(sequence(bad)), "x", **FAST)


class FakeFisheyeCalls:
    """fisheye whose job() and deployment() answers come from probes (sequence())."""

    def __init__(self, job=None, status=None, verify=None, clock=None, read_cost=0.0):
        self._job, self._status, self._verify = job, status, verify
        self.clock, self.read_cost = clock, read_cost
        self.paths = []

    def job(self, job_id):
        return self._job()

    def deployment(self, method, path, **kw):
        self.paths.append(path)
        if self.clock is not None:
            self.clock.now += self.read_cost  # every read takes time
        return (self._status if path.endswith("deploy_status") else self._verify)()


RUNNING = {"state": "running", "current_stage": 4, "total_stages": 9, "stage_info": "deploy_mongodb", "msg": None}
NOT_FOUND = ApiError("DEPLOY_TASK_NOT_FOUND", "no deploying task for this host", None, "GET", "/x", 200)


def test_wait_deploy_rides_out_5xx_and_resets_while_the_deployment_runs():
    """部署进行中 deploy_status 返回 5xx 或连接重置时继续跟踪，不判为部署结束（issue 8 第 5 条）。"""
    t = FakeTime()
    fe = FakeFisheyeCalls(status=sequence(RUNNING, server_error(), TransportError("reset"), server_error(), RUNNING,
                                          NOT_FOUND),
                          verify=sequence({"is_deployed": True, "platform": "kvm"}))
    assert wait_deploy(fe, "127.10.20.11", clock=t.clock, sleep=t.sleep) == {"is_deployed": True, "platform": "kvm"}
    assert fe.paths.count("/api/v2/deployment/deploy_verify") == 1  # read once, after the end


def test_wait_deploy_retries_a_5xx_of_deploy_verify():
    t = FakeTime()
    fe = FakeFisheyeCalls(status=sequence(NOT_FOUND),
                          verify=sequence(server_error("/api/v2/deployment/deploy_verify"), {"is_deployed": True}))
    assert wait_deploy(fe, "127.10.20.11", clock=t.clock, sleep=t.sleep)["is_deployed"] is True


def test_only_an_explicit_terminal_state_fails_a_wait():
    """只有接口明确给出的终止状态才判定失败：作业 failed；部署结束且 deploy_verify 为 false。"""
    t = FakeTime()
    with pytest.raises(WaitTimeout):  # 5xx for the whole timeout: a timeout, never "failed"
        wait_deploy(FakeFisheyeCalls(status=sequence(server_error())), "127.10.20.11", timeout=60,
                    clock=t.clock, sleep=t.sleep)
    with pytest.raises(WaitTimeout):
        wait_job(FakeFisheyeCalls(sequence(server_error("/api/v2/jobs/j"))), "j", timeout=60,
                 clock=t.clock, sleep=t.sleep)


# -- the job's own failure reason (issue 8 item 6) -------------------------------------------------
VDS_EVENT = {"event_name": "CREATE_VDS", "message": {"zh_CN": "创建虚拟分布式交换机 vDS-Production。\n",
                                                     "en_US": "Created virtual distributed switch vDS-Production.\n"}}


def test_reason_is_read_from_error_msg_not_from_the_event():
    """失败原因取自作业的 error_msg，而不是描述创建动作的 event 文本。"""
    job = {"state": "failed", "description": "NETWORK_CREATE_VDS", "error_code": "ENETWORK_OVS_TIMEOUT",
           "error_msg": "ovs-vsctl: timed out waiting for ovsdb-server", "event": VDS_EVENT, "task_list": []}
    with pytest.raises(WaitFailed) as exc:
        wait_job(FakeFisheye(jobs=[job]), "j1", **FAST)
    msg = str(exc.value)
    assert "任务 NETWORK_CREATE_VDS 失败（ENETWORK_OVS_TIMEOUT）：ovs-vsctl: timed out waiting for ovsdb-server" in msg
    assert "Created virtual" not in msg and "创建虚拟分布式交换机" not in msg


@pytest.mark.parametrize("job, expected", [
    ({"error": "nic busy"}, "任务 X 失败：nic busy"),
    ({"error": {"msg": "disk full", "detail": {}}}, "任务 X 失败：disk full"),
    ({"task_list": [{"name": "prepare", "state": "done"},
                    {"name": "create_bridge", "state": "failed", "error_code": "E_OVS", "msg": "bridge exists"}]},
     "任务 X 失败：子任务 create_bridge（E_OVS）：bridge exists"),
    ({"task_list": [{"name": "apply", "state": "failed", "subtasks": [
        {"name": "node-02", "state": "failed", "msg": "chronyd did not restart"}]}]},
     "任务 X 失败：子任务 apply；子任务 node-02：chronyd did not restart"),
    ({"error_code": "E1", "error_msg": "step failed: no route to host",
      "task_list": [{"name": "ping", "state": "failed", "error_code": "E1", "msg": "step failed: no route to host"}]},
     "任务 X 失败（E1）：子任务 ping：step failed: no route to host"),
    ({"error_msg": "job failed", "task_list": [{"name": "t", "state": "failed", "msg": "port 22 closed"}]},
     "任务 X 失败：job failed；子任务 t：port 22 closed"),
    ({"event": VDS_EVENT}, "任务 X 失败，作业未给出失败原因（error_msg / error / task_list 均为空）"),
])
def test_job_failure_reason_wherever_the_job_carries_it(job, expected):
    """失败原因从作业携带它的任何位置读取：error_msg、error、task_list 中失败的条目及其子任务；重复的原因只写一次。"""
    assert job_failure_reason({"state": "failed", "description": "X", **job}) == expected


# -- how long it really waited (issue 8 item 6) ---------------------------------------------------
def test_failed_job_says_how_long_it_really_waited():
    """作业失败时"已等待"是本次等待从开始到发现失败的真实时长（用等待自己的时钟计量）。"""
    t = FakeTime()
    pending = {"state": "pending", "description": "UPDATE_VIP"}
    failed = {"state": "failed", "description": "UPDATE_VIP", "error_msg": "VIP in use"}
    with pytest.raises(WaitFailed) as exc:
        wait_job(FakeFisheyeCalls(sequence(*[pending] * 6, failed)), "j1", interval=1, clock=t.clock, sleep=t.sleep)
    assert exc.value.elapsed == pytest.approx(sum(t.sleeps)) and exc.value.elapsed > 5
    assert f"已等待 {format_duration(sum(t.sleeps))}" in str(exc.value) and "VIP in use" in str(exc.value)


def test_failed_deployment_names_the_last_stage_the_reason_and_the_true_elapsed_time():
    """部署失败的消息写明最后看到的阶段（阶段 4/9 …）、deploy_status 给出的原因和真实的等待时长（含读取 deploy_verify 的时间）。"""
    t = FakeTime()
    failed = {"state": "failed", "current_stage": 5, "total_stages": 9, "stage_info": "deploy_zbs",
              "msg": "zbs-chunkd did not become ready"}
    fe = FakeFisheyeCalls(status=sequence(*[RUNNING] * 3, failed), verify=sequence({"is_deployed": False}),
                          clock=t, read_cost=0.5)
    with pytest.raises(WaitFailed) as exc:
        wait_deploy(fe, "127.10.20.11", interval=5, clock=t.clock, sleep=t.sleep)
    msg = str(exc.value)
    assert "最后看到的阶段：阶段 5/9（55%） deploy_zbs" in msg and "zbs-chunkd did not become ready" in msg
    assert exc.value.elapsed == pytest.approx(t.now - 1000.0) and exc.value.elapsed > 10
    assert f"已等待 {format_duration(t.now - 1000.0)}" in msg
    # an error answer instead of a final state: the stage is the last one seen while running
    t = FakeTime()
    fe = FakeFisheyeCalls(status=sequence(RUNNING, NOT_FOUND), verify=sequence({"is_deployed": False}))
    with pytest.raises(WaitFailed, match="最后看到的阶段：阶段 4/9（44%） deploy_mongodb"):
        wait_deploy(fe, "127.10.20.11", clock=t.clock, sleep=t.sleep)


# -- pacing (issue 14) ----------------------------------------------------------------------------
def test_intervals_scale_with_the_configured_time_scale(pacing):
    """--sim 运行中轮询间隔按模拟器速度缩放：速度 0.04 时 1 秒的间隔变为 0.04 秒；速度 0 时不忙等（最短 MIN_SLEEP）。"""
    pacing(time_scale=0.04)
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 1, interval=1, max_interval=8, share=1,
                 clock=t.clock, sleep=t.sleep)
    assert t.sleeps[:6] == pytest.approx([0.04, 0.04, 0.08, 0.16, 0.32, 0.32])
    pacing(time_scale=0)
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 1, interval=1, clock=t.clock, sleep=t.sleep)
    assert t.sleeps[:-1] == pytest.approx([MIN_SLEEP] * (len(t.sleeps) - 1)) and len(t.sleeps) == pytest.approx(1 / MIN_SLEEP, abs=1)
    assert t.sleeps[-1] <= MIN_SLEEP  # the rest up to the deadline
    pacing(time_scale=None)
    t = FakeTime()
    wait_for("x", sequence("a", "b"), lambda s: s == "b", 10, interval=1, clock=t.clock, sleep=t.sleep)
    assert t.sleeps == [1]
    with pytest.raises(ValueError):
        pacing(time_scale=-1)


def test_pacer_ignores_a_predicted_end_that_has_passed():
    """预测的结束时刻已过而操作未结束时，只按规则（share × 已用时间）轮询，不在最短间隔上连续轮询。"""
    pacer = Pacer(1, 30, share=0.1)
    pacer.observe(0, 0.0)
    pacer.observe(50, 0.5)  # predicts the end at t = 100
    assert pacer.next_sleep(95) == pytest.approx(5 + 0.1)  # just after the predicted end
    pacer.observe(100.1, 0.5)  # that poll found no progress
    assert pacer.next_sleep(101) == pytest.approx(10.1)  # the prediction passed: the rule alone


def test_pacer_never_sleeps_past_the_predicted_end():
    """按接口报告的进度估计结束时刻：不会因盲目退避而睡过结束时刻。"""
    pacer = Pacer(1, 30, share=1)
    pacer.observe(0, 0.0)
    pacer.observe(50, 0.5)  # 1 % per second: ends at t = 100
    assert pacer.rule(95) == 30  # the rule alone would sleep past the end
    assert pacer.next_sleep(95) == pytest.approx(5 + 0.1)  # not 30: the predicted end and its guard
    assert pacer.next_sleep(99.5) == pytest.approx(0.5 + 0.1)  # below the base interval: one of the few fine polls


def stage_timeline(stages):
    """deploy_status as a function of time: the simulator's stage durations, then the end."""
    def status(now):
        t = 0.0
        for k, (name, duration) in enumerate(stages):
            t += duration
            if now < t:
                return {"state": "running", "current_stage": k + 1, "total_stages": len(stages), "stage_info": name}
        raise NOT_FOUND
    return status, sum(d for _, d in stages)


def test_wait_deploy_notices_the_end_within_the_share_of_its_duration():
    """部署（1200 秒）结束后不晚于其时长的 share（0.5%，6 秒）发现；查询次数少于每 5 秒一次。"""
    t = FakeTime()
    status, total = stage_timeline(STAGES)
    fe = FakeFisheyeCalls(status=lambda: status(t.now - 1000.0), verify=lambda: {"is_deployed": True})
    wait_deploy(fe, "127.10.20.11", clock=t.clock, sleep=t.sleep)
    lag = (t.now - 1000.0) - total
    assert 0 <= lag <= SHARE * total + 1e-9
    assert fe.paths.count("/api/v2/deployment/host/deploy_status") < total / 5  # fewer polls than every 5 s


def test_wait_job_uses_the_reported_progress():
    """作业报告进度时按进度估计结束时刻轮询，结束后不晚于基础间隔发现。"""
    t = FakeTime()

    def job():
        elapsed = t.now - 1000.0
        if elapsed >= 100:
            return {"state": "done", "description": "VM_UPDATE"}
        return {"state": "processing", "description": "VM_UPDATE", "progress": elapsed / 100}

    assert wait_job(FakeFisheyeCalls(job), "j", max_interval=30, clock=t.clock, sleep=t.sleep)["state"] == "done"
    assert (t.now - 1000.0) - 100 <= 0.5 + 1e-9


def test_job_fraction():
    assert job_fraction({"progress": 0.25}) == 0.25 and job_fraction({"progress": 40}) == 0.4
    assert job_fraction({"task_list": [{"progress": 1}, {"progress": 0}, {"name": "x"}]}) == 0.5
    assert job_fraction({"state": "pending"}) is None and job_fraction({"progress": True}) is None


# -- against the simulator: its failed jobs and deployment, through the real clients --------------
H1 = "127.10.20.11"


@contextmanager
def sim_fisheye(faults, *, deploy=False, retry=None):
    """A simulator on a manual clock (speed 1 once set up), fisheye on the first host
    (logged in when ``deploy``: the cluster deployed at speed 0 first)."""
    plan = build_demo_plan()
    clock = ManualClock(speed=0)
    with Simulator(plan, clock=clock, ssh=False, faults=faults) as sim:
        if deploy:
            _, walk = deployed(sim, plan, configure=False)
            walk.login_root()
        clock.speed = 1.0
        endpoints = Endpoints.simulated(sim.endpoints, plan, retry=retry)
        fisheye = FisheyeClient(endpoints, H1)
        if deploy:
            fisheye.login(plan.cluster.admin_user or "root", plan.cluster.admin_password)
        try:
            yield sim, clock, fisheye, plan
        finally:
            endpoints.close()


def test_simulated_failed_job_has_the_documented_shape_and_the_wait_gives_its_reason(pacing):
    """模拟器中失败的作业符合 API-FACTS 的形状（error_code、error_msg、task_list 中失败的条目）；
    等待失败的消息包含作业自己的原因文本，"已等待"与作业真实用时相符。"""
    with sim_fisheye("fail-job:UPDATE_VIP:1", deploy=True) as (sim, clock, fisheye, plan):
        pacing(time_scale=clock.speed)
        job_id = fisheye.put("/api/v2/settings/vip", json={"iscsi_vip": None, "management_vip": plan.cluster.vip})["job_id"]
        with pytest.raises(WaitFailed) as exc:
            wait_job(fisheye, job_id, clock=clock.now, sleep=clock.advance)
        job = fisheye.job(job_id)
    pending, processing = JOB_DURATIONS["UPDATE_VIP"]
    assert job["state"] == "failed" and job["error_code"] == "EVIP_ADDRESS_IN_USE"
    assert plan.cluster.vip in job["error_msg"] and "fail-job" in job["error_msg"]
    assert job["task_list"] == [{"name": "assign_management_vip", "state": "failed",
                                 "error_code": "EVIP_ADDRESS_IN_USE", "msg": job["error_msg"]}]
    msg = str(exc.value)
    assert job["error_msg"] in msg and "任务 UPDATE_VIP 失败（EVIP_ADDRESS_IN_USE）" in msg
    assert pending + processing <= exc.value.elapsed <= pending + processing + 3.0  # at most one poll late
    assert f"已等待 {format_duration(exc.value.elapsed)}" in msg


def test_simulated_failed_deployment_names_stage_reason_and_true_elapsed_time(pacing):
    """模拟器中部署失败：deploy_status 给出 failed、失败的阶段和原因；等待消息写明阶段 5/8 deploy_zbs、原因与真实时长。"""
    with sim_fisheye("fail-job:DEPLOY_CLUSTER:1") as (sim, clock, fisheye, plan):
        walk = Walk(sim.endpoints, plan)
        fisheye.deployment("POST", "/api/v2/deployment/cluster", json=walk.deploy_payload(walk.scan()))
        with pytest.raises(WaitFailed) as exc:
            wait_deploy(fisheye, H1, clock=clock.now, sleep=clock.advance)
        status = fisheye.deployment("GET", "/api/v2/deployment/host/deploy_status", params={"host_ip": H1})
    assert status["state"] == "failed" and status["current_stage"] == 5 and status["stage_info"] == "deploy_zbs"
    assert status["total_stages"] == len(STAGES) and "zbs-chunkd" in status["msg"]
    msg = str(exc.value)
    assert "最后看到的阶段：阶段 5/8（62%） deploy_zbs" in msg and status["msg"] in msg
    assert FAIL_AT <= exc.value.elapsed <= FAIL_AT + 10.0  # at most one poll (10 s) late
    assert f"已等待 {format_duration(exc.value.elapsed)}" in msg


def test_simulated_deploy_status_500s_do_not_end_the_deployment(pacing):
    """部署进行中 deploy_status 连续 8 次 HTTP 500（模拟器故障）：等待继续，部署完成后返回 is_deployed=true。"""
    no_http_retry = RetryPolicy(status=0, backoff=0)  # every 500 reaches the waiter
    with sim_fisheye("http-500:/api/v2/deployment/host/deploy_status:8", retry=no_http_retry) as (sim, clock,
                                                                                                 fisheye, plan):
        walk = Walk(sim.endpoints, plan)
        fisheye.deployment("POST", "/api/v2/deployment/cluster", json=walk.deploy_payload(walk.scan()))
        assert wait_deploy(fisheye, H1, clock=clock.now, sleep=clock.advance)["is_deployed"] is True
        assert sim.world.faults.summary()[0]["fired"] == 8
        assert sim.status()["deployed"] is True


def test_every_wait_rides_out_transient_errors_by_default():
    """任何等待（不只是封装好的几个）默认都把 5xx 和连接错误当作临时错误；retry_on=() 可关闭。"""
    t = FakeTime()
    probe = sequence(server_error("/api/v3/export/status"), TransportError("reset"), "EXPORT_SUCCEEDED")
    assert wait_for("导出", probe, lambda s: s == "EXPORT_SUCCEEDED", 60, clock=t.clock, sleep=t.sleep) \
        == "EXPORT_SUCCEEDED"
    with pytest.raises(ApiError):
        wait_for("导出", sequence(server_error()), bool, 60, retry_on=(), clock=t.clock, sleep=t.sleep)
