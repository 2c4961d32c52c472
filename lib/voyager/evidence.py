"""The evidence recorder: every HTTP exchange and SSH command, per step.

The clients call :meth:`Recorder.record_http` / :meth:`Recorder.record_ssh`; the
record is redacted (``voyager.redact.REDACTOR``) *at capture* and bodies are
truncated to a bounded size, so nothing stored here can leak a secret. Records
belong to the current step, set with ``with RECORDER.step("name"):`` (a
contextvar, so threads and nested steps behave). The report attaches
:meth:`Recorder.to_text` of a step.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Optional

from voyager.redact import REDACTOR, Redactor

MAX_BODY = 4096  # characters kept of each request/response body
MAX_PER_STEP = 2000  # exchanges kept per step (older ones are dropped and counted)
NO_STEP = "(none)"

_BINARY_TYPES = (
    "multipart/", "application/octet-stream", "application/zip", "application/x-",
    "image/", "audio/", "video/", "application/gzip",
)

_current_step: contextvars.ContextVar[str] = contextvars.ContextVar("voyager_step", default=NO_STEP)


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange (already redacted)."""

    step: str
    time: float  # epoch seconds
    kind: str  # "http" | "ssh"
    method: str  # HTTP method, or "SSH"
    url: str  # planned URL (https://<planned ip>/path) or ssh://user@ip
    status: Optional[int]  # HTTP status or SSH exit status; None when no answer
    elapsed: float  # seconds
    request_headers: dict[str, Any] = field(default_factory=dict)
    request_body: str = ""
    response_headers: dict[str, Any] = field(default_factory=dict)
    response_body: str = ""
    error: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        stamp += f".{int((self.time % 1) * 1000):03d}"
        outcome = f"{self.status}" if self.status is not None else "无响应 (no answer)"
        if self.error:
            outcome += f" 错误: {self.error}"
        return f"[{stamp}] {self.method} {self.url} → {outcome} ({self.elapsed:.3f} s)"

    def to_text(self) -> str:
        lines = [self.summary()]
        if self.request_headers:
            lines.append("  请求头 (request headers): " + _dump(self.request_headers))
        if self.request_body:
            label = "命令 (command)" if self.kind == "ssh" else "请求 (request)"
            lines.append(f"  {label}: " + _indent(self.request_body))
        if self.response_body:
            label = "输出 (output)" if self.kind == "ssh" else "响应 (response)"
            lines.append(f"  {label}: " + _indent(self.response_body))
        return "\n".join(lines)


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _is_binary(content_type: Optional[str]) -> bool:
    ct = (content_type or "").lower()
    return any(ct.startswith(t) or t in ct for t in _BINARY_TYPES)


def format_body(body: Any, content_type: Optional[str] = None, *, max_body: int = MAX_BODY,
                redactor: Redactor = REDACTOR) -> str:
    """Render a request/response body as redacted, truncated text."""
    if body is None or body == b"" or body == "":
        return ""
    if isinstance(body, (bytes, bytearray)):
        if _is_binary(content_type):
            return f"<二进制内容 {len(body)} 字节 (binary, {len(body)} bytes)>"
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return f"<二进制内容 {len(body)} 字节 (binary, {len(body)} bytes)>"
    if isinstance(body, str):
        stripped = body.strip()
        if stripped[:1] in ("{", "["):
            try:
                body = json.loads(stripped)
            except ValueError:
                pass
    if isinstance(body, (dict, list)):
        text = json.dumps(redactor.redact_obj(body), ensure_ascii=False, default=str)
    else:
        text = redactor.redact(str(body))
    if len(text) > max_body:
        text = text[:max_body] + f"…（已截断，共 {len(text)} 字符 / truncated）"
    return text


