"""Walkthrough step 06 (通过cloudtower配置集群): the default storage policy, the
storage-usage alert rule, the monitoring views and the rack topology, each
observed, changed only when it differs and read back.

* storage policy: ``updateClusterSettings`` (GraphQL, as the walkthrough sends
  it), read back through ``/get-cluster-settingses``;
* alert rule ``zbs_cluster_data_space_use_rate``: the cluster's rule customised
  to NOTICE floor(((n−1)/n − 5%)·100) and CRITICAL 90 (``updateGlobalAlertRule``);
* views Cluster / Host / VM and their graphs (API-FACTS "Monitoring
  dashboards", SmartX's init script), created only when missing;
* rack topology from 主机规划 P/Q (rack, unit): one rack per planned rack name,
  one brick (chassis) per host at its unit, the host's node moved into it.
"""
from __future__ import annotations

from fractions import Fraction
from math import floor
from typing import Any, Optional

from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps.attach import first_item
from voyager.steps.config import StepError
from voyager.waiters import WaitFailed, wait_tower_tasks


TASK_TIMEOUT = 600.0

# -- storage policy ------------------------------------------------------------------------------
STORAGE_POLICY = "REPLICA_2_THIN_PROVISION"
REPLICAS = 2
UPDATE_CLUSTER_SETTINGS = (
    "mutation updateClusterSettings($data: ClusterSettingsUpdateInput!, $where: ClusterSettingsWhereUniqueInput!) {\n"
    "  updateClusterSettings(where: $where, data: $data) {\n    id\n    default_ha\n    default_ha_priority\n"
    "    enabled_iscsi\n    default_storage_policy\n    default_storage_policy_replica_num\n"
    "    default_storage_policy_ec_k\n    default_storage_policy_ec_m\n    default_storage_policy_thin_provision\n"
    "    default_storage_encryption\n    __typename\n  }\n}\n")

# -- alert rule ---------------------------------------------------------------------------------------
STORAGE_ALERT = "zbs_cluster_data_space_use_rate"
CRITICAL = 90
GLOBAL_ALERT_RULES = (
    "query globalAlertRules($where: GlobalAlertRuleWhereInput, $orderBy: GlobalAlertRuleOrderByInput, $skip: Int, "
    "$first: Int) {\n  globalAlertRules(where: $where, orderBy: $orderBy, skip: $skip, first: $first) {\n"
    "    message\n    thresholds {\n      value\n      severity\n      __typename\n    }\n    object\n    id\n"
    "    disabled\n    name\n    alert_rules {\n      id\n      customized\n      disabled\n      thresholds {\n"
    "        severity\n        value\n        __typename\n      }\n      cluster {\n        id\n        name\n"
    "        __typename\n      }\n      __typename\n    }\n    __typename\n  }\n}\n")
UPDATE_GLOBAL_ALERT_RULE = (
    "mutation updateGlobalAlertRule($data: GlobalAlertRuleUpdateInput!, $where: GlobalAlertRuleWhereUniqueInput!) {\n"
    "  updateGlobalAlertRule(data: $data, where: $where) {\n    id\n    disabled\n    thresholds {\n      value\n"
    "      severity\n      __typename\n    }\n    alert_rules {\n      id\n      disabled\n      customized\n"
    "      thresholds {\n        value\n        severity\n        __typename\n      }\n      cluster {\n        id\n"
    "        name\n        __typename\n      }\n      __typename\n    }\n    __typename\n  }\n}\n")

# -- monitoring views (API-FACTS) ------------------------------------------------------------------
VIEW_TIME_UNIT, VIEW_TIME_SPAN = "HOUR", 2
TOPK = 5
VIEWS: dict[str, list[tuple[str, str]]] = {
    "Cluster": [
        ("集群 CPU 使用率 %", "cluster_cpu_usage_percent"),
        ("集群 内存 使用率 %", "cluster_memory_usage_percent"),
        ("集群 已使用数据空间", "zbs_cluster_provisioned_data_space_bytes"),
    ],
    "Host": [
        ("主机 CPU 使用率 %", "host_cpu_overall_usage_percent"),
        ("分配给运行（含暂停）虚拟机逻辑核数量", "elf_host_vcpus_provisioned_running"),
        ("主机 CPU 温度", "host_cpu_temperature_celsius"),
        ("主机 内存 使用率 %", "host_memory_usage_percent"),
        ("缓存命中率 - 读", "zbs_chunk_read_cache_hit_ratio"),
        ("缓存命中率 - 写", "zbs_chunk_write_cache_hit_ratio"),
        ("已使用数据空间（物理）", "zbs_chunk_used_data_space_bytes"),
    ],
    "VM": [
        ("虚拟机 CPU 使用率 Top N", "elf_vm_cpu_overall_usage_percent"),
        ("虚拟机 CPU 就绪等待时间占比 Top N", "elf_vm_cpu_overall_steal_time_percent"),
        ("虚拟机 内存 使用率 Top N", "elf_vm_memory_usage_percent"),
        ("虚拟机写带宽 Top N", "elf_vm_disk_overall_write_speed_bps"),
        ("虚拟机 读写延迟 Top N", "elf_vm_disk_overall_avg_read_write_latency_ns"),
    ],
}
RESOURCE_TYPES = {"Cluster": "cluster", "Host": "host", "VM": "vm"}

