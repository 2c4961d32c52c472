"""voyager.pacing: the one rule every wait polls by (issue 14, "waits that notice promptly").

The rule: the next poll comes after ``clamp(share × age, floor, cap)``, ``age`` counted
from the operation's own start; floor and cap are API seconds scaled by the time scale,
never below ``MIN_SLEEP`` wall; a reported share done places one poll just after the predicted
end (sooner than the floor at most ``FINE_POLLS`` times).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from voyager.pacing import (
    FINE_POLLS,
    FINE_SLEEP,
    GUARD,
    GUARD_SHARE,
    MIN_SLEEP,
    PACING,
    SHARE,
    Pacer,
    configure,
    epoch_of,
    wall_bounds,
)
from voyager.waiters import (
    WaitTimeout,
    wait_for,
    wait_job,
    wait_tower_tasks,
    wait_vm_guest_agent,
)


class FakeTime:
    """A clock that only moves when the waiter sleeps (epoch-like readings)."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def scale():
    """Restores the process-wide time scale after a test that sets it."""
    yield configure
    configure(time_scale=None)


def follow(duration: float, floor: float, cap: float, share: float = SHARE, started_before: float = 0.0):
    """Wait for an operation of ``duration`` seconds that started ``started_before`` seconds
    before the wait: (detection lag, number of polls)."""
    t = FakeTime()
    begin = t.now - started_before
    wait_for("op", lambda: t.now - begin >= duration, bool, 10 * duration + 100, interval=floor,
             max_interval=cap, share=share, started=begin, clock=t.clock, sleep=t.sleep)
    return (t.now - begin) - duration, len(t.sleeps) + 1


def test_the_rule_is_share_of_age_between_floor_and_cap():
    """下一次查询的间隔 = clamp(share × 操作已进行的时间, 最短间隔, 最长间隔)。"""
    pacer = Pacer(0.5, 10, share=0.01, origin=100.0)
    assert pacer.next_sleep(100.0) == 0.5  # just started: the floor
    assert pacer.next_sleep(100.0 + 30) == 0.5  # 1 % of 30 s is below the floor
    assert pacer.next_sleep(100.0 + 300) == pytest.approx(3.0)  # 1 % of 300 s
    assert pacer.next_sleep(100.0 + 5000) == 10  # the cap
    assert pacer.next_sleep(50.0) == 0.5  # a clock reading before the origin: age 0


@pytest.mark.parametrize("duration", [0.3, 6, 9, 14, 45, 90, 300, 600, 1200, 7200])
def test_the_end_is_noticed_within_the_share_of_the_duration_or_the_floor(duration):
    """任何时长的操作，结束后最迟在 max(最短间隔, share × 时长) 内被发现（不超过最长间隔）。"""
    floor, cap = 0.25, 60.0
    lag, _ = follow(duration, floor, cap)
    assert 0 <= lag <= max(floor, SHARE * duration) + 1e-9


def test_polls_grow_with_the_log_of_the_duration_not_linearly():
    """查询次数随时长对数增长（1/share 次最短间隔，然后 ln(share·D/最短间隔)/share 次）：时长加倍只多 ln2/share 次左右。"""
    _, polls_20min = follow(1200, 5, 30)
    _, polls_40min = follow(2400, 5, 30)
    assert polls_20min <= 1 / SHARE + max(0.0, math.log(SHARE * 1200 / 5)) / SHARE + 2
    assert polls_40min - polls_20min <= math.log(2) / SHARE + 2


def test_the_age_counts_from_the_operation_s_own_start():
    """已进行 100 秒的操作（例如重跑时跟踪的作业）：第一次间隔就是 share × 100 秒，而不是从最短间隔重新开始。"""
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 3, interval=0.1, max_interval=10, share=0.01,
                 started=t.now - 100, clock=t.clock, sleep=t.sleep)
    assert t.sleeps[0] == pytest.approx(1.0)
    # the start read from each state (e.g. a job's ctime)
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: {"ctime": t.clock() - 200}, lambda s: False, 3, interval=0.1, max_interval=10,
                 share=0.01, started=lambda s: s["ctime"], clock=t.clock, sleep=t.sleep)
    assert t.sleeps[0] == pytest.approx(2.0)


