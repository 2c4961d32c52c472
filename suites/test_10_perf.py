"""10-性能与可靠性：在全部测试虚拟机内同时运行 fio（4k 随机读/写、1M 顺序读/写），每台虚拟机每个
场景的 IOPS、带宽与延迟百分位（p50/p99/p99.9）逐项对照阈值；fio 原始 JSON 保留为证据，图表嵌入报告。
可靠性：一台测试虚拟机在被另一台持续 ping 的同时热迁移到另一台主机；加 --destructive 时一台主机进入
维护模式再退出。

前提（假设）：06 结束时的阶段标记 ``tower_config`` 与 09 的 ``workload_ready`` 已通过。
fio 参数、阈值默认值及其来源见 ``voyager.steps.perf``；迁移丢包上限见 ``voyager.steps.reliability``。
重跑某一行性能检查时只在该行的虚拟机里重新运行 fio；只重跑性能报告检查时，各虚拟机沿用其先前运行中完成并保留的 fio 结果
（状态目录 fio-results/，同一 fio 命令），没有保留结果的虚拟机才重新运行。fio 在虚拟机内后台运行并先记入运行状态：运行被中断后，
重跑继续跟踪仍在运行的 fio 或沿用其已完成的结果，不会在同一台虚拟机里同时运行两个 fio。
"""
from __future__ import annotations

import json

import pytest

from fixtures.workload import planned
from voyager.report import facts
from voyager.report.attach import attach_image, attach_json
from voyager.steps import perf, reliability, workload


@pytest.mark.dependency(depends=["workload_ready"], scope="session")
def test_perf(perf_row, fio_runs, perf_thresholds):
    """该测试虚拟机在该 fio 场景下的 IOPS、带宽、延迟 p50/p99/p99.9 均达到阈值（实测值对照期望值）。"""
    spec, profile = planned(perf_row)
    figures = fio_runs.figures(spec.name)[profile.name]
    verdicts = perf.check(figures, perf_thresholds[profile.name])
    for v in verdicts:
        facts.record(f"{spec.name} {profile.name} {perf.METRIC_LABELS[v.metric]}", v.expected,
                     perf.format_figure(v.measured), ok=v.ok)
    bad = [v for v in verdicts if not v.ok]
    assert not bad, f"{spec.name} {profile.name} 未达到阈值：" + "；".join(
        f"{perf.METRIC_LABELS[v.metric]} 实测 {perf.format_figure(v.measured)}，期望 {v.expected}" for v in bad)


@pytest.mark.dependency(depends=["workload_ready"], scope="session")
def test_live_migration(planned_test_vms, tower, cluster_id, ssh, guest, run_state, ready_vms):
    """测试虚拟机在被同一业务网络的另一台虚拟机持续 ping 时热迁移到另一台主机：迁移任务完成，虚拟机位于
    新主机，丢包率与最长无应答时间不超过上限（默认 5% 与 10 秒）。"""
    first_vlan = planned_test_vms[0].vlan.name
    pair = [s for s in planned_test_vms if s.vlan.name == first_vlan][:2]
    if len(pair) < 2:
        pytest.fail(f"业务网络 {first_vlan} 上没有两台测试虚拟机，无法边 ping 边迁移", pytrace=False)
    pinger_spec, mover = pair
    ready_vms.ensure(pair)
    pinger = workload.guest_login(ssh, pinger_spec, guest)
    pinger_host = (workload.tower_vm(tower, cluster_id, pinger_spec).get("host") or {}).get("management_ip")
    bounds = guest.migration
    outcome = reliability.migrate_while_pinging(
        tower, cluster_id, mover.name, pinger, mover.ip, run_state, interval=bounds["interval"],
        seconds=bounds["seconds"], avoid=(pinger_host,) if pinger_host else ())
    ping = outcome.ping
    if outcome.followed:
        facts.note(f"上次运行在 {mover.name} 迁移进行中被中断：本次继续跟踪记录的迁移任务 {outcome.task_id} "
                   f"与当时开始的后台 ping，没有发起第二次迁移")
    facts.record(f"{mover.name} 迁移后所在主机", outcome.to_host, outcome.now_host)
    facts.note(f"{mover.name} 迁移前在 {outcome.from_host}，迁移任务 {outcome.task_id}；"
               f"{pinger_spec.name} 持续 ping：{ping.describe()}")
    loss_ok = ping.loss_percent <= bounds["max_loss_percent"]
    gap_ok = ping.longest_gap_seconds <= bounds["max_gap_seconds"]
    facts.record("迁移期间丢包率 %", f"≤ {bounds['max_loss_percent']:g}", round(ping.loss_percent, 2), ok=loss_ok)
    facts.record("迁移期间最长无应答（秒）", f"≤ {bounds['max_gap_seconds']:g}", round(ping.longest_gap_seconds, 1),
                 ok=gap_ok)
    assert outcome.now_host == outcome.to_host, (
        f"{mover.name} 迁移后在 {outcome.now_host}，应在 {outcome.to_host}")
    assert outcome.now_host != outcome.from_host, f"{mover.name} 仍在原主机 {outcome.from_host}"
    assert loss_ok and gap_ok, f"迁移期间 ping {mover.name}：{ping.describe()}，超过上限（丢包 ≤ " \
                               f"{bounds['max_loss_percent']:g}%，最长无应答 ≤ {bounds['max_gap_seconds']:g} 秒）"


