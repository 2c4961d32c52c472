"""TLS trust on first use: fingerprints recorded on first contact, mismatches refused,
--ca-bundle verification, no InsecureRequestWarning for pinned sessions; one TLS
context per resolver (no CA store loaded per connection); a TLS stream cut off
after the request arrived is a reset (retried for idempotent calls, never a POST)."""
import hashlib
import json
import socket
import ssl
import struct
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import SSLError as Urllib3SSLError

from voyager.clients import (CertificateMismatchError, Endpoints, FisheyeClient, HttpClient, RetryPolicy,
                             Timeouts, TowerClient, TransportError)
from voyager.clients.adapter import IDEMPOTENT_METHODS, is_tls_eof
from voyager.clients.errors import format_fingerprint
from voyager.clients.http import _transport_error
from voyager.plan.demo import build_demo_plan
from voyager.sim.web.tls import make_certificate

IP = "127.10.20.11"


def make_cert(tmp_path, name):
    """``(cert file, key file, SHA-256 fingerprint)`` of a fresh self-signed certificate for
    the planned addresses (the simulator's own generator)."""
    cert_pem, key_pem = make_certificate([IP, "127.10.20.12", "127.10.20.2"])
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    return cert_file, key_file, hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.decode())).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"ec": "EOK", "error": {}, "data": {"host": self.headers.get("Host")}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsServer:
    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.serve(cert)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, cert):
        """Present ``cert`` on every later handshake."""
        self.ctx.load_cert_chain(str(cert[0]), str(cert[1]))

    @property
    def url(self):
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def certs(tmp_path):
    return make_cert(tmp_path, "a"), make_cert(tmp_path, "b")


@pytest.fixture
def server(certs):
    srv = TlsServer(certs[0])
    yield srv
    srv.stop()


def resolver(server, known=None, **kw):
    return Endpoints.simulated({"https": server.url}, build_demo_plan(), known_certs=known,
                               retry=RetryPolicy(backoff=0, connect=1), timeouts=Timeouts(connect=2, read=5), **kw)


def test_first_contact_records_the_fingerprint_without_warnings(server, certs, tmp_path):
    known = tmp_path / "state" / "known_certs.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an InsecureRequestWarning would fail the test
        fe = FisheyeClient(resolver(server, known), IP)
        assert fe.get("/api/v2/anything") == {"host": IP}
        assert fe.get("/api/v2/again") == {"host": IP}
    recorded = json.loads(known.read_text())["certs"]
    assert recorded[f"{IP}:443"]["sha256"] == certs[0][2]
    # a later run (same state dir) trusts the recorded certificate
    assert FisheyeClient(resolver(server, known), IP).get("/x") == {"host": IP}


def test_changed_certificate_is_refused_with_both_fingerprints(server, certs, tmp_path):
    known = tmp_path / "known_certs.json"
    FisheyeClient(resolver(server, known), IP).get("/first")
    server.serve(certs[1])
    with pytest.raises(CertificateMismatchError) as exc:
        FisheyeClient(resolver(server, known), IP).get("/second")
    msg = str(exc.value)
    assert f"{IP}:443" in msg and "不一致" in msg and "拒绝" in msg
    assert format_fingerprint(certs[0][2]) in msg and format_fingerprint(certs[1][2]) in msg
    assert exc.value.expected == certs[0][2] and exc.value.actual == certs[1][2]
    assert json.loads(known.read_text())["certs"][f"{IP}:443"]["sha256"] == certs[0][2]  # not overwritten


def test_certificate_change_during_the_run_is_refused(server, certs, tmp_path):
    fe = FisheyeClient(resolver(server, tmp_path / "k.json"), IP)
    fe.get("/first")
    server.serve(certs[1])  # each answer closes its connection: the next call handshakes again
    with pytest.raises(CertificateMismatchError) as exc:
        fe.get("/second")
    assert format_fingerprint(certs[1][2]) in str(exc.value)


def test_each_planned_address_is_pinned_separately_in_sim_mode(server, certs, tmp_path):
    known = tmp_path / "k.json"
    e = resolver(server, known)
    FisheyeClient(e, IP).get("/a")
    FisheyeClient(e, "127.10.20.12").get("/b")
    TowerClient(e, "127.10.20.2").call("GET", "/c")
    assert set(json.loads(known.read_text())["certs"]) == {f"{IP}:443", "127.10.20.12:443", "127.10.20.2:443"}


def test_in_memory_pins_when_no_file(server, certs):
    e = resolver(server)
    FisheyeClient(e, IP).get("/a")
    assert e.known_certs.get(f"{IP}:443") == certs[0][2]


def test_ca_bundle_turns_full_verification_on(server, certs):
    e = resolver(server, ca_bundle=str(certs[0][0]))
    assert FisheyeClient(e, IP).get("/verified") == {"host": IP}
    server.serve(certs[1])  # signed by nobody the bundle trusts
    with pytest.raises(TransportError, match="TLS"):
        FisheyeClient(resolver(server, ca_bundle=str(certs[0][0])), IP).get("/unverified")


