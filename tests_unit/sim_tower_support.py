"""Helpers for the CloudTower / SSH simulator tests (not a test module).

``tower_up`` brings a started simulator to the point where CloudTower answers
(deployed and configured cluster, CloudTower VM with its IP, installer done —
the installer is driven through the world, its SSH path has its own tests).
``TowerHttp`` speaks CloudTower REST, GraphQL and the inspector to the planned
CloudTower address with plain ``requests`` (Host header = planned IP).
``reset_tower`` gives a test a fresh CloudTower on an already deployed world.

``obs_package`` / ``backup_package`` / ``deploy_body`` / ``mgmt_vlan`` drive step 07's uploads and
deployments the way the walkthrough and the OpenAPI spec do.

Fixtures (import them by name, with ``plan`` from :mod:`sim_support`):
``sim`` one started simulator per module with CloudTower up (``tower_up``);
``tower`` a fresh CloudTower on it, spoken to over plain http (``TowerHttp``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import pytest
import requests

from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from voyager.sim.testing import deployed
from voyager.sim.tower.models import ENCODED_DEFAULT_ROOT_PASSWORD, TowerBackend

TOWER = "127.10.20.2"
VIP = "127.10.20.10"
TOWER_PASSWORD = "HC!r0cks"
HOST_PASSWORD = "P@ssw0rd!123"

# The walkthrough's GraphQL queries, verbatim (steps 04, 06, 07).
WALKTHROUGH_QUERIES = {
    "createRootUser": ("mutation createRootUser($root_password: String!, $now: DateTime!) {\n"
        "  createUser(data: {name: \"root\", source: LOCAL, role: ROOT, username: \"root\", display_username: \"root\", password: $root_password, password_recover_qa: {enabled: false, items: []}, password_updated_at: $now}, effect: {encoded: true}) {\n"
        "    id\n    __typename\n  }\n}\n"),
    "createOrganization": ("mutation createOrganization($data: OrganizationCreateInput!) {\n"
        "  createOrganization(data: $data) {\n    id\n    __typename\n  }\n}\n"),
    "checkTowerIsSetup": ("query checkTowerIsSetup {\n  organizations(first: 1) {\n    id\n    name\n    __typename\n"
        "  }\n  userCreated {\n    created\n    __typename\n  }\n}\n"),
    "updateCloudTowerNtpUrl": ("mutation updateCloudTowerNtpUrl($data: NtpCommonUpdateInput!) {\n"
        "  updateCloudTowerNtpUrl(data: $data) {\n    ntp_service_url\n    __typename\n  }\n}\n"),
    "deployedLicense": ("query deployedLicense {\n  deploys(first: 1) {\n    id\n    license {\n      id\n"
        "      license_serial\n      maintenance_end_date\n      maintenance_start_date\n"
        "      max_chunk_num\n      max_cluster_num\n      max_vm_num\n      used_vm_num\n"
        "      sign_date\n      expire_date\n      software_edition\n      type\n      vendor\n"
        "      __typename\n    }\n    __typename\n  }\n}\n"),
    "updateClusterSettings": ("mutation updateClusterSettings($data: ClusterSettingsUpdateInput!, $where: ClusterSettingsWhereUniqueInput!) {\n"
        "  updateClusterSettings(where: $where, data: $data) {\n    id\n    default_ha\n"
        "    default_ha_priority\n    enabled_iscsi\n    default_storage_policy\n"
        "    default_storage_policy_replica_num\n    default_storage_policy_ec_k\n"
        "    default_storage_policy_ec_m\n    default_storage_policy_thin_provision\n"
        "    default_storage_encryption\n    __typename\n  }\n}\n"),
    "globalAlertRules": ("query globalAlertRules($where: GlobalAlertRuleWhereInput, $orderBy: GlobalAlertRuleOrderByInput, $skip: Int, $first: Int) {\n"
        "  globalAlertRules(where: $where, orderBy: $orderBy, skip: $skip, first: $first) {\n"
        "    message\n    thresholds {\n      severity\n      __typename\n    }\n    object\n    id\n"
        "    disabled\n    name\n    alert_rules {\n      id\n      customized\n      disabled\n"
        "      thresholds {\n        severity\n        value\n        __typename\n      }\n"
        "      __typename\n    }\n    __typename\n  }\n  globalAlertRulesConnection(where: $where) {\n"
        "    aggregate {\n      count\n      __typename\n    }\n    __typename\n  }\n}\n"),
    "updateGlobalAlertRule": ("mutation updateGlobalAlertRule($data: GlobalAlertRuleUpdateInput!, $where: GlobalAlertRuleWhereUniqueInput!) {\n"
        "  updateGlobalAlertRule(data: $data, where: $where) {\n    id\n    disabled\n"
        "    thresholds {\n      value\n      severity\n      __typename\n    }\n    alert_rules {\n"
        "      id\n      disabled\n      customized\n      thresholds {\n        value\n"
        "        severity\n        __typename\n      }\n      cluster {\n        id\n        name\n"
        "        __typename\n      }\n      __typename\n    }\n    __typename\n  }\n}\n"),
    "createUploadTask": ("mutation createUploadTask($data: UploadTaskCreateInput!) {\n"
        "  createUploadTask(data: $data) {\n    id\n    current_chunk\n    chunk_size\n    __typename\n"
        "  }\n}\n"),
}

# What the tests send: the walkthrough's queries; globalAlertRules also selects each
# per-cluster rule's cluster (the walkthrough reads it from updateGlobalAlertRule).
QUERIES = {**WALKTHROUGH_QUERIES, "globalAlertRules": WALKTHROUGH_QUERIES["globalAlertRules"].replace(
    "        value\n        __typename\n      }\n      __typename",
    "        value\n        __typename\n      }\n      cluster {\n        id\n        name\n      }\n      __typename")}

# The walkthrough's globalAlertRules filter (step 06).
ALERT_FILTER = {"AND": [{"AND": [
    {"alert_rules_some": {}}, {"name_not_starts_with": "elf_"}, {"name_not_starts_with": "scvm_"},
    {"name_not_starts_with": "vsphere_"}, {"name_not_starts_with": "witness_"}, {"name_not_starts_with": "zone"},
    {"name_not_starts_with": "metro_"}, {"name_not_starts_with": "system."},
    {"object_not_in": ["SKS_SERVICE", "SKS_REGISTRY", "SKS_CLUSTER", "SKS_CLUSTER_NODE", "SKS_PV", "SKS_PVC"]},
]}]}


def alert_rule_update(rule: dict[str, Any], notice: int) -> dict[str, Any]:
    """The walkthrough's updateGlobalAlertRule variables (step 06): the cluster's rule of the
    global ``rule`` customized to CRITICAL 90 and NOTICE ``notice``."""
    return {"where": {"id": rule["id"]}, "data": {
        "thresholds": [{"value": 80, "severity": "NOTICE", "quantile": 0, "__typename": "Thresholds"},
                       {"value": 90, "severity": "CRITICAL", "quantile": 0, "__typename": "Thresholds"}],
        "alert_rules": {"update": [{"where": {"id": rule["alert_rules"][0]["id"]}, "data": {
            "customized": True, "disabled": False,
            "thresholds": [{"value": 90, "severity": "CRITICAL", "quantile": 0, "__typename": "Thresholds"},
                           {"value": notice, "severity": "NOTICE", "quantile": 0, "__typename": "Thresholds"}]}}]},
        "disabled": False}}


def tower_up(sim, plan):
    """Deployed cluster + CloudTower VM with its IP + installer finished; returns (SimHttp, Walk)."""
    http, walk = deployed(sim, plan)
    iso = walk.upload(plan.cluster.vip, f"cloudtower-v{plan.cloudtower.version}.oe2003.x86_64.iso", 4096)
    walk.cloudtower_vm(plan.cluster.vip, iso["image_path"])
    sim.world.tower_preinstall()
    sim.world.tower_start_installer()
    assert sim.world.tower_ready()
    return http, walk


@pytest.fixture(scope="module")
def sim(plan):
    """The module's simulator (HTTP only, speed 0), CloudTower installed and answering."""
    with Simulator(plan, speed=0, ssh=False) as s:
        tower_up(s, plan)
        yield s


