"""Step 07 in the simulated CloudTower, on the wire: package uploads (OBS chunks [INF],
backup upload-task chunks), application packages, deployed applications and their
tasks, backup services, cluster associations [INF] — shapes checked against the
CloudTower 4.6.0 OpenAPI spec."""
from __future__ import annotations

import json

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import (BACKUP_FILE, CHUNK, OBS_FILE, OVM, Q_UPLOAD, TowerHttp, backup_package, deploy_body,
                               mgmt_vlan, obs_package, timed_tower, tower_up)
from voyager.sim import Simulator
from voyager.sim.tower.schema import FIELDS

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def world(plan):
    with Simulator(plan, speed=0, ssh=False) as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        yield s, tower, cluster


def test_obs_chunked_upload_resumes_by_offset_and_registers_one_package(world):
    sim, tower, _ = world
    upload = tower.post(OVM, json={"origin_file_name": OBS_FILE}).json()
    first = tower.post(f"{OVM}/{upload['id']}:upload", params={"offset": 0}, data=b"a" * CHUNK)
    assert first.json()["offset"] == str(CHUNK) and first.json()["status"] == "UPLOADING"
    wrong = tower.post(f"{OVM}/{upload['id']}:upload", params={"offset": 0}, data=b"a" * CHUNK)
    assert wrong.status_code == 400 and wrong.json()["code"] == 9 and str(CHUNK) in wrong.json()["message"]
    assert tower.get(f"{OVM}/{upload['id']}").json()["offset"] == str(CHUNK)
    assert tower.get(f"{OVM}/nosuch").status_code == 404
    done = tower.post(f"{OVM}/{upload['id']}:complete", json={}).json()
    assert done["status"] == "COMPLETED" and done["package_name"] == "observability" and done["package_id"]
    assert tower.post(f"{OVM}/{upload['id']}:upload", params={"offset": CHUNK}, data=b"b").status_code == 400
    (package,) = tower.ok("get-cloudtower-application-packages", {"where": {"id": done["package_id"]}})
    assert package["version"] == "1.4.2-release.20250926-24" and package["architecture"] == "X86_64"
    _, again = obs_package(tower)  # the same file uploaded again is the same package
    assert again["package_id"] == done["package_id"]
    assert tower.post(f"{OVM}/{upload['id']}:upload", auth=None, data=b"x").status_code == 401


def test_backup_upload_task_takes_its_chunks_in_order(world):
    _, tower, _ = world
    task_id, answer = backup_package(tower)
    (task,) = answer
    assert task["status"] == "SUCCESSED" and task["current_chunk"] == 4 and task["finished_at"]
    resp = tower.post("/v2/api/upload-cloudtower-application-package", data={"upload_task_id": task_id},
                      files={"file": (BACKUP_FILE, b"z")})
    assert resp.status_code == 400 and resp.json()["code"] == "UPLOAD_TASK_FINISHED"
    (listed,) = tower.ok("get-upload-tasks", {"where": {"id": task_id}})
    assert listed == task
    packages = tower.ok("get-cloudtower-application-packages", {"where": {"name": "iomesh-backup"}})
    assert [p["version"] for p in packages] == ["2.2.1"]
    data = {"status": "INITIALIZING", "current_chunk": 1, "chunk_size": CHUNK, "size": 5000,
            "resource_type": "CLOUDTOWER_APPLICATION_PACKAGE", "started_at": "2025-12-09T04:49:01.038Z",
            "args": {"name": BACKUP_FILE}}
    other = tower.gql("createUploadTask", {"data": data}, query=Q_UPLOAD)["data"]["createUploadTask"]["id"]
    short = tower.post("/v2/api/upload-cloudtower-application-package", data={"upload_task_id": other},
                       files={"file": (BACKUP_FILE, b"z" * 10)})
    assert short.status_code == 400 and short.json()["code"] == "UPLOAD_CHUNK_SIZE"
    no_task = tower.post("/v2/api/upload-cloudtower-application-package", files={"file": (BACKUP_FILE, b"z")})
    assert no_task.status_code == 400 and "upload_task_id" in no_task.json()["message"]


