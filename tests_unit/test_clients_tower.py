"""voyager.clients.tower and inspector: REST with raw token, GraphQL errors, already-exists."""
import json

import certifi
import pytest
import responses
from responses import matchers

from voyager.clients import (AlreadyExists, ApiError, Endpoints, GraphQLError, InspectorClient, RetryPolicy,
                             TowerClient, is_already_exists)
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret
from voyager.waiters import WaitFailed

IP = "127.10.20.2"
BASE = f"https://{IP}"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.Y21nNnduZ3FiMDM3ZzA5NTg2a2Jwb2owMw.Z4w1Q06Kp6jWxDYhFQBy3MEfRN8Aj9SHxSuBY_FPE04"


def endpoints():
    return Endpoints.live(build_demo_plan(), retry=RetryPolicy(backoff=0), ca_bundle=certifi.where())


def logged_in(token=TOKEN):
    responses.post(f"{BASE}/v2/api/login", json={"data": {"token": token}, "task_id": None},
                   match=[matchers.json_params_matcher({"username": "root", "password": "Tower#Pass1",
                                                        "source": "LOCAL"})])
    tower = TowerClient(endpoints(), IP)
    tower.login("root", Secret("Tower#Pass1"))
    return tower


@responses.activate
def test_rest_sends_the_raw_token():
    tower = logged_in()
    responses.post(f"{BASE}/v2/api/get-organizations", json=[{"id": "o1", "name": "org", "datacenters": []}],
                   match=[matchers.header_matcher({"Authorization": TOKEN})])
    assert tower.rest("get-organizations")[0]["id"] == "o1"
    assert json.loads(responses.calls[-1].request.body) == {}
    assert TOKEN not in repr(tower)


@responses.activate
def test_reads_are_retried_mutations_are_not():
    tower = logged_in()
    responses.post(f"{BASE}/v2/api/get-clusters", status=503)
    responses.post(f"{BASE}/v2/api/get-clusters", json=[])
    assert tower.rest("get-clusters", {"where": {"id": "c"}}) == []
    responses.post(f"{BASE}/v2/api/connect-cluster", status=503, json={"message": "busy", "status": 503})
    with pytest.raises(ApiError):
        tower.rest("connect-cluster", [{"ip": "127.10.20.10"}])
    assert [c.request.path_url for c in responses.calls].count("/v2/api/connect-cluster") == 1


@responses.activate
def test_rest_errors_carry_code_and_message():
    tower = logged_in()
    responses.post(f"{BASE}/v2/api/create-datacenter", status=400, json={
        "message": "datacenter name invalid", "status": 400, "path": "/v2/api/create-datacenter",
        "code": "DATACENTER_NAME_INVALID", "props": {"name": "x"}})
    with pytest.raises(ApiError) as exc:
        tower.rest("create-datacenter", {"name": "x", "organization_id": "o1"})
    assert exc.value.ec == "DATACENTER_NAME_INVALID" and exc.value.status == 400
    assert "datacenter name invalid" in str(exc.value)


@responses.activate
def test_rest_already_exists_is_done_when_allowed():
    tower = logged_in()
    for _ in range(2):
        responses.post(f"{BASE}/v2/api/create-datacenter", status=400,
                       json={"message": "Datacenter DEMO-DC already exists", "status": 400})
    result = tower.rest("create-datacenter", {"name": "DEMO-DC"}, already_ok=True)
    assert isinstance(result, AlreadyExists) and is_already_exists(result) and "already exists" in result.message
    with pytest.raises(ApiError):
        tower.rest("create-datacenter", {"name": "DEMO-DC"})


CREATE_ORG = "mutation createOrganization($data: OrganizationCreateInput!) { createOrganization(data: $data) { id } }"


@responses.activate
def test_graphql_returns_data_and_can_skip_auth():
    responses.post(f"{BASE}/api", json={"data": {"createOrganization": {"id": "o1", "__typename": "Organization"}}})
    tower = TowerClient(endpoints(), IP)
    data = tower.graphql("createOrganization", CREATE_ORG, {"data": {"name": "演示客户"}}, auth=False)
    assert data["createOrganization"]["id"] == "o1"
    sent = responses.calls[0].request
    assert "Authorization" not in sent.headers
    assert json.loads(sent.body) == {"operationName": "createOrganization", "variables": {"data": {"name": "演示客户"}},
                                     "query": CREATE_ORG}


