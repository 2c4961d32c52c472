"""CloudTower monitoring dashboards: views and their graphs.

SmartX's init script (API-FACTS "Monitoring dashboards") creates three views per
cluster (Cluster, Host, VM) with ``/create-view`` and fills them with
``/create-graph``. Rules kept here:

* a view belongs to a connected cluster; its name is unique within the cluster
  ("already exists" otherwise); ``time_unit`` is an enum, ``time_span`` > 0;
* a graph belongs to a view of the same cluster; ``connect_id`` must name
  objects of that cluster (the cluster itself, its hosts or its VMs, by tower id);
  ``metric_count`` is an integer (a digit string, as the init script sends, is
  accepted); ``metric_type`` defaults to ``NORMAL``.
"""
from __future__ import annotations

from typing import Any, Optional

from voyager.sim.tower.common import TowerError, cuid

TIME_UNITS = ("DAY", "HOUR", "MINUTE", "MONTH")
GRAPH_TYPES = ("AREA", "STACK")
METRIC_TYPES = ("BOTTOMK", "NORMAL", "TOPK")
NETWORK_TYPES = ("ACCESS", "MANAGEMENT", "MIGRATION", "STORAGE", "STORAGE_ACCESS", "VM", "VPC_SYS", "VPC_VM")


def _error(message: str, *, status: int = 400, code: str = "VALIDATION"):
    return TowerError(message, status=status, code=code)


def _str(params: dict[str, Any], field: str) -> str:
    value = params.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _error(f'"{field}" is required and must be a non-empty string')
    return value


class Dashboards:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.views: list[dict[str, Any]] = []
        self.graphs: list[dict[str, Any]] = []

    # -- views ---------------------------------------------------------------------------
    def create_view(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise _error("each view must be an object")
        cluster = self.tower.connected_cluster(_str(params, "cluster_id"))
        name = _str(params, "name")
        unit = params.get("time_unit")
        if unit not in TIME_UNITS:
            raise _error(f'"time_unit" must be one of {", ".join(TIME_UNITS)}')
        span = params.get("time_span")
        if isinstance(span, bool) or not isinstance(span, int) or span <= 0:
            raise _error('"time_span" must be a positive integer')
        if any(v["cluster_id"] == cluster["id"] and v["name"] == name for v in self.views):
            raise _error(f"View with name {name} already exists in cluster {cluster['id']}", code="VIEW_DUPLICATE")
        view = {"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"], "name": name,
                "time_unit": unit, "time_span": span}
        self.views.append(view)
        self.tower.changed()
        return view

    def view(self, view_id: Any) -> Optional[dict[str, Any]]:
        return next((v for v in self.views if v["id"] == view_id), None)

    def graphs_of(self, view_id: str) -> list[dict[str, Any]]:
        return [g for g in self.graphs if g["view_id"] == view_id]

    # -- graphs --------------------------------------------------------------------------
    def create_graph(self, params: Any, cluster_objects: dict[str, set[str]]) -> dict[str, Any]:
        """``cluster_objects`` maps a cluster id to the tower ids of its cluster,
        hosts and VMs (what ``connect_id`` may name)."""
        if not isinstance(params, dict):
            raise _error("each graph must be an object")
        cluster = self.tower.connected_cluster(_str(params, "cluster_id"))
        view = self.view(_str(params, "view_id"))
        if view is None:
            raise _error(f"View {params.get('view_id')} not found", status=404, code="VIEW_NOT_FOUND")
        if view["cluster_id"] != cluster["id"]:
            raise _error(f"View {view['id']} does not belong to cluster {cluster['id']}")
        graph_type = params.get("type")
        if graph_type not in GRAPH_TYPES:
            raise _error(f'"type" must be one of {", ".join(GRAPH_TYPES)}')
        title = _str(params, "title")
        resource_type = _str(params, "resource_type")
        metric_name = _str(params, "metric_name")
        metric_type = params.get("metric_type", "NORMAL")
        if metric_type not in METRIC_TYPES:
            raise _error(f'"metric_type" must be one of {", ".join(METRIC_TYPES)}')
        count = params.get("metric_count", 0)
        if isinstance(count, str) and count.isdigit():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _error('"metric_count" must be a non-negative integer')
        if metric_type != "NORMAL" and count <= 0:
            raise _error(f'"metric_count" must be positive for metric_type {metric_type}')
        connect = params.get("connect_id")
        if not isinstance(connect, list) or not all(isinstance(c, str) for c in connect):
            raise _error('"connect_id" must be a list of ids')
        if metric_type == "NORMAL" and not connect:
            raise _error('"connect_id" must not be empty for a NORMAL graph')
        known = cluster_objects.get(cluster["id"], set())
        unknown = [c for c in connect if c not in known]
        if unknown:
            raise _error(f"connect_id {unknown[0]} is not an object of cluster {cluster['id']}",
                         code="CONNECT_ID_NOT_FOUND")
        network = params.get("network")
        if network is not None and network not in NETWORK_TYPES:
            raise _error(f'"network" must be one of {", ".join(NETWORK_TYPES)}')
        instance_ids = params.get("instance_ids") or []
        if not isinstance(instance_ids, list) or not all(isinstance(i, str) for i in instance_ids):
            raise _error('"instance_ids" must be a list of strings')
        graph = {"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"], "view_id": view["id"],
                 "title": title, "type": graph_type, "resource_type": resource_type,
                 "metric_name": metric_name, "metric_type": metric_type, "metric_count": count,
                 "connect_id": list(connect), "instance_ids": list(instance_ids), "network": network,
                 "service": params.get("service")}
        self.graphs.append(graph)
        self.tower.changed()
        return graph

    def to_state(self) -> dict[str, Any]:
        return {"views": self.views, "graphs": self.graphs}

    def load_state(self, state: dict[str, Any]) -> None:
        self.views = list(state.get("views") or [])
        self.graphs = list(state.get("graphs") or [])
