"""CloudTower's ``where`` / ``orderBy`` / ``first`` / ``skip`` query grammar.

CloudTower (REST ``/v2/api/get-*`` and GraphQL list queries) filters with a
Prisma-1 style input object. This module evaluates such an object against the
rendered JSON of an entity (a plain ``dict``), so every list endpoint of the
simulator filters the same way the real API does:

* ``{"name": "x"}``                 equality (``null`` matches a missing/null field)
* ``{"name_in": [..]}``             and ``_not``, ``_not_in``, ``_lt``, ``_lte``,
  ``_gt``, ``_gte``, ``_contains``, ``_not_contains``, ``_starts_with``,
  ``_not_starts_with``, ``_ends_with``, ``_not_ends_with``
* ``{"cluster": {"id": "c1"}}``     nested relation (the rendered field is an object)
* ``{"hosts_some": {...}}``         list relations: ``_some``, ``_every``, ``_none``
* ``{"AND": [..], "OR": [..], "NOT": [..]}``

A field the entity does not have is an error (:class:`WhereError`), as the real
API rejects an unknown input field instead of ignoring it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

# Longest suffixes first so that "_not_in" is not read as "_in".
_SUFFIXES = (
    "_not_starts_with",
    "_not_ends_with",
    "_not_contains",
    "_starts_with",
    "_ends_with",
    "_contains",
    "_not_in",
    "_every",
    "_some",
    "_none",
    "_not",
    "_lte",
    "_gte",
    "_in",
    "_lt",
    "_gt",
)


class WhereError(ValueError):
    """The filter is malformed or names a field the entity does not have."""


def matches(obj: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """True when ``obj`` satisfies ``where`` (``None``/``{}`` matches everything)."""
    if where is None:
        return True
    if not isinstance(where, dict):
        raise WhereError(f"where must be an object, got {type(where).__name__}")
    for key, cond in where.items():
        if not _match_key(obj, key, cond):
            return False
    return True


def _as_list(cond: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(cond, dict):
        return [cond]
    if isinstance(cond, list) and all(isinstance(c, dict) for c in cond):
        return cond
    raise WhereError(f"{key} expects an object or a list of objects")


def _match_key(obj: dict[str, Any], key: str, cond: Any) -> bool:
    if key == "AND":
        return all(matches(obj, c) for c in _as_list(cond, key))
    if key == "OR":
        return any(matches(obj, c) for c in _as_list(cond, key))
    if key == "NOT":
        return not any(matches(obj, c) for c in _as_list(cond, key))
    if key in obj:
        return _equal_or_nested(obj[key], cond, key)
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in obj:
            return _OPERATORS[suffix](obj[key[: -len(suffix)]], cond, key)
    raise WhereError(f'Unknown field "{key}" in where input')


def _equal_or_nested(value: Any, cond: Any, key: str) -> bool:
    if isinstance(value, list):
        raise WhereError(f'Field "{key}" is a list; use {key}_some/_every/_none')
    if isinstance(cond, dict):
        if value is None:
            return False
        if isinstance(value, dict):
            return matches(value, cond)
        raise WhereError(f'Field "{key}" is not a relation; it cannot take an object')
    return value == cond


def _need_list(cond: Any, key: str) -> list[Any]:
    if not isinstance(cond, list):
        raise WhereError(f"{key} expects a list")
    return cond


def _need_str(value: Any, cond: Any, key: str) -> bool:
    """Return False when the entity value is null; raise when the operand is bad."""
    if not isinstance(cond, str):
        raise WhereError(f"{key} expects a string")
    return isinstance(value, str)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any, str], bool]:
    def check(value: Any, cond: Any, key: str) -> bool:
        if value is None or cond is None:
            return False
        try:
            return op(value, cond)
        except TypeError as exc:
            raise WhereError(f"{key}: cannot compare {value!r} with {cond!r}") from exc

    return check


def _some(value: Any, cond: Any, key: str) -> bool:
    items = _relation_list(value, key)
    return any(matches(item, cond) for item in items)


def _every(value: Any, cond: Any, key: str) -> bool:
    items = _relation_list(value, key)
    return all(matches(item, cond) for item in items)


def _none(value: Any, cond: Any, key: str) -> bool:
    items = _relation_list(value, key)
    return not any(matches(item, cond) for item in items)


def _relation_list(value: Any, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WhereError(f"{key}: the field is not a list relation")
    return value


_OPERATORS: dict[str, Callable[[Any, Any, str], bool]] = {
    "_not": lambda v, c, k: not _equal_or_nested(v, c, k),
    "_in": lambda v, c, k: v in _need_list(c, k),
    "_not_in": lambda v, c, k: v not in _need_list(c, k),
    "_lt": _compare(lambda a, b: a < b),
    "_lte": _compare(lambda a, b: a <= b),
    "_gt": _compare(lambda a, b: a > b),
    "_gte": _compare(lambda a, b: a >= b),
    "_contains": lambda v, c, k: _need_str(v, c, k) and c in v,
    "_not_contains": lambda v, c, k: _need_str(v, c, k) and c not in v,
    "_starts_with": lambda v, c, k: _need_str(v, c, k) and v.startswith(c),
    "_not_starts_with": lambda v, c, k: _need_str(v, c, k) and not v.startswith(c),
    "_ends_with": lambda v, c, k: _need_str(v, c, k) and v.endswith(c),
    "_not_ends_with": lambda v, c, k: _need_str(v, c, k) and not v.endswith(c),
    "_some": _some,
    "_every": _every,
    "_none": _none,
}


def order(items: list[dict[str, Any]], order_by: str | None) -> list[dict[str, Any]]:
    """Sort by ``field_ASC`` / ``field_DESC``; nulls sort first ascending."""
    if not order_by:
        return items
    if not isinstance(order_by, str):
        raise WhereError("orderBy expects a string like name_ASC")
    for direction in ("_ASC", "_DESC"):
        if order_by.endswith(direction):
            field = order_by[: -len(direction)]
            break
    else:
        raise WhereError(f'Invalid orderBy value "{order_by}"')
    if items and not all(field in item for item in items):
        raise WhereError(f'Invalid orderBy value "{order_by}"')

    def key(item: dict[str, Any]) -> tuple[int, Any]:
        value = item.get(field)
        return (0, "") if value is None else (1, value)

    return sorted(items, key=key, reverse=direction == "_DESC")


def _base_field(key: str, fields: frozenset[str]) -> str | None:
    if key in fields:
        return key
    return next((key[: -len(s)] for s in _SUFFIXES if key.endswith(s) and key[: -len(s)] in fields), None)


def check_fields(where: Any, fields: frozenset[str]) -> None:
    """Reject a ``where`` naming a top-level field the entity does not have,
    whether or not any entity exists (nested relation filters are checked
    against the related objects while matching)."""
    if where is None:
        return
    if not isinstance(where, dict):
        raise WhereError(f"where must be an object, got {type(where).__name__}")
    for key, cond in where.items():
        if key in ("AND", "OR", "NOT"):
            for item in _as_list(cond, key):
                check_fields(item, fields)
        elif _base_field(key, fields) is None:
            raise WhereError(f'Unknown field "{key}" in where input')


def query(items: Iterable[dict[str, Any]], body: dict[str, Any] | None,
          fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Apply a list request body ``{where, orderBy, first, skip}`` to rendered entities;
    ``fields`` (the entity's schema) lets a bad field be refused on an empty list too."""
    body = body or {}
    if not isinstance(body, dict):
        raise WhereError("the request body must be an object")
    if fields is not None:
        check_fields(body.get("where"), fields)
        order_by = body.get("orderBy")
        if isinstance(order_by, str) and order_by.rsplit("_", 1)[0] not in fields:
            raise WhereError(f'Invalid orderBy value "{order_by}"')
    selected = [item for item in items if matches(item, body.get("where"))]
    selected = order(selected, body.get("orderBy"))
    skip = body.get("skip")
    first = body.get("first")
    for name, value in (("skip", skip), ("first", first)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise WhereError(f"{name} must be a non-negative integer")
    if skip:
        selected = selected[skip:]
    if first is not None:
        selected = selected[:first]
    return selected


# -- typed checks against the official spec (sim/tower/openapi/) ---------------------------
_PYTHON_TYPES = {"String": (str,), "Int": (int,), "Float": (int, float), "Boolean": (bool,)}


def _split_key(key: str, table: dict[str, tuple[str, str]]) -> tuple[str, str]:
    from voyager.sim.tower.openapi import FAMILIES

    if key in table and "" in FAMILIES[table[key][1]]:
        return key, ""
    for suffix in _SUFFIXES:
        base = key[: -len(suffix)]
        if key.endswith(suffix) and base in table and suffix in FAMILIES[table[base][1]]:
            return base, suffix
    raise WhereError(f'Unknown field "{key}" in where input')


def _scalar_ok(value: Any, typ: str) -> bool:
    from voyager.sim.tower.openapi import ENUMS

    if typ in ENUMS:
        return isinstance(value, str) and value in ENUMS[typ]
    if typ in ("Int", "Float") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES[typ])


