"""Walkthrough step 05 (关联cloudtower并配置集群): the organization's id, the
datacenter (文档描述!C17) and the cluster connected to CloudTower by its VIP.

CloudTower REST mutations are specified as arrays in, arrays out; the
walkthrough (and captured clients) send one bare object and get one bare
``{data, task_id}``: the walkthrough's form is sent and both answers are read.
A connection in flight is recorded in the run state section ``cloudtower``
before it is awaited: its cluster id (``cluster_id``) and, through
``steps.jobs`` (CloudTower task form), its task (``connect_task``), which a
rerun follows while it runs instead of connecting the cluster again.
"""
from __future__ import annotations

from typing import Any, Optional

from voyager.clients import is_already_exists
from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps.cloudtower import SECTION, organization_name
from voyager.steps import jobs
from voyager.steps.config import StepError
from voyager.waiters import WaitFailed, wait_cluster_connected


CONNECT_TIMEOUT = 1800.0
CONNECTED = "CONNECTED"
CONNECT_TASK = "connect_task"  # key of the connection's task in flight (steps.jobs record)


def first_item(answer: Any) -> dict[str, Any]:
    """``{data, task_id}`` of a mutation answered as an object or a one-item array."""
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    return answer if isinstance(answer, dict) else {}


def find_organization(tower, plan: Plan) -> dict[str, Any]:
    """``/get-organizations`` → the organization named from 文档描述!C15."""
    name = organization_name(plan)
    orgs = tower.rest("get-organizations", {}) or []
    org = next((o for o in orgs if o.get("name") == name), None)
    facts.record("CloudTower 组织", name, org.get("name") if org else None,
                 cell=cells.ref(cells.DOC, cells.DOC_CUSTOMER))
    if org is None or not org.get("id"):
        raise StepError(f"CloudTower 中没有组织 {name}（{cells.ref(cells.DOC, cells.DOC_CUSTOMER)}），"
                        f"现有：{[o.get('name') for o in orgs]}；请先完成 04 的组织检查")
    return org


def datacenter_name(plan: Plan) -> str:
    name = plan.cloudtower.datacenter or plan.document.datacenter
    if not name:
        raise StepError(f"规划表未填写数据中心名称（{cells.ref(cells.DOC, cells.DOC_DATACENTER)}）")
    return name


def _datacenters(tower, name: str) -> list[dict[str, Any]]:
    return list(tower.rest("get-datacenters", {"where": {"name": name}}) or [])


def ensure_datacenter(tower, plan: Plan, org_id: str) -> tuple[dict[str, Any], str]:
    """The datacenter named from 文档描述!C17 in the organization: found, else created."""
    name = datacenter_name(plan)
    cell = cells.ref(cells.DOC, cells.DOC_DATACENTER)
    found = _datacenters(tower, name)
    if found:
        how = f"数据中心 {name} 已存在"
    else:
        answer = tower.rest("create-datacenter", {"organization_id": org_id, "name": name}, already_ok=True)
        how = f"数据中心 {name} 已存在" if is_already_exists(answer) else f"已创建数据中心 {name}"
        found = _datacenters(tower, name)
    dc = found[0] if found else None
    facts.record("CloudTower 数据中心", name, dc.get("name") if dc else None, cell=cell)
    if dc is None:
        raise StepError(f"创建后 CloudTower 中仍没有数据中心 {name}（{cell}）")
    owner = (dc.get("organization") or {}).get("id")
    facts.record("数据中心所属组织 id", org_id, owner)
    if owner not in (None, org_id):
        raise StepError(f"数据中心 {name} 属于另一个组织 {(dc.get('organization') or {}).get('name')}，"
                        f"不属于规划的组织（{cells.ref(cells.DOC, cells.DOC_CUSTOMER)}）")
    return dc, how