class Recorder:
    """Thread-safe store of :class:`Exchange` records grouped by step."""

    def __init__(self, *, max_body: int = MAX_BODY, max_per_step: int = MAX_PER_STEP,
                 redactor: Redactor = REDACTOR):
        self.max_body = max_body
        self.max_per_step = max_per_step
        self.redactor = redactor
        self._lock = threading.Lock()
        self._steps: "OrderedDict[str, deque[Exchange]]" = OrderedDict()
        self._dropped: dict[str, int] = {}

    # -- steps -------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[str]:
        """Record everything inside the block against step ``name``."""
        token = _current_step.set(str(name))
        try:
            yield str(name)
        finally:
            _current_step.reset(token)

    @staticmethod
    def current_step() -> str:
        return _current_step.get()

    # -- capture -----------------------------------------------------------------
    def record(self, exchange: Exchange) -> Exchange:
        with self._lock:
            queue = self._steps.get(exchange.step)
            if queue is None:
                queue = self._steps[exchange.step] = deque(maxlen=self.max_per_step)
            if len(queue) == queue.maxlen:
                self._dropped[exchange.step] = self._dropped.get(exchange.step, 0) + 1
            queue.append(exchange)
        return exchange

    def record_http(self, *, method: str, url: str, status: Optional[int], elapsed: float,
                    request_headers: Optional[Mapping[str, Any]] = None, request_body: Any = None,
                    request_content_type: Optional[str] = None,
                    response_headers: Optional[Mapping[str, Any]] = None, response_body: Any = None,
                    response_content_type: Optional[str] = None, error: Optional[str] = None,
                    started: Optional[float] = None) -> Exchange:
        r = self.redactor
        return self.record(Exchange(
            step=self.current_step(),
            time=started if started is not None else time.time(),
            kind="http",
            method=method.upper(),
            url=r.redact(url),
            status=status,
            elapsed=elapsed,
            request_headers=r.redact_obj(dict(request_headers or {})),
            request_body=format_body(request_body, request_content_type, max_body=self.max_body, redactor=r),
            response_headers=r.redact_obj(dict(response_headers or {})),
            response_body=format_body(response_body, response_content_type, max_body=self.max_body, redactor=r),
            error=r.redact(error) if error else None,
        ))

    def record_ssh(self, *, target: str, command: str, exit_status: Optional[int], elapsed: float,
                   stdout: str = "", stderr: str = "", stdin_bytes: int = 0,
                   error: Optional[str] = None, started: Optional[float] = None) -> Exchange:
        """Record an SSH command. stdin is never recorded, only its size."""
        r = self.redactor
        request = r.redact(command)
        if stdin_bytes:
            request += f"\n<标准输入 {stdin_bytes} 字节，未记录 (stdin not recorded)>"
        output = ""
        if stdout:
            output += "[stdout]\n" + stdout
        if stderr:
            output += ("\n" if output else "") + "[stderr]\n" + stderr
        return self.record(Exchange(
            step=self.current_step(),
            time=started if started is not None else time.time(),
            kind="ssh",
            method="SSH",
            url=r.redact(target),
            status=exit_status,
            elapsed=elapsed,
            request_body=format_body(request, "text/plain", max_body=self.max_body, redactor=r),
            response_body=format_body(output, "text/plain", max_body=self.max_body, redactor=r),
            error=r.redact(error) if error else None,
        ))

    # -- reading -------------------------------------------------------------------
    def steps(self) -> list[str]:
        with self._lock:
            return list(self._steps)

    def exchanges(self, step: Optional[str] = None) -> list[Exchange]:
        """Records of ``step`` (all steps, in step order, when None)."""
        with self._lock:
            if step is not None:
                return list(self._steps.get(step, ()))
            return [e for queue in self._steps.values() for e in queue]

    def dropped(self, step: str) -> int:
        with self._lock:
            return self._dropped.get(step, 0)

    def to_text(self, step: Optional[str] = None) -> str:
        """Human-readable record of a step (or of everything) for report attachments."""
        records = self.exchanges(step)
        parts = [e.to_text() for e in records]
        dropped = self.dropped(step) if step is not None else sum(self._dropped.values())
        if dropped:
            parts.insert(0, f"（较早的 {dropped} 条记录已省略 / {dropped} older records dropped）")
        return "\n\n".join(parts)

    def clear(self, step: Optional[str] = None) -> None:
        with self._lock:
            if step is None:
                self._steps.clear()
                self._dropped.clear()
            else:
                self._steps.pop(step, None)
                self._dropped.pop(step, None)


RECORDER = Recorder()
