"""The executable GraphQL schema of the simulated CloudTower (graphql-core).

``graphql_schema.graphql`` holds the hand-written types and operations; the Prisma-1
``<Entity>WhereInput`` / ``<Entity>OrderByInput`` inputs they take, and the enums those
use, are generated here from :mod:`voyager.sim.tower.openapi` (itself generated from the
official OpenAPI spec), so a GraphQL ``where`` has exactly the fields and value types of the
REST one. Relations to entities the simulator does not model get a ``<Entity>WhereInput``
with the ``id`` filters only.

Custom scalars: ``DateTime`` (an ISO-8601 string), ``Json`` (any JSON value), ``Long``
(an integer beyond 32 bits, Prisma's ``Long``).
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema
from graphql.language import ast as gql_ast

from voyager.sim.tower.openapi import ENUMS, FAMILIES, ORDER_BY, WHERE

SDL_PATH = Path(__file__).with_name("graphql_schema.graphql")
_SCALARS = ("String", "Int", "Float", "Boolean")


def _declared(sdl: str) -> set[str]:
    return set(re.findall(r"^\s*(?:enum|input|type|scalar)\s+(\w+)", sdl, flags=re.M))


def _referenced(sdl: str, suffix: str) -> set[str]:
    return {m[: -len(suffix)] for m in re.findall(rf"\b(\w+{suffix})\b", sdl)}


def _where_input(entity: str, needed: list[str], enums: set[str]) -> str:
    lines = [f"input {entity}WhereInput {{"]
    for op in ("AND", "OR", "NOT"):
        lines.append(f"  {op}: [{entity}WhereInput!]")
    table = WHERE.get(entity, {"id": ("String", "S")})
    for field, (typ, family) in sorted(table.items()):
        if family in ("R", "M"):
            if typ not in needed:
                needed.append(typ)
            typ = f"{typ}WhereInput"
        elif typ not in _SCALARS:
            enums.add(typ)
        for suffix in FAMILIES[family]:
            listed = suffix in ("_in", "_not_in")
            lines.append(f"  {field}{suffix}: {'[' + typ + '!]' if listed else typ}")
    lines.append("}")
    return "\n".join(lines)


def generated_sdl(sdl: str) -> str:
    """The where/orderBy inputs and enums ``sdl`` refers to but does not declare."""
    declared = _declared(sdl)
    needed = sorted(e for e in _referenced(sdl, "WhereInput") if f"{e}WhereInput" not in declared)
    enums: set[str] = set()
    blocks: list[str] = []
    done: set[str] = set()
    while needed:
        entity = needed.pop(0)
        if entity in done or f"{entity}WhereInput" in declared:
            continue
        done.add(entity)
        blocks.append(_where_input(entity, needed, enums))
    for entity in sorted(e for e in _referenced(sdl, "OrderByInput") if f"{e}OrderByInput" not in declared):
        values = " ".join(f"{f}_ASC {f}_DESC" for f in ORDER_BY[entity])
        blocks.append(f"enum {entity}OrderByInput {{ {values} }}")
    enums |= {n for n in re.findall(r":\s*\[?(\w+)", sdl) if n in ENUMS}
    for name in sorted(enums - declared):
        blocks.append(f"enum {name} {{ {' '.join(ENUMS[name])} }}")
    return "\n\n".join(blocks) + "\n"


# -- scalars -----------------------------------------------------------------------------------
def _literal(node: gql_ast.ValueNode, variables: Any = None) -> Any:
    from graphql import value_from_ast_untyped

    return value_from_ast_untyped(node, variables)


def _date_time(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError(f"DateTime cannot represent a non string value: {value!r}")
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"DateTime cannot represent an invalid date-time string: {value!r}") from None
    return value


def _long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise GraphQLError(f"Long cannot represent a non integer value: {value!r}")
    return value


def _wire_scalars(schema: GraphQLSchema) -> None:
    date_time, json_scalar, long_scalar = (schema.type_map[n] for n in ("DateTime", "Json", "Long"))
    date_time.serialize = lambda v: v
    date_time.parse_value = _date_time
    date_time.parse_literal = lambda node, variables=None: _date_time(_literal(node, variables))
    json_scalar.serialize = lambda v: v
    json_scalar.parse_value = lambda v: v
    json_scalar.parse_literal = _literal
    long_scalar.serialize = _long
    long_scalar.parse_value = _long
    long_scalar.parse_literal = lambda node, variables=None: _long(_literal(node, variables))


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    """The schema (built once per process; it holds no state)."""
    sdl = SDL_PATH.read_text(encoding="utf-8")
    built = build_schema(sdl + "\n" + generated_sdl(sdl))
    _wire_scalars(built)
    return built
