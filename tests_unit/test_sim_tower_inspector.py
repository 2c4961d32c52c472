"""The inspection center (巡检) of the simulated CloudTower: jobs, report export, download."""
from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import TowerHttp, sim, timed_tower, tower  # noqa: F401 (fixtures)
from voyager.sim.tower.inspection import EXPORT_SECONDS, ITEMS, JOB_SECONDS

JOBS = "/api/inspector/api/v3/jobs"
STATUS = "/api/inspector/api/v3/export/status"
DOWNLOAD = "/api/inspector/api/v1/export/download"
EXPORT_ITEMS = ["host_power_is_on", "zbs_cluster_data_space_use_rate", "ipmi_account_is_valid", "fan_check"]


@pytest.fixture
def connected(tower, plan):
    _dc, cluster = tower.connect(plan, tower.setup())
    return tower, cluster


def job_body(cluster_uuid, items=None):
    return {"version": "1.1.1-rc.11", "cluster_uuids": [cluster_uuid],
            "user_defined_items_names": sorted(ITEMS) if items is None else items}


def export_body(cluster_uuid, items=EXPORT_ITEMS, months=6):
    return {"options": [{"cluster_uuid": cluster_uuid, "items_names": list(items), "graph_duration_months": months}]}


def test_walkthrough_item_lists_are_known(shared_dir):
    """Every check item named in the walkthrough's step 08 payloads is known to the simulator."""
    text = (shared_dir / "spec" / "000_6329e4e73b7c4111.txt").read_text(encoding="utf-8")
    lists = re.findall(r'"(?:user_defined_items_names|items_names)":\[([^\]]+)\]', text)
    assert len(lists) == 2
    named = {name for chunk in lists for name in re.findall(r'"([a-z0-9_]+)"', chunk)}
    assert len(named) > 70 and named <= ITEMS


def test_inspection_job_export_and_download(connected, plan):
    tower, cluster = connected
    serial = cluster["local_id"]
    resp = tower.post(JOBS, json=job_body(serial))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert len(job["id"]) == 27 and job["version"] == "1.1.1-rc.11" and job["cluster_uuids"] == [serial]
    assert job["cluster_names"] == {} and job["user_defined_items_names"] == sorted(ITEMS)
    resp = tower.post(f"{JOBS}/{job['id']}:exportReport", params={"format": "word"}, json=export_body(serial))
    assert resp.status_code == 200, resp.text
    filename = resp.json()["filename"]
    assert re.fullmatch(rf"InspectorReport-\d{{4}}(-\d\d){{5}}-{job['id']}\.zip", filename)
    status = tower.get(STATUS, params={"filename": filename}).json()
    assert status == {"filename": filename, "status": "EXPORT_SUCCEEDED"}
    resp = tower.get(DOWNLOAD, params={"filename": filename})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/zip"
    assert filename in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.content)) as outer:
        (docx_name,) = outer.namelist()
        assert docx_name.endswith(".docx") and plan.cluster.name in docx_name
        with zipfile.ZipFile(io.BytesIO(outer.read(docx_name))) as docx:
            assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= set(docx.namelist())
            document = docx.read("word/document.xml").decode("utf-8")
    assert plan.cluster.name in document and serial in document
    for item in EXPORT_ITEMS:
        assert f"{item}: 通过 (PASS)" in document


def test_job_errors(connected):
    tower, cluster = connected
    serial = cluster["local_id"]
    by_tower_id = tower.post(JOBS, json=job_body(cluster["id"]))
    assert by_tower_id.status_code == 404 and by_tower_id.json()["code"] == 5
    assert "local_id" in by_tower_id.json()["message"]
    unknown_item = tower.post(JOBS, json=job_body(serial, ["host_power_is_on", "no_such_check"]))
    assert unknown_item.status_code == 400 and unknown_item.json() == {
        "code": 3, "message": unknown_item.json()["message"], "details": []}
    assert tower.post(JOBS, json={**job_body(serial), "version": ""}).status_code == 400
    assert tower.post(JOBS, json={**job_body(serial), "cluster_uuids": []}).status_code == 400
    assert tower.post(JOBS, data=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    for auth in (None, "wrong"):
        resp = tower.post(JOBS, auth=auth, json=job_body(serial))
        assert resp.status_code == 401 and resp.json()["code"] == 16


def test_export_errors(connected):
    tower, cluster = connected
    serial = cluster["local_id"]
    job_id = tower.post(JOBS, json=job_body(serial)).json()["id"]
    export = f"{JOBS}/{job_id}:exportReport"
    assert tower.post(f"{JOBS}/nosuchjob:exportReport", params={"format": "word"},
                      json=export_body(serial)).status_code == 404
    assert tower.post(export, params={"format": "pdf"}, json=export_body(serial)).status_code == 400
    assert tower.post(export, json=export_body(serial)).status_code == 400  # format is required
    assert tower.post(export, params={"format": "word"}, json=export_body("other-cluster")).status_code == 400
    assert tower.post(export, params={"format": "word"}, json=export_body(serial, months=0)).status_code == 400
    assert tower.post(export, params={"format": "word"}, json=export_body(serial, ["bogus"])).status_code == 400
    assert tower.post(export, params={"format": "word"}, json={"options": []}).status_code == 400
    assert tower.get(STATUS, params={"filename": "InspectorReport-x.zip"}).status_code == 404
    assert tower.get(DOWNLOAD, params={"filename": "InspectorReport-x.zip"}).status_code == 404
    assert tower.get(DOWNLOAD).status_code == 404


def test_export_runs_until_job_and_export_are_done(plan):
    with timed_tower(plan) as (s, clock):
        tower = TowerHttp(s.endpoints)
        org = tower.setup()
        dc = tower.ok("create-datacenter", {"organization_id": org, "name": "DC"})["data"]["id"]
        tower.ok("connect-cluster", {"datacenter_id": dc, "username": "root", "ip": plan.cluster.vip,
                                     "password": plan.cluster.admin_password.reveal()})
        clock.advance(60)
        serial = tower.ok("get-clusters")[0]["local_id"]
        job_id = tower.post(JOBS, json=job_body(serial)).json()["id"]
        filename = tower.post(f"{JOBS}/{job_id}:exportReport", params={"format": "word"},
                              json=export_body(serial)).json()["filename"]

        def status():
            return tower.get(STATUS, params={"filename": filename}).json()["status"]

        assert status() == "EXPORT_RUNNING"
        early = tower.get(DOWNLOAD, params={"filename": filename})
        assert early.status_code == 400 and early.json()["code"] == 9
        clock.advance(JOB_SECONDS)
        assert status() == "EXPORT_RUNNING"  # the job is done, the export is not
        clock.advance(EXPORT_SECONDS)
        assert status() == "EXPORT_SUCCEEDED"
        assert zipfile.is_zipfile(io.BytesIO(tower.get(DOWNLOAD, params={"filename": filename}).content))
        saved = json.dumps(s.world.to_state())
        assert filename in saved and tower.token not in saved
