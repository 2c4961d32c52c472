"""CloudTower REST for step 07 (front-end of :mod:`voyager.sim.tower.packages` and
:mod:`voyager.sim.tower.applications`, whose docstrings give the rules).

OpenAPI 4.6.0: ``/upload-cloudtower-application-package``, ``/get-upload-tasks``,
``/get-cloudtower-application-packages``, ``/deploy-cloudtower-application``,
``/get-cloudtower-applications``, ``/get-backup-services``,
``/uninstall-cloudtower-application``. Inferred [INF]:
``/associate-obs-clusters``, ``/get-obs-cluster-associations``,
``/associate-backup-service-clusters``. Same plumbing as
:mod:`voyager.sim.tower.rest` (auth, errors, ``where`` checked against
:mod:`voyager.sim.tower.schema`); :class:`ComponentView` renders the OpenAPI shapes.
"""
from __future__ import annotations

from typing import Any, Callable

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.applications import INSTALLING, RUNNING, TERMINATING, Applications
from voyager.sim.tower.models import TowerError
from voyager.sim.tower.rest import TowerRestFrontend
from voyager.sim.tower.views import TowerView


def _rules(*ops: str) -> Map:
    return Map([Rule(f"/v2/api/{op}", methods=["POST"], endpoint="op_" + op.replace("-", "_")) for op in ops])


class ComponentView:
    """Applications, packages, backup services and OBS associations in their shapes
    (OpenAPI ``CloudTowerApplication``, ``CloudTowerApplicationPackage``,
    ``BackupService``; the association list is [INF])."""

    def __init__(self, tower) -> None:
        self.tower = tower
        self.apps: Applications = tower.applications
        self.view = TowerView(tower)

    def _nested_app(self, app: dict[str, Any]) -> dict[str, str]:
        return {"id": app["id"], "name": app["name"]}

    def app(self, app: dict[str, Any]) -> dict[str, Any]:
        state = self.apps.state(app)
        package = self.tower.packages.package(app["package_id"]) or {"id": app["package_id"], "name": ""}
        return {
            "entityAsyncStatus": "CREATING" if state == INSTALLING else "DELETING" if state == TERMINATING else None,
            "id": app["id"],
            "instanceStatuses": {app["vm_name"]: {"vmIps": [app["ip"]], "message": "RUNNING"}}
            if state == RUNNING else {},
            "name": app["name"], "package": {"id": package["id"], "name": package["name"]},
            "placementSituation": None, "placementVerb": None, "resourceVersion": 2 if state != INSTALLING else 1,
            "state": state, "targetPackage": app["package_id"], "user": {"id": (self.tower.root or {}).get("id", ""),
                                                                       "name": "root"},
            "vmSpec": app["vm_spec"],
        }

    def package(self, package: dict[str, Any]) -> dict[str, Any]:
        return {"applications": [self._nested_app(a) for a in self.apps.apps if a["package_id"] == package["id"]],
                "architecture": package["architecture"], "containers": {}, "id": package["id"], "images": {},
                "name": package["name"], "scosVersion": "", "version": package["version"]}

    def _clusters(self, kind: str, owner_id: str) -> list[dict[str, Any]]:
        return [self.view.nested_cluster(link["cluster_id"]) for link in self.apps.links
                if link["kind"] == kind and link["owner_id"] == owner_id and self.apps.link_status(link) == "ASSOCIATED"]

    def backup_service(self, service: dict[str, Any]) -> dict[str, Any]:
        app = self.apps.app(service["app_id"])
        state = self.apps.state(app)
        nic = service["nic"]
        mine = {"ip": nic["ip"], "gateway": nic["gateway"], "subnet_mask": nic["mask"], "vlan": nic["vlanId"]}
        mgmt = mine if service["management"] else dict.fromkeys(mine)
        backup = dict.fromkeys(mine) if service["management"] else mine
        clusters = self._clusters("backup", service["id"])
        out: dict[str, Any] = {
            "application": self._nested_app(app), "backup_clusters": clusters,
            "backup_network_type": "MANAGEMENT" if service["management"] else "NEW_NIC",
            "backup_plans": [], "backup_rd_iops_max": None, "backup_store_repositories": [],
            "backup_wr_iops_max": None, "description": None,
            "entityAsyncStatus": "CREATING" if state == INSTALLING else None, "id": service["id"], "kube_config": "",
            "max_job_retry_times": None, "max_parallel_backup_jobs": None, "max_parallel_restore_jobs": None,
            "name": service["name"], "network_status": [{"cluster": c["id"], "status": "CONNECTED"} for c in clusters],
            "restore_rd_iops_max": None, "restore_wr_iops_max": None, "retry_interval": None, "running_vm": None,
            "status": state, "storage_network_type": None,
        }
        for prefix, values in (("management_network", mgmt), ("backup_network", backup),
                               ("storage_network", dict.fromkeys(mine))):
            for key, value in values.items():
                out[f"{prefix}_{key}"] = value
        return out

    def obs_links(self) -> list[dict[str, Any]]:
        return [{"id": link["id"], "application": self._nested_app(self.apps.app(link["owner_id"])),
                 "cluster": self.view.nested_cluster(link["cluster_id"]), "status": self.apps.link_status(link)}
                for link in self.apps.links if link["kind"] == "obs"]


