"""The simulator's backend: one world holding every machine's state and rules.

No HTTP here (see :mod:`voyager.sim.frontend`). Front-ends, the SSH server and
the CloudTower backend read and mutate the world through the methods below,
always under ``world.lock``; every mutation ends with ``world.changed()``,
which persists the state file atomically.

Public attributes
-----------------
``plan``      the :class:`voyager.plan.model.Plan` the world was built from
``clock``     :class:`voyager.sim.clock.Clock` (all timestamps come from it)
``faults``    :class:`voyager.sim.faults.Faults`
``lock``      a re-entrant lock guarding everything
``hosts``     ``{mgmt ip: SimHost}`` for every planned host (scan data + state)
``cluster``   :class:`voyager.sim.cluster.ClusterState` once deployed, else None
``jobs``      :class:`voyager.sim.jobs.JobTable`
``network``   :class:`voyager.sim.network.Network` (VDSes and VLANs)
``images``    :class:`voyager.sim.images.ImageStore` (images and upload volumes)
``vms``       :class:`voyager.sim.vms.VmTable` (VMs incl. the CloudTower VM)
``tower``     ``TowerBackend(world)`` from :mod:`voyager.sim.tower_models` when
              that module exists, else None. It may define ``to_state() -> dict``
              / ``load_state(dict)`` (persisted under the key ``"tower"``) and
              ``status_counts() -> {"organizations", "datacenters",
              "connected_clusters"}``.

Machines and reachability
-------------------------
``machine(ip, port)`` -> :class:`Machine` or None (not up); ``is_open(ip, port)``.
Kinds: ``host`` (every planned management IP), ``vip`` (the cluster VIP once
set), ``tower`` (the CloudTower IP: port 22 once its VM is booted with its IP
configured, 80/443 once the installer finished).

For the SSH server
------------------
``ssh_ips()``, ``check_login(ip, user, password)``, ``set_password(ip, user,
password)``, ``users(ip)``, ``files(ip)`` (mutable ``{path: text}``; call
``changed()``), ``tower_preinstall()``, ``tower_start_installer()``,
``tower_install_log()``, ``tower_ready()``.

For the CloudTower backend
--------------------------
``cluster_info()`` (a plain dict of the deployed cluster, no secrets) and
``verify_fisheye_login(username, password)``.
"""
from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from voyager.plan.model import Plan
from voyager.sim.clock import Clock
from voyager.sim.faults import Faults

log = logging.getLogger("voyager.sim")

HOST = "host"
VIP = "vip"
TOWER = "tower"
MACHINE_PORTS = (80, 443, 22)


class SimError(Exception):
    """A rule of the backend refused an operation. Front-ends render it in their
    API's error shape. ``msg`` never contains a secret."""

    def __init__(self, ec: str, msg: str, *, status: int = 400, detail: Optional[dict] = None):
        super().__init__(msg)
        self.ec = ec
        self.msg = msg
        self.status = status
        self.detail = detail or {}


@dataclass
class Machine:
    kind: str  # host | vip | tower
    ip: str
    port: int = 80
    scheme: str = "http"
    host: Any = None  # SimHost for kinds host/vip


def _optional(module: str, attr: str):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    return getattr(mod, attr, None)


class World:
    """Skeleton: the public attributes and methods are documented in the module
    docstring; the implementation lands in the following commits."""

    def __init__(self, plan: Plan, *, clock: Optional[Clock] = None, faults: Optional[Faults] = None,
                 state_file: Optional[Path] = None, host_overrides: Optional[dict] = None) -> None:
        self.plan = plan
        self.clock = clock or Clock()
        self.faults = faults or Faults("")
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        self.host_overrides = dict(host_overrides or {})
        self.hosts: dict[str, Any] = {}
        self.cluster = None
        self.jobs = None
        self.network = None
        self.images = None
        self.vms = None
        tower_cls = _optional("voyager.sim.tower_models", "TowerBackend")
        self.tower = tower_cls(self) if tower_cls else None
