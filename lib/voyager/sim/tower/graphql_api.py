"""CloudTower GraphQL front-end: ``POST /api`` with ``{operationName, variables, query}``.

The simulator does not parse GraphQL: it dispatches on ``operationName`` (the
operations of the walkthrough), checks that ``query`` declares that operation,
validates ``variables`` per operation and answers the fields the walkthrough's
queries select (with ``__typename``). Errors follow the GraphQL convention:
HTTP 200 with ``{"data": null, "errors": [{"message", "extensions": {"code"}}]}``.

``createRootUser``, ``checkTowerIsSetup`` and — until an organization exists —
``createOrganization`` need no token; everything else needs
``Authorization: <token>`` from ``/v2/api/login``. A GraphQL multipart request
(``multipart/form-data`` with an ``operations`` field, as step 07's
``createUploadTask`` is captured) is read like a JSON body.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.models import TowerError, iso
from voyager.sim.tower.views import TowerView
from voyager.sim.tower.where import WhereError, query as where_query
from voyager.sim.web.frontend import BadJson, Frontend, json_response

UNAUTHENTICATED = TowerError("Not Authorised!", code="UNAUTHENTICATED")


def graphql_error(exc: TowerError) -> dict[str, Any]:
    err: dict[str, Any] = {"message": exc.message}
    if exc.code:
        err["extensions"] = {"code": exc.code}
    return {"data": None, "errors": [err]}


def _thresholds(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"value": t["value"], "severity": t["severity"], "__typename": "Thresholds"} for t in items]


class TowerGraphqlFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map([Rule("/api", methods=["POST"], endpoint="graphql")])

    def __init__(self, world) -> None:
        super().__init__(world)
        # operationName -> (handler, needs a token)
        self.operations: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], Callable[[], bool]]] = {
            "createRootUser": (self.create_root_user, lambda: False),
            "createOrganization": (self.create_organization, lambda: self.tower.is_setup),
            "checkTowerIsSetup": (self.check_tower_is_setup, lambda: False),
            "updateCloudTowerNtpUrl": (self.update_ntp, lambda: True),
            "deployedLicense": (self.deployed_license, lambda: True),
            "updateClusterSettings": (self.update_cluster_settings, lambda: True),
            "globalAlertRules": (self.global_alert_rules, lambda: True),
            "updateGlobalAlertRule": (self.update_global_alert_rule, lambda: True),
            "createUploadTask": (self.create_upload_task, lambda: True),
        }

    @property
    def tower(self):
        return self.world.tower

    # -- dispatch ----------------------------------------------------------------------------
    def graphql(self, request: Request, machine) -> Response:
        with self.world.lock:
            try:
                result = self._execute(request)
            except (TowerError, WhereError) as exc:
                err = exc if isinstance(exc, TowerError) else TowerError(str(exc), code="BAD_USER_INPUT")
                return json_response(graphql_error(err))
        return json_response({"data": result})

    def _execute(self, request: Request) -> dict[str, Any]:
        try:
            body = self._operations(request)
        except BadJson as exc:
            raise TowerError(f"POST body is not valid JSON ({exc})", code="BAD_REQUEST") from None
        if not isinstance(body, dict):
            raise TowerError("POST body must be an object {operationName, variables, query}", code="BAD_REQUEST")
        name = body.get("operationName")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise TowerError("Must provide query string.", code="BAD_REQUEST")
        if not isinstance(name, str) or name not in self.operations:
            raise TowerError(f'Unknown operation named "{name}".', code="GRAPHQL_VALIDATION_FAILED")
        if not re.search(rf"\b(query|mutation)\s+{re.escape(name)}\b", text):
            raise TowerError(f'Unknown operation named "{name}".', code="GRAPHQL_VALIDATION_FAILED")
        variables = body.get("variables")
        variables = {} if variables is None else variables
        if not isinstance(variables, dict):
            raise TowerError("Variables must be provided as an Object where each property is a variable value.",
                             code="BAD_USER_INPUT")
        handler, needs_auth = self.operations[name]
        if needs_auth() and self.tower.authenticate(request.headers.get("Authorization")) is None:
            raise UNAUTHENTICATED
        self.tower.advance()
        result = handler(variables)
        self.tower.save_new_ids()
        return result

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

    # -- setup -------------------------------------------------------------------------------
    def create_root_user(self, v: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(v.get("now"), str):
            raise TowerError('Variable "$now" of required type "DateTime!" was not provided.', code="BAD_USER_INPUT")
        user = self.tower.create_root_user(v.get("root_password"))
        return {"createUser": {"id": user["id"], "__typename": "User"}}

    def create_organization(self, v: dict[str, Any]) -> dict[str, Any]:
        org = self.tower.create_organization(v.get("data"))
        return {"createOrganization": {"id": org["id"], "__typename": "Organization"}}

    def check_tower_is_setup(self, v: dict[str, Any]) -> dict[str, Any]:
        orgs = [{"id": o["id"], "name": o["name"], "__typename": "Organization"}
                for o in self.tower.organizations[:1]]
        return {"organizations": orgs,
                "userCreated": {"created": self.tower.user_created, "__typename": "UserCreatedData"}}

    # -- settings ------------------------------------------------------------------------------
    def update_ntp(self, v: dict[str, Any]) -> dict[str, Any]:
        joined = self.tower.update_ntp(v.get("data"))
        return {"updateCloudTowerNtpUrl": {"ntp_service_url": joined, "__typename": "UpdateNtpCommonResult"}}

    def deployed_license(self, v: dict[str, Any]) -> dict[str, Any]:
        lic = self.tower.deployed_license()
        return {"deploys": [{
            "id": lic["deploy_id"],
            "license": {
                "id": lic["id"], "license_serial": lic["serial"], "maintenance_end_date": None,
                "maintenance_start_date": None, "max_chunk_num": 0, "max_cluster_num": 0, "max_vm_num": 0,
                "used_vm_num": 0, "sign_date": iso(lic["sign_date"]), "expire_date": iso(lic["expire_date"]),
                "software_edition": "ENTERPRISE", "type": "TRIAL", "vendor": "SMTX", "__typename": "License",
            },
            "__typename": "Deploy",
        }]}

    def update_cluster_settings(self, v: dict[str, Any]) -> dict[str, Any]:
        where = v.get("where")
        if not isinstance(where, dict) or not isinstance(where.get("id"), str):
            raise TowerError('Variable "$where" of required type "ClusterSettingsWhereUniqueInput!" was not '
                             'provided.', code="BAD_USER_INPUT")
        settings = self.tower.update_cluster_settings(where["id"], v.get("data"))
        return {"updateClusterSettings": {**settings, "__typename": "ClusterSettings"}}

    # -- alert rules -----------------------------------------------------------------------------
    def _render_rule(self, rule: dict[str, Any], view: TowerView) -> dict[str, Any]:
        alert_rules = []
        for a in rule["alert_rules"]:
            cluster = view.nested_cluster(a["cluster_id"])
            alert_rules.append({
                "id": a["id"], "customized": a["customized"], "disabled": a["disabled"],
                "thresholds": _thresholds(a["thresholds"]),
                "cluster": {**cluster, "__typename": "Cluster"} if cluster else None,
                "__typename": "AlertRule",
            })
        return {"message": rule["message"], "thresholds": _thresholds(rule["thresholds"]),
                "object": rule["object"], "id": rule["id"], "disabled": rule["disabled"], "name": rule["name"],
                "alert_rules": alert_rules, "__typename": "GlobalAlertRule"}

    def global_alert_rules(self, v: dict[str, Any]) -> dict[str, Any]:
        view = TowerView(self.tower)
        rendered = [self._render_rule(r, view) for r in self.tower.alerts.all()]
        matching = where_query(rendered, {"where": v.get("where")})
        page = where_query(rendered, {k: v.get(k) for k in ("where", "orderBy", "skip", "first")})
        return {"globalAlertRules": page,
                "globalAlertRulesConnection": {
                    "aggregate": {"count": len(matching), "__typename": "AggregateGlobalAlertRule"},
                    "__typename": "GlobalAlertRuleConnection"}}

    def update_global_alert_rule(self, v: dict[str, Any]) -> dict[str, Any]:
        rule = self.tower.alerts.update(v.get("where"), v.get("data"))
        rendered = self._render_rule(rule, TowerView(self.tower))
        return {"updateGlobalAlertRule": {
            "id": rendered["id"], "disabled": rendered["disabled"], "thresholds": rendered["thresholds"],
            "alert_rules": rendered["alert_rules"], "__typename": "GlobalAlertRule"}}


    # -- packages (step 07) ------------------------------------------------------------------
    def create_upload_task(self, v: dict[str, Any]) -> dict[str, Any]:
        task = self.tower.packages.create_upload_task(v.get("data"))
        return {"createUploadTask": {"id": task["id"], "current_chunk": task["current_chunk"],
                                     "chunk_size": task["chunk_size"], "__typename": "UploadTask"}}


FRONTENDS = [TowerGraphqlFrontend]
