"""CloudTower rack topology: zones, racks, bricks (chassis) and node positions.

When a cluster connects it gets one cluster topology, one default zone and a
node topology per host (not placed in any brick yet). Walkthrough step 06
("配置机架拓扑") then creates racks (``/create-rack-topo``), bricks in racks
(``/create-brick-topo``) and moves each node into its brick
(``/move-node-topo``). Rules:

* rack and brick names are unique within a cluster ("already exists");
* a brick occupies units ``position .. position + height - 1`` of its rack,
  which must lie within the rack's height and not overlap another brick;
* a node position ``{row, column}`` lies within the brick's capacity
  (default 1 x 1) and is not taken by another node.
"""
from __future__ import annotations

from typing import Any, Optional

from voyager.sim.tower.common import TowerError, cuid

MAX_RACK_HEIGHT = 60


def _error(message: str, *, status: int = 400, code: str = "VALIDATION"):
    return TowerError(message, status=status, code=code)


def _int(params: dict[str, Any], field: str, *, minimum: int = 1, maximum: Optional[int] = None) -> int:
    value = params.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _error(f'"{field}" must be an integer {bound}')
    return value


def _name(params: dict[str, Any]) -> str:
    value = params.get("name")
    if not isinstance(value, str) or not value.strip():
        raise _error('"name" is required and must be a non-empty string')
    return value


