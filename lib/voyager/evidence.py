"""The evidence recorder: every HTTP exchange and SSH command, per step.

The clients call :meth:`Recorder.record_http` / :meth:`Recorder.record_ssh`; the
record is redacted (``voyager.redact.REDACTOR``) *at capture* and bodies are
truncated to a bounded size, so nothing stored here can leak a secret. Records
belong to the current step, set with ``with RECORDER.step("name"):`` (a
contextvar, so threads and nested steps behave). The report attaches
:meth:`Recorder.to_text` of a step.

Polls: ``voyager.waiters.wait_for`` runs each probe inside
``with RECORDER.poll(wait, attempt):``, so every exchange knows the wait and the
poll it belongs to (:attr:`Exchange.poll`). The evidence log keeps every
exchange; the report and Allure show :meth:`Recorder.shown` — a wait's first
:data:`SHOWN_FIRST_POLLS` and last :data:`SHOWN_LAST_POLLS` polls (the last one
is the answer that ended the wait) and, between them, one :class:`PollGap`
saying how many polls were left out and when they ran (a 20-minute deployment
is read ~240 times: the delivery report shows five of them).

:class:`EvidenceLog` is a session's log file (``<state dir>/evidence/<name>``),
written as the session goes: a step's exchanges are appended and flushed when
the step ends, so a run that is killed leaves the evidence of every check it
finished (a process kill loses nothing already written; a power cut may lose
the last unflushed pages of this log, never a ledger entry, which is fsynced).
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from voyager.redact import REDACTOR, Redactor

MAX_BODY = 4096  # characters kept of each request/response body
MAX_PER_STEP = 2000  # exchanges kept per step (older ones are dropped and counted)
NO_STEP = "(none)"

_BINARY_TYPES = (
    "multipart/", "application/octet-stream", "application/zip", "application/x-",
    "image/", "audio/", "video/", "application/gzip",
)

SHOWN_FIRST_POLLS = 2  # polls of a wait the report shows from its start ...
SHOWN_LAST_POLLS = 3  # ... and from its end

_current_step: contextvars.ContextVar[str] = contextvars.ContextVar("voyager_step", default=NO_STEP)
_current_poll: contextvars.ContextVar[Optional[tuple[int, int]]] = contextvars.ContextVar("voyager_poll",
                                                                                          default=None)


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
    poll: Optional[tuple[int, int]] = None  # (wait, attempt) when recorded by a wait's probe

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


@dataclass(frozen=True)
class PollGap:
    """Where :meth:`Recorder.shown` left out polls of one wait: how many polls and
    exchanges, and the time span they covered."""

    step: str
    polls: int
    exchanges: int
    first: float  # epoch seconds of the first left-out exchange
    last: float  # end of the last one

    def summary(self) -> str:
        fmt = "%H:%M:%S"
        return (f"…… 省略了等待中间的 {self.polls} 次轮询（{self.exchanges} 条记录，"
                f"{time.strftime(fmt, time.localtime(self.first))}–{time.strftime(fmt, time.localtime(self.last))}，"
                f"完整记录见状态目录 evidence/*.log） / {self.polls} polls left out ……")


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _is_binary(content_type: Optional[str]) -> bool:
    ct = (content_type or "").lower()
    return any(ct.startswith(t) or t in ct for t in _BINARY_TYPES)


JSON_PARSE_LIMIT = 1024 * 1024  # larger JSON bodies are shown as text (not parsed: ~60 ms per MiB)
TEXT_HEAD_MARGIN = 65536  # characters decoded beyond MAX_BODY for the redaction window
_CUT = "…（已截断，共 {n} 字符 / truncated）"
_CUT_BYTES = "…（已截断，共 {n} 字节 / truncated）"


def _decode(body: bytes, cap: int) -> Optional[str]:
    """UTF-8 text of ``body`` (only its first ``cap`` bytes when longer), or None
    for binary content."""
    head = body[:cap] if len(body) > cap else body
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(body) > cap and exc.start >= len(head) - 3:  # the cap split a character
            try:
                return head[:exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def _bounded(text: str, limit: int, redactor: Redactor) -> str:
    if len(text) <= limit:
        return text
    return redactor.redact_window(text, limit) + _CUT.format(n=len(text))


class _Budget:
    def __init__(self, chars: int):
        self.left = chars
        self.cut = False  # something was left out


def _prune(obj: Any, budget: _Budget, redactor: Redactor) -> Any:
    """A copy of a parsed JSON body holding about the first ``budget`` characters of
    its text; long strings are cut with :meth:`Redactor.redact_window`, so the
    redaction that follows costs O(budget) and never sees a secret cut in two."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for i, (key, value) in enumerate(obj.items()):
            if budget.left <= 0:
                budget.cut = True
                out["…"] = f"（省略 {len(obj) - i} 项 / {len(obj) - i} more keys）"
                break
            budget.left -= len(str(key)) + 4
            out[key] = _prune(value, budget, redactor)
        return out
    if isinstance(obj, list):
        items: list[Any] = []
        for i, value in enumerate(obj):
            if budget.left <= 0:
                budget.cut = True
                items.append(f"…（省略 {len(obj) - i} 项 / {len(obj) - i} more items）")
                break
            items.append(_prune(value, budget, redactor))
        return items
    if isinstance(obj, str):
        keep = max(budget.left, 0)
        budget.left -= len(obj) + 4
        if budget.left < 0 and len(obj) > keep + 1:
            budget.cut = True
            return redactor.redact_window(obj, keep) + "…"
        return obj
    budget.left -= 8
    return obj


