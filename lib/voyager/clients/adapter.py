"""The transport adapter mounted on every target session.

* Retries come from urllib3 ``Retry``: connection errors (the server provably did
  not receive the request) for every method, read errors and 5xx answers only for
  idempotent methods (GET, PUT, DELETE).
* A POST declared idempotent by its caller (the http layer sets
  :data:`IDEMPOTENT_HEADER`, stripped before sending) goes through an inner
  adapter whose ``Retry`` also allows POST.
* A TLS connection that ends with a bare EOF (the server or a middlebox dropped
  it, e.g. nginx restarting) is the TLS form of a connection reset: it counts as
  a read error, so it is retried for idempotent methods and never for a POST
  (urllib3 alone files it under "other" errors and never retries it).
* HTTPS to a planned address is pinned (``voyager.clients.tls.Pin``): urllib3's
  ``assert_fingerprint`` checks every connection, which also makes urllib3 treat
  the connection as verified, so no ``InsecureRequestWarning`` is raised for
  pinned sessions (nothing is silenced globally).
* The ``ssl.SSLContext`` is built once by the resolver and reused by every
  connection (``ssl_context``); with ``--ca-bundle`` the bundle is loaded into it
  once instead of on every new connection.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

from voyager.clients.tls import Pin

IDEMPOTENT_HEADER = "X-Voyager-Idempotent"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried (urllib3 ``Retry``)."""

    connect: int = 3
    read: int = 2
    status: int = 3
    backoff: float = 0.5  # seconds; doubles per retry
    backoff_max: float = 8.0
    status_forcelist: tuple[int, ...] = (500, 502, 503, 504)

    def build(self, methods: frozenset[str]) -> Retry:
        return _Retry(
            total=None,
            connect=self.connect,
            read=self.read,
            status=self.status,
            other=0,
            redirect=0,
            backoff_factor=self.backoff,
            backoff_max=self.backoff_max,
            allowed_methods=methods,
            status_forcelist=self.status_forcelist,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
        )


def is_tls_eof(error: BaseException | None) -> bool:
    """True when ``error`` (or what it wraps) is a TLS connection that was cut off:
    an EOF or reset in the middle of the TLS stream, not a handshake refusal or a
    certificate problem."""
    seen = 0
    while error is not None and seen < 8:
        seen += 1
        if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)):
            return True
        if isinstance(error, ssl.SSLError) and getattr(error, "reason", None) == "UNEXPECTED_EOF_WHILE_READING":
            return True
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = inner
    return False


class _Retry(Retry):
    """urllib3 ``Retry`` that files a cut-off TLS stream with the read errors."""

    def _is_read_error(self, err: Exception) -> bool:
        return super()._is_read_error(err) or (isinstance(err, Urllib3SSLError) and is_tls_eof(err))


# bytes per socket write of a streamed request body (read from a MultipartEncoder, or a
# FilePartBody's slice): each write must leave within the connect timeout (urllib3 sends
# the body under it); urllib3's 16 KiB default costs a GIL round trip per 16 KiB of an 8 MiB chunk;
# bench/upload.py: 64 KiB 2.8-3.1 client CPU-s/GiB, 256 KiB 2.6 (peak RSS 106 MiB),
# 1 MiB 2.7 (peak RSS 124 MiB)
STREAM_BLOCKSIZE = 256 * 1024


class TargetAdapter(HTTPAdapter):
    """One per target session: retries, idempotent-POST delegation and TLS pinning."""

    def __init__(self, policy: RetryPolicy, *, pin: Optional[Pin] = None,
                 assert_hostname: Optional[str] = None, ssl_context: Optional[ssl.SSLContext] = None,
                 _inner: bool = False):
        self.policy = policy
        self.pin = pin
        self._assert_hostname = assert_hostname
        self._ssl_context = ssl_context
        methods = IDEMPOTENT_METHODS | {"POST", "PATCH"} if _inner else IDEMPOTENT_METHODS
        super().__init__(max_retries=policy.build(frozenset(methods)), pool_connections=1, pool_maxsize=8)
        self._idempotent: Optional[TargetAdapter] = None
        if not _inner:
            self._idempotent = TargetAdapter(policy, pin=pin, assert_hostname=assert_hostname,
                                             ssl_context=ssl_context, _inner=True)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.connection_pool_kw["blocksize"] = STREAM_BLOCKSIZE
        if self._assert_hostname:
            self.poolmanager.connection_pool_kw["assert_hostname"] = self._assert_hostname
        if self._ssl_context is not None:  # https pools only (urllib3 drops it for http)
            self.poolmanager.connection_pool_kw["ssl_context"] = self._ssl_context

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: Any,
                                             cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._ssl_context is not None:  # the CA bundle is already in the context
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if self._ssl_context is not None:  # don't make urllib3 load the bundle per connection
            conn.ca_certs = None
            conn.ca_cert_dir = None

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        declared = request.headers.pop(IDEMPOTENT_HEADER, None)
        target = self._idempotent if (declared and self._idempotent is not None) else self
        pinned = self.pin is not None and (request.url or "").lower().startswith("https:")
        if pinned:
            assert self.pin is not None
            fingerprint = self.pin.ensure()
            target.poolmanager.connection_pool_kw["assert_fingerprint"] = fingerprint
        try:
            return HTTPAdapter.send(target, request, *args, **kwargs)
        except requests.exceptions.SSLError as exc:
            if pinned and "ingerprint" in str(exc):
                assert self.pin is not None
                raise self.pin.mismatch() from None
            raise

    def close(self) -> None:
        super().close()
        if self._idempotent is not None:
            self._idempotent.close()
