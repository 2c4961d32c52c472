"""TLS trust on first use: fingerprints recorded on first contact, mismatches refused,
--ca-bundle verification, no InsecureRequestWarning for pinned sessions."""
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voyager.clients import (CertificateMismatchError, Endpoints, FisheyeClient, RetryPolicy, Timeouts,
                             TowerClient, TransportError)
from voyager.clients.errors import format_fingerprint
from voyager.plan.demo import build_demo_plan

IP = "127.10.20.11"


def make_cert(tmp_path, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"voyager-test-{name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a)) for a in
                                                        (IP, "127.10.20.12", "127.10.20.2", "127.0.0.1")]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_file, key_file, fingerprint


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
