"""Step 10 (reliability): a test VM live-migrates while another one pings it;
with ``--destructive`` a host enters maintenance mode and comes back.

Live migration (:func:`migrate_while_pinging`)
----------------------------------------------
The peer VM on the same VLAN starts ``ping -D -i <interval> -w <seconds>`` in
the background (output in a file in its home); the VM moves to another host
(``/migrate-vm``, its task id recorded in the run state before waiting, then
``/get-tasks``); when the ping ended its output is read. A rerun after an
interruption follows the recorded migration (``test_vms.<vm>.migrate_task``,
its source and target hosts and the ping's output file) instead of starting a
second one: it waits for that task and reads that ping's output; only a
recorded task that failed or that CloudTower no longer knows is started again.
The hosts, the ping's file and the VM's tasks known so far are recorded before
``/migrate-vm`` is called: a run interrupted before it recorded the answer
leaves that, and the rerun adopts the VM's new task (listed by
``resource_id``) rather than migrating again.
The record is dropped once the outcome is known, so a later run (or ``--lf``
after a failed verdict) migrates again. Pass: the task
succeeded, CloudTower shows the VM on the other host, and the loss stays
within ``migration.max_loss_percent`` (default 5 %) and the longest run
without an answer within ``migration.max_gap_seconds`` (default 10 s)
[INF: SMTX live migration pauses a VM well under a second; the bounds leave
room for a busy 10GbE network]. The ping window (default 120 s) must cover
the whole migration: a migration still running when the ping ends fails.

Maintenance mode (:func:`maintenance_round_trip`, ``--destructive`` only)
-------------------------------------------------------------------------
``/enter-maintenance-mode-precheck`` first (its task must succeed), then
``/enter-maintenance-mode`` and ``/exit-maintenance-mode`` [INF: these two are
not in the CloudTower 4.6.0 spec]; the host's VMs must keep answering (moved
to other hosts) and the cluster must stay connected with healthy hosts.
"""
from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass
from typing import Any, Optional

from voyager.steps.workload import STATE, PingResult, find_vm, host_by_node_ip, parse_ping, tower_hosts
from voyager.waiters import wait_for, wait_tower_tasks

LOG = logging.getLogger("voyager.steps.reliability")
PING_LOG = "voyager-migration-ping.log"


def start_background_ping(client, target: str, *, interval: float, seconds: float) -> str:
    """Start a background ping in the VM behind ``client``; returns the output file."""
    cmd = (f"rm -f {PING_LOG}; nohup ping -D -i {interval:g} -w {int(seconds)} {shlex.quote(target)} "
           f"> {PING_LOG} 2>&1 &")
    client.run(cmd, timeout=60).check("启动后台 ping")
    return PING_LOG


def read_ping_log(client, path: str, *, interval: float, seconds: float,
                  started: Optional[float] = None) -> tuple[PingResult, str]:
    """Wait until the background ping wrote its statistics; its figures and text.
    ``started`` (epoch): when the ping was started (the wait is paced from it)."""
    def probe() -> str:
        result = client.run(f"cat {shlex.quote(path)}", timeout=60)
        return result.stdout if result.exit_status == 0 else ""

    text = wait_for(f"后台 ping 结束（{path}）", probe, lambda t: "packets transmitted" in t, seconds + 120,
                    interval=1.0, max_interval=10.0, started=started,
                    progress=lambda t: f"已收到 {t.count('icmp_seq=')} 个应答")
    return parse_ping(text, interval), text


@dataclass
class MigrationOutcome:
    vm: str
    from_host: Optional[str]
    to_host: str
    now_host: Optional[str]
    task_id: str
    ping: PingResult
    ping_text: str
    followed: bool = False  # a migration recorded by an interrupted run, followed instead of started


def pick_target(hosts: dict[str, dict[str, Any]], current_ip: Optional[str], avoid: tuple[str, ...] = ()) -> dict:
    """Another host (not the VM's, preferably none of ``avoid``), in management-IP order."""
    others = [h for ip, h in sorted(hosts.items()) if ip != current_ip]
    if not others:
        raise AssertionError("集群中没有可以迁移到的其他主机")
    return next((h for h in others if h["management_ip"] not in avoid), others[0])


IN_FLIGHT = ("migrate_task", "migrate_from", "migrate_to", "ping_log", "migrate_known_tasks", "ping_started")


def vm_tasks(tower, vm_id: str) -> list[dict[str, Any]]:
    """CloudTower's tasks on the VM (``/get-tasks`` by ``resource_id``)."""
    return list(tower.rest("get-tasks", {"where": {"resource_id": vm_id}}) or [])


def recorded_migration(tower, run_state, vm_name: str, vm_id: str) -> Optional[dict[str, Any]]:
    """The migration of ``vm_name`` an earlier run recorded and did not see to its
    end, when a rerun must follow it: its task is pending, executing or succeeded.
    Recorded without its task (the run stopped before the answer was stored): the
    VM's task that was not there before, if any. A task that failed or that
    CloudTower no longer knows is forgotten (None)."""
    recorded = run_state.get(STATE, vm_name) or {}
    task_id = recorded.get("migrate_task")
    if task_id:
        tasks = tower.rest("get-tasks", {"where": {"id_in": [task_id]}}) or []
        task = next((t for t in tasks if t.get("id") == task_id), None)
    elif recorded.get("migrate_to"):
        known = set(recorded.get("migrate_known_tasks") or [])
        task = next((t for t in vm_tasks(tower, vm_id) if t.get("id") not in known), None)
        if task is not None:
            run_state.merge(STATE, vm_name, {"migrate_task": task["id"]})
            LOG.info("上次运行在记录迁移任务之前被中断：%s 的新任务 %s 即那次迁移", vm_name, task["id"])
    else:
        return None
    if task is None or task.get("status") == "FAILED":
        forget_migration(run_state, vm_name)
        return None
    return {**{k: recorded.get(k) for k in IN_FLIGHT}, "migrate_task": task["id"]}


