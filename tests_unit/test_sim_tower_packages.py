"""Walkthrough step 07 (optional): starting the upload of an Observability package
(ovm-operator chunkedUploads) and of a backup package (GraphQL createUploadTask)."""
from __future__ import annotations

import json
import re

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import TowerHttp, reset_tower, sim, tower_up  # noqa: F401 (fixture)
from voyager.sim import Simulator

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

OBS = "/api/ovm-operator/api/v3/chunkedUploads"
OBS_FILE = "Observability-X86_64-v1.4.2-release.20250926-24.tar.gz"
Q_UPLOAD = ("mutation createUploadTask($data: UploadTaskCreateInput!) {\n  createUploadTask(data: $data) {\n"
            "    id\n    current_chunk\n    chunk_size\n    __typename\n  }\n}\n")
TASK = {"status": "INITIALIZING", "current_chunk": 1, "chunk_size": 4194304,
        "resource_type": "CLOUDTOWER_APPLICATION_PACKAGE", "size": 426394976,
        "args": {"name": "smtx-backup-dr-x86_64-2.2.1.tar.gz", "package_name": "iomesh-backup"},
        "started_at": "2025-12-09T04:49:01.038Z"}


@pytest.fixture
def tower(sim):
    reset_tower(sim)
    t = TowerHttp(sim.endpoints, tls=True)
    t.setup()
    return t


def test_obs_chunked_upload_starts_as_the_walkthrough_shows(tower, sim):
    resp = tower.post(OBS, json={"origin_file_name": OBS_FILE})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"id", "package_name", "offset", "status", "origin_file_name", "error_code",
                         "error_message", "package_id", "create_time", "update_time"}
    assert re.fullmatch(r"[0-9A-Za-z]{27}", body["id"]) and body["offset"] == "0" and body["status"] == "UPLOADING"
    assert body["origin_file_name"] == OBS_FILE and body["package_id"] == "" and body["error_code"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", body["create_time"])
    assert sim.world.tower.packages.chunked[-1]["id"] == body["id"]


def test_obs_chunked_upload_errors(tower):
    for auth in (None, "not-a-token"):
        resp = tower.post(OBS, auth=auth, json={"origin_file_name": OBS_FILE})
        assert resp.status_code == 401 and resp.json()["code"] == 16
    for body in ({}, {"origin_file_name": ""}, {"origin_file_name": "notes.txt"}, ["x"]):
        resp = tower.post(OBS, json=body)
        assert resp.status_code == 400 and resp.json()["code"] == 3 and resp.json()["details"] == [], body
    resp = tower.post(OBS, data="{", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == 3
    assert tower.get(OBS).status_code == 405


def test_backup_upload_task_as_json_and_as_multipart(tower, sim):
    out = tower.gql("createUploadTask", {"data": TASK}, query=Q_UPLOAD)
    task = out["data"]["createUploadTask"]
    assert task["current_chunk"] == 1 and task["chunk_size"] == 4194304 and task["__typename"] == "UploadTask"
    operations = json.dumps({"operationName": "createUploadTask", "variables": {"data": TASK}, "query": Q_UPLOAD})
    resp = tower.post("/api", files={"operations": (None, operations), "map": (None, "{}")},
                      headers={"Content-Language": "en-US"})
    second = resp.json()["data"]["createUploadTask"]
    assert resp.status_code == 200 and second["id"] != task["id"]
    assert [t["id"] for t in sim.world.tower.packages.tasks] == [task["id"], second["id"]]


@pytest.mark.parametrize("change", [{"status": "UPLOADING"}, {"chunk_size": 0}, {"size": "big"},
                                    {"current_chunk": True}, {"resource_type": "ISO"}, {"args": {}},
                                    {"started_at": None}])
def test_backup_upload_task_validation(tower, change):
    out = tower.gql("createUploadTask", {"data": {**TASK, **change}}, query=Q_UPLOAD)
    assert out["data"] is None and out["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_backup_upload_task_needs_a_token_and_operations(tower):
    out = tower.gql("createUploadTask", {"data": TASK}, query=Q_UPLOAD, auth=None)
    assert out["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    resp = tower.post("/api", files={"map": (None, "{}")})
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_uploads_are_kept_in_the_state_file(tmp_path, plan):
    state = tmp_path / "sim.json"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as s:
        tower_up(s, plan)
        t = TowerHttp(s.endpoints)
        t.setup()
        obs_id = t.post(OBS, json={"origin_file_name": OBS_FILE}).json()["id"]
        task_id = t.gql("createUploadTask", {"data": TASK}, query=Q_UPLOAD)["data"]["createUploadTask"]["id"]
    with Simulator(plan, speed=0, ssh=False, state_file=state) as again:
        packages = again.world.tower.packages
        assert [u["id"] for u in packages.chunked] == [obs_id] and [t["id"] for t in packages.tasks] == [task_id]
