"""The inspection center (巡检) of the simulated CloudTower: jobs, report export, download."""
from __future__ import annotations

import io
import json
import re
import zipfile

import docx
import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import TowerHttp, sim, timed_tower, tower, tower_up  # noqa: F401 (fixtures)
from voyager.sim import Simulator
from voyager.sim.tower.inspection import EXPORT_SECONDS, ITEMS, JOB_SECONDS, REPORT_COLUMNS
from voyager.steps.inspection_items import NAMES

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
        document = docx.Document(io.BytesIO(outer.read(docx_name)))
    text = "\n".join(p.text for p in document.paragraphs)
    assert plan.cluster.name in text and serial in text
    (table,) = document.tables
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0] == list(REPORT_COLUMNS)
    assert [r[0] for r in rows[1:]] == EXPORT_ITEMS
    assert all(r[2] == "通过" for r in rows[1:] if r[0] != "ipmi_account_is_valid")
    assert dict((r[0], r[1]) for r in rows[1:])["host_power_is_on"] == NAMES["host_power_is_on"]


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


def _results(tower, job_id):
    resp = tower.get(f"{JOBS}/{job_id}")
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "SUCCEEDED" and job["progress"] == 1.0
    (per_cluster,) = job["results"]
    return {r["item_name"]: r for r in per_cluster["items"]}


def test_job_status_gives_per_item_results_once_finished(plan):
    """GET /api/v3/jobs/{id} [INF]: RUNNING with progress, then SUCCEEDED with one result per item."""
    with timed_tower(plan) as (s, clock):
        tower = TowerHttp(s.endpoints)
        _dc, cluster = tower.connect(plan, tower.setup())
        clock.advance(60)
        job_id = tower.post(JOBS, json=job_body(cluster["local_id"])).json()["id"]
        clock.advance(JOB_SECONDS / 2)
        running = tower.get(f"{JOBS}/{job_id}").json()
        assert running["status"] == "RUNNING" and 0.4 <= running["progress"] <= 0.6 and "results" not in running
        clock.advance(JOB_SECONDS)
        results = _results(tower, job_id)
        assert tower.get(f"{JOBS}/nosuchjob").status_code == 404
    assert set(results) == ITEMS
    assert all(set(r) == {"item_name", "display_name", "status", "value", "advice"} for r in results.values())
    # the walk configures no CPU compatibility model (suite 03 does): the only warning
    assert {k: r["status"] for k, r in results.items() if r["status"] != "PASS"} == {
        "elf_cluster_cpu_model_not_recommended": "WARNING"}
    assert results["ipmi_account_is_valid"]["value"] == f"{len(plan.hosts)} 台主机的 IPMI 账号有效"


def test_items_follow_the_cluster_state(plan):
    """An invalid IPMI account, a powered-off host, an unreachable NTP server and an
    inspect-fail fault give the matching failing items, and only those."""
    off = plan.hosts[1]
    with Simulator(plan, speed=0, ssh=False, faults="inspect-fail:host_disk_is_healthy:1",
                   host_overrides={off.mgmt_ip: {"powered_off": True}}) as s:
        tower_up(s, plan)
        with s.world.lock:
            cluster = s.world.cluster
            first = s.world.hosts[plan.hosts[0].mgmt_ip].uuid
            for account in cluster.ipmi_accounts:
                if account["node_uuid"] == first:
                    account["is_valid"] = False
            cluster.ntp_servers = ["10.255.0.1", *cluster.ntp_servers]
        tower = TowerHttp(s.endpoints)
        _dc, conn = tower.connect(plan, tower.setup())
        job_id = tower.post(JOBS, json=job_body(conn["local_id"])).json()["id"]
        results = _results(tower, job_id)
        again = _results(tower, tower.post(JOBS, json=job_body(conn["local_id"])).json()["id"])
    failing = {k: r for k, r in results.items() if r["status"] != "PASS"}
    assert {k: r["status"] for k, r in failing.items()} == {
        "ipmi_account_is_valid": "FAIL", "host_power_is_on": "FAIL", "host_work_status_is_unknown": "FAIL",
        "host_management_network_can_ping": "FAIL", "host_storage_network_can_ping": "FAIL",
        "cluster_can_connect_to_external_ntp_server": "WARNING",
        "cluster_can_sync_time_with_external_ntp_server": "WARNING", "host_disk_is_healthy": "FAIL",
        "elf_cluster_cpu_model_not_recommended": "WARNING"}
    assert plan.hosts[0].name in failing["ipmi_account_is_valid"]["value"]
    assert failing["ipmi_account_is_valid"]["advice"] and failing["ipmi_account_is_valid"]["display_name"] == "IPMI 账号有效"
    assert off.mgmt_ip in failing["host_power_is_on"]["value"]
    assert "10.255.0.1" in failing["cluster_can_connect_to_external_ntp_server"]["value"]
    assert "inspect-fail" in failing["host_disk_is_healthy"]["value"]
    assert again["host_disk_is_healthy"]["status"] == "PASS"  # the fault was spent by the first job


def test_report_table_carries_failing_verdicts(plan):
    with Simulator(plan, speed=0, ssh=False, faults="inspect-fail:fan_check:1") as s:
        tower_up(s, plan)
        tower = TowerHttp(s.endpoints)
        _dc, conn = tower.connect(plan, tower.setup())
        serial = conn["local_id"]
        job_id = tower.post(JOBS, json=job_body(serial)).json()["id"]
        filename = tower.post(f"{JOBS}/{job_id}:exportReport", params={"format": "word"},
                              json=export_body(serial)).json()["filename"]
        content = tower.get(DOWNLOAD, params={"filename": filename}).content
    with zipfile.ZipFile(io.BytesIO(content)) as outer:
        document = docx.Document(io.BytesIO(outer.read(outer.namelist()[0])))
    rows = {r.cells[0].text: [c.text for c in r.cells] for r in document.tables[0].rows[1:]}
    assert rows["fan_check"][2] == "不通过" and "inspect-fail" in rows["fan_check"][3] and rows["fan_check"][4]
    assert rows["host_power_is_on"][2] == "通过"
