"""07-部署其他管理组件（可选）：Observability（集群管理信息!E4）与备份服务（集群管理信息!E5）。

每个组件在规划表未填写其 IP、或媒体目录中没有其安装包时跳过并说明原因。安装包上传可续传、
不重复上传；已部署的应用、已关联的集群不会重复创建。

依据：上传的起始请求按走查文档第 07 步（ovm-operator chunkedUploads、GraphQL createUploadTask）；
“进行部署”走查文档没有载荷，部署与读回按 CloudTower 4.6.0 OpenAPI（/deploy-cloudtower-application、
/get-cloudtower-applications、/get-cloudtower-application-packages、/get-backup-services、
/upload-cloudtower-application-package、/get-upload-tasks、/get-tasks）；推断的调用（Observability
分块续传、集群关联）见 docs/architecture.md 的 [INF] 说明，可用环境变量 VOYAGER_COMPONENT_API 改写。

Prerequisite (developer note): these checks depend on the stage marker ``tower_config``,
the name the final check of suite 06 (CloudTower configured) carries; ``tower``,
``cluster_id``, ``plan``, ``run_state`` and ``media_dir`` are the session fixtures.
"""
from __future__ import annotations

import logging

import pytest

from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import components as comp
from voyager.steps.config import write_back_checked

LOG = logging.getLogger("voyager.suite.components")

OBS_IP = cells.ref(cells.MGMT, f"{cells.MGMT_COL['ip']}{cells.MGMT_ROW_OBS}")
BACKUP_IP = cells.ref(cells.MGMT, f"{cells.MGMT_COL['ip']}{cells.MGMT_ROW_BACKUP}")
PREREQUISITE = pytest.mark.dependency(depends=["tower_config"], scope="session")


@pytest.fixture(scope="module")
def api() -> comp.ComponentApi:
    return comp.ComponentApi.from_env()


def need(component, package, label: str, cell: str, pattern: str, media_dir) -> None:
    """Skip (with its reason) a component the plan does not ask for or whose package is absent."""
    if component is None or not component.ip:
        pytest.skip(f"规划表 {cell} 未填写 {label} 的 IP，不部署 {label}")
    if package is None:
        pytest.skip(f"媒体目录 {media_dir} 中没有 {label} 安装包（{pattern}），不部署 {label}")


def serial_write_back(write_back_path, key: str, label: str, *records) -> None:
    serial = comp.serial_of(*records)
    sheet, coord = cells.WRITE_BACK[key]
    if serial is None:
        facts.note(f"CloudTower 接口（OpenAPI 4.6.0 的 CloudTowerApplication/BackupService）没有返回 {label} 序列号，"
                   f"不写回 {cells.ref(sheet, coord)}")
        return
    facts.record(f"{label} 序列号", serial, serial, cell=cells.ref(sheet, coord))
    LOG.info(write_back_checked(write_back_path, key, serial, comp.SERIAL_READERS[key])[0])


# --------------------------------------------------------------------------- Observability
def obs_needed(plan: Plan, obs_package, media_dir) -> None:
    need(plan.obs, obs_package, "Observability", OBS_IP, "Observability-X86_64-*.tar.gz", media_dir)


@pytest.mark.voyager_optional
@PREREQUISITE
def test_obs_package_uploaded(tower, plan: Plan, obs_package, media_dir, run_state, api):
    """Observability 安装包（媒体目录中版本最高的 Observability-X86_64-*.tar.gz）已通过 ovm-operator 分块上传
    接口上传到 CloudTower：可续传、显示进度、不重复上传；CloudTower 的安装包列表中可以看到它。"""
    obs_needed(plan, obs_package, media_dir)
    package, how = comp.ensure_obs_package(tower, obs_package, run_state, api)
    LOG.info(how)
    facts.record("安装包版本", comp.numeric_version(obs_package.name), package.get("version"),
                 ok=str(package.get("version", "")).startswith(comp.numeric_version(obs_package.name)))
    facts.note(f"{how}（依据：走查文档 07 chunkedUploads；续传/完成接口为推断 [INF]）")


