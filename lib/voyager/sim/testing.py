"""Helpers for tests that drive the simulator over HTTP (developer tooling).

``SimHttp`` sends a request to a planned address the way clients do (Host
header; ``tls=True`` for https with the self-signed certificate accepted, plain
http by default: the simulator serves the same APIs on both) and returns the
``requests.Response``. Its session keeps one connection per listener alive, so
only the first TLS request pays the handshake and urllib3's per-connection set-up.
``deployed`` brings a started simulator to a deployed, configured cluster
through the same HTTP calls as the walkthrough. ``SharedSim`` lets the tests of
a module share one started simulator: it is brought to each stage once over
HTTP, and every test restores the stage it starts from
(:meth:`voyager.sim.backend.world.World.restore`, what a restart with a state file
holding that stage would load) instead of deploying again.
"""
from __future__ import annotations

from typing import Any, Optional

import requests
import urllib3

from voyager.sim.walkthrough import DEPLOY_TOKEN, Walk

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class SimHttp:
    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxy or CA-bundle settings from the environment
        self.token: Optional[str] = None

    def request(self, method: str, ip: str, path: str, *, tls: bool = False, token: Any = "session",
                deploy_token: bool = False, timeout: float = 30, **kwargs) -> requests.Response:
        headers = {"Host": ip, **kwargs.pop("headers", {})}
        if deploy_token:
            headers["x-smartx-token"] = DEPLOY_TOKEN
        elif token == "session":
            if self.token:
                headers["x-smartx-token"] = self.token
        elif token:
            headers["x-smartx-token"] = token
        base = self.endpoints["https" if tls else "http"]
        return self.session.request(method, base + path, headers=headers, timeout=timeout, verify=False, **kwargs)

    def get(self, ip: str, path: str, **kwargs) -> requests.Response:
        return self.request("GET", ip, path, **kwargs)

    def post(self, ip: str, path: str, **kwargs) -> requests.Response:
        return self.request("POST", ip, path, **kwargs)

    def put(self, ip: str, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", ip, path, **kwargs)

    def delete(self, ip: str, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", ip, path, **kwargs)

    def deploy_api(self, method: str, ip: str, path: str, **kwargs) -> requests.Response:
        return self.request(method, ip, path, tls=False, deploy_token=True, **kwargs)

    def sim(self, path: str, **params) -> Any:
        return self.session.get(self.endpoints["http"] + path, params=params, timeout=30).json()


def deployed(sim, plan, *, configure: bool = True, timeout: float = 20.0) -> tuple[SimHttp, Walk]:
    """Deploy (and, with ``configure``, set root, VIP, DNS, NTP, IPMI and the
    business network) through HTTP; returns a logged-in ``SimHttp``."""
    walk = Walk(sim.endpoints, plan, timeout=timeout, poll=0.01, tls=False)
    walk.deploy(walk.scan())
    http = SimHttp(sim.endpoints)
    if configure:
        walk.configure()
        http.token = walk.token
    return http, walk


class SharedSim:
    """One started simulator and its checkpoints ``undeployed``, ``deployed``
    (root not set up, no session) and ``configured`` (root, VIP, DNS, NTP,
    IPMI, business network; logged in), each reached over HTTP once."""

    def __init__(self, sim, plan) -> None:
        self.sim = sim
        self.plan = plan
        self._states: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, Optional[str]] = {}
        self.save("undeployed")
        _, walk = deployed(sim, plan, configure=False)
        self.save("deployed")
        walk.configure()
        self.save("configured", walk.token)

    def save(self, name: str, token: Optional[str] = None) -> None:
        self._states[name] = self.sim.world.snapshot()
        self._tokens[name] = token

    def restore(self, name: str) -> SimHttp:
        """Put the world back to checkpoint ``name``; a ``SimHttp`` holding that stage's session."""
        self.sim.world.restore(self._states[name])
        http = SimHttp(self.sim.endpoints)
        http.token = self._tokens[name]
        return http
