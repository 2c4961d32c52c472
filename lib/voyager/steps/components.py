"""Step 07 (optional): Observability and the backup service, through CloudTower.

Sources, per call (docs/architecture.md lists the [INF] ones):

* walkthrough step 07: ``POST /api/ovm-operator/api/v3/chunkedUploads``
  ``{origin_file_name}`` starts the Observability upload; GraphQL
  ``createUploadTask`` (multipart/form-data, ``Content-Language: en-US``, chunk
  size 4 MiB, ``resource_type: CLOUDTOWER_APPLICATION_PACKAGE``, ``args: {name,
  package_name: "iomesh-backup"}``) starts the backup upload;
* CloudTower 4.6.0 OpenAPI: ``/upload-cloudtower-application-package`` (the
  backup chunks, multipart ``file`` + ``upload_task_id``), ``/get-upload-tasks``,
  ``/get-cloudtower-application-packages``, ``/deploy-cloudtower-application``,
  ``/get-cloudtower-applications``, ``/get-backup-services``, ``/get-vlans``,
  ``/get-tasks``, ``/uninstall-cloudtower-application`` (an application whose
  installation failed is removed before it is deployed again: one application
  per name stays);
* inferred [INF], names in :class:`ComponentApi` (overridable with the
  environment variable ``VOYAGER_COMPONENT_API``, a JSON object of its fields):
  the Observability chunk/status/complete calls of ovm-operator, the chunk rule
  of ``/upload-cloudtower-application-package`` (one call per chunk, chunk
  ``current_chunk``), the package name/version CloudTower gives, the VM sizes,
  and the cluster association calls.

Rerun rules: every in-flight upload, deployment and association is recorded in
the run state (section ``components``, keys ``obs`` / ``backup``: upload id,
package id, application id, backup service id — never a secret) before it is
sent or awaited; a rerun follows it instead of starting it again, and finds a
finished package / application / association by listing before acting.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from voyager.clients import ApiError, TransportError
from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps.config import StepError
from voyager.progress import TransferProgress
from voyager.waiters import wait_for, wait_tower_tasks

LOG = logging.getLogger("voyager.components")

MIB = 1024 * 1024
STATE = "components"
OBS, BACKUP = "obs", "backup"
FAILED_STATES = ("INSTALL_FAILED", "ERROR", "CONFIGURE_FAILED", "TERMINATE_FAILED", "UPGRADE_FAILED")
INSTALL_FAILED = "INSTALL_FAILED"  # an installation that never ran: removed before deploying again
CREATE_UPLOAD_TASK = ("mutation createUploadTask($data: UploadTaskCreateInput!) {\n  createUploadTask(data: $data) "
                      "{\n    id\n    current_chunk\n    chunk_size\n    __typename\n  }\n}\n")


@dataclass(frozen=True)
class ComponentApi:
    """What no document gives for step 07 ([INF] unless said otherwise)."""

    ovm_prefix: str = "/api/ovm-operator/api/v3"  # walkthrough
    obs_chunk: str = "/chunkedUploads/{id}:upload"  # [INF] POST raw bytes, ?offset=N
    obs_upload: str = "/chunkedUploads/{id}"  # [INF] GET: the upload (offset, status)
    obs_complete: str = "/chunkedUploads/{id}:complete"  # [INF] POST → status COMPLETED, package_id
    obs_chunk_size: int = 4 * MIB  # [INF]
    obs_package_name: str = "observability"  # [INF] the package's name in CloudTower
    backup_package_name: str = "iomesh-backup"  # walkthrough (createUploadTask args.package_name)
    backup_chunk_size: int = 4 * MIB  # walkthrough (chunk_size 4194304)
    obs_associate: str = "associate-obs-clusters"  # [INF]
    obs_associations: str = "get-obs-cluster-associations"  # [INF]
    backup_associate: str = "associate-backup-service-clusters"  # [INF]
    # VM sizes of 集群管理信息 L4/L5 (the template's 性能 column) [INF: vmSpec fields]
    obs_vm: tuple[int, int, int] = (16, 32, 512)  # vCPU, memory GiB, disk GiB
    backup_vm: tuple[int, int, int] = (4, 16, 40)
    deploy_timeout: float = 3600.0
    chunk_attempts: int = 3

    @classmethod
    def from_env(cls) -> "ComponentApi":
        raw = os.environ.get("VOYAGER_COMPONENT_API")
        if not raw:
            return cls()
        try:
            values = json.loads(raw)
            names = {f.name: f.type for f in dataclasses.fields(cls)}
            unknown = set(values) - set(names)
            if not isinstance(values, dict) or unknown:
                raise ValueError(f"未知字段 {sorted(unknown)}")
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        except (ValueError, TypeError) as exc:
            raise StepError(f"环境变量 VOYAGER_COMPONENT_API 不是有效的 JSON 对象：{exc}；"
                            f"可用字段：{', '.join(f.name for f in dataclasses.fields(cls))}") from None


def numeric_version(file_name: str) -> str:
    """The first dotted number of a package file name: ``...-v1.4.2-release...`` → ``1.4.2``."""
    m = re.search(r"\d+(?:\.\d+)+", re.sub(r"X86_64|x86_64", "", file_name))
    return m.group(0) if m else ""


def _first(answer: Any) -> Any:
    return answer[0] if isinstance(answer, list) and answer else answer


def _list(answer: Any) -> list[dict[str, Any]]:
    return answer if isinstance(answer, list) else []


# --------------------------------------------------------------------------- packages
def find_package(tower, name: str, file_name: str) -> Optional[dict[str, Any]]:
    """The CloudTower application package ``name`` whose version starts with the file's
    version (``/get-cloudtower-application-packages``, OpenAPI)."""
    where = {"name": name, "version_starts_with": numeric_version(file_name)}
    return _first(_list(tower.rest("get-cloudtower-application-packages", {"where": where}))) or None


def _package_by_id(tower, package_id: Optional[str]) -> Optional[dict[str, Any]]:
    if not package_id:
        return None
    return _first(_list(tower.rest("get-cloudtower-application-packages", {"where": {"id": package_id}}))) or None


def ensure_obs_package(tower, media, run_state, api: ComponentApi = ComponentApi()) -> tuple[dict[str, Any], str]:
    """The Observability package in CloudTower: found (recorded id or name + version),
    else uploaded through ovm-operator's chunked upload, resuming a recorded upload."""
    record = run_state.get(STATE, OBS) or {}
    package = _package_by_id(tower, record.get("package_id")) or find_package(tower, api.obs_package_name, media.name)
    if package is not None:
        run_state.merge(STATE, OBS, {"package_id": package["id"]})
        return package, f"CloudTower 中已有 Observability 安装包 {package['name']} {package['version']}"
    upload = None
    if record.get("upload_id") and record.get("file") == media.name:
        upload = _obs_upload(tower, api, record["upload_id"])
    if upload is None or upload.get("status") not in ("UPLOADING", "COMPLETED"):
        upload = tower.call("POST", api.ovm_prefix + "/chunkedUploads", json={"origin_file_name": media.name})
        run_state.merge(STATE, OBS, {"upload_id": upload["id"], "file": media.name})
        how = f"已上传 Observability 安装包 {media.describe()}"
    else:
        how = f"已续传 Observability 安装包 {media.describe()}（从 {int(upload['offset']) / MIB:.1f} MiB 处继续）"
    if upload.get("status") != "COMPLETED":
        _send_obs_chunks(tower, api, media, upload)
        upload = tower.call("POST", api.ovm_prefix + api.obs_complete.format(id=upload["id"]), json={})
    if upload.get("status") != "COMPLETED" or not upload.get("package_id"):
        raise StepError(f"Observability 上传 {upload.get('id')} 没有完成：状态 {upload.get('status')}，"
                        f"错误 {upload.get('error_code') or '-'} {upload.get('error_message') or ''}")
    package = _package_by_id(tower, upload["package_id"])
    if package is None:
        raise StepError(f"上传完成后 CloudTower 中没有安装包 {upload['package_id']}")
    run_state.merge(STATE, OBS, {"package_id": package["id"], "upload_id": None})
    return package, how


