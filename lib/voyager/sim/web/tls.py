"""A self-signed certificate made at start (as SMTX OS and CloudTower ship one)."""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class _LazyHandshakeContext(ssl.SSLContext):
    """Handshake in the request thread, not in the accept loop, so that one
    silent client cannot stall the listener."""

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, *args, **kwargs):
        return super().wrap_socket(sock, server_side, False, *args, **kwargs)


def make_certificate(ips: list[str]) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` for 127.0.0.1, localhost and the given addresses."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voyager-sim"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtx-voyager simulator")])
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for ip in dict.fromkeys(["127.0.0.1", *ips]):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            continue
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def server_context(ips: list[str]) -> tuple[ssl.SSLContext, bytes]:
    """A server-side TLS context and the certificate PEM (for clients to pin)."""
    cert_pem, key_pem = make_certificate(ips)
    ctx = _LazyHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="voyager-sim-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        with open(cert_path, "wb") as fh:
            fh.write(cert_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_pem
