"""The resolver: where a planned address and service are reached — the only place
that builds a URL or opens a socket.

Live mode: the planned address itself (deployment API http 80, fisheye /
CloudTower / inspector https 443, CloudTower http 80, SSH 22). Simulator mode: the
simulator's loopback ports (``sim.endpoints``), with the planned address in the
``Host`` header; SSH goes to the per-machine port of ``sim.endpoints["ssh"]``.

A guard refuses every target the plan does not declare (and, in simulator mode,
anything outside 127.0.0.0/8), so no code path can reach an unplanned machine.
"""
from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import urlsplit

import requests

from voyager.clients.adapter import RetryPolicy, TargetAdapter
from voyager.clients.errors import TargetNotAllowedError, TransportError, UnreachableError
from voyager.clients.tls import KnownCerts, Pin, pinned_context, verified_context

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
MAX_RANGE = 1024  # addresses taken from the plan's test IP range


@dataclass(frozen=True)
class Service:
    scheme: str  # http | https | ssh
    port: int


SERVICES: dict[str, Service] = {
    "deploy": Service("http", 80),
    "fisheye": Service("https", 443),
    "tower": Service("https", 443),
    "tower_http": Service("http", 80),
    "inspector": Service("https", 443),
    "ssh": Service("ssh", 22),
}


@dataclass(frozen=True)
class Timeouts:
    """Seconds; applied to every call unless the call passes its own."""

    connect: float = 5.0
    read: float = 30.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


def plan_addresses(plan: Any) -> set[str]:
    """Every address a plan declares that the suite may talk to: host management
    and storage IPs, the VIP, CloudTower / OBS / backup, ER, the test IP range."""
    found: list[Optional[str]] = []
    for h in getattr(plan, "hosts", []) or []:
        found += [h.mgmt_ip, h.storage_ip]
    cluster = getattr(plan, "cluster", None)
    if cluster is not None:
        found.append(cluster.vip)
    for comp in (getattr(plan, "cloudtower", None), getattr(plan, "obs", None),
                 getattr(plan, "backup_service", None)):
        if comp is not None:
            found.append(comp.ip)
    er = getattr(plan, "er", None)
    if er is not None:
        found += [er.vip, *er.nodes]
    rng = getattr(plan, "test_ip_range", None)
    if rng is not None and rng.start and rng.end:
        try:
            start, end = ipaddress.IPv4Address(rng.start), ipaddress.IPv4Address(rng.end)
            if 0 <= int(end) - int(start) < MAX_RANGE:
                found += [str(ipaddress.IPv4Address(i)) for i in range(int(start), int(end) + 1)]
        except ValueError:
            pass
    out = set()
    for ip in found:
        if ip:
            try:
                out.add(str(ipaddress.ip_address(str(ip).strip())))
            except ValueError:
                continue
    return out