@responses.activate
def test_graphql_errors_raise_even_with_http_200():
    tower = logged_in()
    responses.post(f"{BASE}/api", json={"data": None, "errors": [{"message": "Field 'x' is not defined"}]})
    with pytest.raises(GraphQLError) as exc:
        tower.graphql("updateCloudTowerNtpUrl", "mutation ...", {"data": {"ntp_service_url": "a,b"}})
    assert exc.value.ec == "GRAPHQL_ERROR" and exc.value.status == 200
    assert "updateCloudTowerNtpUrl" in str(exc.value) and "is not defined" in str(exc.value)


@pytest.mark.parametrize("error", [
    {"message": "User root already exists"},
    {"message": "create user failed", "extensions": {"code": "UserAlreadyExists"}},
    {"message": "Duplicate entry for name"},
])
@responses.activate
def test_graphql_already_exists_answers(error):
    responses.post(f"{BASE}/api", json={"data": None, "errors": [error]})
    tower = TowerClient(endpoints(), IP)
    result = tower.graphql("createRootUser", "mutation ...", {}, auth=False, already_ok=True)
    assert is_already_exists(result) and result.operation == "createRootUser"
    responses.post(f"{BASE}/api", json={"data": None, "errors": [error]})
    with pytest.raises(GraphQLError):
        tower.graphql("createRootUser", "mutation ...", {}, auth=False)


@responses.activate
def test_tower_401_relogin():
    tower = logged_in("tok-first-0000000")
    responses.post(f"{BASE}/v2/api/login", json={"data": {"token": "tok-second-000000"}, "task_id": None})
    responses.post(f"{BASE}/v2/api/get-tasks", status=401, json={"message": "expired"},
                   match=[matchers.header_matcher({"Authorization": "tok-first-0000000"})])
    responses.post(f"{BASE}/v2/api/get-tasks", json=[{"id": "t", "status": "SUCCESSED"}],
                   match=[matchers.header_matcher({"Authorization": "tok-second-000000"})])
    assert tower.rest("get-tasks", {"where": {"id_in": ["t"]}})[0]["status"] == "SUCCESSED"


# -- inspector -----------------------------------------------------------------------------------
INSPECTOR = f"{BASE}/api/inspector"


@responses.activate
def test_inspector_job_export_wait_download(tmp_path):
    tower = logged_in()
    responses.post(f"{INSPECTOR}/api/v3/jobs", json={"id": "33Qt", "version": "1.1.1-rc.11"},
                   match=[matchers.header_matcher({"Authorization": TOKEN})])
    responses.post(f"{INSPECTOR}/api/v3/jobs/33Qt:exportReport", json={"filename": "InspectorReport-33Qt.zip"},
                   match=[matchers.query_param_matcher({"format": "word"})])
    responses.get(f"{INSPECTOR}/api/v3/export/status", json={"filename": "f", "status": "EXPORT_RUNNING"})
    responses.get(f"{INSPECTOR}/api/v3/export/status", json={"filename": "f", "status": "EXPORT_SUCCEEDED"})
    payload = b"PK\x03\x04" + bytes(range(256)) * 100
    responses.get(f"{INSPECTOR}/api/v1/export/download", body=payload, content_type="application/zip",
                  match=[matchers.query_param_matcher({"filename": "InspectorReport-33Qt.zip"})])
    inspector = InspectorClient(tower)
    job = inspector.create_job(["cluster-1"], ["host_power_is_on"])
    body = json.loads(responses.calls[-1].request.body)
    assert body == {"version": "1.1.1-rc.11", "cluster_uuids": ["cluster-1"],
                    "user_defined_items_names": ["host_power_is_on"]}
    filename = inspector.export(job["id"], [{"cluster_uuid": "cluster-1", "items_names": ["x"],
                                             "graph_duration_months": 6}])
    assert inspector.wait_export(filename, interval=0, sleep=lambda s: None) == "EXPORT_SUCCEEDED"
    path = inspector.download(filename, tmp_path)
    assert path == tmp_path / "InspectorReport-33Qt.zip" and path.read_bytes() == payload
    assert [p.name for p in tmp_path.iterdir()] == ["InspectorReport-33Qt.zip"]  # no temp file left


@responses.activate
def test_inspector_export_failed():
    tower = logged_in()
    responses.get(f"{INSPECTOR}/api/v3/export/status", json={"status": "EXPORT_FAILED"})
    with pytest.raises(WaitFailed, match="EXPORT_FAILED"):
        InspectorClient(tower).wait_export("f.zip", interval=0, sleep=lambda s: None)


@responses.activate
def test_inspector_download_error_leaves_nothing(tmp_path):
    tower = logged_in()
    responses.get(f"{INSPECTOR}/api/v1/export/download", status=404, json={"message": "no such file"})
    with pytest.raises(ApiError, match="no such file"):
        InspectorClient(tower).download("missing.zip", tmp_path / "out.zip")
    assert list(tmp_path.iterdir()) == []
