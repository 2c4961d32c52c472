"""The simulator's backend: one world holding every machine's state and rules.

No HTTP here (see :mod:`voyager.sim.web.frontend`). Front-ends, the SSH server and
the CloudTower backend read and mutate the world through the methods below,
always under ``world.lock``; every mutation ends with ``world.changed()``,
which persists the state file atomically.

Public attributes
-----------------
``plan``      the :class:`voyager.plan.model.Plan` the world was built from
``clock``     :class:`voyager.sim.backend.clock.Clock` (all timestamps come from it)
``faults``    :class:`voyager.sim.backend.faults.Faults`
``lock``      a re-entrant lock guarding everything
``hosts``     ``{mgmt ip: SimHost}`` for every planned host (scan data + state)
``cluster``   :class:`voyager.sim.backend.cluster.ClusterState` once deployed, else None
``jobs``      :class:`voyager.sim.backend.jobs.JobTable`
``network``   :class:`voyager.sim.backend.network.Network` (VDSes and VLANs)
``images``    :class:`voyager.sim.backend.images.ImageStore` (images and upload volumes)
``vms``       :class:`voyager.sim.backend.vms.VmTable` (VMs incl. the CloudTower VM)
``tower``     ``TowerBackend(world)`` from :mod:`voyager.sim.tower.models` when
              that module exists, else None. It may define ``to_state() -> dict``
              / ``load_state(dict)`` (persisted under the key ``"tower"``) and
              ``status_counts() -> {"organizations", "datacenters",
              "connected_clusters", "views", "graphs", "racks", "bricks"}``.

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

State
-----
``to_state()`` is what the state file holds; ``snapshot()`` / ``restore(state)``
copy it out and put it back (a restore is exactly a restart that loads it).
"""
from __future__ import annotations

import importlib
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from voyager.plan.model import Plan
from voyager.sim.backend import persistence
from voyager.sim.backend.clock import Clock
from voyager.sim.backend.cluster import ClusterState
from voyager.sim.backend.deployer import Deployer
from voyager.sim.backend.errors import SimError
from voyager.sim.backend.faults import Faults
from voyager.sim.backend.hosts import DEFAULT_HOST_PASSWORD, SimHost, build_hosts
from voyager.sim.backend.images import ImageStore
from voyager.sim.backend.installer import Installer
from voyager.sim.backend.jobs import JobTable
from voyager.sim.backend.network import Network
from voyager.sim.backend.passwords import hash_password, verify_password
from voyager.sim.backend.timeline import Timeline
from voyager.sim.backend.vms import VmTable

log = logging.getLogger("voyager.sim")

HOST = "host"
VIP = "vip"
TOWER = "tower"
VM = "vm"  # a test VM with an IP: SSH only
MACHINE_PORTS = (80, 443, 22)
TOWER_VM_USER = "cloudtower"
TOWER_VM_PASSWORD = "HC!r0cks"  # the fixed default of the CloudTower ISO (walkthrough step 04)
MAX_TEST_RANGE = 64

__all__ = ["HOST", "VIP", "TOWER", "VM", "Machine", "SimError", "World"]


