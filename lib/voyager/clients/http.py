"""The shared REST layer: request → record evidence → raise or return.

Every HTTP call of every client goes through :meth:`HttpClient.request`:

* the URL comes from the resolver (``Endpoints.url``; the guard runs there);
* bodies may hold :class:`~voyager.plan.model.Secret` values: they are revealed
  only while serialising the wire body, inside this module;
* the exchange is recorded (``voyager.evidence.RECORDER``, redacted at capture)
  whatever the outcome;
* transport failures become :class:`UnreachableError` / :class:`TransportError`
  (the simulator's ``502`` + ``X-Sim-Unreachable: 1`` counts as unreachable);
  HTTP answers are returned for the API clients to interpret.
"""
from __future__ import annotations

import json as jsonlib
import time
from typing import Any, Mapping, Optional
from urllib.parse import urlencode

import requests
from urllib3.exceptions import NewConnectionError, ProtocolError

from voyager.clients.adapter import IDEMPOTENT_HEADER, IDEMPOTENT_METHODS, is_tls_eof
from voyager.clients.endpoints import Endpoints, Timeouts
from voyager.clients.errors import ClientError, TransportError, UnreachableError
from voyager.clients.multipart import FilePartBody
from voyager.evidence import RECORDER
from voyager.plan.model import Secret

SIM_UNREACHABLE = "X-Sim-Unreachable"


