"""CloudTower's backend: users, organizations, datacenters, connected clusters,
settings, license, NTP, tasks (the ``models.py`` of the CloudTower service).

No HTTP here: :mod:`voyager.sim.tower.rest` (``/v2/api``),
:mod:`voyager.sim.tower.graphql_api` (``/api``) and :mod:`voyager.sim.tower.inspector_api`
render it. Alert rules, dashboards (views/graphs), the rack topology, the
inspection center, uploaded packages and deployed applications live in
:mod:`voyager.sim.tower.alerts`, :mod:`voyager.sim.tower.dashboards`, :mod:`voyager.sim.tower.topology`,
:mod:`voyager.sim.tower.inspection`, :mod:`voyager.sim.tower.packages` and
:mod:`voyager.sim.tower.applications`, composed here.

Rules mirrored from the real CloudTower:

* setup: the root user is created once (``createRootUser`` with the encoded
  default password of the walkthrough); a second time is ``UserAlreadyExists``.
  Until an organization exists, ``createOrganization`` needs no token.
* ``/v2/api/login`` issues tokens; they do not expire. Only their digests are
  kept (:mod:`voyager.sim.backend.passwords`), so the state file carries no secret.
* names are unique: a duplicate organization / datacenter / view / rack is
  refused with a message containing "already exists".
* ``connect-cluster`` checks that the address answers (the cluster VIP, or a
  management IP of the deployed cluster) and that username/password log into
  fisheye (the admin password set by ``setupRoot``); then a task runs
  ``PENDING -> EXECUTING -> SUCCESSED`` and the cluster goes ``INITIALIZING ->
  CONNECTED``. ``fail-job:CONNECT_CLUSTER:N`` makes the task fail.

Every timestamp comes from ``world.clock``; durations are real seconds scaled
by it. Callers hold ``world.lock`` (the front-ends do); mutating methods call
``world.changed()`` themselves.
"""
from __future__ import annotations

import secrets
import string
import uuid
from typing import Any, Optional

from voyager.sim.backend import passwords
from voyager.sim.tower.alerts import AlertRules
from voyager.sim.tower.common import (CONNECTED, EXECUTING, FAILED, INITIALIZING, PENDING, SUCCESSED,  # noqa: F401
                                      require_str,
                                      TowerError, cuid, iso)
from voyager.sim.tower.dashboards import Dashboards
from voyager.sim.tower.inspection import Inspector
from voyager.sim.tower.packages import PackageUploads
from voyager.sim.tower.topology import Topology

DEFAULT_ROOT_PASSWORD = "HC!r0cks"
# The walkthrough's hard-coded ``createRootUser`` variable: CloudTower's UI
# encoding of HC!r0cks (it cannot be changed, the walkthrough says).
ENCODED_DEFAULT_ROOT_PASSWORD = (
    "NzllNTE3NTgxYWY5NDY3ODM4ZTczMTg1MDc4YmM3YzQ6eVpSSTlodUNxNDBNL3J4ZTViZ1dqZz09"
)
ROOT_USERNAME = "root"
TRIAL_DAYS = 90

# task key -> (pending, executing) real seconds
TASK_DURATIONS: dict[str, tuple[float, float]] = {
    "CONNECT_CLUSTER": (3.0, 45.0),
    "CREATE_RACK_TOPO": (1.0, 3.0),
    "CREATE_BRICK_TOPO": (1.0, 3.0),
    "MOVE_NODE_TOPO": (1.0, 3.0),
    "DEPLOY_CLOUDTOWER_APPLICATION": (2.0, 300.0),
    "ASSOCIATE_OBS_CLUSTER": (1.0, 10.0),
    "ASSOCIATE_BACKUP_CLUSTER": (1.0, 10.0),
    "IMPORT_VM": (1.0, 30.0),
    "IMPORT_VM_VOLUME": (1.0, 20.0),
    "CREATE_VM": (1.0, 15.0),
    "DELETE_VM_VOLUME": (1.0, 5.0),
    "MIGRATE_VM": (1.0, 20.0),
    "DELETE_VM": (1.0, 5.0),
    "ENTER_MAINTENANCE_MODE_PRECHECK": (1.0, 10.0),
    "ENTER_MAINTENANCE_MODE": (1.0, 60.0),
    "EXIT_MAINTENANCE_MODE": (1.0, 20.0),
}
DEFAULT_TASK_DURATION = (1.0, 3.0)