# -- rack topology -----------------------------------------------------------------------------------
RACK_HEIGHT = 42  # a standard rack; taller when the plan's units need it
BRICK_HEIGHT = 2  # a 2U server, less when the next planned unit is closer
MAX_RACK_HEIGHT = 60


def _wait_tasks(tower, ids: list[Optional[str]], what: str) -> None:
    ids = [i for i in ids if i]
    if not ids:
        return
    try:
        # topology tasks take seconds: poll often at first (the waiter backs off toward 5 s)
        wait_tower_tasks(tower, ids, timeout=TASK_TIMEOUT, interval=0.5, max_interval=5.0)
    except WaitFailed as exc:
        raise StepError(f"{what}失败：{exc.reason}") from None


def cluster_of(tower, cluster_id: str) -> dict[str, Any]:
    clusters = tower.rest("get-clusters", {"where": {"id": cluster_id}}) or []
    if not clusters:
        raise StepError(f"CloudTower 中没有集群 {cluster_id}：请先完成 05-关联 CloudTower")
    return clusters[0]


# =========================================================================== storage policy
def cluster_settings(tower, settings_id: str) -> dict[str, Any]:
    found = tower.rest("get-cluster-settingses", {"where": {"id": settings_id}}) or []
    if not found:
        raise StepError(f"CloudTower 中没有集群设置 {settings_id}")
    return found[0]


def ensure_storage_policy(tower, cluster_id: str) -> str:
    """Default storage policy REPLICA_2_THIN_PROVISION (2 replicas, thin): set with
    the walkthrough's ``updateClusterSettings`` when it differs; read back."""
    settings_id = ((cluster_of(tower, cluster_id).get("settings")) or {}).get("id")
    if not settings_id:
        raise StepError(f"集群 {cluster_id} 没有 settings.id")
    if cluster_settings(tower, settings_id).get("default_storage_policy") == STORAGE_POLICY:
        how = f"默认存储策略已是 {STORAGE_POLICY}"
    else:
        data = {"default_storage_policy": STORAGE_POLICY, "default_storage_policy_replica_num": REPLICAS,
                "default_storage_policy_ec_k": None, "default_storage_policy_ec_m": None,
                "default_storage_policy_thin_provision": True}
        answer = (tower.graphql("updateClusterSettings", UPDATE_CLUSTER_SETTINGS,
                                {"data": data, "where": {"id": settings_id}}) or {}).get("updateClusterSettings") or {}
        rows = [("default_storage_policy", STORAGE_POLICY), ("default_storage_policy_replica_num", REPLICAS),
                ("default_storage_policy_thin_provision", True)]
        wrong = []
        for key, expected in rows:
            facts.record(f"updateClusterSettings 返回的 {key}", expected, answer.get(key))
            if answer.get(key) != expected:
                wrong.append(f"{key} 为 {answer.get(key)!r}，应为 {expected!r}")
        if wrong:
            raise StepError("设置默认存储策略后返回：" + "；".join(wrong))
        how = f"已将默认存储策略设置为 {STORAGE_POLICY}（{REPLICAS} 副本，精简置备）"
    after = cluster_settings(tower, settings_id).get("default_storage_policy")
    facts.record("默认存储策略（读回）", STORAGE_POLICY, after)
    if after != STORAGE_POLICY:
        raise StepError(f"读回的默认存储策略为 {after!r}，应为 {STORAGE_POLICY}")
    return how


