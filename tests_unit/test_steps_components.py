"""Step 07 logic (voyager.steps.components) against a simulator whose CloudTower is
installed with the cluster connected (what suites 04-05 leave): uploads (resumed
after a failure), deployments, backup service, associations, reruns, serials."""
from __future__ import annotations

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import connected_tower
from voyager.plan import read_plan, write_plan
from voyager.state import open_state
from voyager.steps import components as comp
from voyager.steps import config, media
from voyager.steps.config import StepError

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def packages(tmp_path, plan):
    folder = tmp_path / "media"
    media.ensure_rehearsal_media(folder, plan.cloudtower.version, obs_version="1.4.2", backup_version="2.2.1")
    return media.find_obs_package(folder), media.find_backup_package(folder)


def deploy_obs(tower, plan, cluster, state, obs_file):
    package, how_upload = comp.ensure_obs_package(tower, obs_file, state)
    vlan = comp.management_vlan(tower, plan)
    spec = comp.vm_spec(plan.obs.vm_name, plan.obs.ip, plan.networks.mgmt, vlan["id"], cluster["id"], plan.dns,
                        comp.ComponentApi().obs_vm)
    app, how_deploy = comp.ensure_application(tower, comp.OBS, "Observability", plan.obs.vm_name, package, spec,
                                              state)
    how_link = comp.ensure_obs_association(tower, app["id"], cluster["id"])
    return package, app, (how_upload, how_deploy, how_link)


def test_observability_uploaded_deployed_associated_and_a_rerun_does_nothing(plan, packages, tmp_path):
    obs_file, _ = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan) as (sim, tower, cluster):
        package, app, hows = deploy_obs(tower, plan, cluster, state, obs_file)
        assert hows == ("已上传 Observability 安装包 " + obs_file.describe(), "已部署Observability应用 Observability",
                        "已将集群关联到 Observability")
        assert package["name"] == "observability" and package["version"].startswith("1.4.2")
        assert app["state"] == "RUNNING" and comp.application_ips(app) == [plan.obs.ip]
        assert app["package"] == {"id": package["id"], "name": "observability"}
        upload = sim.world.tower.packages.chunked[0]
        assert upload["status"] == "COMPLETED" and int(upload["offset"]) == obs_file.size
        assert state.get("components", "obs")["app_id"] == app["id"]
        again = deploy_obs(tower, plan, cluster, state, obs_file)
        assert again[2][0].startswith("CloudTower 中已有 Observability 安装包")
        assert again[2][1].startswith("CloudTower 中已有Observability应用") and again[2][2] == "集群已关联 Observability"
        apps = sim.world.tower.applications
        assert len(sim.world.tower.packages.chunked) == 1 and len(sim.world.tower.packages.packages) == 1
        assert len(apps.apps) == 1 and len(apps.links) == 1
        state.delete("components")  # a rerun that lost the run state finds everything by name
        assert deploy_obs(tower, plan, cluster, state, obs_file)[2][1].startswith("CloudTower 中已有")
        assert len(apps.apps) == 1


def test_observability_upload_resumes_where_the_server_stands(plan, packages, tmp_path):
    obs_file, _ = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan, faults=f"drop-chunk:{obs_file.name}:4") as (sim, tower, _cluster):
        with pytest.raises(StepError, match="重跑会从已上传的位置继续"):
            comp.ensure_obs_package(tower, obs_file, state)  # three chunk attempts in a row fail
        upload_id = state.get("components", "obs")["upload_id"]
        package, how = comp.ensure_obs_package(tower, obs_file, state)  # one more failure, then it goes on
        assert how.startswith("已续传") and package["name"] == "observability"
        (upload,) = sim.world.tower.packages.chunked
        assert upload["id"] == upload_id and int(upload["offset"]) == obs_file.size


def deploy_backup(tower, plan, cluster, state, backup_file):
    package, how_upload = comp.ensure_backup_package(tower, backup_file, state)
    vlan, network, _what = comp.backup_network(tower, plan)
    spec = comp.vm_spec(plan.backup_service.vm_name, plan.backup_service.ip, network, vlan["id"], cluster["id"],
                        plan.dns, comp.ComponentApi().backup_vm)
    app, how_deploy = comp.ensure_application(tower, comp.BACKUP, "备份", plan.backup_service.vm_name, package,
                                              spec, state)
    service = comp.backup_service_of(tower, app["id"])
    service, how_link = comp.ensure_backup_association(tower, service, cluster["id"])
    return service, (how_upload, how_deploy, how_link)


