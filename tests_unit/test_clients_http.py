"""voyager.clients.http: retries (POST never replayed unless declared idempotent),
timeouts, unreachable mapping and evidence of every exchange."""
import socketserver
import threading
import warnings

import pytest
import responses
from responses import matchers

from net_support import dead_port
from voyager.clients import Endpoints, HttpClient, RetryPolicy, Timeouts, TransportError, UnreachableError
from voyager.clients.adapter import IDEMPOTENT_HEADER
from voyager.evidence import RECORDER
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import MASK, Secret

IP = "127.10.20.11"
BASE = f"http://{IP}"


def live(**kw):
    return Endpoints.live(build_demo_plan(), retry=RetryPolicy(backoff=0), **kw)


@responses.activate
def test_get_is_retried_on_5xx_then_succeeds():
    responses.get(f"{BASE}/r", status=500)
    responses.get(f"{BASE}/r", status=503)
    responses.get(f"{BASE}/r", json={"ok": 1})
    resp = HttpClient(live(), IP, "deploy").request("GET", "/r")
    assert resp.status_code == 200 and len(responses.calls) == 3


@responses.activate
def test_put_and_delete_are_retried():
    for method in (responses.PUT, responses.DELETE):
        responses.add(method, f"{BASE}/x", status=502)
        responses.add(method, f"{BASE}/x", status=200)
    http = HttpClient(live(), IP, "deploy")
    assert http.request("PUT", "/x", json={"a": 1}).status_code == 200
    assert http.request("DELETE", "/x").status_code == 200
    assert len(responses.calls) == 4


@responses.activate
def test_retries_are_bounded_and_the_last_answer_returned():
    responses.get(f"{BASE}/down", status=500)
    resp = HttpClient(live(), IP, "deploy").request("GET", "/down")
    assert resp.status_code == 500 and len(responses.calls) == 4  # 1 + status retries (3)


@responses.activate
def test_post_is_not_replayed():
    responses.post(f"{BASE}/api/v2/deployment/cluster", status=500)
    responses.post(f"{BASE}/api/v2/deployment/cluster", status=200)
    resp = HttpClient(live(), IP, "deploy").request("POST", "/api/v2/deployment/cluster", json={"x": 1})
    assert resp.status_code == 500 and len(responses.calls) == 1


@responses.activate
def test_post_declared_idempotent_is_retried_and_marker_not_sent():
    responses.post(f"{BASE}/api/v3/sessions", status=503)
    responses.post(f"{BASE}/api/v3/sessions", json={"token": "t"},
                   match=[matchers.header_matcher({IDEMPOTENT_HEADER: "1"}, strict_match=False)], status=599)
    responses.post(f"{BASE}/api/v3/sessions", json={"token": "t"})
    resp = HttpClient(live(), IP, "deploy").request("POST", "/api/v3/sessions", json={}, idempotent=True)
    assert resp.status_code == 200 and len(responses.calls) == 2
    assert all(IDEMPOTENT_HEADER not in c.request.headers for c in responses.calls)


@responses.activate
def test_sim_unreachable_maps_to_unreachable_error():
    sim = Endpoints.simulated({"http": "http://127.0.0.1:18080", "https": "https://127.0.0.1:18443"},
                              build_demo_plan(), retry=RetryPolicy(backoff=0))
    responses.post("http://127.0.0.1:18080/v2/api/login", status=502, headers={"X-Sim-Unreachable": "1"},
                   match=[matchers.header_matcher({"Host": "127.10.20.2"})])
    with pytest.raises(UnreachableError, match="127.10.20.2"):
        HttpClient(sim, "127.10.20.2", "tower_http").request("POST", "/v2/api/login", json={})
    assert len(responses.calls) == 1
    responses.get("http://127.0.0.1:18080/plain", status=502)  # a 502 without the header is an answer
    assert HttpClient(sim, "127.10.20.2", "tower_http").request("GET", "/plain").status_code == 502


@responses.activate
def test_every_exchange_is_recorded_redacted():
    responses.post(f"{BASE}/api/v3/sessions", json={"token": "abcdef0123456789", "user_id": "root"})
    with RECORDER.step("http-evidence"):
        HttpClient(live(), IP, "deploy").request(
            "POST", "/api/v3/sessions", params={"lang": "zh"},
            json={"username": "root", "password": Secret("HttpPass#1")}, headers={"x-smartx-token": "abc"})
    (e,) = RECORDER.exchanges("http-evidence")
    assert e.method == "POST" and e.status == 200 and e.url == f"{BASE}/api/v3/sessions?lang=zh"
    assert "HttpPass#1" not in e.request_body and '"username": "root"' in e.request_body
    assert e.request_headers["x-smartx-token"] == MASK and "abcdef0123456789" not in e.response_body
    assert responses.calls[0].request.body == b'{"username": "root", "password": "HttpPass#1"}'


