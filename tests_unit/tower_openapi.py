"""The official CloudTower OpenAPI spec (../shared/reference/cloudtower-api-4.6.0-openapi.json)
as the simulator's tests use it (not a test module).

* :func:`load_spec` — the spec, or ``None`` when ../shared is absent;
* :func:`resolve` / :func:`openapi_to_jsonschema` — a schema with its ``$ref``\\ s resolved into a
  JSON-Schema document, ``nullable`` honoured also beside ``allOf``/``$ref`` (which
  ``openapi-schema-validator`` ignores there);
* :func:`served_operations` — every ``/v2/api/<operation>`` the simulator's front-ends serve, read
  from their routing maps (:func:`voyager.sim.web.server.frontend_classes`), never from a hand list;
* :func:`generate_spec_package` — the modules of ``lib/voyager/sim/tower/openapi/`` (the typed
  ``where``/``orderBy`` tables and the request schemas the simulator checks requests against).
  Regenerate with ``PYTHONPATH=lib python tests_unit/tower_openapi.py lib/voyager/sim/tower/openapi``
  (each file is replaced once generated).

``INFERRED`` holds the request and response schemas of the operations the simulator serves that
the 4.6.0 spec does not have ([INF], listed in docs/architecture.md), written in the spec's own
terms (``$ref`` to its components) so that they are checked exactly like the specified ones.
"""
from __future__ import annotations

import json
import pprint
import sys
from pathlib import Path
from typing import Any, Optional

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "cloudtower-api-4.6.0-openapi.json"

# The CloudTower entities whose lists the simulator serves through GraphQL (REST get-* and every
# other where/orderBy input of a served request are added by :func:`where_entities`).
ENTITIES = ("Organization", "Datacenter", "Cluster", "Task", "Host", "Vds", "Vlan", "Vm", "View", "Graph",
            "ZoneTopo", "RackTopo", "BrickTopo", "NodeTopo", "GlobalAlertRule", "AlertRule", "ClusterSettings")

_STRING_OPS = ("", "_contains", "_ends_with", "_gt", "_gte", "_in", "_lt", "_lte", "_not", "_not_contains",
               "_not_ends_with", "_not_in", "_not_starts_with", "_starts_with")
FAMILIES = {  # where-input family code -> the suffixes of a field's filters
    "S": _STRING_OPS,
    "O": ("", "_gt", "_gte", "_in", "_lt", "_lte", "_not", "_not_in"),
    "B": ("", "_not"),
    "E": ("", "_in", "_not", "_not_in"),
    "R": ("",),
    "M": ("_every", "_none", "_some"),
}
_SCALARS = {"string": "String", "integer": "Int", "number": "Float", "boolean": "Boolean"}


_REF = "#/components/schemas/"
_NESTED_ID_NAME = {"type": "object", "required": ["id", "name"], "additionalProperties": False,
                   "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
_CLUSTER_IDS = {"type": "array", "items": {"type": "string"}}
_MAINTENANCE = {"request": {"$ref": _REF + "EnterMaintenanceModeCheckParams"},
                "response": {"type": "array", "items": {"$ref": _REF + "WithTask_Host_"}}}
# [INF] operations the simulator serves that the 4.6.0 spec lacks (docs/architecture.md): entering
# and leaving maintenance mode take the documented precheck's parameters and answer like every
# host mutation; the cluster associations of step 07 are the simulator's own names.
INFERRED: dict[str, dict[str, Any]] = {
    "enter-maintenance-mode": _MAINTENANCE,
    "exit-maintenance-mode": _MAINTENANCE,
    "associate-obs-clusters": {
        "request": {"type": "object", "required": ["application_id", "cluster_ids"],
                    "properties": {"application_id": {"type": "string"}, "cluster_ids": _CLUSTER_IDS}},
        "response": {"type": "object", "required": ["data"], "properties": {
            "task_id": {"type": "string", "nullable": True},
            "data": {"type": "object", "required": ["application_id", "clusters"], "additionalProperties": False,
                     "properties": {"application_id": {"type": "string"},
                                    "clusters": {"type": "array", "items": {"$ref": _REF + "NestedCluster"}}}}}}},
    "associate-backup-service-clusters": {
        "request": {"type": "object", "required": ["backup_service_id", "cluster_ids"],
                    "properties": {"backup_service_id": {"type": "string"}, "cluster_ids": _CLUSTER_IDS}},
        "response": {"type": "object", "required": ["data"], "properties": {
            "task_id": {"type": "string", "nullable": True}, "data": {"$ref": _REF + "BackupService"}}}},
    "get-obs-cluster-associations": {
        "request": {"type": "object", "additionalProperties": False, "properties": {
            "where": {"type": "object", "nullable": True}, "orderBy": {"type": "string", "nullable": True},
            "first": {"type": "integer", "nullable": True}, "skip": {"type": "integer", "nullable": True}}},
        "response": {"type": "array", "items": {
            "type": "object", "required": ["id", "application", "cluster", "status"], "additionalProperties": False,
            "properties": {"id": {"type": "string"}, "application": _NESTED_ID_NAME,
                           "cluster": {"$ref": _REF + "NestedCluster"},
                           "status": {"type": "string", "enum": ["ASSOCIATED", "ASSOCIATING", "FAILED"]}}}}},
}


def load_spec() -> Optional[dict[str, Any]]:
    if not SPEC_PATH.is_file():
        return None
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))