def test_backup_service_on_the_management_network_and_a_rerun_does_nothing(plan, packages, tmp_path):
    _, backup_file = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan) as (sim, tower, cluster):
        service, hows = deploy_backup(tower, plan, cluster, state, backup_file)
        assert hows[0].startswith("已上传备份安装包") and hows[2] == "已将集群关联到备份服务"
        assert service["status"] == "RUNNING" and service["backup_network_type"] == "MANAGEMENT"
        assert service["management_network_ip"] == plan.backup_service.ip
        assert service["backup_clusters"] == [{"id": cluster["id"], "name": plan.cluster.name}]
        (task,) = sim.world.tower.packages.tasks
        assert task["status"] == "SUCCESSED" and task["current_chunk"] == 4  # three 4 MiB chunks sent
        again, hows = deploy_backup(tower, plan, cluster, state, backup_file)
        assert hows[0].startswith("CloudTower 中已有备份安装包") and hows[2] == "集群已关联备份服务"
        assert again["id"] == service["id"]
        assert len(sim.world.tower.packages.tasks) == 1 and len(sim.world.tower.applications.backup_services) == 1


def test_backup_upload_resends_a_lost_chunk(plan, packages, tmp_path):
    """备份安装包的一个分块被拒（5xx）时从上传任务记录的位置重发，同一次调用内完成，只有一个上传任务。"""
    _, backup_file = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan, faults=f"drop-chunk:{backup_file.name}:2") as (sim, tower, _cluster):
        package, how = comp.ensure_backup_package(tower, backup_file, state)
        assert how == f"已上传备份安装包 {backup_file.describe()}" and package["name"] == "iomesh-backup"
        assert len(sim.world.tower.packages.tasks) == 1 and sim.faults.summary()[0]["fired"] == 2


def test_backup_upload_resumes_its_upload_task(plan, packages, tmp_path):
    _, backup_file = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan, faults=f"drop-chunk:{backup_file.name}:3") as (sim, tower, _cluster):
        with pytest.raises(StepError, match="第 1 块连续 3 次上传失败"):
            comp.ensure_backup_package(tower, backup_file, state)
        package, how = comp.ensure_backup_package(tower, backup_file, state)
        assert how == f"已续传备份安装包 {backup_file.describe()}（从第 1 块继续）"
        assert package["name"] == "iomesh-backup" and len(sim.world.tower.packages.tasks) == 1


def test_deployment_failure_is_reported_and_a_rerun_deploys_again(plan, packages, tmp_path):
    obs_file, _ = packages
    state = open_state(tmp_path, plan)
    with connected_tower(plan, faults="fail-job:DEPLOY_CLOUDTOWER_APPLICATION:1") as (sim, tower, cluster):
        with pytest.raises(Exception, match="INSTALL_FAILED"):
            deploy_obs(tower, plan, cluster, state, obs_file)
        _package, app, hows = deploy_obs(tower, plan, cluster, state, obs_file)
        assert hows[1] == "已部署Observability应用 Observability（先卸载了安装失败的 1 个同名应用）"
        assert app["state"] == "RUNNING" and len(sim.world.tower.applications.apps) == 1  # the failed one is gone


def test_backup_network_row_7_must_exist_on_the_cluster(plan):
    from voyager.plan.model import Network

    plan.networks.backup = Network(row=7, vds="vDS-Backup-Network", name="backup-net", vlan=40,
                                   subnet="127.10.40.0/24", gateway="127.10.40.1")
    with connected_tower(plan) as (_sim, tower, _cluster):
        with pytest.raises(StepError, match="虚拟网络!D7"):
            comp.backup_network(tower, plan)


def test_numeric_version_and_api_overrides(monkeypatch):
    assert comp.numeric_version("Observability-X86_64-v1.4.2-release.20250926-24.tar.gz") == "1.4.2"
    assert comp.numeric_version("smtx-backup-dr-x86_64-2.2.1.tar.gz") == "2.2.1"
    monkeypatch.setenv("VOYAGER_COMPONENT_API", '{"obs_associate": "link-obs", "obs_vm": [8, 16, 256]}')
    api = comp.ComponentApi.from_env()
    assert api.obs_associate == "link-obs" and api.obs_vm == (8, 16, 256)
    monkeypatch.setenv("VOYAGER_COMPONENT_API", '{"nope": 1}')
    with pytest.raises(StepError, match="VOYAGER_COMPONENT_API"):
        comp.ComponentApi.from_env()


def test_serials_when_the_api_gives_them(plan, tmp_path):
    assert comp.serial_of({"id": "x"}, None) is None  # the 4.6.0 schemas carry none
    assert comp.serial_of({"id": "x"}, {"serial": " OBS-123 "}) == "OBS-123"
    path = write_plan(plan, tmp_path / "plan.xlsx")
    read = comp.SERIAL_READERS["obs_serial"]
    assert config.write_back_checked(path, "obs_serial", "OBS-123", read)[0].startswith("已写回 集群管理信息!M4")
    assert read_plan(path).obs.serial == "OBS-123"
    assert config.write_back_checked(path, "obs_serial", "OBS-123", read) == (
        "规划表 集群管理信息!M4 已是序列号 OBS-123", "OBS-123")