@pytest.mark.voyager_optional
@pytest.mark.dependency(depends=["test_obs_package_uploaded"])
def test_obs_deployed(tower, plan: Plan, cluster_id, obs_package, media_dir, run_state, write_back_path, api):
    """Observability 已部署在规划的 IP（集群管理信息!E4）、管理网络（虚拟网络!C4 的 default）上，状态 RUNNING，
    版本与安装包一致（/deploy-cloudtower-application、/get-cloudtower-applications，OpenAPI）。"""
    obs_needed(plan, obs_package, media_dir)
    package, _ = comp.ensure_obs_package(tower, obs_package, run_state, api)
    vlan = comp.management_vlan(tower, plan)
    spec = comp.vm_spec(plan.obs.vm_name or "Observability", plan.obs.ip, plan.networks.mgmt, vlan["id"],
                        cluster_id, plan.dns, api.obs_vm)
    app, how = comp.ensure_application(tower, comp.OBS, "Observability", plan.obs.vm_name or "Observability",
                                       package, spec, run_state, api)
    LOG.info(how)
    facts.record("运行状态", "RUNNING", app.get("state"))
    facts.record("IP 地址", [plan.obs.ip], comp.application_ips(app), cell=OBS_IP)
    facts.record("安装包", package["id"], (app.get("package") or {}).get("id"))
    facts.record("版本", comp.numeric_version(obs_package.name), package.get("version"),
                 ok=str(package.get("version", "")).startswith(comp.numeric_version(obs_package.name)))
    assert app.get("state") == "RUNNING", f"Observability 状态为 {app.get('state')}，应为 RUNNING"
    assert comp.application_ips(app) == [plan.obs.ip], (
        f"Observability 的 IP 为 {comp.application_ips(app)}，应为规划的 {plan.obs.ip}（{OBS_IP}）")
    serial_write_back(write_back_path, "obs_serial", "Observability", app, package)


@pytest.mark.voyager_optional
@pytest.mark.dependency(depends=["test_obs_deployed"])
def test_obs_cluster_associated(tower, plan: Plan, cluster_id, obs_package, media_dir, run_state, api):
    """集群已关联到 Observability，读回关联状态为 ASSOCIATED（关联接口为推断 [INF]，见 docs/architecture.md）。"""
    obs_needed(plan, obs_package, media_dir)
    app_id = (run_state.get(comp.STATE, comp.OBS) or {}).get("app_id")
    if not app_id:
        app_id = (comp.find_application(tower, plan.obs.vm_name or "Observability") or {}).get("id")
    assert app_id, "CloudTower 中没有 Observability 应用，请先完成 test_obs_deployed"
    how = comp.ensure_obs_association(tower, app_id, cluster_id, api)
    LOG.info(how)
    link = comp.obs_associated(tower, app_id, cluster_id, api) or {}
    facts.record("关联状态", "ASSOCIATED", link.get("status"))
    facts.record("关联的集群", plan.cluster.name, (link.get("cluster") or {}).get("name"))


# --------------------------------------------------------------------------- backup
def backup_needed(plan: Plan, backup_package, media_dir) -> None:
    need(plan.backup_service, backup_package, "备份服务", BACKUP_IP, "smtx-backup-dr-*.tar.gz", media_dir)


@pytest.mark.voyager_optional
@PREREQUISITE
def test_backup_package_uploaded(tower, plan: Plan, backup_package, media_dir, run_state, api):
    """备份安装包（smtx-backup-dr-*.tar.gz）已通过 createUploadTask 分块上传到 CloudTower（按走查文档的载荷，
    分块经 /upload-cloudtower-application-package）：可续传、显示进度、不重复上传。"""
    backup_needed(plan, backup_package, media_dir)
    package, how = comp.ensure_backup_package(tower, backup_package, run_state, api)
    LOG.info(how)
    facts.record("安装包", f"{api.backup_package_name} {comp.numeric_version(backup_package.name)}",
                 f"{package.get('name')} {package.get('version')}",
                 ok=str(package.get("version", "")).startswith(comp.numeric_version(backup_package.name)))
    facts.note(f"{how}（依据：走查文档 07 createUploadTask；分块规则为推断 [INF]）")


