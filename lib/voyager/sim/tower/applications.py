"""CloudTower applications (walkthrough step 07 "进行部署", which has no payload).

Documented by the CloudTower 4.6.0 OpenAPI spec and modelled here:

* ``/v2/api/deploy-cloudtower-application`` ``{name, targetPackage (package id),
  vmSpec}`` → the ``CloudTowerApplication`` (no task in the answer). The
  simulator reads ``vmSpec.instances[]`` (``ApplicationVmSpec``): ``cluster``
  (a connected cluster id), ``network.nics[]`` (``vlanId`` = a VLAN of that
  cluster, ``ip``, ``mask``, ``gateway``). The address must be free (no host,
  VIP, CloudTower or other application has it). A task
  ``DEPLOY_CLOUDTOWER_APPLICATION`` (``/v2/api/get-tasks``) runs the installation;
  the application's ``state`` is ``INSTALLING`` (``entityAsyncStatus:
  CREATING``) → ``RUNNING``, or ``INSTALL_FAILED`` with a
  ``fail-job:DEPLOY_CLOUDTOWER_APPLICATION:N`` fault. A duplicate name is
  refused ("already exists"); a failed installation keeps its name until it is
  uninstalled, but does not block a new deployment of that name.
* ``/v2/api/uninstall-cloudtower-application`` ``{where}``
  (``UninstallCloudTowerApplicationParams``) → ``[CloudTowerApplication]``, the
  applications selected, now ``TERMINATING``. [INF] A task
  ``UNINSTALL_CLOUDTOWER_APPLICATION`` runs the removal: when it succeeds the
  application (its backup service and associations with it) is gone from the
  listings; when it fails the application is ``TERMINATE_FAILED``.
* ``/v2/api/get-cloudtower-applications`` (``CloudTowerApplication``) and
  ``/v2/api/get-backup-services`` (``BackupService``): deploying a package named
  ``iomesh-backup`` (the walkthrough's backup ``package_name``) creates its
  backup service, whose ``status`` follows the application; the first NIC's
  VLAN decides ``backup_network_type`` [INF]: the management network's VLAN →
  ``MANAGEMENT`` (``management_network_*`` = that NIC), another VLAN →
  ``NEW_NIC`` (``backup_network_*`` = that NIC).

Inferred [INF] — no document names the calls that associate a cluster with
Observability or with the backup service; the simulator serves these (the suite
keeps their names configurable, ``voyager.steps.components.ComponentApi``):

* ``/v2/api/associate-obs-clusters`` ``{application_id, cluster_ids}`` →
  ``{task_id, data: {application_id, clusters: [{id, name}]}}`` (task
  ``ASSOCIATE_OBS_CLUSTER``); ``/v2/api/get-obs-cluster-associations`` lists
  ``{id, application {id, name}, cluster {id, name}, status: ASSOCIATING |
  ASSOCIATED | FAILED}``;
* ``/v2/api/associate-backup-service-clusters`` ``{backup_service_id,
  cluster_ids}`` → ``{task_id, data: BackupService}`` (task
  ``ASSOCIATE_BACKUP_CLUSTER``); the cluster shows in ``backup_clusters`` (and
  ``network_status``) once the task succeeded.

Both refuse an application that is not RUNNING and a cluster already
associated ("already exists"). [INF] There is one association per application
(or backup service) and cluster: associating a cluster again after its
association FAILED retries that association (a new task), it adds no second one. The backend is ``tower.applications``; the REST
front-end and the rendering are in :mod:`voyager.sim.tower.component_rest`.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Optional

from voyager.sim.tower.common import FAILED, SUCCESSED, TowerError, cuid, require_str

BACKUP_PACKAGE = "iomesh-backup"
DEPLOY_TASK = "DEPLOY_CLOUDTOWER_APPLICATION"
UNINSTALL_TASK = "UNINSTALL_CLOUDTOWER_APPLICATION"  # [INF] the removal task's key
OBS_TASK = "ASSOCIATE_OBS_CLUSTER"
BACKUP_TASK = "ASSOCIATE_BACKUP_CLUSTER"
RUNNING, INSTALLING, INSTALL_FAILED = "RUNNING", "INSTALLING", "INSTALL_FAILED"
TERMINATING, TERMINATE_FAILED = "TERMINATING", "TERMINATE_FAILED"


class Applications:
    """``tower.applications``: deployed applications, backup services, associations."""

    def __init__(self, tower) -> None:
        self.tower = tower
        self.apps: list[dict[str, Any]] = []
        self.backup_services: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []  # {id, kind: obs|backup, owner_id, cluster_id, task_id}
        tower.finishers[UNINSTALL_TASK] = self._uninstalled

    # -- deployment ---------------------------------------------------------------------------
    def app(self, app_id: Any) -> Optional[dict[str, Any]]:
        return next((a for a in self.apps if a["id"] == app_id), None)

    def state(self, app: dict[str, Any]) -> str:
        if app.get("uninstall_task_id"):
            removal = self.tower.task(app["uninstall_task_id"])
            return TERMINATE_FAILED if removal and removal["status"] == FAILED else TERMINATING
        task = self.tower.task(app["task_id"])
        status = task["status"] if task else SUCCESSED
        return RUNNING if status == SUCCESSED else INSTALL_FAILED if status == FAILED else INSTALLING

    # -- removal ----------------------------------------------------------------------------------
    def uninstall(self, apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Start removing ``apps`` (records); one removal task each (not again while one runs)."""
        for app in apps:
            if self.state(app) == TERMINATING:
                continue
            task = self.tower.create_task(UNINSTALL_TASK, f"Uninstall application {app['name']}",
                                          cluster_id=app["cluster_id"], resource_type="CloudTowerApplication",
                                          resource_id=app["id"], resource_mutation="uninstallCloudTowerApplication")
            app["uninstall_task_id"] = task["id"]
        self.tower.changed()
        return apps

    def _uninstalled(self, task: dict[str, Any]) -> None:
        app = self.app(task["resource_id"])
        if app is None or task["status"] != SUCCESSED:
            return
        services = {b["id"] for b in self.backup_services if b["app_id"] == app["id"]}
        self.apps.remove(app)
        self.backup_services = [b for b in self.backup_services if b["id"] not in services]
        self.links = [link for link in self.links if link["owner_id"] not in services | {app["id"]}]

    def _used_ips(self) -> set[str]:
        info = self.tower.cluster_info() or {}
        used = set(self.tower.cluster_addresses(info)) if info else set()
        if self.tower.world.tower_ip:
            used.add(self.tower.world.tower_ip)
        return used | {a["ip"] for a in self.apps if self.state(a) not in (INSTALL_FAILED, TERMINATING)}

    def deploy(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TowerError("request body must be an object {name, targetPackage, vmSpec}", code="VALIDATION")
        name = require_str(body, "name")
        package = self.tower.packages.package(require_str(body, "targetPackage"))
        if package is None:
            raise TowerError(f"CloudTowerApplicationPackage {body['targetPackage']} not found", status=404,
                             code="PACKAGE_NOT_FOUND")
        spec = body.get("vmSpec")
        if not isinstance(spec, dict):
            raise TowerError('"vmSpec" is required', code="VALIDATION")
        instances = spec.get("instances") or ([spec["template"]] if isinstance(spec.get("template"), dict) else [])
        if not isinstance(instances, list) or not instances or not all(isinstance(i, dict) for i in instances):
            raise TowerError("vmSpec.instances must list at least one ApplicationVmSpec", code="VALIDATION")
        if any(a["name"] == name for a in self.apps if self.state(a) not in (INSTALL_FAILED, TERMINATING)):
            raise TowerError(f"CloudTowerApplication with name {name} already exists", code="APPLICATION_DUPLICATE")
        instance = instances[0]
        cluster = self.tower.connected_cluster(instance.get("cluster"))
        nic = self._nic(instance, cluster)
        app = {"id": cuid(), "name": name, "package_id": package["id"], "vm_spec": spec, "ip": nic["ip"],
               "vlan_id": nic["vlanId"], "cluster_id": cluster["id"], "vm_name": instance.get("name") or name,
               "created_at": self.tower.clock.now()}
        task = self.tower.create_task(DEPLOY_TASK, f"Deploy application {name}", cluster_id=cluster["id"],
                                      resource_type="CloudTowerApplication", resource_id=app["id"],
                                      resource_mutation="deployCloudTowerApplication")
        app["task_id"] = task["id"]
        self.apps.append(app)
        if package["name"] == BACKUP_PACKAGE:
            self.backup_services.append({"id": cuid(), "app_id": app["id"], "name": name,
                                         "management": nic["vlanId"] == self._mgmt_vlan_id(), "nic": dict(nic)})
        self.tower.changed()
        return app

    def _vlan_ids(self) -> dict[str, dict[str, Any]]:
        """Tower id -> VLAN of the deployed cluster (what ``/get-vlans`` lists once connected)."""
        info = self.tower.cluster_info() or {}
        return {self.tower.tower_id("vlan", v["uuid"]): v for v in info.get("vlans", [])}

    def _mgmt_vlan_id(self) -> Optional[str]:
        info = self.tower.cluster_info() or {}
        mgmt = next((v["uuid"] for v in info.get("vdses", []) if v["name"] == self.tower.world.plan.networks.mgmt.vds),
                    None)
        return next((tid for tid, v in self._vlan_ids().items() if v["vds_uuid"] == mgmt and v["name"] == "default"),
                    None)

    def _nic(self, instance: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
        nics = ((instance.get("network") or {}).get("nics")) if isinstance(instance.get("network"), dict) else None
        if not isinstance(nics, list) or not nics or not isinstance(nics[0], dict):
            raise TowerError("vmSpec.instances[0].network.nics must list the VM's NIC", code="VALIDATION")
        nic = nics[0]
        if nic.get("vlanId") not in self._vlan_ids():
            raise TowerError(f"vlan {nic.get('vlanId')} is not a VM network of cluster {cluster['id']}",
                             code="VLAN_NOT_FOUND", status=404)
        try:
            ip = str(ipaddress.IPv4Address(str(nic.get("ip"))))
            ipaddress.IPv4Address(str(nic.get("mask")))
            ipaddress.IPv4Address(str(nic.get("gateway")))
        except ValueError:
            raise TowerError("nic ip, mask and gateway must be IPv4 addresses", code="VALIDATION") from None
        if ip in self._used_ips():
            raise TowerError(f"ip {ip} is already in use", code="IP_CONFLICT")
        return {"vlanId": nic["vlanId"], "ip": ip, "mask": nic["mask"], "gateway": nic["gateway"]}

    # -- associations [INF] -----------------------------------------------------------------
    def link_status(self, link: dict[str, Any]) -> str:
        task = self.tower.task(link["task_id"])
        status = task["status"] if task else SUCCESSED
        return "ASSOCIATED" if status == SUCCESSED else "FAILED" if status == FAILED else "ASSOCIATING"

    def _associate(self, kind: str, owner_id: str, cluster_ids: Any, app: dict[str, Any]) -> str:
        if self.state(app) != RUNNING:
            raise TowerError(f"application {app['name']} is {self.state(app)}, not RUNNING", code="APPLICATION_NOT_READY")
        if not isinstance(cluster_ids, list) or not cluster_ids or not all(isinstance(c, str) for c in cluster_ids):
            raise TowerError('"cluster_ids" must be a non-empty list of cluster ids', code="VALIDATION")
        task_id = None
        for cluster_id in cluster_ids:
            cluster = self.tower.connected_cluster(cluster_id)
            if any(link["kind"] == kind and link["owner_id"] == owner_id and link["cluster_id"] == cluster_id
                   and self.link_status(link) != "FAILED" for link in self.links):
                raise TowerError(f"association of cluster {cluster_id} with {app['name']} already exists",
                                 code="ASSOCIATION_DUPLICATE")
            task = self.tower.create_task(OBS_TASK if kind == "obs" else BACKUP_TASK,
                                          f"Associate cluster {cluster_id} with {app['name']}",
                                          cluster_id=cluster["id"], resource_type="Cluster", resource_id=cluster_id,
                                          resource_mutation="associateCluster")
            failed = next((link for link in self.links if link["kind"] == kind and link["owner_id"] == owner_id
                           and link["cluster_id"] == cluster_id), None)
            if failed is not None:  # the association that FAILED is retried
                failed["task_id"] = task["id"]
            else:
                self.links.append({"id": cuid(), "kind": kind, "owner_id": owner_id, "cluster_id": cluster_id,
                                   "task_id": task["id"]})
            task_id = task_id or task["id"]
        self.tower.changed()
        return task_id

    def associate_obs(self, body: Any) -> tuple[dict[str, Any], str]:
        if not isinstance(body, dict):
            raise TowerError("request body must be an object {application_id, cluster_ids}", code="VALIDATION")
        app = self.app(require_str(body, "application_id"))
        if app is None or self.tower.packages.package(app["package_id"])["name"] == BACKUP_PACKAGE:
            raise TowerError(f"Observability application {body['application_id']} not found", status=404,
                             code="APPLICATION_NOT_FOUND")
        return app, self._associate("obs", app["id"], body.get("cluster_ids"), app)

    def associate_backup(self, body: Any) -> tuple[dict[str, Any], str]:
        if not isinstance(body, dict):
            raise TowerError("request body must be an object {backup_service_id, cluster_ids}", code="VALIDATION")
        service = next((b for b in self.backup_services if b["id"] == require_str(body, "backup_service_id")), None)
        if service is None:
            raise TowerError(f"BackupService {body['backup_service_id']} not found", status=404,
                             code="BACKUP_SERVICE_NOT_FOUND")
        return service, self._associate("backup", service["id"], body.get("cluster_ids"), self.app(service["app_id"]))

    # -- persistence --------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"apps": self.apps, "backup_services": self.backup_services, "links": self.links}

    def load_state(self, state: dict[str, Any]) -> None:
        self.apps = list(state.get("apps") or [])
        self.backup_services = list(state.get("backup_services") or [])
        self.links = list(state.get("links") or [])
