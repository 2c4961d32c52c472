"""TLS trust on first use for planned addresses.

SmartX ships self-signed certificates, so certificate verification is off for
planned addresses and replaced by pinning: on first contact the SHA-256 of the
server certificate is recorded in a per-run known-certs file; every later
connection must present the same certificate (urllib3 ``assert_fingerprint``),
otherwise :class:`CertificateMismatchError` names the address and both
fingerprints.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Optional

from urllib3.util.ssl_ import create_urllib3_context

from voyager.clients.errors import CertificateMismatchError, TransportError, UnreachableError, format_fingerprint
from voyager.fsutil import atomic_write

LOG = logging.getLogger(__name__)


def pinned_context() -> ssl.SSLContext:
    """The client context of pinned sessions: no CA verification (urllib3's
    ``assert_fingerprint`` checks every certificate) and no CA store loaded.

    Built once per resolver and handed to urllib3 as ``ssl_context``: without it
    urllib3 creates a context *per connection* and loads the system CA store into
    it (``load_default_certs``, tens of milliseconds) even though verification is
    off."""
    ctx = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    ctx.check_hostname = False
    return ctx


def verified_context(ca_bundle: str) -> ssl.SSLContext:
    """The client context of ``--ca-bundle`` sessions: full verification against
    ``ca_bundle`` (a file or a directory), loaded once."""
    ctx = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    try:
        if os.path.isdir(ca_bundle):
            ctx.load_verify_locations(capath=ca_bundle)
        else:
            ctx.load_verify_locations(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(
            f"无法读取 CA 证书文件 {ca_bundle}：{getattr(exc, 'strerror', None) or exc} (--ca-bundle unreadable)"
        ) from None
    return ctx


def fetch_fingerprint(host: str, port: int, timeout: float) -> str:
    """SHA-256 (lower-case hex) of the certificate served at ``host:port``
    (no verification: this is the observation that is then pinned)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=None) as tls:
                der = tls.getpeercert(binary_form=True)
    except (ConnectionRefusedError, socket.timeout, TimeoutError) as exc:
        raise UnreachableError(
            f"无法连接 {host}:{port} 读取 TLS 证书：{type(exc).__name__} (unreachable)", target=f"{host}:{port}"
        ) from None
    except ssl.SSLError as exc:
        raise TransportError(
            f"与 {host}:{port} 的 TLS 握手失败：{exc.reason or exc} (TLS handshake failed)", target=f"{host}:{port}"
        ) from None
    except OSError as exc:
        raise UnreachableError(
            f"无法连接 {host}:{port}：{exc.strerror or type(exc).__name__} (unreachable)", target=f"{host}:{port}"
        ) from None
    if not der:
        raise TransportError(f"{host}:{port} 没有提供 TLS 证书 (no certificate)", target=f"{host}:{port}")
    return hashlib.sha256(der).hexdigest()


class KnownCerts:
    """``{"<planned ip>:<port>": sha256}`` kept in a JSON file (or in memory when
    ``path`` is None). Writes are atomic and merge what is on disk."""

    def __init__(self, path: Optional[os.PathLike[str] | str] = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._certs: dict[str, dict[str, str]] = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TransportError(f"无法读取证书记录文件 {self.path}：{exc} (known-certs file unreadable)") from None
        certs = data.get("certs", {}) if isinstance(data, dict) else {}
        return {k: v for k, v in certs.items() if isinstance(v, dict) and "sha256" in v}

    def get(self, key: str) -> Optional[str]:
        with self._lock:
            entry = self._certs.get(key)
            return entry["sha256"] if entry else None

    def record(self, key: str, fingerprint: str) -> str:
        """Record ``fingerprint`` for ``key`` unless one is recorded already;
        returns the fingerprint now on record."""
        with self._lock:
            if self.path is not None:
                on_disk = self._load()
                on_disk.update({k: v for k, v in self._certs.items() if k not in on_disk})
                self._certs = on_disk
            if key in self._certs:
                return self._certs[key]["sha256"]
            self._certs[key] = {
                "sha256": fingerprint,
                "first_seen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            if self.path is not None:
                self._write()
            return fingerprint

    def _write(self) -> None:
        assert self.path is not None
        atomic_write(self.path, json.dumps({"version": 1, "certs": self._certs}, ensure_ascii=False, indent=2,
                                           sort_keys=True))


class Pin:
    """The pinned certificate of one planned address, checked on first use."""

    def __init__(self, known: KnownCerts, key: str, connect: tuple[str, int], timeout: float, *,
                 retries: int = 0, backoff: float = 0.0):
        self.known = known
        self.key = key  # "<planned ip>:<port>", what messages name
        self.connect = connect  # where the TLS server actually listens
        self.timeout = timeout
        self.retries = retries  # connection attempts after the first (like urllib3's connect retries)
        self.backoff = backoff
        self._fingerprint: Optional[str] = None
        self._lock = threading.Lock()

    def ensure(self) -> str:
        """The fingerprint every connection must match (first contact records it)."""
        with self._lock:
            if self._fingerprint is not None:
                return self._fingerprint
            actual = self._fetch()
            recorded = self.known.get(self.key)
            if recorded is None:
                recorded = self.known.record(self.key, actual)
                if recorded == actual:
                    LOG.info("首次连接 %s，已记录 TLS 证书指纹 SHA-256 %s (trust on first use)",
                             self.key, format_fingerprint(actual))
            if recorded != actual:
                raise self._mismatch(recorded, actual)
            self._fingerprint = actual
            return actual

    def _fetch(self) -> str:
        """Read the certificate; connection failures are retried like any connect
        error (the server provably received nothing)."""
        attempt = 0
        while True:
            try:
                return fetch_fingerprint(*self.connect, timeout=self.timeout)
            except UnreachableError:
                if attempt >= self.retries:
                    raise
                time.sleep(self.backoff * (2 ** attempt))
                attempt += 1

    def _mismatch(self, expected: str, actual: str) -> CertificateMismatchError:
        return CertificateMismatchError(self.key, expected, actual, str(self.known.path or ""))

    def mismatch(self) -> CertificateMismatchError:
        """The error for a connection that failed the fingerprint check."""
        expected = self._fingerprint or self.known.get(self.key) or ""
        try:
            actual = fetch_fingerprint(*self.connect, timeout=self.timeout)
        except TransportError:
            actual = "(无法读取 / unavailable)"
        return self._mismatch(expected, actual)