def find_cluster(tower, plan: Plan, serial: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The cluster CloudTower already knows: by its VIP, or by its serial (``local_id``)."""
    where: dict[str, Any] = {"ip": plan.cluster.vip}
    if serial:
        where = {"OR": [where, {"local_id": serial}]}
    clusters = tower.rest("get-clusters", {"where": where}) or []
    return clusters[0] if clusters else None


def ensure_connected(tower, plan: Plan, dc_id: str, run_state, *, timeout: float = CONNECT_TIMEOUT
                     ) -> tuple[dict[str, Any], str]:
    """The cluster connected by its VIP with the plan's admin (主机规划!L19/M19),
    not again when CloudTower has it; its task followed and CONNECTED awaited."""
    vip = plan.cluster.vip
    cluster = find_cluster(tower, plan, run_state.get("cluster", "serial"))
    try:
        if cluster is not None:
            how = f"CloudTower 已关联集群 {cluster.get('name')}（{cluster.get('ip')}）"
            if cluster.get("id") == run_state.get(SECTION, "cluster_id"):
                # this plan's connection, perhaps interrupted while its task ran: follow it
                jobs.follow_recorded(jobs.TOWER_TASK, tower, run_state, CONNECT_TASK, section=SECTION,
                                     timeout=timeout)
            else:
                jobs.forget(run_state, CONNECT_TASK, section=SECTION)  # a task of another connection attempt
            cluster_id = cluster["id"]
        else:
            connected: dict[str, Any] = {}

            def connect() -> Optional[str]:
                body = {"datacenter_id": dc_id, "password": plan.cluster.admin_password,
                        "username": plan.cluster.admin_user or cells.DEFAULT_ADMIN_USER, "ip": vip}
                item = first_item(tower.rest("connect-cluster", body))
                data = item.get("data") or {}
                if not data.get("id"):
                    raise StepError(f"connect-cluster 没有返回集群 id：{item!r}")
                run_state.set(SECTION, "cluster_id", data["id"])  # before its task is recorded and awaited
                connected.update(data)
                return item.get("task_id")

            ran = jobs.run(jobs.TOWER_TASK, tower, run_state, CONNECT_TASK, connect, section=SECTION,
                           timeout=timeout)
            cluster_id = connected.get("id") or run_state.get(SECTION, "cluster_id")
            if not cluster_id:
                raise StepError(f"关联集群 {vip} 的任务已结束，但运行状态中没有记录集群 id")
            how = (f"跟踪上次记录的关联任务，已在 CloudTower 中关联集群 {vip}" if ran.followed
                   else f"已在 CloudTower 中关联集群 {vip}")
        run_state.set(SECTION, "cluster_id", cluster_id)
        cluster = wait_cluster_connected(tower, cluster_id, timeout=timeout)
    except WaitFailed as exc:
        raise StepError(f"关联集群 {vip} 失败：{exc.reason}") from None
    facts.record("集群 connect_state", CONNECTED, cluster.get("connect_state"))
    facts.record("集群地址（VIP）", vip, cluster.get("ip"), cell=cells.ref(cells.HOSTS, cells.HOST_VIP))
    dcs = [d.get("id") for d in cluster.get("datacenters") or []]
    facts.record("集群所在数据中心 id", dc_id, dc_id if dc_id in dcs else dcs)
    if dc_id not in dcs:
        raise StepError(f"集群 {cluster.get('name')} 不在规划的数据中心中（{cells.ref(cells.DOC, cells.DOC_DATACENTER)}）")
    return cluster, how


def connected_cluster(tower, cluster_id: str, *, timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
    """``get-clusters`` shows the cluster CONNECTED (awaited)."""
    try:
        return wait_cluster_connected(tower, cluster_id, timeout=timeout)
    except WaitFailed as exc:
        raise StepError(f"集群 {cluster_id} 未关联到 CloudTower：{exc.reason}") from None


def check_cluster(cluster: dict[str, Any], plan: Plan) -> None:
    """State, name, host count and management IPs as planned."""
    planned = sorted(h.mgmt_ip for h in plan.hosts)
    listed = sorted(h.get("management_ip") for h in cluster.get("hosts") or [])
    facts.record("connect_state", CONNECTED, cluster.get("connect_state"))
    facts.record("集群名称", plan.cluster.name, cluster.get("name"), cell=cells.ref(cells.NET, cells.NET_CLUSTER_NAME))
    facts.record("主机数量（host_num）", len(plan.hosts), cluster.get("host_num"))
    facts.record("主机管理地址", planned, listed)
    problems = []
    if cluster.get("connect_state") != CONNECTED:
        problems.append(f"connect_state 为 {cluster.get('connect_state')}，应为 CONNECTED")
    if cluster.get("host_num") != len(plan.hosts):
        problems.append(f"host_num 为 {cluster.get('host_num')}，应为规划的 {len(plan.hosts)} 台")
    if listed != planned:
        problems.append(f"主机管理地址为 {listed}，应为规划的 {planned}")
    if problems:
        raise StepError("CloudTower 中的集群与规划不一致：" + "；".join(problems))


def check_host_listed(cluster: dict[str, Any], host) -> dict[str, Any]:
    """One planned host in the cluster's ``hosts`` (by management IP; name as planned)."""
    row = next((h for h in cluster.get("hosts") or [] if h.get("management_ip") == host.mgmt_ip), None)
    ip_cell = cells.ref(cells.HOSTS, f"{cells.HOST_COL['mgmt_ip']}{host.row}")
    name_cell = cells.ref(cells.HOSTS, f"{cells.HOST_COL['name']}{host.row}")
    facts.record("主机管理地址", host.mgmt_ip, row.get("management_ip") if row else None, cell=ip_cell)
    if row is None:
        raise StepError(f"CloudTower 的集群 {cluster.get('name')} 中没有主机 {host.name}（{host.mgmt_ip}）")
    facts.record("主机名", host.name, row.get("name"), cell=name_cell)
    if row.get("name") != host.name:
        raise StepError(f"CloudTower 中 {host.mgmt_ip} 的主机名为 {row.get('name')}，应为规划的 {host.name}"
                        f"（{name_cell}）")
    return row