def _obs_upload(tower, api: ComponentApi, upload_id: str) -> Optional[dict[str, Any]]:
    try:
        return tower.call("GET", api.ovm_prefix + api.obs_upload.format(id=upload_id), idempotent=True)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _send_obs_chunks(tower, api: ComponentApi, media, upload: dict[str, Any]) -> None:
    offset = int(upload.get("offset") or 0)
    progress = TransferProgress(f"上传 Observability 安装包 {media.name}", media.size)
    progress.update(offset)
    failures = 0
    with open(media.path, "rb") as fh:
        while offset < media.size:
            fh.seek(offset)
            data = fh.read(api.obs_chunk_size)
            try:
                answer = tower.call("POST", api.ovm_prefix + api.obs_chunk.format(id=upload["id"]),
                                    params={"offset": offset}, data=data,
                                    headers={"Content-Type": "application/octet-stream"})
                offset = int(answer["offset"])
                failures = 0
            except (ApiError, TransportError) as exc:
                # a lost chunk (5xx, reset) or an offset the server disagrees with (400): ask the
                # server where the upload stands and go on from there; anything else is final
                if isinstance(exc, ApiError) and exc.status not in (400, None) and exc.status < 500:
                    raise
                failures += 1
                if failures >= api.chunk_attempts:
                    raise StepError(f"Observability 安装包第 {offset // api.obs_chunk_size + 1} 块连续 {failures} 次"
                                    f"上传失败：{exc}；重跑会从已上传的位置继续") from exc
                current = _obs_upload(tower, api, upload["id"]) or {}
                LOG.warning("Observability 分块上传失败（%s），从服务端记录的位置 %s 继续", exc, current.get("offset"))
                offset = int(current.get("offset") or offset)
            progress.update(offset)
    progress.finish()


