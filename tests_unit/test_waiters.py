"""voyager.waiters: wait_for outcomes, adaptive interval, progress logging, typed helpers."""
import logging

import pytest

from voyager.clients.errors import ApiError, TransportError, UnreachableError
from voyager.clients.ssh import CommandResult
from voyager.redact import REDACTOR
from voyager.waiters import (
    TransferProgress,
    WaitFailed,
    WaitTimeout,
    format_duration,
    stage_text,
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
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 100, interval=1, max_interval=8, backoff=2,
                 clock=t.clock, sleep=t.sleep)
    assert t.sleeps[:5] == [1, 2, 4, 8, 8]
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