class Endpoints:
    """Resolver, guard and session factory. Build with :meth:`live` or :meth:`simulated`."""

    def __init__(self, *, mode: str, sim_map: Optional[Mapping[str, Any]] = None,
                 allowed: Optional[Iterable[str]] = None, ca_bundle: Optional[str] = None,
                 timeouts: Optional[Timeouts] = None, retry: Optional[RetryPolicy] = None,
                 known_certs: Any = None):
        if mode not in ("live", "sim"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.ca_bundle = ca_bundle
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.known_certs = known_certs if isinstance(known_certs, KnownCerts) else KnownCerts(known_certs)
        self.allowed: Optional[frozenset[str]] = None if allowed is None else frozenset(
            str(ipaddress.ip_address(a)) for a in allowed
        )
        self._sim: dict[str, Any] = {}
        if mode == "sim":
            self._sim = self._check_sim_map(sim_map or {})
        self._sessions: dict[tuple[str, str], requests.Session] = {}
        self._ssl_context: Optional[ssl.SSLContext] = None  # one for every https session
        self._lock = threading.Lock()

    # -- construction --------------------------------------------------------------
    @classmethod
    def live(cls, plan: Any = None, *, allowed: Iterable[str] = (), ca_bundle: Optional[str] = None,
             timeouts: Optional[Timeouts] = None, retry: Optional[RetryPolicy] = None,
             known_certs: Any = None) -> "Endpoints":
        """Real machines: only the plan's addresses (plus ``allowed``) are reachable."""
        addresses = set(allowed)
        if plan is not None:
            addresses |= plan_addresses(plan)
        return cls(mode="live", allowed=addresses, ca_bundle=ca_bundle, timeouts=timeouts,
                   retry=retry, known_certs=known_certs)

    @classmethod
    def simulated(cls, sim_map: Mapping[str, Any], plan: Any = None, *, allowed: Iterable[str] = (),
                  ca_bundle: Optional[str] = None, timeouts: Optional[Timeouts] = None,
                  retry: Optional[RetryPolicy] = None, known_certs: Any = None) -> "Endpoints":
        """The simulator (``sim.endpoints``): planned addresses must be in 127.0.0.0/8
        (and declared by the plan when one is given)."""
        addresses: Optional[set[str]] = None
        if plan is not None or allowed:
            addresses = set(allowed) | (plan_addresses(plan) if plan is not None else set())
        return cls(mode="sim", sim_map=sim_map, allowed=addresses, ca_bundle=ca_bundle,
                   timeouts=timeouts, retry=retry, known_certs=known_certs)

    @staticmethod
    def _check_sim_map(sim_map: Mapping[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {"ssh": dict(sim_map.get("ssh") or {})}
        for scheme in ("http", "https"):
            base = sim_map.get(scheme)
            if not base:
                continue
            parts = urlsplit(str(base))
            if parts.scheme != scheme or not parts.hostname or not _is_loopback(parts.hostname):
                raise TargetNotAllowedError(
                    f"模拟器地址 {base} 不在 127.0.0.0/8 内，拒绝使用 (simulator endpoint must be loopback)"
                )
            checked[scheme] = f"{scheme}://{parts.hostname}:{parts.port}" if parts.port else f"{scheme}://{parts.hostname}"
        return checked

    # -- guard -----------------------------------------------------------------------
    def check_target(self, ip: str) -> str:
        """The normalised address, or :class:`TargetNotAllowedError`."""
        try:
            addr = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            raise TargetNotAllowedError(f"目标 {ip!r} 不是 IP 地址，拒绝连接 (target is not an IP address)") from None
        norm = str(addr)
        if self.mode == "sim" and addr not in LOOPBACK:
            raise TargetNotAllowedError(
                f"模拟器模式下只允许 127.0.0.0/8 内的地址，拒绝连接 {norm} (sim mode: loopback only)"
            )
        if self.allowed is not None and norm not in self.allowed:
            raise TargetNotAllowedError(
                f"目标 {norm} 不在规划表声明的地址中，拒绝连接 (target not declared by the plan)"
            )
        return norm

    # -- URLs --------------------------------------------------------------------------
    @staticmethod
    def service(name: str) -> Service:
        try:
            return SERVICES[name]
        except KeyError:
            raise ValueError(f"未知服务 {name!r}，可选: {', '.join(SERVICES)}") from None

    def url(self, ip: str, service: str, path: str = "/") -> str:
        """Where to send a request for ``service`` on planned address ``ip``."""
        ip = self.check_target(ip)
        svc = self.service(service)
        if svc.scheme not in ("http", "https"):
            raise ValueError(f"服务 {service} 不是 HTTP 服务 (not an HTTP service)")
        path = path if path.startswith("/") else "/" + path
        if self.mode == "sim":
            base = self._sim.get(svc.scheme)
            if not base:
                raise UnreachableError(f"模拟器没有提供 {svc.scheme} 端口 (simulator has no {svc.scheme} port)",
                                       target=ip)
            return base + path
        return _planned_base(ip, svc) + path

    def display_url(self, ip: str, service: str, path: str = "/") -> str:
        """The planned form of a URL (what evidence and messages show)."""
        svc = self.service(service)
        path = path if path.startswith("/") else "/" + path
        return _planned_base(str(ip), svc) + path

    # -- sessions ------------------------------------------------------------------------
    def session(self, ip: str, service: str) -> requests.Session:
        """The one session for (ip, service): retries, Host header (sim), TLS policy."""
        ip = self.check_target(ip)
        svc = self.service(service)
        key = (ip, service)
        with self._lock:
            existing = self._sessions.get(key)
            if existing is not None:
                return existing
            session = self._new_session(ip, service, svc)
            self._sessions[key] = session
            return session

    def _new_session(self, ip: str, service: str, svc: Service) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the environment
        session.headers["User-Agent"] = "smtx-voyager"
        pin = None
        ssl_context = None
        if svc.scheme == "https":
            ssl_context = self._tls_context()
            if self.ca_bundle:
                session.verify = self.ca_bundle
            else:
                session.verify = False  # replaced by fingerprint pinning below
                connect = self._tls_connect(ip, svc)
                pin = Pin(self.known_certs, f"{ip}:{svc.port}", connect, self.timeouts.connect,
                          retries=self.retry.connect, backoff=self.retry.backoff)
        if self.mode == "sim":
            session.headers["Host"] = ip
        assert_hostname = ip if (self.mode == "sim" and self.ca_bundle) else None
        adapter = TargetAdapter(self.retry, pin=pin, assert_hostname=assert_hostname, ssl_context=ssl_context)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _tls_context(self) -> ssl.SSLContext:
        """The client TLS context shared by every https session (caller holds the
        lock): built, and the CA bundle loaded, once per resolver."""
        if self._ssl_context is None:
            self._ssl_context = verified_context(self.ca_bundle) if self.ca_bundle else pinned_context()
        return self._ssl_context

    def _tls_connect(self, ip: str, svc: Service) -> tuple[str, int]:
        if self.mode == "sim":
            base = urlsplit(self._sim.get("https", "https://127.0.0.1:443"))
            return (base.hostname or "127.0.0.1", base.port or 443)
        return (ip, svc.port)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()

    def __enter__(self) -> "Endpoints":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sockets -----------------------------------------------------------------------------
    def tcp_open(self, ip: str, port: int, timeout: Optional[float] = None) -> bool:
        """Is TCP ``port`` of planned address ``ip`` accepting connections?"""
        ip = self.check_target(ip)
        timeout = self.timeouts.connect if timeout is None else timeout
        if self.mode == "sim":
            base = self._sim.get("http")
            if not base:
                raise TransportError("模拟器没有提供 http 端口，无法检查端口 (simulator has no http port)")
            try:
                resp = self._control().get(base + "/__sim__/reachable", params={"ip": ip, "port": int(port)},
                                           timeout=(timeout, max(timeout, self.timeouts.read)))
                resp.raise_for_status()
                return bool(resp.json().get("open"))
            except (requests.RequestException, ValueError) as exc:
                raise TransportError(
                    f"模拟器端口检查失败 {ip}:{port}：{type(exc).__name__} (simulator reachability check failed)",
                    target=f"{ip}:{port}",
                ) from None
        try:
            with socket.create_connection((ip, int(port)), timeout=timeout):
                return True
        except OSError:
            return False

    def _control(self) -> requests.Session:
        with self._lock:
            session = self._sessions.get(("", "__sim__"))
            if session is None:
                session = requests.Session()
                session.trust_env = False
                self._sessions[("", "__sim__")] = session
            return session

    def ssh_target(self, ip: str) -> tuple[str, int]:
        """``(host, port)`` where SSH of planned address ``ip`` listens."""
        ip = self.check_target(ip)
        if self.mode == "sim":
            ports = self._sim.get("ssh") or {}
            port = ports.get(ip)
            if port is None:
                raise UnreachableError(f"模拟器没有 {ip} 的 SSH 端口 (no simulated SSH for {ip})", target=f"{ip}:22")
            return ("127.0.0.1", int(port))
        return (ip, SERVICES["ssh"].port)

    def ssh_socket(self, ip: str, timeout: Optional[float] = None) -> socket.socket:
        """A connected TCP socket to SSH of planned address ``ip``."""
        host, port = self.ssh_target(ip)
        timeout = self.timeouts.connect if timeout is None else timeout
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise UnreachableError(
                f"无法连接 {ip} 的 SSH 端口：{exc.strerror or type(exc).__name__} (SSH unreachable)",
                target=f"{ip}:22",
            ) from None
        # SSH sends small packets (stdin for chpasswd / sudo -S); without
        # TCP_NODELAY, Nagle + delayed ACK add ~40-80 ms to each of them.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _planned_base(ip: str, svc: Service) -> str:
    default = {"http": 80, "https": 443}.get(svc.scheme)
    port = "" if svc.port == default else f":{svc.port}"
    return f"{svc.scheme}://{ip}{port}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in LOOPBACK
    except ValueError:
        return False