# =========================================================================== alert rule
def notice_threshold(hosts: int) -> int:
    """floor(((n−1)/n − 5%)·100): 61 for 3 hosts (exact arithmetic, no float rounding)."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    return floor((Fraction(hosts - 1, hosts) - Fraction(5, 100)) * 100)


def _levels(thresholds: list[dict[str, Any]]) -> dict[str, Any]:
    return {t.get("severity"): t.get("value") for t in thresholds or []}


def storage_alert_rule(tower, cluster_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the global rule, the cluster's rule in it)."""
    data = tower.graphql("globalAlertRules", GLOBAL_ALERT_RULES,
                         {"skip": 0, "first": 50, "where": {"name": STORAGE_ALERT}, "orderBy": "id_ASC"},
                         idempotent=True) or {}
    rule = next((r for r in data.get("globalAlertRules") or [] if r.get("name") == STORAGE_ALERT), None)
    if rule is None:
        raise StepError(f"CloudTower 中没有告警规则 {STORAGE_ALERT}")
    mine = next((a for a in rule.get("alert_rules") or [] if (a.get("cluster") or {}).get("id") == cluster_id), None)
    if mine is None:
        raise StepError(f"告警规则 {STORAGE_ALERT} 中没有集群 {cluster_id} 的规则")
    return rule, mine


def ensure_storage_alert(tower, cluster_id: str, hosts: int) -> str:
    """The cluster's storage-usage rule: NOTICE = floor(((n−1)/n − 5%)·100), CRITICAL 90,
    customised with the walkthrough's ``updateGlobalAlertRule``; read back."""
    wanted = {"NOTICE": notice_threshold(hosts), "CRITICAL": CRITICAL}
    rule, mine = storage_alert_rule(tower, cluster_id)
    if {k: _levels(mine.get("thresholds")).get(k) for k in wanted} == wanted:
        how = f"集群存储使用率告警已是 NOTICE {wanted['NOTICE']}%、CRITICAL {CRITICAL}%"
    else:
        global_levels = [{"value": t.get("value"), "severity": t.get("severity"), "quantile": 0}
                         for t in rule.get("thresholds") or [] if t.get("value") is not None]
        update = {"where": {"id": mine["id"]}, "data": {
            "customized": True, "disabled": False,
            "thresholds": [{"value": CRITICAL, "severity": "CRITICAL", "quantile": 0},
                           {"value": wanted["NOTICE"], "severity": "NOTICE", "quantile": 0}]}}
        data: dict[str, Any] = {"alert_rules": {"update": [update]}, "disabled": bool(rule.get("disabled"))}
        if global_levels:
            data["thresholds"] = global_levels  # the global defaults stay as they are
        tower.graphql("updateGlobalAlertRule", UPDATE_GLOBAL_ALERT_RULE, {"where": {"id": rule["id"]}, "data": data})
        how = f"已将集群存储使用率告警设置为 NOTICE {wanted['NOTICE']}%、CRITICAL {CRITICAL}%（{hosts} 台主机）"
    _, mine = storage_alert_rule(tower, cluster_id)
    levels = _levels(mine.get("thresholds"))
    for key, value in wanted.items():
        facts.record(f"{STORAGE_ALERT} {key} 阈值（读回）", value, levels.get(key))
    if {k: levels.get(k) for k in wanted} != wanted:
        raise StepError(f"读回的 {STORAGE_ALERT} 阈值为 {levels}，应为 {wanted}（{hosts} 台主机）")
    return how


# =========================================================================== views
def _views(tower, cluster_id: str, name: str) -> list[dict[str, Any]]:
    return list(tower.rest("get-views", {"where": {"cluster": {"id": cluster_id}, "name": name}}) or [])


def _graphs(tower, view_id: str) -> list[dict[str, Any]]:
    return list(tower.rest("get-graphs", {"where": {"view": {"id": view_id}}}) or [])


def graph_body(name: str, title: str, metric: str, cluster_id: str, view_id: str,
               host_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "AREA", "resource_type": RESOURCE_TYPES[name], "view_id": view_id,
                            "title": title, "cluster_id": cluster_id, "metric_name": metric}
    if name == "Cluster":
        body["connect_id"] = [cluster_id]
    elif name == "Host":
        body["connect_id"] = list(host_ids)
    else:
        # GraphCreationParams.metric_count is an int32 (OpenAPI 4.6.0); SmartX's init script sends
        # the string "5", which CloudTower also takes, but the spec's type is what we send
        body.update(metric_type="TOPK", metric_count=TOPK, connect_id=[])
    return body