def _create_upload_task(tower, media, api: ComponentApi) -> dict[str, Any]:
    """GraphQL ``createUploadTask`` as the walkthrough captures it (multipart/form-data)."""
    now = datetime.now(timezone.utc)
    started = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    body = {"operationName": "createUploadTask", "query": CREATE_UPLOAD_TASK, "variables": {"data": {
        "status": "INITIALIZING", "current_chunk": 1, "chunk_size": api.backup_chunk_size,
        "resource_type": "CLOUDTOWER_APPLICATION_PACKAGE", "size": media.size,
        "args": {"name": media.name, "package_name": api.backup_package_name}, "started_at": started}}}
    resp = tower.request("POST", "/api", files={"operations": (None, json.dumps(body)), "map": (None, "{}")},
                         headers={"Content-Language": "en-US"})
    answer = resp.json() if resp.content else {}
    if resp.status_code >= 400 or answer.get("errors") or not (answer.get("data") or {}).get("createUploadTask"):
        raise StepError(f"createUploadTask 失败（HTTP {resp.status_code}）：{answer.get('errors') or answer}")
    return answer["data"]["createUploadTask"]


def _upload_task(tower, task_id: str) -> Optional[dict[str, Any]]:
    return _first(_list(tower.rest("get-upload-tasks", {"where": {"id": task_id}}))) or None


def ensure_backup_package(tower, media, run_state, api: ComponentApi = ComponentApi()) -> tuple[dict[str, Any], str]:
    """The backup package in CloudTower: found, else uploaded through createUploadTask +
    ``/upload-cloudtower-application-package`` chunks, resuming a recorded upload task."""
    record = run_state.get(STATE, BACKUP) or {}
    package = (_package_by_id(tower, record.get("package_id"))
               or find_package(tower, api.backup_package_name, media.name))
    if package is not None:
        run_state.merge(STATE, BACKUP, {"package_id": package["id"]})
        return package, f"CloudTower 中已有备份安装包 {package['name']} {package['version']}"
    task = _upload_task(tower, record["upload_task_id"]) if record.get("upload_task_id") else None
    if task is None or task.get("status") not in ("INITIALIZING", "UPLOADING", "SUCCESSED") \
            or (task.get("args") or {}).get("name") != media.name:
        created = _create_upload_task(tower, media, api)
        run_state.merge(STATE, BACKUP, {"upload_task_id": created["id"]})
        task = _upload_task(tower, created["id"]) or {**created, "status": "INITIALIZING", "size": media.size}
        how = f"已上传备份安装包 {media.describe()}"
    else:
        how = f"已续传备份安装包 {media.describe()}（从第 {task['current_chunk']} 块继续）"
    if task.get("status") != "SUCCESSED":
        task = _send_backup_chunks(tower, media, task, api)
    if task.get("status") != "SUCCESSED":
        raise StepError(f"备份安装包上传任务 {task.get('id')} 没有完成：状态 {task.get('status')}")
    package = find_package(tower, api.backup_package_name, media.name)
    if package is None:
        raise StepError(f"上传任务完成后 CloudTower 中没有安装包 {api.backup_package_name} {numeric_version(media.name)}")
    run_state.merge(STATE, BACKUP, {"package_id": package["id"], "upload_task_id": None})
    return package, how


