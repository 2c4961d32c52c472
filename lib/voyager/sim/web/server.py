"""HTTP(S) serving: machine selection, faults, front-end dispatch
(the listeners themselves are in :mod:`voyager.sim.web.listener`).

One WSGI application serves every machine. The target machine is the
planned IP in the ``Host`` header (``ip`` or ``ip:port``; without a port, 80 on
the http listener and 443 on the https listener). A listener bound to a
planned address (``--bind-plan-ips``) serves that address whatever the header.

Order of a request: ``/__sim__/*`` (never faulted, never secret) → machine
lookup (502 + ``X-Sim-Unreachable: 1`` when nothing is up there) → HTTP faults
(``http-reset`` closes the connection, ``slow`` sleeps ``slow_seconds``,
``http-500``) → the front-ends registered for the machine's kind, in order.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import socket
import struct
import threading
from typing import Callable, Optional

from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Request, Response

from voyager.sim.web.frontend import Frontend, drain, json_response
from voyager.sim.web.listener import Listener

log = logging.getLogger("voyager.sim")

CORE_FRONTENDS = ("voyager.sim.fisheye.deployment", "voyager.sim.fisheye.core", "voyager.sim.fisheye.resources",
                  "voyager.sim.fisheye.images")
TOWER_FRONTENDS = ("voyager.sim.tower.rest", "voyager.sim.tower.graphql_api", "voyager.sim.tower.inspector_api",
                   "voyager.sim.tower.packages", "voyager.sim.tower.component_rest",
                   "voyager.sim.tower.vms", "voyager.sim.tower.volumes")
# tried after every other front-end of their kind (catch-alls such as the 404 for an
# operation the simulator does not serve): module -> attribute listing the classes
FALLBACK_FRONTENDS = (("voyager.sim.tower.rest", "NOT_SERVED"),)
UNREACHABLE_HEADER = "X-Sim-Unreachable"


def _module_frontends(module) -> list[type]:
    declared = getattr(module, "FRONTENDS", None)
    if declared is not None:
        return list(declared)
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Frontend) and obj is not Frontend and obj.__module__ == module.__name__]


def frontend_classes() -> list[tuple[type, tuple[str, ...]]]:
    """Every front-end class, in dispatch order, with the machine kinds it serves
    (the fall-backs last). Also what the fidelity tests read the served operations from."""
    classes: list[tuple[type, tuple[str, ...]]] = []
    for name in CORE_FRONTENDS + TOWER_FRONTENDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if name in TOWER_FRONTENDS and exc.name == name:
                continue
            raise
        for cls in _module_frontends(module):
            classes.append((cls, tuple(cls.kinds or (("tower",) if name in TOWER_FRONTENDS else ()))))
    for name, attribute in FALLBACK_FRONTENDS:
        for cls in getattr(importlib.import_module(name), attribute):
            classes.append((cls, tuple(cls.kinds)))
    return classes


def load_frontends(world) -> dict[str, list[Frontend]]:
    """Instantiate every front-end once and index it by machine kind."""
    registry: dict[str, list[Frontend]] = {}
    for cls, kinds in frontend_classes():
        instance = cls(world)
        for kind in kinds:
            registry.setdefault(kind, []).append(instance)
    return registry


def split_host(header: str, default_port: int) -> tuple[str, int]:
    header = (header or "").strip()
    if header.startswith("["):  # IPv6 literal
        host, _, rest = header[1:].partition("]")
        port = rest.lstrip(":")
    elif header.count(":") == 1:
        host, port = header.split(":")
    else:
        host, port = header, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        return host, default_port


class SimApp:
    def __init__(self, world, frontends: dict[str, list[Frontend]], *, default_port: int,
                 slow_seconds: Callable[[], float], endpoints: Callable[[], dict], fixed_ip: Optional[str] = None,
                 stopping: Optional[threading.Event] = None):
        self.world = world
        self.stopping = stopping or threading.Event()  # set by Simulator.stop(): a slow answer is dropped
        self.frontends = frontends
        self.default_port = default_port
        self.slow_seconds = slow_seconds
        self.endpoints = endpoints
        self.fixed_ip = fixed_ip

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    # -- /__sim__ --------------------------------------------------------------------------
    def sim_route(self, request: Request) -> Response:
        if request.path == "/__sim__/state":
            return json_response(self.world.status())
        if request.path == "/__sim__/reachable":
            try:
                port = int(request.args.get("port", ""))
            except ValueError:
                return json_response({"message": "port must be an integer"}, 400)
            ip = request.args.get("ip") or ""
            return json_response({"open": self.world.is_open(ip, port)})
        if request.path == "/__sim__/endpoints":
            return json_response(self.endpoints())
        return json_response({"message": f"unknown simulator path {request.path}"}, 404)

    # -- machines ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith("/__sim__/"):
            return self.sim_route(request)
        ip, port = split_host(request.headers.get("Host", ""), self.default_port)
        if self.fixed_ip:
            ip, port = self.fixed_ip, self.default_port
        machine = self.world.machine(ip, port)
        if machine is None:
            drain(request)
            return json_response({"message": f"nothing answers on {ip}:{port} (simulated connection refused)"},
                                 502, {UNREACHABLE_HEADER: "1"})
        operation = graphql_operation(request) if self.world.faults.wants_operation else None
        fault = self.world.faults.take_http(request.path, request.method, operation)
        if fault == "http-reset":
            self._reset(request)
        if fault == "slow" and self.stopping.wait(self.slow_seconds()):
            raise ConnectionAbortedError("simulator stopped while delaying a slow answer")
        if fault == "http-500":
            drain(request)
            return self._fault_500(request)
        allowed: set[str] = set()
        for frontend in self.frontends.get(machine.kind, []):
            try:
                response = frontend.dispatch(request, machine)
            except MethodNotAllowed as exc:
                allowed.update(exc.valid_methods or [])
                continue
            if response is not None:
                return response
        drain(request)
        if allowed:
            return json_response({"message": f"method {request.method} not allowed"}, 405,
                                 {"Allow": ", ".join(sorted(allowed))})
        return json_response({"message": f"no API at {request.path} on {machine.kind} {ip}"}, 404)

    @staticmethod
    def _reset(request: Request) -> None:
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionResetError("simulated connection reset (http-reset fault)")

    @staticmethod
    def _fault_500(request: Request) -> Response:
        msg = "simulated internal error (http-500 fault)"
        if request.path.startswith("/api/v2/"):
            return json_response({"ec": "REST_UNKNOWN_ERROR", "error": {"msg": msg}, "data": None}, 500)
        if request.path.startswith("/v2/api"):
            return json_response({"message": msg, "status": 500, "path": request.path}, 500)
        if request.path == "/api":
            return json_response({"data": None, "errors": [{"message": msg}]}, 500)
        return json_response({"code": 13, "message": msg, "details": []}, 500)


def graphql_operation(request: Request) -> Optional[str]:
    """The ``operationName`` a JSON POST names (GraphQL), or None. The body stays
    readable: werkzeug caches it for the front-end."""
    if request.method != "POST" or request.mimetype != "application/json":
        return None
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    name = body.get("operationName") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else None


__all__ = ["Listener", "SimApp", "UNREACHABLE_HEADER", "load_frontends", "split_host"]