def forget_migration(run_state, vm_name: str) -> None:
    recorded = run_state.get(STATE, vm_name)
    if isinstance(recorded, dict) and any(k in recorded for k in IN_FLIGHT):
        run_state.set(STATE, vm_name, {k: v for k, v in recorded.items() if k not in IN_FLIGHT})


def migrate_while_pinging(tower, cluster_id: str, vm_name: str, pinger, vm_ip: str, run_state, *,
                          interval: float, seconds: float, avoid: tuple[str, ...] = (),
                          task_timeout: float = 1800.0) -> MigrationOutcome:
    vm = find_vm(tower, cluster_id, vm_name)
    if vm is None:
        raise AssertionError(f"CloudTower 中没有测试虚拟机 {vm_name}：请先完成 09-测试虚拟机")
    recorded = recorded_migration(tower, run_state, vm_name, vm["id"])
    if recorded is not None:
        task_id, current, to_ip = recorded["migrate_task"], recorded["migrate_from"], recorded["migrate_to"]
        path = recorded["ping_log"] or PING_LOG
        pinged = recorded.get("ping_started")
        LOG.info("跟踪上次运行记录的迁移：%s 从 %s 迁移到 %s（CloudTower 任务 %s），不再发起新的迁移", vm_name,
                 current, to_ip, task_id)
    else:
        hosts = tower_hosts(tower, cluster_id)
        current = (vm.get("host") or {}).get("management_ip") or (
            host_by_node_ip(hosts, vm.get("node_ip")) or {}).get("management_ip")
        target = pick_target(hosts, current, avoid)
        to_ip = target["management_ip"]
        pinged = time.time()
        path = start_background_ping(pinger, vm_ip, interval=interval, seconds=seconds)
        run_state.merge(STATE, vm_name, {"migrate_from": current, "migrate_to": to_ip, "ping_log": path,
                                         "ping_started": pinged,
                                         "migrate_known_tasks": [t.get("id") for t in vm_tasks(tower, vm["id"])]})
        answer = tower.rest("migrate-vm", {"where": {"id": vm["id"]}, "data": {"host_id": target["id"]}})
        item = answer[0] if isinstance(answer, list) else answer
        task_id = item["task_id"]
        run_state.merge(STATE, vm_name, {"migrate_task": task_id})
        LOG.info("%s 从 %s 迁移到 %s（CloudTower 任务 %s）", vm_name, current, to_ip, task_id)
    wait_tower_tasks(tower, [task_id], timeout=task_timeout)
    ping, text = read_ping_log(pinger, path, interval=interval, seconds=seconds, started=pinged)
    after = find_vm(tower, cluster_id, vm_name) or {}
    now = (after.get("host") or {}).get("management_ip")
    forget_migration(run_state, vm_name)  # the outcome is known: a later run migrates again
    return MigrationOutcome(vm_name, current, to_ip, now, task_id, ping, text, followed=recorded is not None)


def host_healthy(tower, cluster_id: str) -> tuple[bool, str]:
    clusters = tower.rest("get-clusters", {"where": {"id": cluster_id}}) or []
    hosts = tower.rest("get-hosts", {"where": {"cluster": {"id": cluster_id}}}) or []
    state = clusters[0].get("connect_state") if clusters else "(不存在)"
    bad = [f"{h['name']}={h.get('status')}/{(h.get('host_state') or {}).get('state', 'IN_USE')}" for h in hosts
           if h.get("status") != "CONNECTED_HEALTHY" or (h.get("host_state") or {}).get("state") not in (None, "IN_USE")]
    return state == "CONNECTED" and not bad, f"connect_state={state}" + (f"，异常主机 {'、'.join(bad)}" if bad else "")


def maintenance_round_trip(tower, cluster_id: str, host_ip: str, *, task_timeout: float = 3600.0) -> list[str]:
    """Precheck, enter and exit maintenance mode for host ``host_ip``; returns what happened."""
    hosts = tower_hosts(tower, cluster_id)
    host = hosts.get(host_ip)
    if host is None:
        raise AssertionError(f"CloudTower 中没有主机 {host_ip}")
    where = {"where": {"id": host["id"]}}
    notes = []
    precheck = tower.rest("enter-maintenance-mode-precheck", where)
    wait_tower_tasks(tower, [precheck["task_id"]], timeout=task_timeout)
    notes.append(f"维护模式预检查通过（任务 {precheck['task_id']}）")
    for op, what in (("enter-maintenance-mode", "进入"), ("exit-maintenance-mode", "退出")):
        answer = tower.rest(op, where)
        item = answer[0] if isinstance(answer, list) else answer
        wait_tower_tasks(tower, [item["task_id"]], timeout=task_timeout)
        notes.append(f"{host['name']} 已{what}维护模式（任务 {item['task_id']}）")
    return notes