def test_a_start_after_the_wait_began_does_not_make_polls_denser():
    """接口报告的开始时间晚于本次等待的开始（集群时钟快于本机）：按本次等待自己的用时计，不会更密地查询。"""
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 400, interval=0.1, max_interval=10, share=0.01,
                 started=t.now + 3600, clock=t.clock, sleep=t.sleep)
    ages = [sum(t.sleeps[:i]) for i in range(len(t.sleeps))]
    assert all(s == pytest.approx(min(max(0.01 * a, 0.1), 10)) for s, a in zip(t.sleeps[:-1], ages[:-1]))


def test_floor_and_cap_are_api_seconds_scaled_with_a_wall_floor(scale):
    """最短/最长间隔是接口秒：--sim 下乘以模拟器速度；墙钟下限 MIN_SLEEP，速度 0 时不忙等。"""
    scale(time_scale=0.04)
    assert wall_bounds(5, 30) == pytest.approx((0.2, 1.2))
    assert wall_bounds(0.25, 5) == pytest.approx((MIN_SLEEP, 0.2))  # 0.01 s would spin: MIN_SLEEP
    scale(time_scale=0)
    assert wall_bounds(5, 30) == (MIN_SLEEP, MIN_SLEEP)
    t = FakeTime()
    with pytest.raises(WaitTimeout):
        wait_for("x", lambda: "no", lambda s: False, 1, interval=1, max_interval=10, clock=t.clock, sleep=t.sleep)
    assert all(s == pytest.approx(MIN_SLEEP) for s in t.sleeps[:-1])
    scale(time_scale=None)
    assert PACING.time_scale == 1.0 and wall_bounds(5, 30) == (5, 30)
    with pytest.raises(ValueError):
        scale(time_scale=-0.1)


def test_a_rehearsal_polls_as_often_relative_to_each_operation_as_a_real_run(scale):
    """演练（速度 0.04）中，一次 1200 秒部署的查询次数与真实集群上相同，发现延迟按速度缩短。"""
    real_lag, real_polls = follow(1200, 5, 30)
    scale(time_scale=0.04)
    sim_lag, sim_polls = follow(1200 * 0.04, 5, 30)
    assert sim_polls == real_polls
    assert sim_lag == pytest.approx(real_lag * 0.04, abs=1e-4)  # float sums at epoch magnitudes


def test_a_predicted_end_gets_one_poll_just_after_it():
    """接口报告进度时，按观察到的速率预测结束时刻，在该时刻稍后查询一次；预测已过且进度未再变化则只按规则。"""
    pacer = Pacer(1, 60, share=0.5, origin=0.0)
    pacer.observe(0, 0.0)
    pacer.observe(40, 0.8)  # 2 % per second: ends at t = 50
    assert pacer.rule(40) == 20
    guard = max(GUARD, GUARD_SHARE * 50)
    assert pacer.next_sleep(40) == pytest.approx(10 + guard)  # just after the predicted end, not after 20 s
    pacer.observe(50.01, 0.8)  # the poll found it unchanged: nothing moved
    assert pacer.next_sleep(51) == pytest.approx(25.5)  # the prediction passed: the rule alone
    assert Pacer(1, 60).predicted_end() is None  # no progress reported: no prediction