class Topology:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.zones: list[dict[str, Any]] = []
        self.racks: list[dict[str, Any]] = []
        self.bricks: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []

    def cluster_connected(self, cluster: dict[str, Any]) -> None:
        if any(z["cluster_id"] == cluster["id"] for z in self.zones):
            return
        info = self.tower.cluster_info() or {}
        self.zones.append({"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"],
                           "cluster_topo_id": cuid()})
        for host in info.get("hosts", []):
            self.nodes.append({"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"],
                               "host_local_id": host["uuid"], "name": host["name"],
                               "brick_topo_id": None, "position": {"row": None, "column": None}})

    # -- lookups -------------------------------------------------------------------------
    def zone(self, zone_id: Any) -> Optional[dict[str, Any]]:
        return next((z for z in self.zones if z["id"] == zone_id), None)

    def zone_of_cluster(self, cluster_id: str) -> Optional[dict[str, Any]]:
        return next((z for z in self.zones if z["cluster_id"] == cluster_id), None)

    def rack(self, rack_id: Any) -> Optional[dict[str, Any]]:
        return next((r for r in self.racks if r["id"] == rack_id), None)

    def brick(self, brick_id: Any) -> Optional[dict[str, Any]]:
        return next((b for b in self.bricks if b["id"] == brick_id), None)

    def node(self, where: dict[str, Any]) -> Optional[dict[str, Any]]:
        for node in self.nodes:
            if ("id" in where and node["id"] == where["id"]) or (
                    "local_id" in where and node["local_id"] == where["local_id"]):
                return node
        return None

    # -- mutations -----------------------------------------------------------------------
    def create_rack(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise _error("each rack must be an object")
        cluster = self.tower.connected_cluster(params.get("cluster_id"))
        zone = self.zone(params.get("zone_topo_id"))
        if zone is None or zone["cluster_id"] != cluster["id"]:
            raise _error(f"ZoneTopo {params.get('zone_topo_id')} not found in cluster {cluster['id']}",
                         status=404, code="ZONE_TOPO_NOT_FOUND")
        name = _name(params)
        height = _int(params, "height", maximum=MAX_RACK_HEIGHT)
        if any(r["cluster_id"] == cluster["id"] and r["name"] == name for r in self.racks):
            raise _error(f"RackTopo with name {name} already exists", code="RACK_TOPO_DUPLICATE")
        rack = {"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"], "zone_topo_id": zone["id"],
                "name": name, "height": height}
        self.racks.append(rack)
        self.tower.changed()
        return rack

    def create_brick(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise _error("each brick must be an object")
        cluster = self.tower.connected_cluster(params.get("cluster_id"))
        name = _name(params)
        height = _int(params, "height", maximum=MAX_RACK_HEIGHT)
        position = _int(params, "position", maximum=MAX_RACK_HEIGHT)
        rack_id = params.get("rack_topo_id")
        if rack_id is not None:
            rack = self.rack(rack_id)
            if rack is None or rack["cluster_id"] != cluster["id"]:
                raise _error(f"RackTopo {rack_id} not found in cluster {cluster['id']}", status=404,
                             code="RACK_TOPO_NOT_FOUND")
            if position + height - 1 > rack["height"]:
                raise _error(f"Brick {name} (position {position}, height {height}) does not fit in rack "
                             f"{rack['name']} of height {rack['height']}", code="BRICK_OUT_OF_RACK")
            for other in self.bricks:
                if other["rack_topo_id"] == rack_id and not (
                        position + height - 1 < other["position"]
                        or other["position"] + other["height"] - 1 < position):
                    raise _error(f"Brick {name} overlaps brick {other['name']} in rack {rack['name']}",
                                 code="BRICK_OVERLAP")
        if any(b["cluster_id"] == cluster["id"] and b["name"] == name for b in self.bricks):
            raise _error(f"BrickTopo with name {name} already exists", code="BRICK_TOPO_DUPLICATE")
        capacity = params.get("capacity") or {"row": 1, "column": 1}
        if not isinstance(capacity, dict):
            raise _error('"capacity" must be an object {row, column}')
        capacity = {"row": _int(capacity, "row", maximum=16), "column": _int(capacity, "column", maximum=16)}
        brick = {"id": cuid(), "local_id": cuid(), "cluster_id": cluster["id"], "rack_topo_id": rack_id,
                 "name": name, "height": height, "position": position, "capacity": capacity}
        self.bricks.append(brick)
        self.tower.changed()
        return brick

    def move_node(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("where"), dict) or not isinstance(
                item.get("data"), dict):
            raise _error("each item must be {where: {id}, data: {...}}")
        node = self.node(item["where"])
        if node is None:
            raise _error(f"NodeTopo {item['where']} not found", status=404, code="NODE_TOPO_NOT_FOUND")
        data = item["data"]
        unknown = set(data) - {"brick_topo_id", "position", "cluster_topo_id"}
        if unknown:
            raise _error(f'Field "{sorted(unknown)[0]}" is not defined by type "NodeTopoUpdationParamsData"')
        brick_id = data.get("brick_topo_id")
        if brick_id is None:
            zone = self.zone_of_cluster(node["cluster_id"])
            if data.get("cluster_topo_id") not in (None, zone and zone["cluster_topo_id"]):
                raise _error(f"ClusterTopo {data.get('cluster_topo_id')} not found", status=404,
                             code="CLUSTER_TOPO_NOT_FOUND")
            node["brick_topo_id"] = None
            node["position"] = {"row": None, "column": None}
        else:
            brick = self.brick(brick_id)
            if brick is None or brick["cluster_id"] != node["cluster_id"]:
                raise _error(f"BrickTopo {brick_id} not found in the node's cluster", status=404,
                             code="BRICK_TOPO_NOT_FOUND")
            pos = data.get("position")
            if not isinstance(pos, dict):
                raise _error('"position" {row, column} is required when moving into a brick')
            row = _int(pos, "row", maximum=brick["capacity"]["row"])
            column = _int(pos, "column", maximum=brick["capacity"]["column"])
            for other in self.nodes:
                if other is not node and other["brick_topo_id"] == brick_id and other["position"] == {
                        "row": row, "column": column}:
                    raise _error(f"Position ({row}, {column}) of brick {brick['name']} is taken by {other['name']}",
                                 code="NODE_POSITION_TAKEN")
            node["brick_topo_id"] = brick_id
            node["position"] = {"row": row, "column": column}
        self.tower.changed()
        return node

    def to_state(self) -> dict[str, Any]:
        return {"zones": self.zones, "racks": self.racks, "bricks": self.bricks, "nodes": self.nodes}

    def load_state(self, state: dict[str, Any]) -> None:
        self.zones = list(state.get("zones") or [])
        self.racks = list(state.get("racks") or [])
        self.bricks = list(state.get("bricks") or [])
        self.nodes = list(state.get("nodes") or [])
