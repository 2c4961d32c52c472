"""CloudTower GraphQL front-end: ``POST /api`` with ``{operationName, variables, query}``.

The query is parsed, validated and executed by graphql-core against the schema of
:mod:`voyager.sim.tower.graphql_schema`; the resolvers below read and change the
CloudTower backend (``world.tower``). So the selection set decides the answer,
``__typename`` works, variables are typed, and an unknown field or argument or a variable
of the wrong type is an error. Errors follow Apollo Server (which CloudTower runs): HTTP
200 with ``{"data": null, "errors": [{"message", "locations"?, "path"?, "extensions":
{"code"}}]}``; codes ``GRAPHQL_PARSE_FAILED``, ``GRAPHQL_VALIDATION_FAILED``,
``BAD_USER_INPUT`` (variables), ``UNAUTHENTICATED``, ``BAD_REQUEST`` (the HTTP body) and
the backend's own codes. Two habits of the real server are kept: ``__typename`` keys
inside variables (Apollo Client sends fetched objects back) are ignored, and numbers are
written as JavaScript writes them (``80``, not ``80.0``).

``createUser``, ``userCreated``, ``organizations`` and — until an organization exists —
``createOrganization`` need no token; every other field needs ``Authorization: <token>``
from ``/v2/api/login`` (checked before execution, one error for the whole request). A
GraphQL multipart request (``multipart/form-data`` with an ``operations`` field, as step
07's ``createUploadTask`` is captured) is read like a JSON body.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from graphql import GraphQLError, execute, get_operation_ast, parse, validate
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.common import TowerError, iso
from voyager.sim.tower.graphql_schema import schema
from voyager.sim.tower.views import TowerView
from voyager.sim.tower.where import WhereError, query as where_query
from voyager.sim.web.frontend import BadJson, Frontend, json_response

UNAUTHENTICATED = TowerError("Not Authorised!", code="UNAUTHENTICATED")
PUBLIC_FIELDS = frozenset({"createUser", "userCreated", "organizations", "__typename", "__schema", "__type"})


def graphql_error(exc: TowerError) -> dict[str, Any]:
    err: dict[str, Any] = {"message": exc.message}
    if exc.code:
        err["extensions"] = {"code": exc.code}
    return {"data": None, "errors": [err]}


def _format(error: GraphQLError, default_code: str) -> dict[str, Any]:
    out = error.formatted
    original = error.original_error
    if isinstance(original, TowerError):
        code = original.code or "INTERNAL_SERVER_ERROR"
    elif isinstance(original, WhereError):
        code = "BAD_USER_INPUT"
    elif error.path is None:  # before execution: parsing, validation, coercing variables
        code = default_code
    else:
        code = "INTERNAL_SERVER_ERROR"
    out["extensions"] = {**(out.get("extensions") or {}), "code": code}
    return out


def _errors(errors: list[GraphQLError], default_code: str) -> dict[str, Any]:
    return {"data": None, "errors": [_format(e, default_code) for e in errors]}


def _without_typename(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_typename(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [_without_typename(v) for v in value]
    return value


def js_numbers(value: Any) -> Any:
    """Integral floats as integers, as ``JSON.stringify`` writes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [js_numbers(v) for v in value]
    return value