def _send_backup_chunks(tower, media, task: dict[str, Any], api: ComponentApi = ComponentApi()) -> dict[str, Any]:
    chunk_size = int(task["chunk_size"])
    chunk = int(task.get("current_chunk") or 1)
    progress = TransferProgress(f"上传备份安装包 {media.name}", media.size)
    progress.update((chunk - 1) * chunk_size)
    failures = 0
    with open(media.path, "rb") as fh:
        while (chunk - 1) * chunk_size < media.size:
            fh.seek((chunk - 1) * chunk_size)
            data = fh.read(chunk_size)
            try:
                answer = tower.call("POST", "/v2/api/upload-cloudtower-application-package",
                                    data={"upload_task_id": task["id"], "name": media.name, "size": str(media.size),
                                          "size_unit": "B"},
                                    files={"file": (media.name, data, "application/octet-stream")})
            except (ApiError, TransportError) as exc:
                # a lost chunk (5xx, reset): ask the upload task where it stands and go on from there
                if isinstance(exc, ApiError) and exc.status is not None and exc.status < 500:
                    raise
                failures += 1
                if failures >= api.chunk_attempts:
                    raise StepError(f"备份安装包第 {chunk} 块连续 {failures} 次上传失败：{exc}；"
                                    "重跑会从已上传的位置继续") from exc
                current = _upload_task(tower, task["id"]) or {}
                LOG.warning("备份安装包分块上传失败（%s），从上传任务记录的第 %s 块继续", exc, current.get("current_chunk"))
                chunk = int(current.get("current_chunk") or chunk)
                continue
            failures = 0
            task = _first(answer) or {}
            if int(task.get("current_chunk") or 0) != chunk + 1:
                raise StepError(f"第 {chunk} 块上传后上传任务的 current_chunk 为 {task.get('current_chunk')}，"
                                f"应为 {chunk + 1}")
            chunk += 1
            progress.update(min(media.size, (chunk - 1) * chunk_size))
    progress.finish()
    return task


# --------------------------------------------------------------------------- deployment
def management_vlan(tower, plan: Plan) -> dict[str, Any]:
    """The management VM network (VDS 虚拟网络!C4, network ``default``) as CloudTower lists it."""
    where = {"name": "default", "vds": {"name": plan.networks.mgmt.vds}}
    vlan = _first(_list(tower.rest("get-vlans", {"where": where})))
    if not vlan:
        raise StepError(f"CloudTower 中没有管理网络（虚拟交换机 {plan.networks.mgmt.vds}，"
                        f"{cells.ref(cells.NET, 'C4')}）的虚拟机网络 default")
    return vlan


def backup_network(tower, plan: Plan) -> tuple[dict[str, Any], Any, str]:
    """``(vlan, planned network, what)`` for the backup service: 虚拟网络 row 7 when
    planned, else the management network."""
    net = plan.networks.backup
    if net is None:
        return management_vlan(tower, plan), plan.networks.mgmt, "管理网络（虚拟网络第 7 行未填写）"
    vlan = _first(_list(tower.rest("get-vlans", {"where": {"name": net.name}})))
    if not vlan:
        raise StepError(f"CloudTower 中没有备份网络 {net.name}（{cells.ref(cells.NET, 'D7')}）；"
                        f"请先在集群中创建该虚拟机网络")
    return vlan, net, f"备份网络 {net.name}（{cells.ref(cells.NET, 'D7')}）"