def test_a_poll_aimed_at_a_predicted_end_may_come_sooner_than_the_floor_a_few_times():
    """短于最短间隔的操作：预测的结束时刻之后很快再查一次（最短 FINE_SLEEP），每次等待最多 FINE_POLLS 次。"""
    pacer = Pacer(0.02, 1.0, origin=0.0)
    pacer.observe(0.0, 0.0)
    pacer.observe(0.02, 0.2)  # 10 %/10 ms: ends at t = 0.1
    assert pacer.next_sleep(0.02) == pytest.approx(0.02)  # 80 ms left: the floor is sooner
    pacer.observe(0.09, 0.9)
    sleeps = [pacer.next_sleep(0.09)]
    assert sleeps[0] == pytest.approx(0.01 + GUARD)  # 10 ms left: sooner than the floor
    for step in range(1, 6):  # each read shows a little more, and its end keeps being near
        pacer.observe(0.09 + step * 0.002, min(0.99, 0.9 + step * 0.02))
        sleeps.append(pacer.next_sleep(0.09 + step * 0.002))
    fine = [s for s in sleeps if s < 0.02]
    assert len(fine) == FINE_POLLS and min(fine) >= FINE_SLEEP  # bounded: never a burst
    assert sleeps[FINE_POLLS:] == [0.02] * (len(sleeps) - FINE_POLLS)


def test_a_pending_start_does_not_stretch_the_prediction():
    """进度为 0 的读数以最后一次为准：排队（PENDING）的时间不计入预测的时长。"""
    pacer = Pacer(0.02, 1.0, origin=0.0)
    for t in (0.0, 0.02, 0.04):  # pending: progress 0
        pacer.observe(t, 0.0)
    pacer.observe(0.06, 0.25)  # executing since about 0.05 ... 0.06
    assert pacer.predicted_end() == pytest.approx(0.04 + 0.02 / 0.25)  # from the last 0, not the first


def test_epoch_of_reads_the_apis_timestamps():
    """接口时间戳转为 epoch 秒：fisheye 的整数秒（或毫秒）、CloudTower 的 ISO 8601（含纳秒、无时区按 UTC）。"""
    assert epoch_of(1759072687) == 1759072687.0
    assert epoch_of(1759072687123) == pytest.approx(1759072687.123)
    assert epoch_of("2025-09-30T18:30:42.192Z") == pytest.approx(1759257042.192)
    assert epoch_of("2025-09-27T22:38:57.921456349Z") == pytest.approx(1759012737.921456)
    assert epoch_of("2025-09-30T18:30:42") == pytest.approx(1759257042.0)
    assert epoch_of("2025-09-30T20:30:42+02:00") == pytest.approx(1759257042.0)
    for bad in (None, "", "soon", True, 0, -5, {"t": 1}):
        assert epoch_of(bad) is None


# -- the helpers read the operation's start from the API's answer ----------------------------------
class Fisheye:
    def __init__(self, job=None, vm=None):
        self._job, self._vm = job, vm

    def job(self, job_id):
        return self._job()

    def vm(self, uuid):
        return self._vm()


class Tower:
    def __init__(self, tasks):
        self.tasks = tasks

    def rest(self, operation, body):
        return self.tasks()


def test_wait_job_counts_the_age_from_the_job_s_ctime():
    """作业等待按作业的 ctime 计算已进行时间：跟踪一个 300 秒前创建的作业，第一次间隔就是 share × 300 秒。"""
    t = FakeTime()
    ctime = int(t.now) - 300
    fe = Fisheye(job=lambda: {"state": "done" if len(t.sleeps) >= 2 else "processing", "ctime": ctime})
    wait_job(fe, "j", clock=t.clock, sleep=t.sleep)
    first = SHARE * 300
    assert t.sleeps == pytest.approx([first, SHARE * (300 + first)])


def test_wait_tower_tasks_counts_from_local_created_at_and_uses_progress():
    """CloudTower 任务等待按 local_created_at 计算已进行时间，并按任务的 progress 预测结束时刻。"""
    t = FakeTime(start=1_759_257_142.192)  # 100 s after the task's creation
    created = "2025-09-30T18:30:42.192Z"

    def tasks():
        elapsed = t.now - 1_759_257_142.192
        if elapsed >= 20:
            return [{"id": "t1", "status": "SUCCESSED", "progress": 1.0, "local_created_at": created}]
        return [{"id": "t1", "status": "EXECUTING", "progress": (100 + elapsed) / 120, "local_created_at": created}]

    wait_tower_tasks(Tower(tasks), ["t1"], clock=t.clock, sleep=t.sleep)
    assert t.sleeps[0] == pytest.approx(max(0.25, SHARE * 100))  # share × the task's age, not the floor
    assert (t.now - 1_759_257_142.192) - 20 <= max(0.25, SHARE * 120) + 1e-6  # within the rule's pause