def _root_fields(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    pending = list(operation.selection_set.selections)
    while pending:
        node = pending.pop()
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            pending.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            pending.extend(fragments[node.name.value].selection_set.selections)
    return names


class TowerGraphqlFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map([Rule("/api", methods=["POST"], endpoint="graphql")])

    @property
    def tower(self):
        return self.world.tower

    # -- dispatch ----------------------------------------------------------------------------
    def graphql(self, request: Request, machine) -> Response:
        with self.world.lock:
            try:
                result = self._execute(request)
            except TowerError as exc:
                result = graphql_error(exc)
        return json_response(js_numbers(result))

    def _execute(self, request: Request) -> dict[str, Any]:
        try:
            body = self._operations(request)
        except BadJson as exc:
            raise TowerError(f"POST body is not valid JSON ({exc})", code="BAD_REQUEST") from None
        if not isinstance(body, dict):
            raise TowerError("POST body must be an object {operationName, variables, query}", code="BAD_REQUEST")
        text, name, variables = body.get("query"), body.get("operationName"), body.get("variables")
        if not isinstance(text, str) or not text.strip():
            raise TowerError("Must provide query string.", code="BAD_REQUEST")
        if name is not None and not isinstance(name, str):
            raise TowerError("operationName must be a string.", code="BAD_REQUEST")
        variables = {} if variables is None else variables
        if not isinstance(variables, dict):
            raise TowerError("Variables must be provided as an Object where each property is a variable value.",
                             code="BAD_REQUEST")
        try:
            document = parse(text)
        except GraphQLError as exc:
            return _errors([exc], "GRAPHQL_PARSE_FAILED")
        problems = validate(schema(), document)
        if problems:
            return _errors(problems, "GRAPHQL_VALIDATION_FAILED")
        operation = get_operation_ast(document, name)
        if operation is None:
            message = f"Unknown operation named '{name}'." if name else "Must provide operation name."
            raise TowerError(message, code="GRAPHQL_VALIDATION_FAILED")
        fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
        if self._needs_token(_root_fields(operation, fragments)) and \
                self.tower.authenticate(request.headers.get("Authorization")) is None:
            raise UNAUTHENTICATED
        self.tower.advance()
        result = execute(schema(), document, root_value=Resolvers(self.tower), operation_name=name,
                         variable_values=_without_typename(variables))
        self.tower.save_new_ids()
        if result.errors:
            return {**_errors(result.errors, "BAD_USER_INPUT"), "data": result.data}
        return {"data": result.data}

    def _needs_token(self, fields: set[str]) -> bool:
        private = fields - PUBLIC_FIELDS
        if private == {"createOrganization"}:
            return self.tower.is_setup
        return bool(private)

    def _operations(self, request: Request) -> Any:
        """The JSON body, or the ``operations`` field of a GraphQL multipart request
        (graphql-multipart-request-spec; step 07's upload is captured as multipart/form-data)."""
        if request.mimetype == "multipart/form-data":
            text = request.form.get("operations")
            if text is None:
                raise BadJson("a multipart GraphQL request needs an operations field")
            try:
                return json.loads(text)
            except ValueError as exc:
                raise BadJson(f"invalid JSON: {exc.__class__.__name__}") from None
        return self.json_body(request)


def _page(items: list[dict[str, Any]], where: Any = None, order_by: Optional[str] = None,
          skip: Optional[int] = None, first: Optional[int] = None) -> list[dict[str, Any]]:
    return where_query(items, {"where": where, "orderBy": order_by, "skip": skip, "first": first})


class Resolvers:
    """The root value: one method per field of ``Query`` and ``Mutation`` (graphql-core's
    default resolver calls ``root.<field>(info, **arguments)``); objects are plain dicts
    whose keys are the schema's field names."""

    def __init__(self, tower) -> None:
        self.tower = tower

    # -- setup (step 04) ----------------------------------------------------------------------
    def createUser(self, info, data: dict[str, Any], effect: Optional[dict[str, Any]] = None):  # noqa: N802
        user = self.tower.create_root_user(data.get("password"))
        return {"id": user["id"], "name": data["name"], "username": data["username"],
                "display_username": data["display_username"], "source": data["source"],
                "role": data.get("role"), "internal": False}

    def userCreated(self, info):  # noqa: N802
        return {"created": self.tower.user_created}

    def createOrganization(self, info, data: dict[str, Any]):  # noqa: N802
        org = self.tower.create_organization(data)
        return self._organization(org)

    def organizations(self, info, where=None, orderBy=None, skip=None, first=None):  # noqa: N803
        return _page([self._organization(o) for o in self.tower.organizations], where, orderBy, skip, first)

    def _organization(self, org: dict[str, Any]) -> dict[str, Any]:
        datacenters = [{"id": d["id"], "name": d["name"]} for d in self.tower.datacenters
                       if d.get("organization_id") == org["id"]]
        return {"id": org["id"], "name": org["name"], "datacenters": datacenters}

    def updateCloudTowerNtpUrl(self, info, data: dict[str, Any]):  # noqa: N802
        return {"ntp_service_url": self.tower.update_ntp(data)}

    def deploys(self, info, skip=None, first=None):
        lic = self.tower.deployed_license()
        deploy = {"id": lic["deploy_id"], "license": {
            "id": lic["id"], "license_serial": lic["serial"], "maintenance_end_date": None,
            "maintenance_start_date": None, "max_chunk_num": 0, "max_cluster_num": 0, "max_vm_num": 0,
            "used_vm_num": 0, "sign_date": iso(lic["sign_date"]), "expire_date": iso(lic["expire_date"]),
            "software_edition": "ENTERPRISE", "type": "TRIAL", "vendor": "SMTX"}}
        return _page([deploy], skip=skip, first=first)

    # -- cluster settings and alert rules (step 06) --------------------------------------------
    def updateClusterSettings(self, info, where: dict[str, Any], data: dict[str, Any]):  # noqa: N802
        settings = self.tower.update_cluster_settings(where["id"], data)
        cluster = self.tower.cluster_by_settings(where["id"])
        return {**settings, "cluster": TowerView(self.tower).nested_cluster(cluster["id"])}

    def _rules(self) -> list[dict[str, Any]]:
        view = TowerView(self.tower)
        return [_render_rule(r, view) for r in self.tower.alerts.all()]

    def globalAlertRules(self, info, where=None, orderBy=None, skip=None, first=None):  # noqa: N802,N803
        return _page(self._rules(), where, orderBy, skip, first)

    def globalAlertRulesConnection(self, info, where=None, orderBy=None, skip=None, first=None):  # noqa: N802,N803
        return {"aggregate": {"count": len(_page(self._rules(), where))}}

    def updateGlobalAlertRule(self, info, where: dict[str, Any], data: dict[str, Any]):  # noqa: N802
        return _render_rule(self.tower.alerts.update(where, data), TowerView(self.tower))

    # -- packages (step 07) ----------------------------------------------------------------------
    def createUploadTask(self, info, data: dict[str, Any]):  # noqa: N802
        task = self.tower.packages.create_upload_task(data)
        return {**task, "finished_at": task.get("finished_at")}


def _render_rule(rule: dict[str, Any], view: TowerView) -> dict[str, Any]:
    alert_rules = [{"id": a["id"], "customized": a["customized"], "disabled": a["disabled"],
                    "thresholds": a["thresholds"], "cluster": view.nested_cluster(a["cluster_id"])}
                   for a in rule["alert_rules"]]
    return {"id": rule["id"], "name": rule["name"], "message": rule["message"], "object": rule["object"],
            "disabled": rule["disabled"], "thresholds": rule["thresholds"], "alert_rules": alert_rules}


FRONTENDS = [TowerGraphqlFrontend]