def vm_spec(name: str, ip: str, network, vlan_id: str, cluster_id: str, dns: list[str],
            size: tuple[int, int, int]) -> dict[str, Any]:
    """``DeployCloudTowerApplicationParams.vmSpec`` (OpenAPI ``ApplicationVmSpecDefinition``)."""
    subnet = ipaddress.IPv4Network(network.subnet, strict=False)
    cpu, memory, disk = size
    instance = {"name": name, "cluster": cluster_id, "cpu": cpu, "memory": memory, "memory_unit": "GB",
                "storages": [{"size": disk, "size_unit": "GB"}],
                "network": {"nics": [{"vlanId": vlan_id, "ip": ip, "mask": str(subnet.netmask),
                                      "gateway": network.gateway, "dhcp": False}], "dns": list(dns)}}
    return {"name": name, "instances": [instance]}


def find_application(tower, name: str) -> Optional[dict[str, Any]]:
    apps = _list(tower.rest("get-cloudtower-applications", {"where": {"name": name}}))
    alive = [a for a in apps if a.get("state") not in FAILED_STATES]
    return alive[0] if alive else None


def ensure_application(tower, key: str, label: str, name: str, package: dict[str, Any], spec: dict[str, Any],
                       run_state, api: ComponentApi = ComponentApi(), *,
                       progress: Optional[Callable[[str], None]] = None) -> tuple[dict[str, Any], str]:
    """Deploy the application ``name`` of ``package`` unless it exists (recorded id or
    by name); wait until RUNNING (``/get-cloudtower-applications``). Returns (app, how)."""
    record = run_state.get(STATE, key) or {}
    app = None
    if record.get("app_id"):
        app = _first(_list(tower.rest("get-cloudtower-applications", {"where": {"id": record["app_id"]}})))
        if app and app.get("state") in FAILED_STATES:
            app = None
    app = app or find_application(tower, name)
    if app is not None:
        how = f"CloudTower 中已有{label}应用 {name}（状态 {app.get('state')}）"
    else:
        removed = remove_failed_installations(tower, label, name, api)
        app = tower.rest("deploy-cloudtower-application", {"name": name, "targetPackage": package["id"],
                                                            "vmSpec": spec})
        how = f"已部署{label}应用 {name}" + (f"（先卸载了安装失败的 {len(removed)} 个同名应用）" if removed else "")
    run_state.merge(STATE, key, {"app_id": app["id"]})
    app = wait_application(tower, app["id"], f"{label}应用 {name}", timeout=api.deploy_timeout)
    return app, how


def remove_failed_installations(tower, label: str, name: str, api: ComponentApi = ComponentApi()) -> list[str]:
    """Uninstall the applications named ``name`` whose installation failed (``INSTALL_FAILED``:
    never ran, nothing of them is in use) and wait until CloudTower no longer lists them, so that
    a new deployment leaves one application of that name. Returns their ids."""
    def failed() -> list[str]:
        apps = _list(tower.rest("get-cloudtower-applications", {"where": {"name": name}}))
        return [a["id"] for a in apps if a.get("state") in (INSTALL_FAILED, "TERMINATING")]

    ids = failed()
    if not ids:
        return []
    tower.rest("uninstall-cloudtower-application", {"where": {"id_in": ids}})
    facts.note(f"卸载安装失败的{label}应用 {name}（{'、'.join(ids)}）后重新部署")
    wait_for(f"卸载安装失败的{label}应用 {name}", failed, lambda left: not left, api.deploy_timeout,
             interval=2.0, max_interval=15.0, progress=lambda left: f"还有 {len(left)} 个", retry_on=_transient)
    return ids


def wait_application(tower, app_id: str, describe: str, *, timeout: float = 3600.0, **kwargs: Any) -> dict[str, Any]:
    """Wait until the CloudTower application is RUNNING (a *_FAILED / ERROR state ends the wait)."""
    def probe() -> dict[str, Any]:
        app = _first(_list(tower.rest("get-cloudtower-applications", {"where": {"id": app_id}})))
        return app or {"state": "（应用不存在 / not found）"}

    def failed(app: dict[str, Any]) -> Optional[str]:
        if app.get("state") in FAILED_STATES:
            return f"应用状态 {app['state']}"
        return "应用不存在" if "id" not in app else None

    return wait_for(f"{describe} 部署完成（RUNNING）", probe, lambda a: a.get("state") == "RUNNING", timeout,
                    interval=kwargs.pop("interval", 0.5), max_interval=kwargs.pop("max_interval", 15.0),
                    progress=lambda a: f"state={a.get('state')} entityAsyncStatus={a.get('entityAsyncStatus')}",
                    failed=failed, retry_on=_transient, **kwargs)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) or (isinstance(exc, ApiError) and (exc.status or 0) >= 500)