def ensure_view(tower, cluster_id: str, name: str) -> str:
    """View ``name`` of the cluster with its graphs (API-FACTS), each created only when missing."""
    planned = VIEWS[name]
    views = _views(tower, cluster_id, name)
    created_view = not views
    if created_view:
        item = first_item(tower.rest("create-view", [{"time_unit": VIEW_TIME_UNIT, "time_span": VIEW_TIME_SPAN,
                                                      "cluster_id": cluster_id, "name": name}]))
        views = _views(tower, cluster_id, name)
        if not views:
            raise StepError(f"创建监控视图 {name} 后读不到它：{item!r}")
    view = views[0]
    have = {g.get("metric_name") for g in _graphs(tower, view["id"])}
    missing = [(t, m) for t, m in planned if m not in have]
    if missing:
        host_ids = [h["id"] for h in tower.rest("get-hosts", {"where": {"cluster": {"id": cluster_id}}}) or []] \
            if name == "Host" else []
        tower.rest("create-graph", [graph_body(name, t, m, cluster_id, view["id"], host_ids) for t, m in missing])
    graphs = _graphs(tower, view["id"])
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for g in graphs:
        by_metric.setdefault(g.get("metric_name"), []).append(g)
    problems = []
    for title, metric in planned:
        found = by_metric.get(metric) or []
        facts.record(f"{name} 视图图表 {metric}", title, found[0].get("title") if found else None)
        if len(found) != 1:
            problems.append(f"图表 {metric} 有 {len(found)} 个，应为 1 个")
    if problems:
        raise StepError(f"监控视图 {name}：" + "；".join(problems))
    what = "已创建" if created_view else "已存在"
    return f"监控视图 {name} {what}，图表 {len(planned)} 个" + (f"（新建 {len(missing)} 个）" if missing else "")


# =========================================================================== rack topology
def planned_racks(plan: Plan) -> dict[str, list]:
    """{rack name: hosts in it (with a unit), lowest unit first} from 主机规划 P/Q."""
    racks: dict[str, list] = {}
    for host in plan.hosts:
        if host.rack:
            racks.setdefault(str(host.rack), []).append(host)
    for name, hosts in racks.items():
        missing = [h for h in hosts if not isinstance(h.unit, int) or h.unit < 1]
        if missing:
            raise StepError("；".join(f"主机 {h.name} 规划了机架 {name} 但没有 U 位"
                                     f"（{cells.ref(cells.HOSTS, cells.HOST_COL['unit'] + str(h.row))}）"
                                     for h in missing))
        hosts.sort(key=lambda h: h.unit)
    return racks


def brick_heights(hosts: list) -> dict[str, int]:
    """Height of each host's brick: 2U, less when the next host of the rack is closer."""
    out = {}
    for k, host in enumerate(hosts):
        gap = hosts[k + 1].unit - host.unit if k + 1 < len(hosts) else BRICK_HEIGHT
        if gap < 1:
            raise StepError(f"主机 {host.name} 与 {hosts[k + 1].name} 规划在同一 U 位 {host.unit}"
                            f"（{cells.ref(cells.HOSTS, cells.HOST_COL['unit'] + str(host.row))}）")
        out[host.name] = min(BRICK_HEIGHT, gap)
    return out


def rack_height(hosts: list) -> int:
    heights = brick_heights(hosts)
    top = max(h.unit + heights[h.name] - 1 for h in hosts)
    if top > MAX_RACK_HEIGHT:
        raise StepError(f"机架 {hosts[0].rack} 的 U 位 {top} 超过 {MAX_RACK_HEIGHT}")
    return max(RACK_HEIGHT, top)


def _racks(tower, cluster_id: str, name: str) -> list[dict[str, Any]]:
    return list(tower.rest("get-rack-topoes", {"where": {"cluster": {"id": cluster_id}, "name": name}}) or [])


