"""``Simulator``: the world plus its listeners, started in-process.

>>> with Simulator(build_demo_plan(), speed=0) as sim:
...     sim.endpoints  # {"http": ..., "https": ..., "ssh": {...}}

Everything listens on 127.0.0.1 (ephemeral ports); ``bind_plan_ips=True``
additionally tries each planned 127.x address on 80/443 (and 22 when the SSH
front-end offers ``bind(ip, port)``), skipping with a warning what cannot be
bound (low ports need privileges). ``ssh=False`` serves HTTP only (tests that
need no SSH); ``clock`` injects a :class:`~voyager.sim.backend.clock.ManualClock`;
``slow_seconds`` is how long a ``slow`` fault delays its answer.
"""
from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any, Optional

from voyager.plan.model import Plan
from voyager.sim.backend.clock import DEFAULT_SPEED, Clock
from voyager.sim.backend.faults import Faults
from voyager.sim.backend.world import World
from voyager.sim.web.server import Listener, SimApp, load_frontends
from voyager.sim.web.tls import server_context

log = logging.getLogger("voyager.sim")

LOOPBACK = "127.0.0.1"
# Must exceed the clients' read timeout: a ``slow`` fault answers after it.
DEFAULT_SLOW_SECONDS = 35.0


class Simulator:
    def __init__(self, plan: Plan, *, speed: float = DEFAULT_SPEED, state_file: Optional[str | Path] = None,
                 faults: str = "", host_overrides: Optional[dict] = None, bind_plan_ips: bool = False,
                 clock: Optional[Clock] = None, slow_seconds: float = DEFAULT_SLOW_SECONDS,
                 ssh: bool = True) -> None:
        self.plan = plan
        self.speed = speed
        self.bind_plan_ips = bind_plan_ips
        self.slow_seconds = slow_seconds
        self.ssh_enabled = ssh
        self.world = World(plan, clock=clock or Clock(speed), faults=Faults(faults or ""),
                           state_file=Path(state_file) if state_file else None, host_overrides=host_overrides)
        self._listeners: list[Listener] = []
        self._ssh = None
        self._ssh_ports: dict[str, int] = {}
        self._http: Optional[Listener] = None
        self._https: Optional[Listener] = None
        self.certificate_pem: Optional[bytes] = None
        self.bound_plan_ips: list[str] = []
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._http is not None:
            return self
        self._stopping.clear()
        frontends = load_frontends(self.world)
        ctx, self.certificate_pem = server_context(self.world.planned_ips())

        def app(default_port: int, fixed_ip: Optional[str] = None) -> SimApp:
            return SimApp(self.world, frontends, default_port=default_port, fixed_ip=fixed_ip,
                          slow_seconds=lambda: self.slow_seconds, endpoints=lambda: self.endpoints,
                          stopping=self._stopping)

        try:
            self._http = Listener(LOOPBACK, 0, app(80)).start()
            self._https = Listener(LOOPBACK, 0, app(443), ctx).start()
            self._listeners += [self._http, self._https]
            self._start_ssh()
            if self.bind_plan_ips:
                self._bind_plan_ips(app, ctx)
        except BaseException:
            self.stop()
            raise
        if self.world.state_file is not None:
            with self.world.lock:
                self.world.changed()
        return self

    def _start_ssh(self) -> None:
        if not self.ssh_enabled:
            return
        try:
            module = importlib.import_module("voyager.sim.ssh.server")
        except ModuleNotFoundError as exc:
            if exc.name != "voyager.sim.ssh.server":
                raise
            return
        frontend_cls = getattr(module, "SSHFrontend", None)
        if frontend_cls is None:
            return
        self._ssh = frontend_cls(self.world)
        self._ssh_ports = dict(self._ssh.start(self.world.ssh_ips()) or {})

    def _bind_plan_ips(self, app, ctx) -> None:
        for ip in self.world.planned_ips():
            if not ip.startswith("127."):
                continue
            bound = True
            for port, context in ((80, None), (443, ctx)):
                try:
                    self._listeners.append(Listener(ip, port, app(port, fixed_ip=ip), context).start())
                except OSError as exc:
                    bound = False
                    log.warning("模拟器无法监听 %s:%d（%s），跳过 (cannot bind plan address)", ip, port, exc.strerror)
            bind_ssh = getattr(self._ssh, "bind", None)
            if bind_ssh is not None and ip in self._ssh_ports:
                try:
                    bind_ssh(ip, 22)
                except OSError as exc:
                    log.warning("模拟器无法监听 %s:22（%s），跳过 (cannot bind plan address)", ip, exc.strerror)
            if bound:
                self.bound_plan_ips.append(ip)

    def stop(self) -> None:
        self._stopping.set()  # requests delayed by a slow fault end now instead of holding stop()
        stoppers = [threading.Thread(target=_stop_quietly, args=(listener,)) for listener in self._listeners]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        self._listeners.clear()
        self._http = self._https = None
        if self._ssh is not None and hasattr(self._ssh, "stop"):
            self._ssh.stop()
        self._ssh = None
        self.world.close()

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- published facts --------------------------------------------------------------------
    @property
    def endpoints(self) -> dict[str, Any]:
        if self._http is None or self._https is None:
            raise RuntimeError("simulator not started")
        return {"http": f"http://{LOOPBACK}:{self._http.port}", "https": f"https://{LOOPBACK}:{self._https.port}",
                "ssh": dict(self._ssh_ports)}

    def status(self) -> dict[str, Any]:
        return self.world.status()

    @property
    def faults(self) -> Faults:
        return self.world.faults

    @property
    def clock(self) -> Clock:
        return self.world.clock


def _stop_quietly(listener: Listener) -> None:
    try:
        listener.stop()
    except Exception:  # noqa: BLE001 - stopping must go on
        log.debug("listener stop failed", exc_info=True)


__all__ = ["DEFAULT_SPEED", "Simulator"]