_DROP = ("nullable", "discriminator", "example", "xml", "externalDocs", "deprecated", "readOnly", "writeOnly")


def to_jsonschema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as a JSON-Schema (2020-12) one: ``$ref`` to ``#/$defs/<name>``,
    ``nullable: true`` as ``anyOf [schema, null]`` — also beside ``allOf``/``$ref``, where
    ``openapi-schema-validator`` ignores it."""
    if isinstance(node, list):
        return [to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "$ref":
            out[key] = "#/$defs/" + value.rsplit("/", 1)[-1]
        elif key == "properties":
            out[key] = {name: to_jsonschema(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_jsonschema(value)
        else:
            out[key] = value
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def validator(spec: dict[str, Any], schema: dict[str, Any]):
    """A jsonschema validator of ``schema`` (an OpenAPI schema of ``spec``)."""
    from jsonschema import Draft202012Validator

    defs = spec.setdefault("_jsonschema_defs", {name: to_jsonschema(s)
                                                  for name, s in spec["components"]["schemas"].items()})
    return Draft202012Validator({"$defs": defs, **to_jsonschema(schema)})


def operation(spec: dict[str, Any], op: str) -> dict[str, Any]:
    return spec["paths"][f"/{op}"]["post"]


def in_spec(spec: dict[str, Any], op: str) -> bool:
    return f"/{op}" in spec["paths"]


MULTIPART = "multipart/form-data"


def request_content(spec: dict[str, Any], op: str) -> Optional[str]:
    """``application/json`` or ``multipart/form-data``; None when the operation takes no body."""
    if not in_spec(spec, op):
        return "application/json" if op in INFERRED else None
    body = operation(spec, op).get("requestBody")
    return next(iter(body["content"])) if body else None


def request_schema(spec: dict[str, Any], op: str) -> Optional[dict[str, Any]]:
    """The operation's request body schema (JSON or multipart form); None for an operation that
    takes no body (e.g. ``/get-ntp-service-url``). [INF] operations: their ``INFERRED`` schema."""
    if not in_spec(spec, op):
        return INFERRED[op]["request"] if op in INFERRED else None
    body = operation(spec, op).get("requestBody")
    return body and body["content"][request_content(spec, op)]["schema"]


def response_schema(spec: dict[str, Any], op: str, status: int) -> Optional[dict[str, Any]]:
    if not in_spec(spec, op):
        return INFERRED[op]["response"] if status == 200 and op in INFERRED else None
    answer = operation(spec, op)["responses"].get(str(status))
    return answer and answer["content"]["application/json"]["schema"]


def deref(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its top-level ``$ref``/single ``allOf`` followed."""
    while True:
        name = _ref_name(schema)
        if name is None:
            return schema
        schema = spec["components"]["schemas"][name]