def test_wait_vm_guest_agent_counts_from_the_vm_s_last_start_time():
    """guest agent 等待按虚拟机的 last_start_time 计算已进行时间（系统安装或启动从那时开始）。"""
    t = FakeTime()
    started = int(t.now) - 500

    def vm():
        running = len(t.sleeps) >= 1
        return {"status": "running", "last_start_time": started,
                "guest_info": {"ga_state": "Running" if running else "Unknown"}}

    wait_vm_guest_agent(Fisheye(vm=vm), "u", clock=t.clock, sleep=t.sleep)
    assert t.sleeps == pytest.approx([SHARE * 500])


def test_a_task_s_started_at_lets_the_first_progress_read_predict_its_end():
    """CloudTower 任务给出 started_at（进度从此刻起算）：第一次读到的进度即可预测结束时刻，在其后稍晚查询。"""
    t = FakeTime(start=1_800_000_000.0)
    began = t.now - 0.093  # executing for 93 ms of a 100 ms task when the wait starts
    stamp = "2027-01-15T08:00:00.000Z"
    began_text = datetime.fromtimestamp(began, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def tasks():
        done = t.now - began
        if done >= 0.1:
            return [{"id": "t1", "status": "SUCCESSED", "progress": 1.0, "local_created_at": stamp,
                     "started_at": began_text}]
        return [{"id": "t1", "status": "EXECUTING", "progress": round(done / 0.1, 2), "local_created_at": stamp,
                 "started_at": began_text}]

    configure(time_scale=0.025)
    try:
        wait_tower_tasks(Tower(tasks), ["t1"], clock=t.clock, sleep=t.sleep)
    finally:
        configure(time_scale=None)
    assert len(t.sleeps) == 1 and t.sleeps[0] < MIN_SLEEP  # one poll, just after the predicted end
    assert 0 <= (t.now - began) - 0.1 <= 0.003


def test_a_cluster_clock_ahead_cannot_date_a_task_s_start_after_the_read():
    """集群时钟比本机快时（started_at 晚于读到任务运行中的那次查询），不用它，按读到的进度预测结束时刻。"""
    t = FakeTime(start=1_800_000_000.0)
    began = t.now - 0.05  # executing for 50 ms of a 100 ms task when the wait starts
    ahead = datetime.fromtimestamp(began + 30, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def tasks():
        done = t.now - began
        status = "SUCCESSED" if done >= 0.1 else "EXECUTING"
        return [{"id": "t1", "status": status, "progress": min(1.0, round(done / 0.1, 2)),
                 "local_created_at": ahead, "started_at": ahead}]

    configure(time_scale=0.025)
    try:
        wait_tower_tasks(Tower(tasks), ["t1"], clock=t.clock, sleep=t.sleep)
    finally:
        configure(time_scale=None)
    assert 0 <= (t.now - began) - 0.1 <= 0.003  # the reads predict it: noticed just after, not a floor after
    assert t.sleeps[-1] < MIN_SLEEP  # the last poll was aimed at the predicted end


def test_fine_polls_keep_a_tenth_of_a_real_cluster_s_floor_and_need_a_new_value():
    """真实集群（时间比例 1）上对准预测结束时刻的提前查询也至少相隔最短间隔的十分之一；读取失败不算新进度。"""
    pacer = Pacer(0.25, 5.0, origin=0.0)
    pacer.observe(0.0, 0.0)
    pacer.observe(1.0, 0.99)  # ends at about t = 1.0101
    assert pacer.next_sleep(1.0) == pytest.approx(0.025)  # not 2 ms: a tenth of the 0.25 s floor
    pacer.observe(1.03, 0.995)
    pacer.observe(1.06, None)  # the next read failed: nothing moved
    assert pacer.next_sleep(1.06) == pytest.approx(0.25)  # the prediction passed: the rule alone