def format_body(body: Any, content_type: Optional[str] = None, *, max_body: int = MAX_BODY,
                redactor: Redactor = REDACTOR) -> str:
    """Render a request/response body as redacted, truncated text.

    Bounded at capture: whatever the size of ``body``, only about ``max_body``
    characters of it are redacted (a parsed JSON body is pruned first, a text
    through :meth:`Redactor.redact_window`), so a 30 MiB output costs little
    more than a 4 KiB one."""
    if body is None or body == b"" or body == "":
        return ""
    total: Optional[int] = None  # characters of the whole body, when known
    size_note = ""
    if isinstance(body, (bytes, bytearray)):
        size = len(body)
        # a JSON body is parsed whole (up to the limit); of anything else only a head is decoded
        cap = size if size <= JSON_PARSE_LIMIT else (max_body + TEXT_HEAD_MARGIN) * 4
        text = None if _is_binary(content_type) else _decode(bytes(body), cap)
        if text is None:
            return f"<二进制内容 {size} 字节 (binary, {size} bytes)>"
        body = text
        if cap < size:
            size_note = _CUT_BYTES.format(n=size)
    if isinstance(body, str):
        total = len(body)
        stripped = body.strip()
        if stripped[:1] in ("{", "[") and len(stripped) <= JSON_PARSE_LIMIT:
            try:
                body = json.loads(stripped)
            except ValueError:
                pass
    budget = _Budget(max_body)
    if isinstance(body, (dict, list)):
        text = json.dumps(redactor.redact_obj(_prune(body, budget, redactor)), ensure_ascii=False, default=str)
        if total is None and budget.cut:
            total = len(json.dumps(body, ensure_ascii=False, default=str))
    else:
        raw = body if isinstance(body, str) else str(body)
        total = len(raw)
        text = redactor.redact_window(raw, max_body)
        budget.cut = len(raw) > max_body
    if budget.cut or len(text) > max_body or size_note:
        text = text[:max_body] + (size_note or _CUT.format(n=total if total is not None else len(text)))
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

    @contextlib.contextmanager
    def poll(self, wait: int, attempt: int) -> Iterator[None]:
        """Mark what is recorded inside the block as poll ``attempt`` of wait ``wait``."""
        token = _current_poll.set((int(wait), int(attempt)))
        try:
            yield
        finally:
            _current_poll.reset(token)

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
            poll=_current_poll.get(),
        ))

    def record_ssh(self, *, target: str, command: str, exit_status: Optional[int], elapsed: float,
                   stdout: str = "", stderr: str = "", stdin_bytes: int = 0,
                   error: Optional[str] = None, started: Optional[float] = None) -> Exchange:
        """Record an SSH command. stdin is never recorded, only its size."""
        r = self.redactor
        request = r.redact(command)
        if stdin_bytes:
            request += f"\n<标准输入 {stdin_bytes} 字节，未记录 (stdin not recorded)>"
        share = self.max_body // 2 if (stdout and stderr) else self.max_body
        output = ""
        if stdout:  # each stream bounded on its own, so a long stdout leaves room for stderr
            output += "[stdout]\n" + _bounded(stdout, share, r)
        if stderr:
            output += ("\n" if output else "") + "[stderr]\n" + _bounded(stderr, share, r)
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
            poll=_current_poll.get(),
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

    def shown(self, step: str, *, first: int = SHOWN_FIRST_POLLS,
              last: int = SHOWN_LAST_POLLS) -> list["Exchange | PollGap"]:
        """The records of ``step`` as the report shows them: of each wait, the exchanges
        of its first ``first`` and last ``last`` polls, one :class:`PollGap` in place of
        the others; every exchange that is not a poll."""
        records = self.exchanges(step)
        polls: dict[int, list[int]] = {}
        for e in records:
            if e.poll is not None and e.poll[1] not in polls.setdefault(e.poll[0], []):
                polls[e.poll[0]].append(e.poll[1])
        hidden = {(wait, attempt) for wait, attempts in polls.items()
                  for attempt in attempts[first:len(attempts) - last] if len(attempts) > first + last}
        out: list[Exchange | PollGap] = []
        gap: list[Exchange] = []
        for e in records + [None]:
            if e is not None and e.poll in hidden:
                gap.append(e)
                continue
            if gap:
                out.append(PollGap(step, len({g.poll for g in gap}), len(gap), gap[0].time,
                                   gap[-1].time + gap[-1].elapsed))
                gap = []
            if e is not None:
                out.append(e)
        return out

    def dropped(self, step: str) -> int:
        with self._lock:
            return self._dropped.get(step, 0)

    def since(self, step: str, seen: int) -> tuple[list[Exchange], int, int]:
        """What ``step`` recorded after its first ``seen`` exchanges: (those still kept,
        how many of them were dropped already, how many the step recorded in all)."""
        with self._lock:
            queue = list(self._steps.get(step, ()))
            total = len(queue) + self._dropped.get(step, 0)
        new = max(0, total - seen)
        kept = queue[len(queue) - min(new, len(queue)):] if new else []
        return kept, new - len(kept), total

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