def _ref_name(schema: dict[str, Any]) -> Optional[str]:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _ref_name(schema["allOf"][0])
    return None


def _split(key: str, fields: set[str]) -> tuple[str, str]:
    if key in fields:
        return key, ""
    for suffix in sorted({s for f in FAMILIES.values() for s in f if s}, key=len, reverse=True):
        if key.endswith(suffix) and key[: -len(suffix)] in fields:
            return key[: -len(suffix)], suffix
    raise ValueError(f"cannot place where key {key}")


def where_table(spec: dict[str, Any], entity: str, enums: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    """``{field: (type, family)}`` of ``<entity>WhereInput``; type is a GraphQL scalar name, an enum
    name (added to ``enums``) or, for a relation, the related entity's name."""
    schemas = spec["components"]["schemas"]
    props = schemas[f"{entity}WhereInput"]["properties"]
    fields = set(schemas[entity]["properties"]) | {k for k in props if k not in ("AND", "OR", "NOT")}
    suffixes: dict[str, set[str]] = {}
    for key in props:
        if key in ("AND", "OR", "NOT"):
            continue
        base, suffix = _split(key, set(schemas[entity]["properties"]) or fields)
        suffixes.setdefault(base, set()).add(suffix)
    table: dict[str, tuple[str, str]] = {}
    for base, found in sorted(suffixes.items()):
        family = next(code for code, ops in FAMILIES.items() if set(ops) == found)
        prop = props[base if "" in found else base + sorted(found)[0]]
        name = _ref_name(prop)
        if name and name.endswith("WhereInput"):
            typ = name[: -len("WhereInput")]
        elif name:
            enums[name] = tuple(schemas[name]["enum"])
            typ = name
        else:
            typ = _SCALARS[prop["type"]]
        table[base] = (typ, family)
    return table


def order_fields(spec: dict[str, Any], entity: str) -> tuple[str, ...]:
    values = spec["components"]["schemas"][f"{entity}OrderByInput"]["enum"]
    return tuple(sorted({v.rsplit("_", 1)[0] for v in values}))


def served_operations() -> list[str]:
    """Every CloudTower REST operation (``POST /v2/api/<operation>``) a simulator front-end routes,
    read from the front-ends' routing maps (the catch-all 404 of unserved operations excluded)."""
    from voyager.sim.web.server import frontend_classes

    ops = {rule.rule[len("/v2/api/"):] for cls, kinds in frontend_classes() if "tower" in kinds
           for rule in cls.url_map.iter_rules() if rule.rule.startswith("/v2/api/") and not rule.arguments}
    return sorted(ops)


def where_entities(schema: Any, found: Optional[set[str]] = None) -> set[str]:
    """The entities of the ``<Entity>WhereInput`` / ``<Entity>OrderByInput`` a generated request
    schema (:func:`request_body`) refers to."""
    found = set() if found is None else found
    if isinstance(schema, dict):
        for key in ("x-where", "x-order-by"):
            if key in schema:
                found.add(schema[key])
        for value in schema.values():
            where_entities(value, found)
    elif isinstance(schema, list):
        for value in schema:
            where_entities(value, found)
    return found


def _component(spec: dict[str, Any], schema: Any) -> Optional[str]:
    """The component a ``$ref`` names, None for an inline schema or a where/orderBy input."""
    if not isinstance(schema, dict):
        return None
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    return name if name and not name.endswith(("WhereInput", "OrderByInput")) else None


def components_reached(spec: dict[str, Any], schema: Any, found: Optional[set[str]] = None) -> set[str]:
    """The components a request schema refers to, directly or through other components."""
    found = set() if found is None else found
    name = _component(spec, schema)
    if name is not None:
        if name not in found:
            found.add(name)
            components_reached(spec, to_jsonschema_inline(spec["components"]["schemas"][name]), found)
        return found
    if isinstance(schema, dict):
        for value in schema.values():
            components_reached(spec, value, found)
    elif isinstance(schema, list):
        for value in schema:
            components_reached(spec, value, found)
    return found


def request_body(spec: dict[str, Any], schema: Any, seen: tuple[str, ...] = (), shared: frozenset = frozenset(),
                 defs: Optional[dict[str, Any]] = None) -> Any:
    """A request schema as JSON Schema: ``$ref`` inlined, except that a ``<Entity>WhereInput``
    becomes ``{"x-where": entity}``, an ``<Entity>OrderByInput`` ``{"x-order-by": entity}`` (the
    simulator checks those against ``WHERE``/``ORDER_BY``) and a component of ``shared`` (used by
    several operations) ``{"$ref": "#/$defs/<name>"}``, its schema put once in ``defs``."""
    if isinstance(schema, list):
        return [request_body(spec, item, seen, shared, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    if name.endswith("WhereInput"):
        return {"x-where": name[: -len("WhereInput")]}
    if name.endswith("OrderByInput"):
        return {"x-order-by": name[: -len("OrderByInput")]}
    if name:
        if name in seen:
            raise ValueError(f"recursive request schema {name}")
        body = to_jsonschema_inline(spec["components"]["schemas"][name])
        if name in shared and defs is not None:
            if name not in defs:
                defs[name] = request_body(spec, body, seen + (name,), shared, defs)
            return {"$ref": f"#/$defs/{name}"}
        return request_body(spec, body, seen + (name,), shared, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {prop: request_body(spec, sub, seen, shared, defs) for prop, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = request_body(spec, value, seen, shared, defs)
        else:
            out[key] = value
    return out


def to_jsonschema_inline(schema: dict[str, Any]) -> dict[str, Any]:
    """:func:`to_jsonschema` keeping ``$ref`` as in the spec (for :func:`request_body`)."""
    converted = to_jsonschema(schema)
    return _restore_refs(converted)


def _restore_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_restore_refs(v) for v in node]
    if isinstance(node, dict):
        return {k: ("#/components/schemas/" + v.rsplit("/", 1)[-1] if k == "$ref" else _restore_refs(v))
                for k, v in node.items()}
    return node


def served_requests(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({operation: request JSON Schema}, {component: JSON Schema})`` of every served operation
    that takes a body; a component used by more than one operation is in the second, referred to
    as ``{"$ref": "#/$defs/<name>"}``; a multipart form's schema carries
    ``"x-content": "multipart/form-data"``."""
    schemas = {op: to_jsonschema_inline(schema) for op in served_operations()
               if (schema := request_schema(spec, op)) is not None}
    uses: dict[str, int] = {}
    for schema in schemas.values():
        for name in components_reached(spec, schema):
            uses[name] = uses.get(name, 0) + 1
    shared = frozenset(name for name, count in uses.items() if count > 1)
    defs: dict[str, Any] = {}
    requests = {}
    for op, schema in schemas.items():
        body = request_body(spec, schema, shared=shared, defs=defs)
        if request_content(spec, op) == MULTIPART:
            body = {**body, "x-content": MULTIPART}
        requests[op] = body
    return requests, defs


PACKAGE = Path("lib/voyager/sim/tower/openapi")
_REGENERATE = "``PYTHONPATH=lib python tests_unit/tower_openapi.py lib/voyager/sim/tower/openapi``"


def _module(doc: str, assignments: list[tuple[str, Any]], imports: str = "") -> str:
    fmt = lambda obj: pprint.pformat(obj, width=110, compact=True, sort_dicts=True)  # noqa: E731
    body = "\n\n".join(f"{name} = {fmt(value)}" for name, value in assignments)
    return f'"""{doc}\n\nGenerated by {_REGENERATE}; do not edit by hand.\n"""\n{imports}\n{body}\n'


def generate_spec_package(spec: dict[str, Any]) -> dict[str, str]:
    """``{file name: text}`` of the package ``lib/voyager/sim/tower/openapi`` (what the simulator
    takes from the official spec), one module per kind of table."""
    enums: dict[str, tuple[str, ...]] = {}
    requests, defs = served_requests(spec)
    entities = sorted(set(ENTITIES) | where_entities(requests) | where_entities(defs))
    where = {e: where_table(spec, e, enums) for e in entities}
    order = {e: order_fields(spec, e) for e in entities}
    inferred = tuple(op for op in served_operations() if not in_spec(spec, op))
    version = spec.get("info", {}).get("version", "?")
    queries = {op: body for op, body in requests.items() if op.startswith("get-")}
    mutations = {op: body for op, body in requests.items() if not op.startswith("get-")}
    return {
        "__init__.py": (
            f'"""What the simulator takes from the official CloudTower {version} OpenAPI spec, generated by\n'
            f"{_REGENERATE} (a test keeps it equal to the spec; do not edit by hand).\n\n"
            "* :mod:`.enums` — ``FAMILIES`` (the filter suffixes of each kind of ``where`` field) and ``ENUMS``;\n"
            "* :mod:`.where` — ``WHERE[entity][field] = (type, family)`` from ``<Entity>WhereInput``: type is\n"
            "  ``String``/``Int``/``Float``/``Boolean``, an enum of ``ENUMS`` or (family ``R``/``M``) the\n"
            "  related entity;\n"
            "* :mod:`.order_by` — ``ORDER_BY[entity]``, the fields ``orderBy: <field>_ASC|_DESC`` takes;\n"
            "* :mod:`.queries` / :mod:`.mutations` — the JSON Schema of each served REST operation's request\n"
            "  body (``get-*`` lists / the rest), merged in ``REQUESTS`` (``{\"x-where\": entity}`` /\n"
            "  ``{\"x-order-by\": entity}`` stand for the where/orderBy inputs; ``\"x-content\":\n"
            "  \"multipart/form-data\"`` marks a multipart form, its file parts as strings);\n"
            "* :mod:`.defs` — ``DEFS``, the request components several operations share (``{\"$ref\":\n"
            "  \"#/$defs/<name>\"}`` in a request schema);\n"
            "* ``INFERRED`` — the served operations the spec does not have: their schemas are the\n"
            "  simulator\'s inference ([INF], ``tests_unit/tower_openapi.py``).\n"
            '"""\n'
            "from voyager.sim.tower.openapi.defs import DEFS\n"
            "from voyager.sim.tower.openapi.enums import ENUMS, FAMILIES\n"
            "from voyager.sim.tower.openapi.mutations import MUTATIONS\n"
            "from voyager.sim.tower.openapi.order_by import ORDER_BY\n"
            "from voyager.sim.tower.openapi.queries import QUERIES\n"
            "from voyager.sim.tower.openapi.where import WHERE\n\n"
            "REQUESTS = {**QUERIES, **MUTATIONS}\n\n"
            f"INFERRED = {pprint.pformat(inferred, width=110, compact=True)}\n\n"
            '__all__ = ["DEFS", "ENUMS", "FAMILIES", "INFERRED", "ORDER_BY", "REQUESTS", "WHERE"]\n'
        ),
        "enums.py": _module("The filter families of ``where`` fields and the spec's enums.",
                            [("FAMILIES", FAMILIES), ("ENUMS", enums)]),
        "where.py": _module("``WHERE[entity][field] = (type, family)``, from the spec's ``<Entity>WhereInput``.",
                            [("WHERE", where)]),
        "order_by.py": _module("``ORDER_BY[entity]``: the fields of the spec's ``<Entity>OrderByInput``.",
                               [("ORDER_BY", order)]),
        "queries.py": _module("The request schemas of the served ``get-*`` list operations.", [("QUERIES", queries)]),
        "mutations.py": _module("The request schemas of the served operations that change something.",
                                [("MUTATIONS", mutations)]),
        "defs.py": _module("The request components several served operations share (``#/$defs/<name>``).",
                           [("DEFS", defs)]),
    }


def write_package(files: dict[str, str], folder: Path) -> None:
    """Each file replaced whole (a shell redirect would empty one before the simulator, which
    the generator imports, reads it); a module no longer generated is removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / name)
    for stale in folder.glob("*.py"):
        if stale.name not in files:
            stale.unlink()


if __name__ == "__main__":
    loaded = load_spec()
    if loaded is None:
        sys.exit(f"{SPEC_PATH} not found")
    generated = generate_spec_package(loaded)  # imports the simulator, which imports the package: generate first
    write_package(generated, Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