def test_deployment_validation(world, plan):
    _, tower, cluster = world
    _, obs = obs_package(tower)
    vlan = mgmt_vlan(tower, plan)

    def deploy(**change):
        body = deploy_body("obs-x", obs["package_id"], cluster["id"], vlan["id"], "127.10.20.40", plan)
        body.update(change)
        return tower.rest("deploy-cloudtower-application", body)

    assert deploy(targetPackage="nosuch").status_code == 404
    assert deploy(vmSpec={"instances": []}).status_code == 400
    vip = deploy_body("obs-x", obs["package_id"], cluster["id"], vlan["id"], plan.cluster.vip, plan)
    conflict = tower.rest("deploy-cloudtower-application", vip)
    assert conflict.status_code == 400 and conflict.json()["code"] == "IP_CONFLICT"
    bad_vlan = deploy_body("obs-x", obs["package_id"], cluster["id"], "novlan", "127.10.20.40", plan)
    assert tower.rest("deploy-cloudtower-application", bad_vlan).status_code == 404
    assert deploy().status_code == 200
    again = deploy_body("obs-x", obs["package_id"], cluster["id"], vlan["id"], "127.10.20.41", plan)
    duplicate = tower.rest("deploy-cloudtower-application", again)
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["message"]


def test_applications_install_as_tasks_and_clusters_associate(plan):
    with timed_tower(plan) as (s, clock):
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        clock.advance(60)
        _, obs = obs_package(tower)
        _, _ = backup_package(tower)
        (backup_pkg,) = tower.ok("get-cloudtower-application-packages", {"where": {"name": "iomesh-backup"}})
        vlan = mgmt_vlan(tower, plan)
        app = tower.ok("deploy-cloudtower-application",
                       deploy_body("Observability", obs["package_id"], cluster["id"], vlan["id"], plan.obs.ip, plan))
        assert app["state"] == "INSTALLING" and app["entityAsyncStatus"] == "CREATING" and app["instanceStatuses"] == {}
        backup = tower.ok("deploy-cloudtower-application", deploy_body(
            "backup", backup_pkg["id"], cluster["id"], vlan["id"], plan.backup_service.ip, plan))
        (service,) = tower.ok("get-backup-services", {"where": {"application": {"id": backup["id"]}}})
        assert service["status"] == "INSTALLING" and service["backup_clusters"] == []
        early = tower.rest("associate-obs-clusters", {"application_id": app["id"], "cluster_ids": [cluster["id"]]})
        assert early.status_code == 400 and early.json()["code"] == "APPLICATION_NOT_READY"
        (task,) = tower.ok("get-tasks", {"where": {"resource_id": app["id"]}})
        assert task["key"] == "DEPLOY_CLOUDTOWER_APPLICATION" and task["status"] in ("PENDING", "EXECUTING")
        clock.advance(400)
        (app,) = tower.ok("get-cloudtower-applications", {"where": {"id": app["id"]}})
        assert app["state"] == "RUNNING" and app["instanceStatuses"]["Observability"]["vmIps"] == [plan.obs.ip]
        (service,) = tower.ok("get-backup-services", {"where": {"id": service["id"]}})
        assert service["status"] == "RUNNING" and service["backup_network_type"] == "MANAGEMENT"
        assert service["management_network_ip"] == plan.backup_service.ip and service["backup_network_ip"] is None
        linked = tower.ok("associate-obs-clusters", {"application_id": app["id"], "cluster_ids": [cluster["id"]]})
        (link,) = tower.ok("get-obs-cluster-associations", {"where": {"application": {"id": app["id"]}}})
        assert link["status"] == "ASSOCIATING" and linked["task_id"]
        joined = tower.ok("associate-backup-service-clusters",
                          {"backup_service_id": service["id"], "cluster_ids": [cluster["id"]]})
        assert joined["data"]["backup_clusters"] == []  # not before its task finished
        twice = tower.rest("associate-obs-clusters", {"application_id": app["id"], "cluster_ids": [cluster["id"]]})
        assert twice.status_code == 400 and "already exists" in twice.json()["message"]
        clock.advance(30)
        (link,) = tower.ok("get-obs-cluster-associations", {"where": {"cluster": {"id": cluster["id"]}}})
        assert link["status"] == "ASSOCIATED" and link["cluster"]["name"] == plan.cluster.name
        (service,) = tower.ok("get-backup-services", {"where": {"id": service["id"]}})
        assert service["backup_clusters"] == [{"id": cluster["id"], "name": plan.cluster.name}]
        assert service["network_status"] == [{"cluster": cluster["id"], "status": "CONNECTED"}]
        saved = json.dumps(s.world.to_state())
        assert service["id"] in saved and tower.token not in saved


def test_a_failed_installation_frees_the_name(plan):
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:DEPLOY_CLOUDTOWER_APPLICATION:1") as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        _, obs = obs_package(tower)
        body = deploy_body("Observability", obs["package_id"], cluster["id"], mgmt_vlan(tower, plan)["id"],
                           plan.obs.ip, plan)
        failed = tower.ok("deploy-cloudtower-application", body)
        (failed,) = tower.ok("get-cloudtower-applications", {"where": {"id": failed["id"]}})
        assert failed["state"] == "INSTALL_FAILED"
        second = tower.ok("deploy-cloudtower-application", body)  # the name is free again
        (second,) = tower.ok("get-cloudtower-applications", {"where": {"id": second["id"]}})
        assert second["state"] == "RUNNING"


