"""Step 11: remove what the acceptance added, keep what the delivery needs,
check the plan's passwords and summarise the delivery.

* :func:`remove_test_vms` deletes every VM named ``voyager-test-NN`` in the
  cluster (``/delete-vm``, task recorded in the run state before waiting; a
  deletion still running, started by an interrupted run, is followed instead)
  and checks CloudTower lists none any more; nothing else is touched.
* :func:`remove_test_uploads` cancels the template uploads recorded in the run
  state (``/cancel-upload-task``) and checks ``/get-upload-tasks`` lists none.
* :func:`kept` lists what must still be there: the CloudTower VM and every
  business VLAN of the plan.
* :func:`summary` — the delivery facts for the report (no secret in it).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Optional

from voyager.plan.model import Plan
from voyager.steps.workload import STATE, VM_PREFIX
from voyager.waiters import wait_tower_tasks

LOG = logging.getLogger("voyager.steps.cleanup")
TEST_VM_NAME = re.compile(rf"^{re.escape(VM_PREFIX)}\d+$")


def test_vms_in_tower(tower, cluster_id: str) -> list[dict[str, Any]]:
    vms = tower.rest("get-vms", {"where": {"name_starts_with": VM_PREFIX, "cluster": {"id": cluster_id}}}) or []
    return [v for v in vms if TEST_VM_NAME.match(v.get("name") or "")]


def deletion_in_flight(tower, vm: dict[str, Any], recorded: Optional[str]) -> Optional[str]:
    """The VM's deletion still running: the recorded task, or (a run stopped before it
    stored the answer) an unfinished ``deleteVm`` task on the VM [INF: the mutation name]."""
    tasks = tower.rest("get-tasks", {"where": {"resource_id": vm["id"], "status_in": ["PENDING", "EXECUTING"]}}) or []
    return next((t["id"] for t in tasks if t.get("id") == recorded or t.get("resource_mutation") == "deleteVm"), None)


def remove_test_vms(tower, cluster_id: str, run_state, *, task_timeout: float = 1800.0) -> list[str]:
    """Delete the test VMs; returns the names deleted (empty when there was nothing to do).
    A VM whose deletion an interrupted run started is still listed until it ends: that
    deletion is followed, not sent again."""
    vms = test_vms_in_tower(tower, cluster_id)
    tasks = []
    for vm in vms:
        running = deletion_in_flight(tower, vm, (run_state.get(STATE, vm["name"]) or {}).get("delete_task"))
        if running:
            LOG.info("%s 的删除任务 %s 仍在进行（上次运行已发起），继续跟踪", vm["name"], running)
            tasks.append(running)
            continue
        answer = tower.rest("delete-vm", {"where": {"id": vm["id"]}})
        item = answer[0] if isinstance(answer, list) else answer
        run_state.merge(STATE, vm["name"], {"delete_task": item.get("task_id")})
        tasks.append(item.get("task_id"))
    deadline = time.monotonic() + task_timeout  # one timeout for all, each noticed as it ends (in the order sent)
    for task in (t for t in tasks if t):
        wait_tower_tasks(tower, [task], timeout=max(1.0, deadline - time.monotonic()))
    left = test_vms_in_tower(tower, cluster_id)
    assert not left, f"删除后 CloudTower 仍列出测试虚拟机：{'、'.join(v['name'] for v in left)}"
    for name, facts in run_state.section(STATE).items():  # the uploads stay recorded until removed
        uploads = (facts or {}).get("upload_tasks")
        if uploads:  # spent by the deleted VM's import: a VM made again uploads its disks again
            run_state.set(STATE, name, {"upload_tasks": uploads, "uploads_spent": True})
        else:
            run_state.delete(STATE, name)
    return [v["name"] for v in vms]


def recorded_uploads(run_state) -> list[str]:
    ids = []
    for facts in run_state.section(STATE).values():
        ids += list(((facts or {}).get("upload_tasks") or {}).values())
    return ids


def remove_test_uploads(tower, run_state, extra: tuple[str, ...] = ()) -> list[str]:
    """Cancel the recorded template uploads; returns the ids removed."""
    ids = sorted(set(recorded_uploads(run_state)) | set(extra))
    if not ids:
        return []
    present = [t["id"] for t in tower.rest("get-upload-tasks", {"where": {"id_in": ids}}) or []]
    removed = tower.rest("cancel-upload-task", {"where": {"id_in": present}}) if present else []
    left = tower.rest("get-upload-tasks", {"where": {"id_in": ids}}) or []
    assert not left, f"取消后 CloudTower 仍保留测试模板上传：{'、'.join(t['id'] for t in left)}"
    for name, facts in run_state.section(STATE).items():
        rest = {k: v for k, v in (facts or {}).items() if k not in ("upload_tasks", "uploads_spent")}
        run_state.set(STATE, name, rest) if rest else run_state.delete(STATE, name)
    return list(removed or [])


def kept(tower, cluster_id: str, plan: Plan) -> dict[str, Any]:
    """What the delivery needs, as CloudTower shows it: ``{"cloudtower_vm": bool, "vlans": {name: bool}}``."""
    name = (plan.cloudtower.vm_name or "cloudtower").lower()
    vms = tower.rest("get-vms", {"where": {"cluster": {"id": cluster_id}}}) or []
    vlan_names = {v["name"] for v in tower.rest("get-vlans", {"where": {"type": "VM"}}) or []}
    return {"cloudtower_vm": any((v.get("name") or "").lower() == name for v in vms),
            "vlans": {v.name: v.name in vlan_names for v in plan.networks.business.vlans}}


def summary(plan: Plan, run_state, cluster: Optional[dict[str, Any]], artifacts: dict[str, str]) -> dict[str, Any]:
    """The delivery summary attached to the report (addresses, serials, versions, what was deployed)."""
    state_cluster = run_state.section("cluster")
    state_tower = run_state.section("cloudtower")
    return {
        "集群 cluster": {"名称": plan.cluster.name, "序列号 serial": state_cluster.get("serial") or plan.cluster.serial,
                        "VIP": plan.cluster.vip, "版本 version": (cluster or {}).get("version") or plan.cluster.version_note,
                        "存储架构": plan.cluster.storage_arch, "网络架构": plan.cluster.network_arch},
        "主机 hosts": [{"名称": h.name, "管理 IP": h.mgmt_ip, "存储 IP": h.storage_ip, "带外 IP": h.bmc_ip,
                      "SN": h.sn} for h in plan.hosts],
        "CloudTower": {"IP": plan.cloudtower.ip, "版本 version": plan.cloudtower.version,
                       "序列号 serial": state_tower.get("serial") or plan.cloudtower.serial,
                       "组织": plan.cloudtower.organization, "数据中心": plan.cloudtower.datacenter,
                       "集群 id": state_tower.get("cluster_id")},
        "已部署 deployed": {
            "业务虚拟交换机": run_state.get("network", "business_vds_name"),
            "业务网络": sorted(run_state.section("vlans")),
            "可选组件": [c for c, comp in (("OBS", plan.obs), ("备份服务", plan.backup_service)) if comp and comp.ip],
        },
        "测试虚拟机 test VMs": "已删除 removed" if not run_state.section(STATE) else sorted(run_state.section(STATE)),
        "产出物 artifacts": artifacts,
    }
