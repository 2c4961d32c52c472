"""CloudTower REST front-end: ``POST /v2/api/<operation>`` (CloudTower 4.x SDK API).

Wire format (official OpenAPI spec 4.6.0, API-FACTS):

* every call is ``POST`` with a JSON body, reads included; responses carry an
  ``x-tower-request-id`` header;
* ``Authorization: <token>`` (``Bearer <token>`` accepted too) on everything
  but ``/login``; a missing or unknown token is answered ``401``;
* errors: ``{"message", "status", "path", "code"}`` with HTTP 400/404;
* list reads take ``{where, orderBy, first, skip}`` (:mod:`voyager.sim.tower.where`);
* mutations are specified as arrays in, arrays out (``[{task_id, data}]``);
  a bare object is answered with a bare ``{task_id, data}``, as captured clients
  observed. Array items are applied in order; the first refused item stops the
  call (earlier items stay applied).
"""
from __future__ import annotations

import uuid
from typing import Any, Callable

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.common import TowerError
from voyager.sim.tower.schema import FIELDS
from voyager.sim.tower.validation import check_request
from voyager.sim.tower.views import TowerView
from voyager.sim.tower.where import WhereError, query
from voyager.sim.web.frontend import BadJson, Frontend, drain, json_response

REQUEST_ID_HEADER = "x-tower-request-id"

_LISTS = {
    "get-organizations": ("organizations", "organization"),
    "get-datacenters": ("datacenters", "datacenter"),
    "get-clusters": ("clusters", "cluster"),
    "get-cluster-settingses": ("clusters", "cluster_settings"),
    "get-tasks": ("tasks", "task"),
    "get-views": ("views", "view"),
    "get-graphs": ("graphs", "graph"),
    "get-zone-topoes": ("zones", "zone_topo"),
    "get-rack-topoes": ("racks", "rack_topo"),
    "get-brick-topoes": ("bricks", "brick_topo"),
    "get-node-topoes": ("nodes", "node_topo"),
}
_DERIVED = ("get-hosts", "get-vdses", "get-vlans", "get-vms")
_READS = ("get-ntp-service-url",)  # one object, not a list
_MUTATIONS = ("create-datacenter", "connect-cluster", "create-view", "create-graph", "create-rack-topo",
              "create-brick-topo", "move-node-topo")


# connect-cluster answers the cluster as the capture of walkthrough step 05 shows it: the
# fields the spec requires of a Cluster, plus hypervisor and labels (no local_id, settings…).
CONNECT_ANSWER = ("id", "name", "hypervisor", "version", "architecture", "connect_state", "dns", "ip",
                  "ntp_servers", "recommended_cpu_models", "total_cpu_models", "type", "labels")


def _rules() -> list[Rule]:
    ops = ["login", *_LISTS, *_DERIVED, *_READS, *_MUTATIONS]
    return [Rule(f"/v2/api/{op}", methods=["POST"], endpoint="op_" + op.replace("-", "_")) for op in ops]


def multipart_form(request: Request) -> dict[str, str]:
    """A ``multipart/form-data`` request as its request schema sees it: the form fields, and
    each file part as a string (its file name; the spec types file parts ``string``/``binary``)."""
    if not (request.mimetype or "").startswith("multipart/form-data"):
        drain(request)
        raise TowerError("the request body must be multipart/form-data", code="VALIDATION")
    form = dict(request.form.items())
    for name, upload in request.files.items():
        form[name] = upload.filename or name
    return form


def error_body(path: str, exc: TowerError) -> dict[str, Any]:
    body: dict[str, Any] = {"message": exc.message, "status": exc.status, "path": path}
    if exc.code:
        body["code"] = exc.code
    return body


class TowerRestFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map(_rules())

    @property
    def tower(self):
        return self.world.tower

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, request: Request, fn: Callable[[Any], Any], *, auth: bool = True,
              multipart: bool = False) -> Response:
        """Authenticate, parse the body (JSON, or with ``multipart`` the form of
        :func:`multipart_form`), check it against the operation's request schema, run
        ``fn(body)`` and render its answer or its TowerError."""
        headers = {REQUEST_ID_HEADER: str(uuid.uuid4())}
        with self.world.lock:
            try:
                if auth and self.tower.authenticate(request.headers.get("Authorization")) is None:
                    drain(request)
                    raise TowerError("Unauthorized: missing or invalid token", status=401, code="UNAUTHORIZED")
                try:
                    body = multipart_form(request) if multipart else self.json_body(request, default={})
                except BadJson as exc:
                    raise TowerError(f"request body is not valid JSON ({exc})", code="INVALID_JSON") from None
                check_request(request.path.rsplit("/", 1)[-1], body)
                result = fn(body)
                self.tower.save_new_ids()
            except WhereError as exc:
                result, status = error_body(request.path, TowerError(str(exc), code="INVALID_WHERE")), 400
            except TowerError as exc:
                result, status = error_body(request.path, exc), exc.status
            else:
                status = 200
        return json_response(result, status, headers)

    @staticmethod
    def _mirror(body: Any, one: Callable[[Any], dict[str, Any]]) -> Any:
        if isinstance(body, list):
            return [one(item) for item in body]
        if isinstance(body, dict):
            return one(body)
        raise TowerError("request body must be an array of objects (or one object)", code="VALIDATION")

    def _list(self, op: str, body: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise TowerError("request body must be an object {where, orderBy, first, skip}", code="VALIDATION")
        unknown = set(body) - {"where", "orderBy", "first", "skip", "after", "before", "last"}
        if unknown:
            raise TowerError(f'property "{sorted(unknown)[0]}" is not allowed', code="VALIDATION")
        return query(items, body, FIELDS[op])

    # -- login -----------------------------------------------------------------------------
    def op_login(self, request: Request, machine) -> Response:
        def run(body: Any) -> dict[str, Any]:
            if not isinstance(body, dict):
                raise TowerError("request body must be an object", code="VALIDATION")
            for field in ("username", "password"):
                if not isinstance(body.get(field), str):
                    raise TowerError(f'"{field}" is required', code="VALIDATION")
            token = self.tower.login(body["username"], body["password"], body.get("source", "LOCAL"))
            return {"data": {"token": token}, "task_id": None}

        return self._call(request, run, auth=False)

    # -- lists -----------------------------------------------------------------------------
    def _stored_list(self, request: Request, op: str) -> Response:
        source, render = _LISTS[op]

        def run(body: Any) -> list[dict[str, Any]]:
            self.tower.advance()
            view = TowerView(self.tower)
            owner = {"views": self.tower.dashboards, "graphs": self.tower.dashboards, "zones": self.tower.topo,
                     "racks": self.tower.topo, "bricks": self.tower.topo, "nodes": self.tower.topo}
            records = getattr(owner.get(source, self.tower), source)
            return self._list(op, body, [getattr(view, render)(r) for r in records])

        return self._call(request, run)

    def _derived_list(self, request: Request, kind: str) -> Response:
        def run(body: Any) -> list[dict[str, Any]]:
            self.tower.advance()
            return self._list(f"get-{kind}", body, getattr(TowerView(self.tower), kind)())

        return self._call(request, run)

    def op_get_organizations(self, request, machine):
        return self._stored_list(request, "get-organizations")

    def op_get_datacenters(self, request, machine):
        return self._stored_list(request, "get-datacenters")

    def op_get_clusters(self, request, machine):
        return self._stored_list(request, "get-clusters")

    def op_get_cluster_settingses(self, request, machine):
        return self._stored_list(request, "get-cluster-settingses")

    def op_get_ntp_service_url(self, request, machine):
        """``{ntp_service_url}``: the servers as ``updateCloudTowerNtpUrl`` answers them (``;``-joined)."""
        return self._call(request, lambda body: {"ntp_service_url": ";".join(self.tower.ntp_servers)})

    def op_get_tasks(self, request, machine):
        return self._stored_list(request, "get-tasks")

    def op_get_views(self, request, machine):
        return self._stored_list(request, "get-views")

    def op_get_graphs(self, request, machine):
        return self._stored_list(request, "get-graphs")

    def op_get_zone_topoes(self, request, machine):
        return self._stored_list(request, "get-zone-topoes")

    def op_get_rack_topoes(self, request, machine):
        return self._stored_list(request, "get-rack-topoes")

    def op_get_brick_topoes(self, request, machine):
        return self._stored_list(request, "get-brick-topoes")

    def op_get_node_topoes(self, request, machine):
        return self._stored_list(request, "get-node-topoes")

    def op_get_hosts(self, request, machine):
        return self._derived_list(request, "hosts")

    def op_get_vdses(self, request, machine):
        return self._derived_list(request, "vdses")

    def op_get_vlans(self, request, machine):
        return self._derived_list(request, "vlans")

    def op_get_vms(self, request, machine):
        return self._derived_list(request, "vms")

    # -- mutations ---------------------------------------------------------------------------
    def op_create_datacenter(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            dc = self.tower.create_datacenter(params)
            return {"task_id": None, "data": TowerView(self.tower).datacenter(dc)}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_connect_cluster(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            view = TowerView(self.tower)  # taken first: rendering must not advance the new task
            cluster, task_id = self.tower.connect_cluster(params)
            rendered = view.cluster(cluster)
            return {"task_id": task_id, "data": {key: rendered[key] for key in CONNECT_ANSWER}}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_create_view(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            view = self.tower.dashboards.create_view(params)
            return {"task_id": None, "data": TowerView(self.tower).view(view)}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_create_graph(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            view = TowerView(self.tower)
            graph = self.tower.dashboards.create_graph(params, view.cluster_objects())
            return {"task_id": None, "data": view.graph(graph)}

        return self._call(request, lambda body: self._mirror(body, one))

    def _topo_task(self, key: str, record: dict[str, Any], resource_type: str, mutation: str) -> str:
        task = self.tower.create_task(key, f"{mutation} {record['name']}", cluster_id=record["cluster_id"],
                                      resource_type=resource_type, resource_id=record["id"],
                                      resource_mutation=mutation)
        return task["id"]

    def op_create_rack_topo(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            rack = self.tower.topo.create_rack(params)
            task_id = self._topo_task("CREATE_RACK_TOPO", rack, "RackTopo", "createRackTopo")
            return {"task_id": task_id, "data": TowerView(self.tower).rack_topo(rack)}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_create_brick_topo(self, request, machine):
        def one(params: Any) -> dict[str, Any]:
            brick = self.tower.topo.create_brick(params)
            task_id = self._topo_task("CREATE_BRICK_TOPO", brick, "BrickTopo", "createBrickTopo")
            return {"task_id": task_id, "data": TowerView(self.tower).brick_topo(brick)}

        return self._call(request, lambda body: self._mirror(body, one))

    def op_move_node_topo(self, request, machine):
        def run(body: Any) -> list[dict[str, Any]]:
            if not isinstance(body, list):
                raise TowerError("request body must be an array of {where, data}", code="VALIDATION")
            out = []
            for item in body:
                node = self.tower.topo.move_node(item)
                task_id = self._topo_task("MOVE_NODE_TOPO", node, "NodeTopo", "moveNodeTopo")
                out.append({"task_id": task_id, "data": TowerView(self.tower).node_topo(node)})
            return out

        return self._call(request, run)


class NotServedFrontend(Frontend):
    """Every CloudTower REST operation no other front-end serves: a 404 ErrorBody
    (registered last in ``web.server.TOWER_FRONTENDS``)."""
    kinds = ("tower",)
    url_map = Map([Rule("/v2/api/<path:operation>", methods=["POST"], endpoint="op_not_served")])

    def op_not_served(self, request: Request, machine, operation: str) -> Response:
        """An operation of the real API the simulator does not serve: a 404 ErrorBody."""
        drain(request)
        exc = TowerError(f"Cannot POST {request.path}: operation {operation} is not served by the simulator",
                         status=404, code="NOT_FOUND")
        return json_response(error_body(request.path, exc), 404, {REQUEST_ID_HEADER: str(uuid.uuid4())})


FRONTENDS = [TowerRestFrontend]
NOT_SERVED = [NotServedFrontend]