class EvidenceLog:
    """A session's evidence log, written as the session goes: ``## <step>`` then the
    step's exchanges, appended by :meth:`write_step` (after each check) and, for what
    was recorded since — outside any check, or by a thread after its check ended —
    by :meth:`finish`. A step may thus have more than one section (readers join them)."""

    def __init__(self, path: Path, recorder: Optional["Recorder"] = None):
        self.path = Path(path)
        self.recorder = recorder if recorder is not None else RECORDER
        self._written: dict[str, int] = {}
        self._lock = threading.Lock()

    def write_step(self, step: str) -> None:
        """Append what ``step`` recorded and is not in the file yet (flushed)."""
        with self._lock:
            kept, dropped, total = self.recorder.since(step, self._written.get(step, 0))
            if not kept and not dropped:
                return
            parts = [e.to_text() for e in kept]
            if dropped:
                parts.insert(0, f"（较早的 {dropped} 条记录已省略 / {dropped} older records dropped）")
            text = f"## {step}\n\n" + "\n\n".join(parts) + "\n\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
            self._written[step] = total

    def finish(self) -> Optional[Path]:
        """Append every step's remaining exchanges; the log's path, None when the
        session recorded nothing."""
        for step in self.recorder.steps():
            self.write_step(step)
        return self.path if self.path.exists() else None