def test_first_contact_retries_refused_connections(monkeypatch):
    from voyager.clients import UnreachableError, tls

    calls = []

    def flaky(host, port, timeout):
        calls.append((host, port))
        if len(calls) < 3:
            raise UnreachableError("refused")
        return "ab" * 32

    monkeypatch.setattr(tls, "fetch_fingerprint", flaky)
    pin = tls.Pin(tls.KnownCerts(), f"{IP}:443", ("127.0.0.1", 1), 1.0, retries=2, backoff=0)
    assert pin.ensure() == "ab" * 32 and len(calls) == 3
    calls.clear()
    with pytest.raises(UnreachableError):
        tls.Pin(tls.KnownCerts(), f"{IP}:443", ("127.0.0.1", 1), 1.0, retries=1, backoff=0).ensure()
    assert len(calls) == 2


# -- one TLS context per resolver (no CA store loaded per connection) ------------------------
def _count_calls(monkeypatch, name):
    calls = []
    original = getattr(ssl.SSLContext, name)

    def counting(self, *args, **kwargs):
        calls.append(args or kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, name, counting)
    return calls


def test_pinned_connections_share_one_context_and_load_no_ca_store(server, monkeypatch):
    default_certs = _count_calls(monkeypatch, "load_default_certs")
    contexts = []
    original_wrap = ssl.SSLContext.wrap_socket
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket",
                        lambda self, *a, **kw: contexts.append(self) or original_wrap(self, *a, **kw))
    e = resolver(server)
    for ip in (IP, "127.10.20.12"):
        fe = FisheyeClient(e, ip)
        for _ in range(3):  # each answer closes its connection: 3 handshakes per address
            assert fe.get("/again") == {"host": ip}
    assert default_certs == []
    shared = [c for c in contexts if c.verify_mode == ssl.CERT_NONE and c is e._ssl_context]
    assert len(shared) == 6  # every request's connection; the pin's own probe uses its own context


def test_ca_bundle_is_loaded_once_for_every_connection(server, certs, monkeypatch):
    default_certs = _count_calls(monkeypatch, "load_default_certs")
    loads = _count_calls(monkeypatch, "load_verify_locations")
    e = resolver(server, ca_bundle=str(certs[0][0]))
    for ip in (IP, "127.10.20.12"):
        for _ in range(3):
            assert FisheyeClient(e, ip).get("/verified") == {"host": ip}
    assert len(loads) == 1 and default_certs == []


def test_unreadable_ca_bundle_is_a_clear_error(server, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(TransportError, match="CA 证书文件"):
        FisheyeClient(resolver(server, ca_bundle=str(missing)), IP).get("/x")


# -- a TLS stream cut off after the request arrived: a reset (retried only when idempotent) ----
class ResetTlsServer:
    """Accepts TLS, reads the request head, counts it and drops the connection
    without answering (RST), as a restarting nginx does."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.hits = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(raw,), daemon=True).start()

    def handle(self, raw):
        try:
            raw.settimeout(5)
            tls = self.ctx.wrap_socket(raw, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.hits += 1
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        except OSError:
            raw.close()

    @property
    def url(self):
        return f"https://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self):
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def reset_server(certs):
    srv = ResetTlsServer(certs[0])
    yield srv
    srv.stop()


BIG = b"x" * (4 << 20)  # larger than the socket buffers: the write itself meets the reset


@pytest.mark.parametrize("body", [b"{}", BIG], ids=["small", "big"])
def test_tls_reset_post_is_not_replayed(reset_server, body):
    http = HttpClient(resolver(reset_server), IP, "fisheye")
    for n in range(1, 4):
        with pytest.raises(TransportError, match="断开了连接"):
            http.request("POST", "/api/v2/network/vds", data=body)
        assert reset_server.hits == n


@pytest.mark.parametrize("body", [b"{}", BIG], ids=["small", "big"])
def test_tls_reset_put_and_idempotent_post_are_replayed(reset_server, body):
    http = HttpClient(resolver(reset_server), IP, "fisheye")
    with pytest.raises(TransportError, match="断开了连接"):
        http.request("PUT", "/api/v2/settings/dns", data=body)
    assert reset_server.hits == 3  # 1 + read retries (2)
    with pytest.raises(TransportError, match="断开了连接"):
        http.request("POST", "/api/v2/images/upload", data=body, idempotent=True)
    assert reset_server.hits == 6


EOF_ERRORS = [ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)"),
              ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"),
              ConnectionResetError(104, "Connection reset by peer")]


@pytest.mark.parametrize("cause", EOF_ERRORS, ids=lambda e: type(e).__name__)
def test_cut_off_tls_stream_is_a_read_error(cause):
    error = Urllib3SSLError(cause)
    assert is_tls_eof(error)
    retry = RetryPolicy().build(IDEMPOTENT_METHODS)
    with pytest.raises(Urllib3SSLError):  # POST is not in the allowed methods: raised, not retried
        retry.increment("POST", "/api/v2/network/vds", error=error)
    assert retry.increment("GET", "/api/v2/hosts", error=error).read == RetryPolicy().read - 1
    for wrapped in (error, MaxRetryError(None, "/x", error)):
        message = str(_transport_error(requests.exceptions.SSLError(wrapped), "POST", "https://x/y", (1, 2)))
        assert "断开了连接" in message and "TLS 连接失败" not in message


def test_certificate_problems_stay_tls_errors_and_are_not_retried():
    error = Urllib3SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert not is_tls_eof(error)
    retry = RetryPolicy().build(IDEMPOTENT_METHODS)
    with pytest.raises(MaxRetryError):  # "other" errors: 0 retries
        retry.increment("GET", "/x", error=error)
    message = str(_transport_error(requests.exceptions.SSLError(error), "GET", "https://x/y", (1, 2)))
    assert "TLS 连接失败" in message