@pytest.mark.voyager_optional
@pytest.mark.dependency(depends=["test_backup_package_uploaded"])
def test_backup_service_deployed(tower, plan: Plan, cluster_id, backup_package, media_dir, run_state, write_back_path,
                                 api):
    """备份服务已部署在规划的 IP（集群管理信息!E5）、规划的备份网络（虚拟网络第 7 行；未填写时为管理网络）上，
    应用状态 RUNNING，/get-backup-services 读回的服务状态 RUNNING、地址与网络类型与规划一致。"""
    backup_needed(plan, backup_package, media_dir)
    package, _ = comp.ensure_backup_package(tower, backup_package, run_state, api)
    vlan, network, what = comp.backup_network(tower, plan)
    name = plan.backup_service.vm_name or "backup"
    spec = comp.vm_spec(name, plan.backup_service.ip, network, vlan["id"], cluster_id, plan.dns, api.backup_vm)
    app, how = comp.ensure_application(tower, comp.BACKUP, "备份", name, package, spec, run_state, api)
    LOG.info("%s（%s）", how, what)
    service = comp.backup_service_of(tower, app["id"])
    assert service is not None, f"备份应用 {name} 已 RUNNING，但 /get-backup-services 中没有它的备份服务"
    run_state.merge(comp.STATE, comp.BACKUP, {"service_id": service["id"]})
    on_mgmt = plan.networks.backup is None
    ip_field = "management_network_ip" if on_mgmt else "backup_network_ip"
    facts.record("服务状态", "RUNNING", service.get("status"))
    facts.record("服务地址", plan.backup_service.ip, service.get(ip_field), cell=BACKUP_IP)
    facts.record("网络类型", "MANAGEMENT" if on_mgmt else "NEW_NIC", service.get("backup_network_type"),
                 cell=cells.ref(cells.NET, "D7"))
    assert service.get("status") == "RUNNING", f"备份服务状态为 {service.get('status')}，应为 RUNNING"
    assert service.get(ip_field) == plan.backup_service.ip, (
        f"备份服务的 {ip_field} 为 {service.get(ip_field)}，应为规划的 {plan.backup_service.ip}（{BACKUP_IP}）")
    serial_write_back(write_back_path, "backup_serial", "备份服务", service, app)


@pytest.mark.voyager_optional
@pytest.mark.dependency(depends=["test_backup_service_deployed"])
def test_backup_cluster_associated(tower, plan: Plan, cluster_id, backup_package, media_dir, run_state, api):
    """集群已关联到备份服务：/get-backup-services 读回的 backup_clusters 中有本集群（关联接口为推断 [INF]）。"""
    backup_needed(plan, backup_package, media_dir)
    record = run_state.get(comp.STATE, comp.BACKUP) or {}
    service = None
    if record.get("app_id"):
        service = comp.backup_service_of(tower, record["app_id"])
    if service is None:
        app = comp.find_application(tower, plan.backup_service.vm_name or "backup") or {}
        service = comp.backup_service_of(tower, app["id"]) if app.get("id") else None
    assert service is not None, "CloudTower 中没有备份服务，请先完成 test_backup_service_deployed"
    service, how = comp.ensure_backup_association(tower, service, cluster_id, api)
    LOG.info(how)
    facts.record("关联的集群", [cluster_id], [c.get("id") for c in service.get("backup_clusters") or []],
                 ok=cluster_id in [c.get("id") for c in service.get("backup_clusters") or []])