def check_where(where: Any, entity: str, path: str = "where") -> None:
    """Reject a ``where`` that the spec's ``<entity>WhereInput`` does not allow: unknown
    fields, values of the wrong type or outside their enum, a relation filter that is not an
    object, ``AND``/``OR``/``NOT`` that are not arrays. Relations to entities the simulator
    does not model are checked for being objects only."""
    from voyager.sim.tower.openapi import WHERE

    if where is None:
        return
    if not isinstance(where, dict):
        raise WhereError(f"{path} must be an object ({entity}WhereInput), got {type(where).__name__}")
    table = WHERE[entity]
    for key, value in where.items():
        at = f"{path}.{key}"
        if value is None:
            continue
        if key in ("AND", "OR", "NOT"):
            if not isinstance(value, list):
                raise WhereError(f"{at} must be an array of {entity}WhereInput")
            for i, item in enumerate(value):
                check_where(item, entity, f"{at}[{i}]")
            continue
        base, suffix = _split_key(key, table)
        typ, family = table[base]
        if family in ("R", "M"):
            if typ in WHERE:
                check_where(value, typ, at)
            elif not isinstance(value, dict):
                raise WhereError(f"{at} must be an object ({typ}WhereInput)")
        elif suffix in ("_in", "_not_in"):
            if not isinstance(value, list) or not all(_scalar_ok(v, typ) for v in value):
                raise WhereError(f"{at} must be an array of {typ}")
        elif not _scalar_ok(value, typ):
            raise WhereError(f"{at}: {value!r} is not a valid {typ}")


def check_order_by(value: Any, entity: str, path: str = "orderBy") -> None:
    """``orderBy`` must be ``<field>_ASC`` / ``<field>_DESC`` of ``<entity>OrderByInput``."""
    from voyager.sim.tower.openapi import ORDER_BY

    if value is None:
        return
    if not isinstance(value, str) or not value.endswith(("_ASC", "_DESC")) or \
            value.rsplit("_", 1)[0] not in ORDER_BY[entity]:
        raise WhereError(f'{path}: invalid value {value!r} for {entity}OrderByInput')