def ensure_racks(tower, cluster_id: str, plan: Plan) -> str:
    """One rack per planned rack name in the cluster's zone; created when missing."""
    racks = planned_racks(plan)
    zones = tower.rest("get-zone-topoes", {"where": {"cluster": {"id": cluster_id}}}) or []
    if not zones:
        raise StepError(f"集群 {cluster_id} 没有机房拓扑（zone）")
    zone_id = zones[0]["id"]
    created = []
    for name, hosts in racks.items():
        if _racks(tower, cluster_id, name):
            continue
        item = first_item(tower.rest("create-rack-topo", [{"cluster_id": cluster_id, "zone_topo_id": zone_id,
                                                           "height": rack_height(hosts), "name": name}]))
        _wait_tasks(tower, [item.get("task_id")], f"创建机架 {name}")
        created.append(name)
    for name in racks:
        found = _racks(tower, cluster_id, name)
        facts.record("机架", name, found[0].get("name") if found else None, cell=cells.ref(cells.HOSTS, "P3:P18"))
        if not found:
            raise StepError(f"创建后 CloudTower 中仍没有机架 {name}")
    return (f"已创建机架 {'、'.join(created)}" if created else "机架已存在") + f"（共 {len(racks)} 个）"


def _bricks(tower, cluster_id: str, name: str) -> list[dict[str, Any]]:
    return list(tower.rest("get-brick-topoes", {"where": {"cluster": {"id": cluster_id}, "name": name}}) or [])


def _node_of(tower, cluster_id: str, mgmt_ip: str) -> Optional[dict[str, Any]]:
    nodes = tower.rest("get-node-topoes", {"where": {"cluster": {"id": cluster_id}}}) or []
    return next((n for n in nodes if (n.get("host") or {}).get("management_ip") == mgmt_ip), None)


def ensure_host_position(tower, cluster_id: str, plan: Plan, host) -> str:
    """The host's chassis (brick, named after the host) at its planned unit of its
    rack, and the host's node inside it; read back."""
    racks = planned_racks(plan)
    hosts = racks[str(host.rack)]
    rack_cell = cells.ref(cells.HOSTS, f"{cells.HOST_COL['rack']}{host.row}")
    unit_cell = cells.ref(cells.HOSTS, f"{cells.HOST_COL['unit']}{host.row}")
    rack = (_racks(tower, cluster_id, str(host.rack)) or [None])[0]
    if rack is None:
        raise StepError(f"CloudTower 中没有机架 {host.rack}（{rack_cell}）：请先完成机架检查")
    done = []
    bricks = _bricks(tower, cluster_id, host.name)
    if not bricks:
        body = {"cluster_id": cluster_id, "rack_topo_id": rack["id"], "height": brick_heights(hosts)[host.name],
                "name": host.name, "position": host.unit}
        _wait_tasks(tower, [first_item(tower.rest("create-brick-topo", [body])).get("task_id")],
                    f"创建主机 {host.name} 的机箱")
        bricks = _bricks(tower, cluster_id, host.name)
        done.append("已创建机箱")
    if not bricks:
        raise StepError(f"创建后 CloudTower 中仍没有主机 {host.name} 的机箱")
    brick = bricks[0]
    node = _node_of(tower, cluster_id, host.mgmt_ip)
    if node is None:
        raise StepError(f"CloudTower 的拓扑中没有主机 {host.name}（{host.mgmt_ip}）的节点")
    if (node.get("brick_topo") or {}).get("id") != brick["id"]:
        moved = tower.rest("move-node-topo", [{"where": {"id": node["id"]},
                                               "data": {"brick_topo_id": brick["id"],
                                                        "position": {"row": 1, "column": 1}}}])
        _wait_tasks(tower, [first_item(moved).get("task_id")], f"把主机 {host.name} 放入机箱")
        node = _node_of(tower, cluster_id, host.mgmt_ip) or {}
        done.append("已放入机箱")
    brick = _bricks(tower, cluster_id, host.name)[0]
    facts.record("所在机架", str(host.rack), (brick.get("rack_topo") or {}).get("name"), cell=rack_cell)
    facts.record("U 位", host.unit, brick.get("position"), cell=unit_cell)
    facts.record("节点所在机箱", host.name, (node.get("brick_topo") or {}).get("name"))
    problems = []
    if (brick.get("rack_topo") or {}).get("name") != str(host.rack):
        problems.append(f"机箱在机架 {(brick.get('rack_topo') or {}).get('name')}，应在 {host.rack}（{rack_cell}）")
    if brick.get("position") != host.unit:
        problems.append(f"机箱在 U 位 {brick.get('position')}，应在 {host.unit}（{unit_cell}）")
    if (node.get("brick_topo") or {}).get("id") != brick["id"]:
        problems.append("节点不在该机箱中")
    if problems:
        raise StepError(f"主机 {host.name} 的机架位置与规划不一致：" + "；".join(problems))
    return (("、".join(done) + "，") if done else "") + f"主机 {host.name} 位于机架 {host.rack} 的 U{host.unit}"