class PackageRestFrontend(TowerRestFrontend):
    url_map = _rules("upload-cloudtower-application-package", "get-upload-tasks",
                     "get-cloudtower-application-packages")

    def op_upload_cloudtower_application_package(self, request: Request, machine) -> Response:
        def run(_: Any) -> list[dict[str, Any]]:
            task_id = request.form.get("upload_task_id")
            if not task_id:
                raise TowerError('"upload_task_id" is required (create the task with createUploadTask first)',
                                 code="VALIDATION")
            length = len(request.files["file"].read())
            packages = self.tower.packages
            if self.world.faults.take("drop-chunk", packages.upload_task(task_id)["args"]["name"]):
                raise TowerError("simulated failure of this chunk (drop-chunk fault)", status=500,
                                 code="UPLOAD_FAILED")
            return [packages.render_task(packages.upload_task_chunk(task_id, length))]

        return self._call(request, run, multipart=True)

    def op_get_upload_tasks(self, request: Request, machine) -> Response:
        """One CloudTower, one list: application package uploads (step 07) and VM
        volume uploads of ``/upload-elf-file`` (steps 09-11, ``tower.workloads``)."""
        packages, workloads = self.tower.packages, self.tower.workloads
        return self._call(request, lambda body: self._list(
            "get-upload-tasks", body, [packages.render_task(t) for t in packages.tasks]
            + [workloads.render_upload(u) for u in workloads.uploads]))

    def op_get_cloudtower_application_packages(self, request: Request, machine) -> Response:
        def run(body: Any) -> list[dict[str, Any]]:
            view = ComponentView(self.tower)
            return self._list("get-cloudtower-application-packages", body,
                              [view.package(p) for p in self.tower.packages.packages])

        return self._call(request, run)


class ApplicationRestFrontend(TowerRestFrontend):
    url_map = _rules("deploy-cloudtower-application", "get-cloudtower-applications", "get-backup-services",
                     "associate-obs-clusters", "get-obs-cluster-associations", "associate-backup-service-clusters",
                     "uninstall-cloudtower-application")

    def _rendered_list(self, request: Request, op: str, render: Callable[[ComponentView], list]) -> Response:
        def run(body: Any) -> list[dict[str, Any]]:
            self.tower.advance()
            return self._list(op, body, render(ComponentView(self.tower)))

        return self._call(request, run)

    def op_deploy_cloudtower_application(self, request: Request, machine) -> Response:
        def run(body: Any) -> dict[str, Any]:
            self.tower.advance()
            return ComponentView(self.tower).app(self.tower.applications.deploy(body))

        return self._call(request, run)

    def op_uninstall_cloudtower_application(self, request: Request, machine) -> Response:
        def run(body: Any) -> list[dict[str, Any]]:
            self.tower.advance()
            if not isinstance(body, dict) or not isinstance(body.get("where"), dict):
                raise TowerError('"where" (CloudTowerApplicationWhereInput) is required', code="VALIDATION")
            view = ComponentView(self.tower)
            chosen = {a["id"] for a in self._list("get-cloudtower-applications", {"where": body["where"]},
                                                  [view.app(a) for a in view.apps.apps])}
            removed = self.tower.applications.uninstall([a for a in view.apps.apps if a["id"] in chosen])
            return [ComponentView(self.tower).app(a) for a in removed]

        return self._call(request, run)

    def op_get_cloudtower_applications(self, request: Request, machine) -> Response:
        return self._rendered_list(request, "get-cloudtower-applications",
                                   lambda view: [view.app(a) for a in view.apps.apps])

    def op_get_backup_services(self, request: Request, machine) -> Response:
        return self._rendered_list(request, "get-backup-services",
                                   lambda view: [view.backup_service(b) for b in view.apps.backup_services])

    def op_get_obs_cluster_associations(self, request: Request, machine) -> Response:
        return self._rendered_list(request, "get-obs-cluster-associations", lambda view: view.obs_links())

    def op_associate_obs_clusters(self, request: Request, machine) -> Response:
        def run(body: Any) -> dict[str, Any]:
            self.tower.advance()
            app, task_id = self.tower.applications.associate_obs(body)
            view = ComponentView(self.tower).view
            return {"task_id": task_id, "data": {"application_id": app["id"], "clusters": [
                view.nested_cluster(c) for c in body["cluster_ids"]]}}

        return self._call(request, run)

    def op_associate_backup_service_clusters(self, request: Request, machine) -> Response:
        def run(body: Any) -> dict[str, Any]:
            self.tower.advance()
            service, task_id = self.tower.applications.associate_backup(body)
            return {"task_id": task_id, "data": ComponentView(self.tower).backup_service(service)}

        return self._call(request, run)


FRONTENDS = [PackageRestFrontend, ApplicationRestFrontend]