class TowerBackend:
    """All CloudTower state of the world (``world.tower``)."""

    def __init__(self, world) -> None:
        self.world = world
        self.root: Optional[dict[str, Any]] = None  # {id, password (digest), created_at}
        self.tokens: dict[str, dict[str, Any]] = {}  # token digest -> {user_id, created_at}
        self.organizations: list[dict[str, Any]] = []
        self.datacenters: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.ntp_servers: list[str] = []
        self.license: Optional[dict[str, Any]] = None
        self.local_ids: dict[str, str] = {}  # "<kind>:<local id>" -> tower id
        self._ticking = False
        self._unsaved_ids = False
        self.finishers: dict[str, Any] = {}  # task key -> fn(task), called when such a task ends
        self.alerts = AlertRules(self)
        self.dashboards = Dashboards(self)
        self.topo = Topology(self)
        self.inspector = Inspector(self)
        from voyager.sim.tower.applications import Applications  # these import this module's helpers
        from voyager.sim.tower.packages import PackageUploads

        self.packages = PackageUploads(self)
        self.applications = Applications(self)

        from voyager.sim.tower.vms import TowerWorkloads  # imports this module's helpers

        self.workloads = TowerWorkloads(self)

        from voyager.sim.tower.volumes import TowerVolumes  # imports this module's helpers

        self.volumes = TowerVolumes(self)

    # -- plumbing ----------------------------------------------------------------
    @property
    def clock(self):
        return self.world.clock

    def changed(self) -> None:
        self.world.changed()

    def tower_id(self, kind: str, local_id: str) -> str:
        """The stable tower id of a cluster-side object (host, vds, vlan, vm)."""
        key = f"{kind}:{local_id}"
        if key not in self.local_ids:
            self.local_ids[key] = cuid()
            self._unsaved_ids = True
        return self.local_ids[key]

    def save_new_ids(self) -> None:
        """Persist tower ids handed out while rendering (front-ends call it per request),
        so that a rerun against the state file sees the same ids."""
        if self._unsaved_ids:
            self._unsaved_ids = False
            self.changed()

    # -- users and tokens --------------------------------------------------------
    def create_root_user(self, encoded_password: Any) -> dict[str, Any]:
        if self.root is not None:
            raise TowerError("User root already exists", code="UserAlreadyExists")
        if not isinstance(encoded_password, str) or not encoded_password:
            raise TowerError('Variable "$root_password" of required type "String!" was not provided.',
                             code="BAD_USER_INPUT")
        if encoded_password != ENCODED_DEFAULT_ROOT_PASSWORD:
            raise TowerError("Failed to decrypt the encoded password", code="PASSWORD_DECRYPT_FAILED")
        self.root = {"id": cuid(), "password": passwords.hash_password(DEFAULT_ROOT_PASSWORD),
                     "created_at": self.clock.now()}
        self.changed()
        return {"id": self.root["id"]}

    @property
    def user_created(self) -> bool:
        return self.root is not None

    def login(self, username: Any, password: Any, source: Any = "LOCAL") -> str:
        if source not in (None, "LOCAL"):
            raise TowerError(f"Unsupported user source {source}", code="LOGIN_FAILED")
        if (self.root is None or username != ROOT_USERNAME or not isinstance(password, str)
                or not passwords.verify_password(password, self.root["password"])):
            raise TowerError("用户名或密码错误 (incorrect username or password)", code="LOGIN_FAILED")
        token = self._new_token()
        self.tokens[passwords.token_digest(token)] = {"user_id": self.root["id"],
                                                      "created_at": self.clock.now()}
        self.changed()
        return token

    def _new_token(self) -> str:
        # JWT-looking (header.payload.signature), as CloudTower's tokens are.
        header = "eyJhbGciOiJIUzI1NiJ9"
        return f"{header}.{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(32)}"

    def authenticate(self, header_value: Optional[str]) -> Optional[str]:
        """The user id of ``Authorization: <token>`` / ``Bearer <token>``, or None."""
        if not header_value:
            return None
        token = header_value.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        entry = self.tokens.get(passwords.token_digest(token)) if token else None
        return entry["user_id"] if entry else None

    # -- organizations and datacenters ---------------------------------------------
    @property
    def is_setup(self) -> bool:
        return self.root is not None and bool(self.organizations)

    def create_organization(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise TowerError('Variable "$data" of required type "OrganizationCreateInput!" was not provided.',
                             code="BAD_USER_INPUT")
        name = require_str(data, "name")
        if any(o["name"] == name for o in self.organizations):
            raise TowerError(f"Organization with name {name} already exists", code="ORGANIZATION_DUPLICATE")
        org = {"id": cuid(), "name": name}
        self.organizations.append(org)
        self.changed()
        return org

    def organization(self, org_id: str) -> Optional[dict[str, Any]]:
        return next((o for o in self.organizations if o["id"] == org_id), None)

    def create_datacenter(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise TowerError("each datacenter must be an object", code="VALIDATION")
        org_id = require_str(params, "organization_id")
        name = require_str(params, "name")
        if self.organization(org_id) is None:
            raise TowerError(f"Organization {org_id} not found", status=404, code="ORGANIZATION_NOT_FOUND")
        if any(d["name"] == name for d in self.datacenters):
            raise TowerError(f"Datacenter with name {name} already exists", code="DATACENTER_DUPLICATE")
        dc = {"id": cuid(), "name": name, "organization_id": org_id}
        self.datacenters.append(dc)
        self.changed()
        return dc

    def datacenter(self, dc_id: Any) -> Optional[dict[str, Any]]:
        return next((d for d in self.datacenters if d["id"] == dc_id), None)

    # -- clusters ------------------------------------------------------------------
    def cluster_info(self) -> Optional[dict[str, Any]]:
        """The deployed cluster as the world describes it, or None."""
        if self.world.cluster is None:
            return None
        return self.world.cluster_info()

    def cluster_addresses(self, info: dict[str, Any]) -> set[str]:
        addresses = {h["management_ip"] for h in info.get("hosts", [])}
        if info.get("management_vip"):
            addresses.add(info["management_vip"])
        return addresses

    def connect_cluster(self, params: Any) -> tuple[dict[str, Any], str]:
        """Validate and start connecting; returns ``(cluster record, task id)``."""
        if not isinstance(params, dict):
            raise TowerError("each cluster must be an object", code="VALIDATION")
        ip = require_str(params, "ip")
        username = require_str(params, "username")
        password = require_str(params, "password")
        dc_id = params.get("datacenter_id")  # optional in the spec: a cluster may belong to no datacenter
        if dc_id is not None and self.datacenter(dc_id) is None:
            raise TowerError(f"Datacenter {dc_id} not found", status=404, code="DATACENTER_NOT_FOUND")
        if any(c["ip"] == ip for c in self.clusters):
            raise TowerError(f"Cluster with ip {ip} already exists", code="CLUSTER_DUPLICATE")
        info = self.cluster_info()
        reachable = (info is not None and ip in self.cluster_addresses(info)
                     and self.world.is_open(ip, 443))
        if not reachable:
            raise TowerError(f"Failed to connect to cluster {ip}: connect ETIMEDOUT {ip}:443",
                             code="CLUSTER_CONNECT_FAILED")
        if any(c["local_id"] == info["license_serial"] for c in self.clusters):
            raise TowerError(f"Cluster {info['name']} already exists", code="CLUSTER_DUPLICATE")
        if not self.world.verify_fisheye_login(username, password):
            raise TowerError(f"Failed to connect to cluster {ip}: incorrect username or password",
                             code="CLUSTER_AUTH_FAILED")
        cluster = {
            "id": cuid(), "ip": ip, "local_id": info["license_serial"], "datacenter_id": dc_id,
            "connect_state": INITIALIZING, "settings": _default_settings(), "created_at": self.clock.now(),
        }
        self.clusters.append(cluster)
        task = self.create_task("CONNECT_CLUSTER", f"Connect cluster {ip}", cluster_id=cluster["id"],
                                resource_type="Cluster", resource_id=cluster["id"], resource_mutation="connectCluster")
        cluster["task_id"] = task["id"]
        self.changed()
        return cluster, task["id"]

    def cluster(self, cluster_id: Any) -> Optional[dict[str, Any]]:
        return next((c for c in self.clusters if c["id"] == cluster_id), None)

    def connected_cluster(self, cluster_id: Any) -> dict[str, Any]:
        """The cluster, which must exist and be CONNECTED (400 otherwise)."""
        self.advance()
        cluster = self.cluster(cluster_id)
        if cluster is None:
            raise TowerError(f"Cluster {cluster_id} not found", status=404, code="CLUSTER_NOT_FOUND")
        if cluster["connect_state"] != CONNECTED:
            raise TowerError(f"Cluster {cluster_id} is not connected yet ({cluster['connect_state']})",
                             code="CLUSTER_NOT_CONNECTED")
        return cluster

    def cluster_by_settings(self, settings_id: Any) -> Optional[dict[str, Any]]:
        return next((c for c in self.clusters if c["settings"]["id"] == settings_id), None)

    def update_cluster_settings(self, settings_id: Any, data: Any) -> dict[str, Any]:
        cluster = self.cluster_by_settings(settings_id)
        if cluster is None:
            raise TowerError(f"No ClusterSettings found for where: {{ id: {settings_id!r} }}",
                             code="NOT_FOUND")
        if not isinstance(data, dict):
            raise TowerError('Variable "$data" of required type "ClusterSettingsUpdateInput!" was not provided.',
                             code="BAD_USER_INPUT")
        updated = dict(cluster["settings"])
        updated.update(_validate_settings(data, updated))
        cluster["settings"] = updated
        self.changed()
        return dict(updated)

    # -- NTP and license -----------------------------------------------------------
    def update_ntp(self, data: Any) -> str:
        if not isinstance(data, dict):
            raise TowerError('Variable "$data" of required type "NtpCommonUpdateInput!" was not provided.',
                             code="BAD_USER_INPUT")
        raw = require_str(data, "ntp_service_url")
        servers = [s.strip() for s in raw.split(",")]
        for server in servers:
            if not server or any(ch.isspace() for ch in server) or not _valid_host(server):
                raise TowerError(f"Invalid NTP server address: {server!r}", code="INVALID_NTP_SERVER")
        self.ntp_servers = servers
        self.changed()
        return ";".join(servers)

    def deployed_license(self) -> dict[str, Any]:
        if self.license is None:
            now = self.clock.now()
            self.license = {"deploy_id": str(uuid.uuid4()), "id": cuid(), "serial": str(uuid.uuid4()),
                            "sign_date": now, "expire_date": now + TRIAL_DAYS * 86400}
            self.changed()
        return dict(self.license)

    # -- tasks ---------------------------------------------------------------------
    def create_task(self, key: str, description: str, *, cluster_id: Optional[str] = None,
                    resource_type: Optional[str] = None, resource_id: Optional[str] = None,
                    resource_mutation: Optional[str] = None, args: Optional[dict] = None) -> dict[str, Any]:
        pending, executing = TASK_DURATIONS.get(key, DEFAULT_TASK_DURATION)
        task = {
            "id": cuid(), "key": key, "description": description, "status": PENDING,
            "created_at": self.clock.now(), "started_at": None, "finished_at": None,
            "pending_for": pending, "executing_for": executing, "cluster_id": cluster_id,
            "resource_type": resource_type, "resource_id": resource_id,
            "resource_mutation": resource_mutation, "args": args or {},
            "fail": self.world.faults.take("fail-job", key), "error_code": None, "error_message": None,
        }
        self.tasks.append(task)
        self.changed()
        return task

    def task_progress(self, task: dict[str, Any]) -> float:
        """0..1: 0 while pending, the executed fraction while executing, 1 when done."""
        if task["status"] == SUCCESSED:
            return 1.0
        if task["status"] == PENDING:
            return 0.0
        done = self.clock.elapsed_real(task["created_at"]) - task["pending_for"]
        return round(min(1.0, max(0.0, done / task["executing_for"])) if task["executing_for"] else 1.0, 2)

    def task(self, task_id: Any) -> Optional[dict[str, Any]]:
        return next((t for t in self.tasks if t["id"] == task_id), None)

    def warm_up(self) -> None:
        """Load what CloudTower's front-ends need later (the GraphQL schema, built from its
        SDL: ~0.4 s; python-docx for the inspection report), so that the first request
        does not pay it. The world runs this in the background while the cluster deploys."""
        import importlib

        from voyager.sim.tower.graphql_schema import schema

        schema()
        importlib.import_module("docx")

    def tick(self) -> bool:
        """Advance unfinished tasks (and what they complete) to the current time;
        True when something changed (the world then persists). Re-entrant calls
        (completing a task asks the world, whose tick calls us) do nothing."""
        if self._ticking:
            return False
        self._ticking = True
        try:
            return self._advance()
        finally:
            self._ticking = False

    def _advance(self) -> bool:
        changed = False
        clock = self.clock
        for task in list(self.tasks):
            if task["status"] in (SUCCESSED, FAILED):
                continue
            total = task["pending_for"] + task["executing_for"]
            if task["status"] == PENDING and clock.reached(task["created_at"], task["pending_for"]):
                task["status"] = EXECUTING
                task["started_at"] = task["created_at"] + clock.wall(task["pending_for"])
                changed = True
            if task["status"] == EXECUTING and clock.reached(task["created_at"], total):
                self._finish(task)
                changed = True
        return changed

    def advance(self) -> None:
        """Tick and persist what moved (for callers outside ``world.tick``)."""
        if self.tick():
            self.changed()

    def _finish(self, task: dict[str, Any]) -> None:
        task["finished_at"] = task["created_at"] + self.clock.wall(task["pending_for"] + task["executing_for"])
        if task["fail"]:
            task["status"] = FAILED
            task["error_code"] = "SIMULATED_FAILURE"
            task["error_message"] = f"simulated failure of {task['key']} (fail-job fault)"
        else:
            task["status"] = SUCCESSED
        if task["key"] in self.finishers:
            self.finishers[task["key"]](task)
        if task["key"] == "CONNECT_CLUSTER":
            cluster = self.cluster(task["cluster_id"])
            if cluster is None:
                return
            if task["status"] == FAILED:
                self.clusters.remove(cluster)
            else:
                cluster["connect_state"] = CONNECTED
                cluster["connected_at"] = task["finished_at"]
                self.alerts.cluster_connected(cluster)
                self.topo.cluster_connected(cluster)

    # -- persistence and status ------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "root": self.root, "tokens": self.tokens, "organizations": self.organizations,
            "datacenters": self.datacenters, "clusters": self.clusters, "tasks": self.tasks,
            "ntp_servers": self.ntp_servers, "license": self.license, "local_ids": self.local_ids,
            "alerts": self.alerts.to_state(), "dashboards": self.dashboards.to_state(),
            "topo": self.topo.to_state(), "inspector": self.inspector.to_state(),
            "packages": self.packages.to_state(), "applications": self.applications.to_state(),
            "workloads": self.workloads.to_state(),
            "volumes": self.volumes.to_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.root = state.get("root")
        self.tokens = dict(state.get("tokens") or {})
        self.organizations = list(state.get("organizations") or [])
        self.datacenters = list(state.get("datacenters") or [])
        self.clusters = list(state.get("clusters") or [])
        self.tasks = list(state.get("tasks") or [])
        self.ntp_servers = list(state.get("ntp_servers") or [])
        self.license = state.get("license")
        self.local_ids = dict(state.get("local_ids") or {})
        self.alerts.load_state(state.get("alerts") or {})
        self.dashboards.load_state(state.get("dashboards") or {})
        self.topo.load_state(state.get("topo") or {})
        self.inspector.load_state(state.get("inspector") or {})
        self.packages.load_state(state.get("packages") or {})
        self.applications.load_state(state.get("applications") or {})
        self.workloads.load_state(state.get("workloads") or {})
        self.volumes.load_state(state.get("volumes") or {})

    def status_counts(self) -> dict[str, int]:
        return {
            "organizations": len(self.organizations),
            "datacenters": len(self.datacenters),
            "connected_clusters": sum(1 for c in self.clusters if c["connect_state"] == CONNECTED),
            "views": len(self.dashboards.views),
            "graphs": len(self.dashboards.graphs),
            "racks": len(self.topo.racks),
            "bricks": len(self.topo.bricks),
        }


# -- cluster settings -----------------------------------------------------------------
STORAGE_POLICIES = {
    "REPLICA_2_THIN_PROVISION": (2, True), "REPLICA_3_THIN_PROVISION": (3, True),
    "REPLICA_2_THICK_PROVISION": (2, False), "REPLICA_3_THICK_PROVISION": (3, False),
    "EC_THIN_PROVISION": (None, True), "EC_THICK_PROVISION": (None, False),
}
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "default_ha": (bool,), "default_ha_priority": (str,), "enabled_iscsi": (bool,),
    "default_storage_policy": (str,), "default_storage_policy_replica_num": (int,),
    "default_storage_policy_ec_k": (int,), "default_storage_policy_ec_m": (int,),
    "default_storage_policy_thin_provision": (bool,), "default_storage_encryption": (bool,),
}


def _default_settings() -> dict[str, Any]:
    return {
        "id": cuid(), "default_ha": None, "default_ha_priority": "LEVEL_2_MEDIUM", "enabled_iscsi": None,
        "default_storage_policy": "REPLICA_3_THIN_PROVISION", "default_storage_policy_replica_num": 3,
        "default_storage_policy_ec_k": None, "default_storage_policy_ec_m": None,
        "default_storage_policy_thin_provision": True, "default_storage_encryption": None,
    }


def _validate_settings(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _SETTING_TYPES:
            raise TowerError(f'Field "{key}" is not defined by type "ClusterSettingsUpdateInput".',
                             code="BAD_USER_INPUT")
        types = _SETTING_TYPES[key]
        if value is not None and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
            raise TowerError(f'Variable "$data" got invalid value {value!r} at "data.{key}".',
                             code="BAD_USER_INPUT")
        out[key] = value
    merged = {**current, **out}
    policy = merged["default_storage_policy"]
    if policy not in STORAGE_POLICIES:
        raise TowerError(f'Value "{policy}" does not exist in "StoragePolicyEnum" enum.', code="BAD_USER_INPUT")
    replicas, thin = STORAGE_POLICIES[policy]
    if replicas is not None:
        if merged["default_storage_policy_replica_num"] != replicas:
            raise TowerError(f"{policy} requires default_storage_policy_replica_num = {replicas}",
                             code="INVALID_STORAGE_POLICY")
        if merged["default_storage_policy_ec_k"] is not None or merged["default_storage_policy_ec_m"] is not None:
            raise TowerError("ec_k/ec_m must be null for a replica policy", code="INVALID_STORAGE_POLICY")
    elif not merged["default_storage_policy_ec_k"] or not merged["default_storage_policy_ec_m"]:
        raise TowerError(f"{policy} requires default_storage_policy_ec_k and _ec_m", code="INVALID_STORAGE_POLICY")
    thin_wanted = merged["default_storage_policy_thin_provision"]
    if thin_wanted is not None and thin_wanted != thin:
        raise TowerError(f"{policy} requires default_storage_policy_thin_provision = {str(thin).lower()}",
                         code="INVALID_STORAGE_POLICY")
    return out


def _valid_host(text: str) -> bool:
    """An IPv4 address or a DNS name."""
    parts = text.split(".")
    if all(p.isdigit() for p in parts):
        return len(parts) == 4 and all(0 <= int(p) <= 255 for p in parts)
    allowed = set(string.ascii_letters + string.digits + "-")
    return all(p and len(p) <= 63 and set(p) <= allowed and not p.startswith("-") for p in parts)
