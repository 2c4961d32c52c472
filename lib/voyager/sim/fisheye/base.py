"""Shared wire format of the SMTX OS APIs (deployment API and fisheye).

``/api/v2`` answers ``{"ec": "EOK", "error": {}, "data": ...}``; errors carry a
non-EOK ``ec`` and ``error: {"msg", "detail"}`` with ``data: null`` and an HTTP
status of 4xx/5xx (API-FACTS: status and ec must both be checked).
``/api/v3`` is bare JSON; its errors follow the grpc-gateway shape
``{"code": <grpc code>, "message": ..., "details": []}`` [INF].
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Optional

from werkzeug.wrappers import Request, Response

from voyager.sim.backend.errors import SimError, form_error
from voyager.sim.web.frontend import BadJson, Frontend, drain, json_response

TOKEN_HEADER = "x-smartx-token"
GRPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "FAILED_PRECONDITION": 9,
              "UNAUTHENTICATED": 16, "REST_NOT_FOUND": 5, "REST_FORM_ERROR": 3}
GRPC_HTTP = {3: 400, 5: 404, 6: 409, 9: 400, 16: 401}


def ok(data: Any, status: int = 200) -> Response:
    return json_response({"ec": "EOK", "error": {}, "data": data}, status)


def v2_error(exc: SimError) -> Response:
    error: dict[str, Any] = {"msg": exc.msg}
    if exc.detail:
        error["detail"] = exc.detail
    return json_response({"ec": exc.ec, "error": error, "data": None}, exc.status)


def v3_error(exc: SimError) -> Response:
    code = GRPC_CODES.get(exc.ec, 2)
    status = GRPC_HTTP.get(code, exc.status if exc.status >= 400 else 500)
    return json_response({"code": code, "message": exc.msg, "details": []}, status)


def public(fn: Callable) -> Callable:
    """Mark an endpoint that needs no session token."""
    fn.public = True
    return fn


def require_fields(body: Any, spec: dict[str, tuple], prefix: str = "") -> None:
    """Check presence and JSON types; ``spec`` maps field -> accepted types
    (``int`` never accepts ``bool``). Raises a ``REST_FORM_ERROR``."""
    if not isinstance(body, dict):
        raise form_error(prefix.rstrip(".") or "body", "must be a JSON object")
    for field, types in spec.items():
        name = f"{prefix}{field}"
        if field not in body:
            raise form_error(name, "this field is required")
        value = body[field]
        if isinstance(value, bool) and bool not in types:
            raise form_error(name, f"must be {'/'.join(t.__name__ for t in types)}")
        if not isinstance(value, types):
            raise form_error(name, f"must be {'/'.join('null' if t is type(None) else t.__name__ for t in types)}")


def int_arg(request: Request, name: str, *, required: bool = True) -> Optional[int]:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise form_error(name, "this query parameter is required")
        return None
    try:
        return int(raw)
    except ValueError:
        raise form_error(name, "must be an integer") from None


def str_arg(request: Request, name: str) -> str:
    raw = request.args.get(name)
    if not raw:
        raise form_error(name, "this query parameter is required")
    return raw


class SmartxFrontend(Frontend):
    """Dispatch with the SMTX conventions: token check, ticking the world,
    SimError/BadJson rendered in the API's error shape."""

    def available(self, machine) -> Optional[SimError]:
        return None

    def check_token(self, request: Request, machine) -> Optional[SimError]:
        return None

    def render_error(self, request: Request, exc: SimError) -> Response:
        return v3_error(exc) if request.path.startswith("/api/v3/") else v2_error(exc)

    def dispatch(self, request: Request, machine) -> Optional[Response]:
        found = self.match(request)
        if found is None:
            return None
        endpoint, values = found
        method = getattr(self, endpoint)
        self.world.tick()
        try:
            refused = self.available(machine)
            if refused is None and not getattr(method, "public", False):
                refused = self.check_token(request, machine)
            if refused is not None:
                drain(request)
                return self.render_error(request, refused)
            return method(request, machine, **values)
        except SimError as exc:
            drain(request)
            return self.render_error(request, exc)
        except BadJson as exc:
            return self.render_error(request, SimError("REST_FORM_ERROR", "请求体不是有效的 JSON (invalid JSON body)",
                                                       detail={"body": [str(exc)]}))


def locked(fn: Callable) -> Callable:
    """Run an endpoint under the world lock and persist afterwards."""
    @wraps(fn)
    def wrapper(self, *args, **kwargs):
        with self.world.lock:
            response = fn(self, *args, **kwargs)
            if response.status_code < 400:
                self.world.changed()
            return response
    return wrapper