def application_ips(app: dict[str, Any]) -> list[str]:
    return [ip for status in (app.get("instanceStatuses") or {}).values() if isinstance(status, dict)
            for ip in status.get("vmIps") or []]


# --------------------------------------------------------------------------- associations
def obs_associated(tower, app_id: str, cluster_id: str, api: ComponentApi) -> Optional[dict[str, Any]]:
    where = {"application": {"id": app_id}, "cluster": {"id": cluster_id}}
    links = _list(tower.rest(api.obs_associations, {"where": where}))
    return next((link for link in links if link.get("status") != "FAILED"), None)


def ensure_obs_association(tower, app_id: str, cluster_id: str, api: ComponentApi = ComponentApi()) -> str:
    """The cluster associated with Observability [INF calls, see ComponentApi]."""
    link = obs_associated(tower, app_id, cluster_id, api)
    how = "集群已关联 Observability"
    if link is None:
        answer = _first(tower.rest(api.obs_associate, {"application_id": app_id, "cluster_ids": [cluster_id]}))
        wait_tower_tasks(tower, [answer.get("task_id")])
        how = "已将集群关联到 Observability"
    elif link.get("status") != "ASSOCIATED":
        wait_for("集群关联 Observability", lambda: obs_associated(tower, app_id, cluster_id, api) or {},
                 lambda item: item.get("status") == "ASSOCIATED", 600.0, retry_on=_transient,
                 failed=lambda item: "关联失败" if item.get("status") == "FAILED" else None)
    link = obs_associated(tower, app_id, cluster_id, api)
    if not link or link.get("status") != "ASSOCIATED":
        raise StepError(f"关联后读回的状态为 {(link or {}).get('status')!r}，应为 ASSOCIATED")
    return how


def backup_service_of(tower, app_id: str) -> Optional[dict[str, Any]]:
    return _first(_list(tower.rest("get-backup-services", {"where": {"application": {"id": app_id}}}))) or None


def ensure_backup_association(tower, service: dict[str, Any], cluster_id: str,
                              api: ComponentApi = ComponentApi()) -> tuple[dict[str, Any], str]:
    """The cluster in the backup service's ``backup_clusters`` (``/get-backup-services``)."""
    def clusters(svc: dict[str, Any]) -> list[str]:
        return [c.get("id") for c in svc.get("backup_clusters") or []]

    how = "集群已关联备份服务"
    if cluster_id not in clusters(service):
        answer = _first(tower.rest(api.backup_associate, {"backup_service_id": service["id"],
                                                          "cluster_ids": [cluster_id]}, already_ok=True))
        if not isinstance(answer, dict):  # already exists: the association task is under way
            answer = {}
        wait_tower_tasks(tower, [answer.get("task_id")])
        how = "已将集群关联到备份服务"
        service = wait_for("集群出现在备份服务的 backup_clusters 中",
                           lambda: _first(_list(tower.rest("get-backup-services", {"where": {"id": service["id"]}})))
                           or {}, lambda svc: cluster_id in clusters(svc), 600.0, retry_on=_transient)
    return service, how


# --------------------------------------------------------------------------- serials
SERIAL_FIELDS = ("serial", "license_serial", "serial_number")  # none is in the 4.6.0 schemas
# what reads a written-back serial from the plan (for voyager.steps.config.write_back_checked)
SERIAL_READERS = {"obs_serial": lambda p: p.obs.serial if p.obs else None,
                  "backup_serial": lambda p: p.backup_service.serial if p.backup_service else None}


def serial_of(*records: Optional[dict[str, Any]]) -> Optional[str]:
    """A serial number in an API answer, when the API gives one."""
    for record in records:
        for field in SERIAL_FIELDS:
            value = (record or {}).get(field)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None