@dataclass
class Machine:
    kind: str  # host | vip | tower | vm
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
    def __init__(self, plan: Plan, *, clock: Optional[Clock] = None, faults: Optional[Faults] = None,
                 state_file: Optional[Path] = None, host_overrides: Optional[dict] = None) -> None:
        self.plan = plan
        self.clock = clock or Clock()
        self.faults = faults or Faults("")
        self.lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        self._host_overrides = host_overrides
        self._plan_fingerprint = plan.fingerprint()  # the plan does not change while simulated
        self._build()
        self._load()

    def _build(self) -> None:
        """Every component in its initial (nothing deployed) state."""
        self.hosts: dict[str, SimHost] = build_hosts(self.plan, self._host_overrides)
        self.cluster: Optional[ClusterState] = None
        self.timeline = Timeline(self)
        self.jobs = JobTable(self)
        self.network = Network(self)
        self.images = ImageStore(self)
        self.vms = VmTable(self)
        self.deployer = Deployer(self)
        self.installer = Installer(self)
        # accounts of machines other than hosts (CloudTower VM, test VMs): {ip: {user: digest | None}}
        self.accounts: dict[str, dict[str, Optional[str]]] = {}
        self.machine_files: dict[str, dict[str, str]] = {}
        self.jobs.register("set_vip", self._effect_vip)
        self.jobs.register("set_dns", self._effect_dns)
        self.jobs.register("set_ntp", self._effect_ntp)
        tower_cls = _optional("voyager.sim.tower.models", "TowerBackend")
        self.tower = tower_cls(self) if tower_cls else None
        if self.tower_ip:
            self.accounts.setdefault(self.tower_ip, {TOWER_VM_USER: None})

    # -- persistence ---------------------------------------------------------------------
    def _load(self) -> None:
        state = persistence.load_state(self.state_file)
        if state is None:
            return
        if state.get("plan_fingerprint") != self._plan_fingerprint:
            log.warning("simulator state %s was saved for another plan version; continuing with it", self.state_file)
        self._apply(state)

    def _apply(self, state: dict[str, Any]) -> None:
        for ip, hs in (state.get("hosts") or {}).items():
            if ip in self.hosts:
                self.hosts[ip].load_state(hs)
        if state.get("cluster"):
            self.cluster = ClusterState(**state["cluster"])
        self.deployer.load_state(state.get("deploy"))
        self.jobs.load_state(state.get("jobs") or {})
        self.network.load_state(state.get("network") or {})
        self.images.load_state(state.get("images") or {})
        self.vms.load_state(state.get("vms") or {})
        self.installer.load_state(state.get("installer") or {})
        self.timeline.load_state(state.get("timeline"))
        for ip, users in (state.get("accounts") or {}).items():
            self.accounts.setdefault(ip, {}).update(users)
        self.machine_files = {ip: dict(f) for ip, f in (state.get("files") or {}).items()}
        if self.tower is not None and state.get("tower") is not None and hasattr(self.tower, "load_state"):
            self.tower.load_state(state["tower"])

    def snapshot(self) -> dict[str, Any]:
        """The state as the state file holds it (a deep, JSON-shaped copy)."""
        with self.lock:
            return json.loads(json.dumps(self.to_state()))

    def restore(self, state: dict[str, Any]) -> None:
        """Put the world back to a :meth:`snapshot`: exactly what a restarted
        simulator would load from a state file holding it (uploads in flight
        lose their progress, as after a restart). Tests use it to share one
        started simulator between independent tests."""
        with self.lock:
            self.images.close()
            self._build()
            self._apply(json.loads(json.dumps(state)))
            self.changed()

    def to_state(self) -> dict[str, Any]:
        return {
            "plan_fingerprint": self._plan_fingerprint,
            "hosts": {ip: h.to_state() for ip, h in self.hosts.items()},
            "cluster": self.cluster.to_state() if self.cluster else None,
            "deploy": self.deployer.to_state(),
            "jobs": self.jobs.to_state(),
            "network": self.network.to_state(),
            "images": self.images.to_state(),
            "vms": self.vms.to_state(),
            "installer": self.installer.to_state(),
            "timeline": self.timeline.to_state(),
            "accounts": self.accounts,
            "files": self.machine_files,
            "tower": self.tower.to_state() if self.tower is not None and hasattr(self.tower, "to_state") else None,
            "status": self._counts(),
        }

    def changed(self) -> None:
        """Persist the state (call after every mutation, under the lock)."""
        if self.state_file is None:
            return
        with self.lock:
            persistence.save_state(self.state_file, self.to_state())

    def tick(self) -> None:
        """Let time act: deployment stages, jobs, VM boots, the installer."""
        with self.lock:
            moved = self.deployer.tick()
            moved = self.jobs.tick() or moved
            moved = self.vms.tick() or moved
            moved = self.installer.tick() or moved
            if self.tower is not None and hasattr(self.tower, "tick"):
                moved = bool(self.tower.tick()) or moved
            if moved:
                self.changed()

    def warm_up(self) -> None:
        """Let the CloudTower backend load what its front-ends need later
        (``TowerBackend.warm_up``), in a daemon thread: called when a deployment
        starts, so the loading overlaps the deployment (a rehearsal's CPU is idle then)."""
        warm = getattr(self.tower, "warm_up", None)
        if warm is None:
            return

        def run() -> None:
            try:
                warm()
            except Exception:  # noqa: BLE001 - a warm-up only saves time; the first request loads it anyway
                log.debug("simulator warm-up failed", exc_info=True)

        threading.Thread(target=run, name="voyager-sim-warm-up", daemon=True).start()

    def close(self) -> None:
        self.images.close()

    # -- lookups ---------------------------------------------------------------------------
    @property
    def tower_ip(self) -> Optional[str]:
        return self.plan.cloudtower.ip if self.plan.cloudtower else None

    def host_by_uuid(self, host_uuid: Any) -> Optional[SimHost]:
        return next((h for h in self.hosts.values() if h.uuid == host_uuid), None)

    def require_cluster(self) -> ClusterState:
        if self.cluster is None:
            raise SimError("CLUSTER_NOT_DEPLOYED", "the cluster is not deployed", status=404)
        return self.cluster

    def bmc_reachable(self, ip: Any, user: Any, password: Any) -> bool:
        """IPMI check: only planned BMC addresses in 127.0.0.0/8 exist for the
        simulator, and they accept exactly the plan's BMC credentials."""
        if not isinstance(ip, str) or not ip.startswith("127."):
            return False
        host = next((h for h in self.plan.hosts if h.bmc_ip == ip), None)
        return bool(host) and user == host.bmc_user and password == host.bmc_password.reveal()

    # -- machines ----------------------------------------------------------------------------
    def machine(self, ip: str, port: int, scheme: Optional[str] = None) -> Optional[Machine]:
        """The machine answering ``ip:port`` now, or None when nothing listens there."""
        scheme = scheme or ("https" if port == 443 else "http")
        self.tick()
        with self.lock:
            if port not in MACHINE_PORTS:
                return None
            host = self.hosts.get(ip)
            if host is not None:
                return Machine(HOST, ip, port, scheme, host)
            cluster = self.cluster
            if cluster is not None and cluster.vip == ip:
                return Machine(VIP, ip, port, scheme, self.hosts[cluster.master_ip])
            vm = self.vms.vm_by_ip(ip)
            if vm is None or not self.vms.reachable(vm):
                return None
            if ip == self.tower_ip and vm["profile"] == "cloudtower":
                if port == 22 or self.installer.succeeded():
                    return Machine(TOWER, ip, port, scheme)
                return None
            return Machine(VM, ip, port, scheme) if port == 22 else None

    def is_open(self, ip: str, port: int) -> bool:
        return self.machine(ip, port) is not None

    def planned_ips(self) -> list[str]:
        ips = list(self.hosts)
        for extra in (self.plan.cluster.vip, self.tower_ip):
            if extra and extra not in ips:
                ips.append(extra)
        return ips

    def ssh_ips(self) -> list[str]:
        """Every planned address that may ever answer SSH: hosts, CloudTower,
        the test IP range (at most 64 addresses)."""
        ips = list(self.hosts)
        if self.tower_ip:
            ips.append(self.tower_ip)
        rng = self.plan.test_ip_range
        if rng and rng.start and rng.end:
            try:
                start, end = ipaddress.IPv4Address(rng.start), ipaddress.IPv4Address(rng.end)
            except ValueError:
                start = end = None
            if start and end and 0 <= int(end) - int(start) < MAX_TEST_RANGE:
                ips += [str(ipaddress.IPv4Address(n)) for n in range(int(start), int(end) + 1)]
        return list(dict.fromkeys(ip for ip in ips if ip))

    # -- accounts and files (SSH) ------------------------------------------------------------------
    def users(self, ip: str) -> list[str]:
        if ip in self.hosts:
            return sorted(self.hosts[ip].accounts)
        return sorted(self.accounts.get(ip, {}))

    def _account_table(self, ip: str) -> Optional[dict[str, Optional[str]]]:
        if ip in self.hosts:
            return self.hosts[ip].accounts
        return self.accounts.get(ip)

    def check_login(self, ip: str, user: str, password: str) -> bool:
        self.tick()
        with self.lock:
            table = self._account_table(ip)
            if table is None or user not in table:
                return False
            digest = table[user]
            if digest is None:
                default = DEFAULT_HOST_PASSWORD if ip in self.hosts else TOWER_VM_PASSWORD
                return password == default
            return verify_password(password, digest)

    def set_password(self, ip: str, user: str, password: str) -> bool:
        self.tick()
        with self.lock:
            table = self._account_table(ip)
            if table is None or user not in table or not password:
                return False
            table[user] = hash_password(password)
            self.changed()
            return True

    def add_account(self, ip: str, user: str, password: str) -> None:
        """Give a test VM an account (its image's default user)."""
        with self.lock:
            self.accounts.setdefault(ip, {})[user] = hash_password(password)
            self.changed()

    def files(self, ip: str) -> dict[str, str]:
        with self.lock:
            if ip not in self.machine_files:
                self.machine_files[ip] = {"/etc/resolv.conf": "# Generated by NetworkManager\n"}
            return self.machine_files[ip]

    # -- the CloudTower VM ------------------------------------------------------------------------
    def tower_preinstall(self) -> tuple[int, str]:
        with self.lock:
            result = self.installer.preinstall()
            self.changed()
            return result

    def tower_start_installer(self) -> bool:
        with self.lock:
            started = self.installer.start()
            self.changed()
            return started

    def tower_install_log(self) -> str:
        self.tick()
        with self.lock:
            return self.installer.log()

    def tower_ready(self) -> bool:
        return self.tower_ip is not None and self.machine(self.tower_ip, 443) is not None

    # -- settings jobs ------------------------------------------------------------------------------
    def settings_job(self, what: str, body: dict[str, Any]) -> str:
        cluster = self.require_cluster()
        if what == "vip":
            cluster.validate_vip(body, self.plan.networks.mgmt.subnet)
        elif what == "dns":
            cluster.validate_dns(body)
        else:
            cluster.validate_ntp(body)
        description = {"vip": "UPDATE_VIP", "dns": "UPDATE_DNS", "ntp": "UPDATE_NTP"}[what]
        return self.jobs.create(description, resources={cluster.uuid: {"type": "CLUSTER", "uuid": cluster.uuid,
                                                                        "name": cluster.name}},
                                effect=f"set_{what}", args={"body": body})

    def _effect_vip(self, args: dict[str, Any]) -> None:
        cluster = self.require_cluster()
        cluster.vip = args["body"]["management_vip"]
        cluster.iscsi_vip = args["body"].get("iscsi_vip")

    def _effect_dns(self, args: dict[str, Any]) -> None:
        self.require_cluster().dns_servers = list(args["body"]["dns_servers"])

    def _effect_ntp(self, args: dict[str, Any]) -> None:
        cluster = self.require_cluster()
        cluster.ntp_mode = args["body"]["ntp_mode"]
        cluster.ntp_servers = list(args["body"]["ntp_servers"])

    # -- for the CloudTower backend ------------------------------------------------------------------
    def verify_fisheye_login(self, username: str, password: str) -> bool:
        with self.lock:
            return self.cluster is not None and self.cluster.check_root(username, password)

    def cluster_info(self) -> Optional[dict[str, Any]]:
        """A plain, secret-free view of the deployed cluster (None before deployment)."""
        self.tick()
        with self.lock:
            c = self.cluster
            if c is None:
                return None
            hosts = [self.hosts[ip] for ip in c.host_ips]
            mgmt = self.plan.networks.mgmt
            return {
                "uuid": c.uuid, "name": c.name, "version": c.version, "platform": c.platform,
                "management_vip": c.vip, "iscsi_vip": c.iscsi_vip, "license_serial": c.serial,
                "license_type": "TRIAL", "software_edition": "ENTERPRISE", "license_sign_date": int(c.created),
                "license_period": c.license()["period"], "dns": list(c.dns_servers), "ntp_mode": c.ntp_mode,
                "ntp_servers": list(c.ntp_servers), "vhost_enabled": c.vhost_enabled, "rdma_enabled": c.rdma_enabled,
                "is_all_flash": hosts[0].all_flash if hosts else False,
                "mgt_gateway": mgmt.gateway, "mgt_subnet": mgmt.subnet,
                "current_cpu_model": c.cpu_model or "host_passthrough",
                "hosts": [{"uuid": h.uuid, "name": h.hostname, "management_ip": h.mgmt_ip, "data_ip": h.storage_ip,
                           "bmc_ip": h.plan_host.bmc_ip, "sn": h.sn, "cpu": dict(h.scan()["cpu"]),
                           "disks": [dict(d) for d in h.disks], "rack": h.plan_host.rack,
                           "unit": h.plan_host.unit} for h in hosts],
                "vdses": [{"uuid": v["uuid"], "name": v["name"], "ovsbr_name": v["ovsbr_name"],
                           "bond_mode": v["bond_mode"]} for v in self.network.vdses.values()],
                "vlans": [dict(v) for v in self.network.vlans.values()],
                "vms": [{"uuid": vm["uuid"], "name": vm["vm_name"], "status": vm["status"], "vcpu": vm["vcpu"],
                         "memory": vm["memory"], "ip": self.vms.ip_of(vm)} for vm in self.vms.vms.values()],
                "storage_policies": [dict(p) for p in c.storage_policies],
            }

    # -- status -------------------------------------------------------------------------------------
    def _counts(self) -> dict[str, Any]:
        tower_counts = {"organizations": 0, "datacenters": 0, "connected_clusters": 0, "views": 0, "graphs": 0,
                        "racks": 0, "bricks": 0}
        if self.tower is not None and hasattr(self.tower, "status_counts"):
            tower_counts.update(self.tower.status_counts())
        return {
            "deployed": self.cluster is not None,
            "hosts": len(self.hosts),
            "vds": len(self.network.vdses),
            "vlans": self.network.vm_network_count(),
            "images": len(self.images.images),
            "vms": len(self.vms.vms),
            **tower_counts,
            "uploads_in_progress": len(self.images.uploads),
        }

    def status(self) -> dict[str, Any]:
        self.tick()
        with self.lock:
            return self._counts()
