"""voyager.clients.fisheye: deployment token, setupRoot, login, 401 re-login, envelope errors."""
import json

import certifi
import pytest
import responses
from responses import matchers

from voyager.clients import DEPLOY_TOKEN, ApiError, Endpoints, FisheyeClient, RetryPolicy
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret
from voyager.redact import REDACTOR

IP = "127.10.20.11"
HTTP = f"http://{IP}"
HTTPS = f"https://{IP}"
PASSWORD = Secret("Fisheye#Pass1")


def client():
    # ca_bundle: full verification (nothing to pin against a mocked server)
    return FisheyeClient(Endpoints.live(build_demo_plan(), retry=RetryPolicy(backoff=0), ca_bundle=certifi.where()), IP)


def session_answer(token):
    return {"user_id": "root", "token": token, "create_time": "2025-09-27T22:38:57Z",
            "expire_time": "2025-10-04T22:38:57Z", "update_time": "2025-09-27T22:38:57Z"}


@responses.activate
def test_deployment_calls_carry_the_fixed_token_over_http():
    responses.get(f"{HTTP}/api/v2/deployment/host", json={"ec": "EOK", "error": {}, "data": {"host_ip": IP}},
                  match=[matchers.header_matcher({"x-smartx-token": DEPLOY_TOKEN})])
    assert client().deployment("GET", "/api/v2/deployment/host") == {"host_ip": IP}


@responses.activate
def test_deployment_over_https_when_asked():
    responses.get(f"{HTTPS}/api/v2/deployment/deploy_verify",
                  json={"ec": "EOK", "error": None, "data": {"is_deployed": True, "platform": "kvm"}})
    assert client().deployment("GET", "/api/v2/deployment/deploy_verify", service="fisheye")["is_deployed"]


@responses.activate
def test_setup_root_sends_password_and_repeat():
    responses.post(f"{HTTPS}/api/v3/users:setupRoot", json={"id": "root", "username": "root", "role": "ROOT"})
    answer = client().setup_root(PASSWORD)
    assert answer["role"] == "ROOT"
    body = json.loads(responses.calls[0].request.body)
    assert body == {"password": "Fisheye#Pass1", "repeat": "Fisheye#Pass1", "encrypted": False}


@responses.activate
def test_login_uses_the_token_and_never_returns_it():
    responses.post(f"{HTTPS}/api/v3/sessions", json=session_answer("df91526d34a94dc9bada16437e1c579f"),
                   match=[matchers.json_params_matcher({"username": "root", "password": "Fisheye#Pass1",
                                                        "encrypted": False})])
    responses.get(f"{HTTPS}/api/v2/tools/license", json={"ec": "EOK", "error": {}, "data": {"serial": "S-1"}},
                  match=[matchers.header_matcher({"x-smartx-token": "df91526d34a94dc9bada16437e1c579f"})])
    fe = client()
    facts = fe.login("root", PASSWORD)
    assert "token" not in facts and facts["user_id"] == "root" and fe.logged_in
    assert "df91526d34a94dc9bada16437e1c579f" not in repr(fe)
    assert REDACTOR.knows("df91526d34a94dc9bada16437e1c579f")
    assert fe.get("/api/v2/tools/license") == {"serial": "S-1"}


@responses.activate
def test_401_triggers_one_relogin_and_replay():
    responses.post(f"{HTTPS}/api/v3/sessions", json=session_answer("token-one-000000"))
    responses.post(f"{HTTPS}/api/v3/sessions", json=session_answer("token-two-000000"))
    responses.post(f"{HTTPS}/api/v2/network/vds", status=401, json={"message": "unauthorized"},
                   match=[matchers.header_matcher({"x-smartx-token": "token-one-000000"})])
    responses.post(f"{HTTPS}/api/v2/network/vds", json={"ec": "EOK", "error": {}, "data": {"job_id": "j1"}},
                   match=[matchers.header_matcher({"x-smartx-token": "token-two-000000"})])
    fe = client()
    fe.login("root", PASSWORD)
    assert fe.post("/api/v2/network/vds", json={"name": "vds"}) == {"job_id": "j1"}
    assert [c.request.path_url for c in responses.calls] == [
        "/api/v3/sessions", "/api/v2/network/vds", "/api/v3/sessions", "/api/v2/network/vds"]


@responses.activate
def test_second_401_is_an_error_not_a_loop():
    responses.post(f"{HTTPS}/api/v3/sessions", json=session_answer("token-x-00000000"))
    responses.get(f"{HTTPS}/api/v2/vms/u1", status=401, body="Unauthorized")
    fe = client()
    fe.login("root", PASSWORD)
    with pytest.raises(ApiError) as exc:
        fe.get("/api/v2/vms/u1")
    assert exc.value.status == 401 and exc.value.ec == "HTTP_401"
    assert len(responses.calls) == 4  # login, call, re-login, call


@responses.activate
def test_401_without_login_raises():
    responses.get(f"{HTTPS}/api/v2/vms", status=401, body="no")
    with pytest.raises(ApiError, match="HTTP_401"):
        client().get("/api/v2/vms")
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [200, 400])
@responses.activate
def test_non_eok_raises_whatever_the_status(status):
    responses.post(f"{HTTPS}/api/v2/network/vds", status=status, json={
        "ec": "REST_FORM_ERROR", "data": None,
        "error": {"msg": "表单错误", "detail": {"name": ["already used"]}}})
    fe = client()
    with pytest.raises(ApiError) as exc:
        fe.post("/api/v2/network/vds", json={"name": "x"})
    err = exc.value
    assert (err.ec, err.msg, err.method, err.path, err.status) == (
        "REST_FORM_ERROR", "表单错误", "POST", "/api/v2/network/vds", status)
    assert err.detail == {"name": ["already used"]}
    assert str(err).startswith("接口返回错误 REST_FORM_ERROR：表单错误（POST /api/v2/network/vds")
    assert err.matches("already used")


@responses.activate
def test_http_error_without_envelope():
    responses.get(f"{HTTPS}/api/v2/jobs/x", status=500, body="<html>Internal</html>")
    with pytest.raises(ApiError) as exc:
        client().get("/api/v2/jobs/x")
    assert exc.value.ec == "HTTP_500" and "Internal" in exc.value.msg
    assert len(responses.calls) == 4  # a GET is retried on 500


@responses.activate
def test_job_and_vm_reads_and_logout():
    responses.post(f"{HTTPS}/api/v3/sessions", json=session_answer("tok-logout-00000"))
    responses.get(f"{HTTPS}/api/v2/jobs/j1", json={"ec": "EOK", "error": {}, "data": {"job": {"state": "done"}}})
    responses.get(f"{HTTPS}/api/v2/vms/v1", json={"ec": "EOK", "error": {}, "data": {"status": "running"}})
    responses.delete(f"{HTTPS}/api/v3/sessions", json={})
    fe = client()
    fe.login("root", PASSWORD)
    assert fe.job("j1") == {"state": "done"} and fe.vm("v1") == {"status": "running"}
    fe.logout()
    assert not fe.logged_in and responses.calls[-1].request.method == "DELETE"
    fe.logout()  # no-op
    assert len(responses.calls) == 4


@responses.activate
def test_login_without_token_is_an_error():
    responses.post(f"{HTTPS}/api/v3/sessions", json={"user_id": "root"})
    with pytest.raises(ApiError, match="NO_TOKEN"):
        client().login("root", PASSWORD)