@pytest.fixture
def tower(sim):
    """A fresh CloudTower (no user, no organization), over plain http."""
    reset_tower(sim)
    return TowerHttp(sim.endpoints)


@contextmanager
def timed_tower(plan) -> Iterator[tuple[Simulator, ManualClock]]:
    """A simulator on a manual clock: CloudTower brought up at speed 0, then time running
    (speed 1) and every boot long done (100000 s later). Yields (simulator, clock)."""
    clock = ManualClock(speed=0)
    with Simulator(plan, clock=clock, ssh=False) as s:
        tower_up(s, plan)
        clock.speed = 1.0
        clock.advance(100_000)
        yield s, clock


def reset_tower(sim) -> TowerBackend:
    """A fresh CloudTower (no user, no organization) on the same deployed world."""
    with sim.world.lock:
        sim.world.tower = TowerBackend(sim.world)
    return sim.world.tower


class TowerHttp:
    def __init__(self, endpoints: dict[str, Any], ip: str = TOWER, *, tls: bool = False) -> None:
        self.base = endpoints["https" if tls else "http"]
        self.ip = ip
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy settings from the environment
        self.token: Optional[str] = None

    def request(self, method: str, path: str, *, auth: Any = "token", **kwargs) -> requests.Response:
        headers = {"Host": self.ip, **kwargs.pop("headers", {})}
        token = self.token if auth == "token" else auth
        if token:
            headers["Authorization"] = token
        return self.http.request(method, self.base + path, headers=headers, timeout=30, verify=False, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def rest(self, op: str, body: Any = None, **kwargs) -> requests.Response:
        return self.post(f"/v2/api/{op}", json={} if body is None else body, **kwargs)

    def ok(self, op: str, body: Any = None) -> Any:
        resp = self.rest(op, body)
        assert resp.status_code == 200, resp.text
        assert resp.headers.get("x-tower-request-id")
        return resp.json()

    def gql(self, op: str, variables: Optional[dict] = None, *, auth: Any = "token",
            query: Optional[str] = None) -> dict[str, Any]:
        resp = self.post("/api", auth=auth, json={"operationName": op, "variables": variables or {},
                                                   "query": QUERIES[op] if query is None else query})
        assert resp.status_code == 200, resp.text
        return resp.json()

    # -- the walkthrough's setup -------------------------------------------------------------------
    def create_root(self) -> dict[str, Any]:
        return self.gql("createRootUser", {"root_password": ENCODED_DEFAULT_ROOT_PASSWORD,
                                           "now": "2025-09-30T18:42:47.920Z"}, auth=None)

    def login(self, password: str = TOWER_PASSWORD) -> requests.Response:
        resp = self.post("/v2/api/login", auth=None, json={"username": "root", "source": "LOCAL",
                                                           "password": password})
        if resp.status_code == 200:
            self.token = resp.json()["data"]["token"]
        return resp

    def setup(self, org: str = "演示客户") -> str:
        """Root user + organization + login; returns the organization id."""
        self.create_root()
        org_id = self.gql("createOrganization", {"data": {"name": org}}, auth=None)["data"]["createOrganization"]["id"]
        assert self.login().status_code == 200
        return org_id

    def connect(self, plan, org_id: str, dc: str = "DEMO-DC") -> tuple[str, dict[str, Any]]:
        """Datacenter + connected cluster (speed 0: CONNECTED at once); returns (dc id, cluster)."""
        dc_id = self.ok("create-datacenter", {"organization_id": org_id, "name": dc})["data"]["id"]
        body = {"datacenter_id": dc_id, "username": "root", "ip": plan.cluster.vip,
                "password": plan.cluster.admin_password.reveal()}
        cluster = self.ok("connect-cluster", body)["data"]
        return dc_id, self.ok("get-clusters", {"where": {"id": cluster["id"]}})[0]


# -- step 07 packages and applications (the shapes test_sim_tower_applications checks) ----------
OVM = "/api/ovm-operator/api/v3/chunkedUploads"
OBS_FILE = "Observability-X86_64-v1.4.2-release.20250926-24.tar.gz"
BACKUP_FILE = "smtx-backup-dr-x86_64-2.2.1.tar.gz"
Q_UPLOAD = ("mutation createUploadTask($data: UploadTaskCreateInput!) {\n  createUploadTask(data: $data) {\n"
            "    id\n    current_chunk\n    chunk_size\n    __typename\n  }\n}\n")
CHUNK = 1024


def obs_package(tower, name=OBS_FILE, size=2500):
    upload = tower.post(OVM, json={"origin_file_name": name}).json()
    offset = 0
    while offset < size:
        part = min(CHUNK, size - offset)
        resp = tower.post(f"{OVM}/{upload['id']}:upload", params={"offset": offset}, data=b"x" * part)
        assert resp.status_code == 200, resp.text
        offset = int(resp.json()["offset"])
    done = tower.post(f"{OVM}/{upload['id']}:complete", json={})
    assert done.status_code == 200, done.text
    return upload["id"], done.json()


def backup_package(tower, size=2500):
    data = {"status": "INITIALIZING", "current_chunk": 1, "chunk_size": CHUNK, "size": size,
            "resource_type": "CLOUDTOWER_APPLICATION_PACKAGE", "started_at": "2025-12-09T04:49:01.038Z",
            "args": {"name": BACKUP_FILE, "package_name": "iomesh-backup"}}
    task = tower.gql("createUploadTask", {"data": data}, query=Q_UPLOAD)["data"]["createUploadTask"]
    answer = None
    for n in range((size + CHUNK - 1) // CHUNK):
        part = min(CHUNK, size - n * CHUNK)
        resp = tower.post("/v2/api/upload-cloudtower-application-package", data={"upload_task_id": task["id"]},
                          files={"file": (BACKUP_FILE, b"y" * part)})
        assert resp.status_code == 200, resp.text
        answer = resp.json()
    return task["id"], answer


def mgmt_vlan(tower, plan):
    (vlan,) = tower.ok("get-vlans", {"where": {"name": "default", "vds": {"name": plan.networks.mgmt.vds}}})
    return vlan


def deploy_body(name, package_id, cluster_id, vlan_id, ip, plan):
    return {"name": name, "targetPackage": package_id, "vmSpec": {"name": name, "instances": [{
        "name": name, "cluster": cluster_id, "cpu": 4, "memory": 16, "memory_unit": "GB",
        "network": {"nics": [{"vlanId": vlan_id, "ip": ip, "mask": "255.255.255.0",
                              "gateway": plan.networks.mgmt.gateway}]}}]}}


@contextmanager
def connected_tower(plan, **sim_options) -> Iterator[tuple[Simulator, Any, dict[str, Any]]]:
    """A simulator (speed 0 unless given, HTTP only) whose CloudTower is set up with the
    cluster connected, as suites 04-05 leave it; yields (simulator, the suite's
    ``TowerClient`` logged in as root, the connected cluster as get-clusters lists it)."""
    from voyager.clients import Endpoints, TowerClient

    sim_options.setdefault("speed", 0)
    with Simulator(plan, ssh=False, **sim_options) as s:
        tower_up(s, plan)
        http = TowerHttp(s.endpoints)
        _dc, cluster = http.connect(plan, http.setup(plan.cloudtower.organization or "演示客户"))
        endpoints = Endpoints.simulated(s.endpoints, plan)
        client = TowerClient(endpoints, plan.cloudtower.ip)
        client.login("root", plan.cloudtower.web_password)
        try:
            yield s, client, cluster
        finally:
            endpoints.close()
