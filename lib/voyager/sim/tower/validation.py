"""CloudTower REST requests checked against the official request schemas.

``openapi.REQUESTS`` holds the JSON Schema of each served operation's request body
(generated from the OpenAPI spec; components several operations share are in
``openapi.DEFS``, referred to as ``#/$defs/<name>``); this module validates a body against it with
``jsonschema`` and checks the ``where`` / ``orderBy`` parts it contains with
:func:`voyager.sim.tower.where.check_where` / :func:`~voyager.sim.tower.where.check_order_by`.
A violation is a 400 ``VALIDATION`` error whose message names the field, before any rule of
the backend runs (a real CloudTower validates the input first, whatever the data).

Every operation the simulator serves is checked: those of the spec against the spec's schema,
the few the spec lacks ([INF], ``openapi.INFERRED``) against the simulator's inferred one.
A multipart operation (``/upload-elf-file``, ``/parse-ovf``, ``/upload-cloudtower-application-package``)
is checked as its form: the fields as strings, each file part as a string
(:func:`voyager.sim.tower.rest.multipart_form`), so a missing ``file`` is a 400 naming it.

A mutation's body is specified as an array; the captured clients' bare object is checked
as one item of it. One leniency of the real server is kept: ``create-graph`` takes a digit
string as ``metric_count`` (the walkthrough's init script sends ``"5"``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from voyager.sim.tower.common import TowerError
from voyager.sim.tower.openapi import DEFS, REQUESTS
from voyager.sim.tower.where import WhereError, check_order_by, check_where


@lru_cache(maxsize=None)
def _validator(op: str, item: bool) -> Draft202012Validator:
    schema = _resolved(REQUESTS[op])
    return Draft202012Validator({**(schema["items"] if item else schema), "$defs": DEFS})


def _describe(error: ValidationError) -> str:
    while error.context:
        error = best_match(error.context)
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def _resolved(schema: Any) -> Any:
    """``schema`` with its ``#/$defs/<name>`` references followed."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _markers(schema: Any, value: Any, path: str) -> None:
    schema = _resolved(schema)
    if not isinstance(schema, dict) or value is None:
        return
    if "x-where" in schema:
        check_where(value, schema["x-where"], path)
    elif "x-order-by" in schema:
        check_order_by(value, schema["x-order-by"], path)
    for branch in schema.get("allOf", []) + schema.get("anyOf", []):
        _markers(branch, value, path)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _markers(sub, value[name], f"{path}.{name}" if path else name)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _markers(schema["items"], item, f"{path}[{i}]" if path else f"[{i}]")


def _metric_count_as_int(body: Any) -> Any:
    def one(item: Any) -> Any:
        count = item.get("metric_count") if isinstance(item, dict) else None
        if isinstance(count, str) and count.isdigit():
            return {**item, "metric_count": int(count)}
        return item

    return [one(i) for i in body] if isinstance(body, list) else one(body)


def check_request(op: str, body: Any) -> None:
    """Raise a 400 :class:`TowerError` when ``body`` violates operation ``op``'s request schema."""
    schema = _resolved(REQUESTS.get(op))
    if schema is None:
        return
    item = schema.get("type") == "array" and isinstance(body, dict)
    if op == "create-graph":
        body = _metric_count_as_int(body)
    error = best_match(_validator(op, item).iter_errors(body))
    if error is not None:
        raise TowerError(f"request body does not match {op}: {_describe(error)}", code="VALIDATION")
    try:
        _markers(schema["items"] if item else schema, body, "")
    except WhereError as exc:
        raise TowerError(f"request body does not match {op}: {exc}", code="INVALID_WHERE") from None