def test_uninstall_removes_a_failed_installation(plan):
    """uninstall-cloudtower-application {where} 返回所选应用（TERMINATING）；卸载任务完成后应用从列表中消失。"""
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:DEPLOY_CLOUDTOWER_APPLICATION:1") as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        _, obs = obs_package(tower)
        body = deploy_body("Observability", obs["package_id"], cluster["id"], mgmt_vlan(tower, plan)["id"],
                           plan.obs.ip, plan)
        failed = tower.ok("deploy-cloudtower-application", body)
        assert tower.rest("uninstall-cloudtower-application", {}).status_code == 400  # where is required
        (removing,) = tower.ok("uninstall-cloudtower-application", {"where": {"id": failed["id"]}})
        assert removing["id"] == failed["id"] and removing["state"] in ("TERMINATING", "INSTALL_FAILED")
        assert tower.ok("get-cloudtower-applications", {"where": {"name": "Observability"}}) == []  # speed 0: done
        assert tower.ok("uninstall-cloudtower-application", {"where": {"id": failed["id"]}}) == []
        (task,) = tower.ok("get-tasks", {"where": {"key": "UNINSTALL_CLOUDTOWER_APPLICATION"}})
        assert task["status"] == "SUCCESSED" and task["resource_id"] == failed["id"]


def test_a_failed_association_is_retried_not_duplicated(plan):
    """关联失败（fail-job:ASSOCIATE_OBS_CLUSTER）后再次关联：重试同一个关联（新任务），不会出现第二个关联。"""
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:ASSOCIATE_OBS_CLUSTER:1") as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        _, obs = obs_package(tower)
        app = tower.ok("deploy-cloudtower-application", deploy_body(
            "Observability", obs["package_id"], cluster["id"], mgmt_vlan(tower, plan)["id"], plan.obs.ip, plan))
        body = {"application_id": app["id"], "cluster_ids": [cluster["id"]]}
        tower.ok("associate-obs-clusters", body)
        (link,) = tower.ok("get-obs-cluster-associations", {"where": {"application": {"id": app["id"]}}})
        assert link["status"] == "FAILED"
        tower.ok("associate-obs-clusters", body)
        (again,) = tower.ok("get-obs-cluster-associations", {"where": {"application": {"id": app["id"]}}})
        assert again["id"] == link["id"] and again["status"] == "ASSOCIATED"


LISTS = ("get-upload-tasks", "get-cloudtower-application-packages", "get-cloudtower-applications",
         "get-backup-services")
SCHEMAS = {"get-upload-tasks": "UploadTask", "get-cloudtower-application-packages": "CloudTowerApplicationPackage",
           "get-cloudtower-applications": "CloudTowerApplication", "get-backup-services": "BackupService"}


def test_rendered_lists_are_the_schema_fields(world, plan, shared_dir):
    """tower_schema.FIELDS = what the new lists render = the OpenAPI schema's properties."""
    _, tower, cluster = world
    _, obs = obs_package(tower, size=10)
    backup_package(tower, size=10)
    (pkg,) = tower.ok("get-cloudtower-application-packages", {"where": {"name": "iomesh-backup"}})
    vlan = mgmt_vlan(tower, plan)
    tower.ok("deploy-cloudtower-application", deploy_body("b2", pkg["id"], cluster["id"], vlan["id"],
                                                          "127.10.20.42", plan))
    app = tower.ok("deploy-cloudtower-application", deploy_body("o2", obs["package_id"], cluster["id"], vlan["id"],
                                                                "127.10.20.43", plan))
    tower.ok("associate-obs-clusters", {"application_id": app["id"], "cluster_ids": [cluster["id"]]})
    spec = json.loads((shared_dir / "reference" / "cloudtower-api-4.6.0-openapi.json").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    for op in (*LISTS, "get-obs-cluster-associations"):
        items = tower.ok(op, {})
        assert items and all(set(item) == FIELDS[op] for item in items), op
        if op in SCHEMAS:
            assert FIELDS[op] == set(schemas[SCHEMAS[op]]["properties"]), op
    assert "/get-obs-cluster-associations" not in spec["paths"]  # [INF]: not documented
    bad = tower.rest("get-backup-services", {"where": {"no_such_field": 1}})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_WHERE"