@pytest.mark.dependency(depends=["workload_ready"], scope="session")
def test_perf_report(request, fio_runs, artifacts_dir):
    """性能结果写入报告：每台虚拟机与合计的图表（IOPS、带宽、延迟百分位）与数据表，且与保留的 fio 原始 JSON 一致。"""
    fio_runs.run()
    if not fio_runs.results.figures:
        pytest.fail(f"没有任何测试虚拟机得到 fio 结果：{fio_runs.errors}", pytrace=False)
    table = fio_runs.results.table()
    charts = fio_runs.charts()
    for path in charts:
        attach_image(request, path.stem, path)
    attach_json(request, "fio 结果（每台虚拟机与合计）", table)
    attach_json(request, "fio 原始 JSON 文件", {name: str(path) for name, path in fio_runs.files.items()})
    (artifacts_dir / "perf-table.json").write_text(json.dumps(table, ensure_ascii=False, indent=2), encoding="utf-8")
    for name, path in fio_runs.files.items():
        if name in fio_runs.errors:
            continue
        kept = perf.parse_fio_json(path.read_text(encoding="utf-8"), fio_runs.job.profiles)
        same = {p: f.as_dict() for p, f in kept.items()} == table["vms"][name]
        facts.record(f"{name} 报告中的数值与 {path.name} 一致", True, same)
        assert same, f"报告中 {name} 的数值与保留的 fio JSON（{path}）不一致"
    for name, how in sorted(fio_runs.how.items()):
        facts.note(how)
    facts.note(f"图表（{artifacts_dir.name}/charts/）：{'、'.join(p.name for p in charts)}")


@pytest.mark.dependency(depends=["workload_ready"], scope="session")
def test_maintenance_mode(destructive, planned_test_vms, tower, cluster_id, ssh, guest, ready_vms):
    """（仅 --destructive）一台承载测试虚拟机的主机先通过维护模式预检查，进入维护模式再退出；其上的测试虚拟机
    始终可以登录，集群恢复为健康（已连接、所有主机正常）。"""
    if not destructive:
        pytest.skip("未指定 --destructive：不让主机进入维护模式（会迁移其上的虚拟机、暂时减少集群容量）")
    ready_vms.ensure(planned_test_vms)
    hosts = workload.tower_hosts(tower, cluster_id)
    placed = {s.name: (workload.tower_vm(tower, cluster_id, s).get("host") or {}).get("management_ip")
              for s in planned_test_vms}
    host_ip = placed[planned_test_vms[-1].name]
    on_host = [s for s in planned_test_vms if placed[s.name] == host_ip]
    for note in reliability.maintenance_round_trip(tower, cluster_id, host_ip):
        facts.note(note)
    for spec in on_host:
        client = workload.guest_login(ssh, spec, guest)
        ok = client.run("true", timeout=60).ok
        facts.record(f"维护模式后 {spec.name} 可以登录", True, ok)
        assert ok, f"{spec.name} 在主机维护后无法登录"
    healthy, text = reliability.host_healthy(tower, cluster_id)
    facts.record("集群状态", "已连接且所有主机健康", text, ok=healthy)
    assert healthy, f"维护模式之后集群不健康：{text}"
    assert host_ip in hosts
