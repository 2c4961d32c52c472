"""The front-end protocol of the simulator (the ``responses.py`` + ``urls.py`` of moto).

For front-end authors
=====================
A front-end renders one API's exact wire format on top of the backend
(:class:`voyager.sim.backend.world.World`); it holds no state of its own.

* Subclass :class:`Frontend`, set ``kinds`` (the machine kinds it serves:
  ``"host"``, ``"vip"``, ``"tower"``) and ``url_map`` (a
  :class:`werkzeug.routing.Map`). Each ``Rule``'s ``endpoint`` is the name of a
  method ``def m(self, request, machine, **values) -> werkzeug.Response``;
  ``values`` are the rule's converters.
* Publish the classes in the module as ``FRONTENDS = [MyFrontend, ...]``. The
  server imports ``voyager.sim.fisheye.deployment``, ``voyager.sim.fisheye.*`` and, when
  they exist, ``voyager.sim.tower.rest``, ``voyager.sim.tower.graphql_api`` and
  ``voyager.sim.tower.inspector_api``, instantiates each class once with the world
  (``cls(world)``) and, for a request, tries the front-ends registered for the
  machine's kind in order: the first whose map matches the path answers.
  A map that matches the path but not the method yields 405 only when no
  other front-end matches.
* ``machine`` is a :class:`voyager.sim.backend.world.Machine`: ``kind``, ``ip`` (the
  planned address from the Host header), ``port`` (80/443 as the client
  addressed it), ``scheme`` and, for kinds ``host``/``vip``, ``host`` (the
  :class:`voyager.sim.backend.hosts.SimHost` answering). Requests only reach a
  front-end when the machine is up; the server answers 502 +
  ``X-Sim-Unreachable: 1`` otherwise and applies the ``http-500`` /
  ``http-reset`` / ``slow`` faults before dispatching.
* Mutate the world only under ``with self.world.lock:`` and call
  ``self.world.changed()`` afterwards (it persists the state file). Time
  comes from ``self.world.clock`` (see :mod:`voyager.sim.backend.clock`), never from
  ``time`` directly; ``self.world.faults.take("fail-job", description)`` tells
  whether a job must fail.
* Helpers: :func:`json_response` (exact JSON, UTF-8, no ASCII escaping),
  :meth:`Frontend.json_body` (the parsed JSON body or a :class:`BadJson`).
* Never put a secret (password, token) into a response that does not carry it
  by design, nor into a log line or an exception message.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar, Optional

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response


class BadJson(Exception):
    """The request body is not the JSON the endpoint expects."""


def json_response(obj: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False)
    resp = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def drain(request: Request) -> None:
    """Read what is left of the body so that a keep-alive connection stays in sync."""
    try:
        while request.stream.read(1 << 20):
            pass
    except Exception:  # noqa: BLE001 - a broken client connection is not our problem
        pass


class Frontend:
    """Base class of every HTTP front-end. See the module docstring."""

    kinds: ClassVar[tuple[str, ...]] = ()
    url_map: ClassVar[Map] = Map([])

    def __init__(self, world) -> None:
        self.world = world

    # -- dispatch ------------------------------------------------------------
    def match(self, request: Request):
        """``(endpoint, values)`` for this request, ``None`` when the path is not
        ours; raises ``MethodNotAllowed`` when the path is ours but the method not."""
        adapter = self.url_map.bind("sim", path_info=request.path, url_scheme="http")
        try:
            return adapter.match(method=request.method)
        except NotFound:
            return None

    def dispatch(self, request: Request, machine) -> Optional[Response]:
        """Answer the request, or ``None`` when no rule matches its path.
        ``MethodNotAllowed`` propagates to the server."""
        found = self.match(request)
        if found is None:
            return None
        endpoint, values = found
        return getattr(self, endpoint)(request, machine, **values)

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def json_body(request: Request, *, default: Any = None) -> Any:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if default is not None:
                return default
            raise BadJson("empty body")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadJson(f"invalid JSON: {exc.__class__.__name__}") from None


__all__ = ["BadJson", "Frontend", "MethodNotAllowed", "drain", "json_response"]