@responses.activate
def test_a_multipart_form_is_recorded_with_its_fields_and_file_sizes():
    """multipart 表单的接口记录包含表单字段（已脱敏）与文件名、字节数，不含文件内容。"""
    responses.post(f"{BASE}/v2/api/upload-elf-file", json={"id": "u1"})
    with RECORDER.step("http-multipart"):
        HttpClient(live(), IP, "deploy").request(
            "POST", "/v2/api/upload-elf-file", data={"cluster_id": "c1", "size": "10", "token": Secret("FormPass#1")},
            files={"file": ("disk.vmdk", b"\x00" * 10, "application/octet-stream")})
    (e,) = RECORDER.exchanges("http-multipart")
    assert '"cluster_id": "c1"' in e.request_body and '"size": "10"' in e.request_body
    assert "disk.vmdk" in e.request_body and "10 字节" in e.request_body and "FormPass#1" not in e.request_body
    assert b"FormPass#1" in responses.calls[0].request.body  # sent as it is, recorded redacted


def test_connection_refused_is_unreachable_and_recorded():
    port = dead_port()
    sim = Endpoints.simulated({"http": f"http://127.0.0.1:{port}"}, retry=RetryPolicy(backoff=0),
                              timeouts=Timeouts(connect=1, read=1))
    with RECORDER.step("refused"):
        with pytest.raises(UnreachableError) as exc:
            HttpClient(sim, "127.10.20.11", "deploy").request("POST", "/api/v2/deployment/cluster", json={})
    assert "连接被拒绝" in str(exc.value) and "http://127.10.20.11/api/v2/deployment/cluster" in str(exc.value)
    (e,) = RECORDER.exchanges("refused")
    assert e.status is None and "连接被拒绝" in e.error


class _Counting(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode):
        self.hits = 0
        self.mode = mode
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        self.server.hits += 1
        if self.server.mode == "reset":  # the server got the request, then the connection dies
            self.request.close()
        else:  # never answers within the read timeout
            threading.Event().wait(2)


@pytest.fixture
def server(request):
    srv = _Counting(request.param)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _sim_for(srv, read=1.0):
    return Endpoints.simulated({"http": f"http://127.0.0.1:{srv.server_address[1]}"},
                               retry=RetryPolicy(backoff=0), timeouts=Timeouts(connect=1, read=read))


@pytest.mark.parametrize("server", ["reset"], indirect=True)
def test_reset_after_sending_post_is_not_replayed(server):
    http = HttpClient(_sim_for(server), "127.10.20.11", "deploy")
    with pytest.raises(TransportError, match="断开了连接"):
        http.request("POST", "/api/v2/deployment/cluster", json={"a": 1})
    assert server.hits == 1


@pytest.mark.parametrize("server", ["reset"], indirect=True)
def test_reset_get_and_idempotent_post_are_replayed(server):
    http = HttpClient(_sim_for(server), "127.10.20.11", "deploy")
    with pytest.raises(TransportError):
        http.request("GET", "/api/v2/deployment/host")
    assert server.hits == 3  # 1 + read retries (2)
    with pytest.raises(TransportError):
        http.request("POST", "/api/v2/images/upload", data=b"chunk", idempotent=True)
    assert server.hits == 6


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_read_timeout_is_a_transport_error(server):
    http = HttpClient(_sim_for(server, read=0.3), "127.10.20.11", "deploy")
    with pytest.raises(TransportError, match="响应超时"):
        http.request("POST", "/slow", json={}, timeout=(1, 0.3))
    assert server.hits == 1


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_a_body_that_cannot_leave_in_time_is_a_write_timeout(server):
    """对端不再接收正文：报"发送请求超时"（写超时），不误报为连接被重置。"""
    http = HttpClient(_sim_for(server), "127.10.20.11", "deploy")
    with pytest.raises(TransportError, match="发送请求超时.*write timeout"):
        http.request("POST", "/api/v2/images/upload", data=b"x" * (64 << 20), timeout=(0.3, 5))
    assert server.hits == 1


def test_no_insecure_warning_for_plain_http():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        port = dead_port()
        sim = Endpoints.simulated({"http": f"http://127.0.0.1:{port}"}, retry=RetryPolicy(connect=0, backoff=0))
        with pytest.raises(UnreachableError):
            HttpClient(sim, "127.10.20.11", "deploy").request("GET", "/")