def _reveal(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return obj.reveal()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def wire_json(obj: Any) -> bytes:
    """The JSON body as sent (Secrets revealed). Never log the result."""
    __tracebackhide__ = True
    return jsonlib.dumps(obj, default=_reveal, ensure_ascii=False).encode("utf-8")


def _wire_data(data: Any) -> Any:
    __tracebackhide__ = True
    if isinstance(data, Secret):
        return data.reveal()
    if isinstance(data, Mapping):
        return {k: _wire_data(v) for k, v in data.items()}
    return data


def _files_summary(files: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    items = files.items() if isinstance(files, Mapping) else list(files or [])
    for name, value in items:
        if isinstance(value, (tuple, list)):
            filename, content = (value[0], value[1]) if len(value) > 1 else (None, value[0])
        else:
            filename, content = getattr(value, "name", None), value
        size = len(content) if isinstance(content, (bytes, bytearray, str)) else "?"
        out[str(name)] = f"<文件 {filename or '-'}，{size} 字节 (file)>"
    return out


def _stream_summary(data: Any) -> str:
    size = getattr(data, "len", None)
    return f"<流式正文，{size if isinstance(size, int) else '?'} 字节，未记录 (streamed body not recorded)>"


def is_stream(data: Any) -> bool:
    """A streamed body: file-like (e.g. requests-toolbelt's ``MultipartEncoder``), sent as
    it is read, or a :class:`voyager.clients.multipart.FilePartBody`, sent piece by piece."""
    return isinstance(data, FilePartBody) or (
        hasattr(data, "read") and not isinstance(data, (bytes, bytearray, str, Mapping)))


def parse_json(resp: requests.Response) -> Any:
    """The JSON body, or None when the body is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


def is_sim_unreachable(resp: requests.Response) -> bool:
    return resp.status_code == 502 and resp.headers.get(SIM_UNREACHABLE) == "1"


def _with_query(url: str, params: Any) -> str:
    if not params:
        return url
    query = urlencode(params, doseq=True) if not isinstance(params, (str, bytes)) else str(params)
    return f"{url}{'&' if '?' in url else '?'}{query}"


class HttpClient:
    """Requests to one (planned address, service) through its shared session."""

    def __init__(self, endpoints: Endpoints, ip: str, service: str):
        self.endpoints = endpoints
        self.ip = ip
        self.service = service
        endpoints.check_target(ip)
        endpoints.service(service)

    def display_url(self, path: str) -> str:
        return self.endpoints.display_url(self.ip, self.service, path)

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None, data: Any = None,
                files: Any = None, headers: Optional[Mapping[str, str]] = None,
                timeout: Optional[float | tuple[float, float] | Timeouts] = None,
                idempotent: bool = False, stream: bool = False) -> requests.Response:
        """Send one request; return the response (any HTTP status).

        ``idempotent=True`` declares a POST safe to replay (retried like GET); other
        POSTs are only retried when the connection failed before sending.
        ``data`` may be a stream (file-like, e.g. a ``MultipartEncoder``, whose
        ``content_type`` becomes the header): it is sent as it is read, never buffered,
        and the evidence shows only its size. A consumed stream cannot be replayed:
        send it with ``idempotent=False`` (connect errors, before any byte is sent,
        are still retried)."""
        __tracebackhide__ = True
        method = method.upper()
        url = self.endpoints.url(self.ip, self.service, path)
        shown = _with_query(self.display_url(path), params)
        session = self.endpoints.session(self.ip, self.service)
        send_headers = dict(headers or {})
        body: Any = None
        if json is not None:
            body = wire_json(json)
            send_headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = _wire_data(data)
            if is_stream(body) and getattr(body, "content_type", None):  # multipart: its boundary
                send_headers.setdefault("Content-Type", body.content_type)
        if idempotent and method not in IDEMPOTENT_METHODS:
            send_headers[IDEMPOTENT_HEADER] = "1"
        if isinstance(timeout, Timeouts):
            timeout = timeout.as_tuple()
        elif timeout is None:
            timeout = self.endpoints.timeouts.as_tuple()
        if files is not None:  # a multipart form: its fields as sent, each file by name and size
            fields = dict(data) if isinstance(data, Mapping) else {}
            evidence_body: Any = {**fields, **_files_summary(files)}
        else:
            evidence_body = json if json is not None else (_stream_summary(data) if is_stream(data) else data)
        started, t0 = time.time(), time.monotonic()
        try:
            resp = session.request(method, url, params=params, data=body, files=files, headers=send_headers,
                                   timeout=timeout, stream=stream, allow_redirects=False)
        except ClientError as exc:  # pinning / unreachable TLS endpoint, raised by the adapter
            self._record(method, shown, None, t0, started, send_headers, evidence_body, error=str(exc))
            # drop the requests/urllib3 frames (their arguments hold the wire body)
            raise exc.with_traceback(None) from None
        except requests.RequestException as exc:
            error = _transport_error(exc, method, shown, timeout)
            self._record(method, shown, None, t0, started, send_headers, evidence_body, error=str(error))
            raise error from None
        sent_headers = dict(resp.request.headers) if resp.request is not None else send_headers
        sent_headers.pop(IDEMPOTENT_HEADER, None)
        self._record(method, shown, resp, t0, started, sent_headers, evidence_body, stream=stream)
        if is_sim_unreachable(resp):
            resp.close()
            raise UnreachableError(
                f"无法连接 {shown}：目标尚未启动或不可达 ({method} {shown}: unreachable)",
                target=f"{self.ip}:{self.endpoints.service(self.service).port}",
            )
        return resp

    def _record(self, method: str, shown: str, resp: Optional[requests.Response], t0: float, started: float,
                headers: Mapping[str, Any], body: Any, *, error: Optional[str] = None, stream: bool = False) -> None:
        ctype = None
        if isinstance(headers, Mapping):
            ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if resp is None:
            RECORDER.record_http(method=method, url=shown, status=None, elapsed=time.monotonic() - t0,
                                 request_headers=headers, request_body=body, request_content_type=ctype,
                                 error=error, started=started)
            return
        if stream:
            response_body: Any = "<流式响应，未记录正文 (streamed body not recorded)>"
        else:
            response_body = resp.content
        RECORDER.record_http(
            method=method, url=shown, status=resp.status_code, elapsed=resp.elapsed.total_seconds()
            if resp.elapsed else time.monotonic() - t0,
            request_headers=headers, request_body=body, request_content_type=ctype,
            response_headers=dict(resp.headers), response_body=response_body,
            response_content_type=resp.headers.get("Content-Type"), error=error, started=started,
        )


def _transport_error(exc: requests.RequestException, method: str, shown: str, timeout: Any) -> TransportError:
    where = f"{method} {shown}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UnreachableError(f"连接 {shown} 超时 ({where}: connect timeout)", target=shown)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        return TransportError(f"等待 {shown} 响应超时（{read} 秒）({where}: read timeout)", target=shown)
    if isinstance(exc, requests.exceptions.SSLError):
        if is_tls_eof(exc):  # the TLS stream was cut off: a reset, not a TLS problem
            return TransportError(f"{shown} 在响应前断开了连接 ({where}: connection reset)", target=shown)
        return TransportError(f"与 {shown} 的 TLS 连接失败 ({where}: TLS error)", target=shown)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        if isinstance(reason, NewConnectionError) or isinstance(reason, ConnectionRefusedError):
            return UnreachableError(f"无法连接 {shown}：连接被拒绝或不可达 ({where}: connection refused)", target=shown)
        if isinstance(reason, ProtocolError):
            cause = reason.args[1] if len(reason.args) > 1 else None
            if isinstance(cause, TimeoutError):  # a send that did not leave within the connect timeout
                limit = timeout[0] if isinstance(timeout, tuple) else timeout
                return TransportError(f"向 {shown} 发送请求超时（{limit} 秒内未能写出）：链路过慢或对端不再接收 "
                                      f"({where}: write timeout)", target=shown)
            return TransportError(f"{shown} 在响应前断开了连接 ({where}: connection reset)", target=shown)
        return TransportError(f"与 {shown} 的连接失败：{type(reason).__name__} ({where}: connection error)",
                              target=shown)
    return TransportError(f"请求 {shown} 失败：{type(exc).__name__} ({where}: request failed)", target=shown)
