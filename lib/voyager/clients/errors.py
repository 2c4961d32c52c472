"""Errors raised by the clients. Messages are Chinese first and redacted at creation."""
from __future__ import annotations

import json
from typing import Any, Optional

from voyager.redact import REDACTOR, RedactedError


class ClientError(RedactedError):
    """Base of every client error."""


class ApiError(ClientError):
    """The API answered with an error: a non-EOK ``ec`` (whatever the HTTP status),
    a GraphQL ``errors`` list, or an HTTP error status."""

    def __init__(self, ec: str, msg: str = "", detail: Any = None, method: str = "", path: str = "",
                 status: Optional[int] = None):
        self.ec = str(ec)
        self.msg = REDACTOR.redact(str(msg or ""))
        self.detail = REDACTOR.redact_obj(detail)
        self.method = method.upper()
        self.path = REDACTOR.redact(path)
        self.status = status
        text = f"接口返回错误 {self.ec}"
        if self.msg:
            text += f"：{self.msg}"
        text += f"（{self.method} {self.path}，HTTP {self.status if self.status is not None else '-'}）"
        if self.detail not in (None, "", {}, []):
            text += " 详情: " + _short(self.detail)
        text += f" (API error {self.ec} on {self.method} {self.path})"
        super().__init__(text)

    def matches(self, *needles: str) -> bool:
        """True when ec, msg or detail contains one of ``needles`` (case-insensitive)."""
        hay = " ".join([self.ec, self.msg, _short(self.detail, 100000)]).lower()
        return any(n.lower() in hay for n in needles)


class GraphQLError(ApiError):
    """A CloudTower GraphQL answer carrying ``errors``."""

    def __init__(self, operation: str, errors: list[Any], method: str = "POST", path: str = "/api",
                 status: Optional[int] = None):
        self.operation = operation
        self.errors = REDACTOR.redact_obj(errors)
        messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        super().__init__("GRAPHQL_ERROR", f"{operation}: {messages}", errors, method, path, status)


class TransportError(ClientError):
    """No usable answer: reset, read timeout, TLS failure, SSH channel failure."""

    def __init__(self, message: str, *, target: str = ""):
        self.target = target
        super().__init__(message)


class UnreachableError(TransportError):
    """The target refused or did not accept a connection (in the simulator: the
    planned machine is not up, 502 + ``X-Sim-Unreachable``)."""


class TargetNotAllowedError(ClientError):
    """The guard refused a target that the plan does not declare (or, in simulator
    mode, an address outside 127.0.0.0/8)."""


class CertificateMismatchError(ClientError):
    """A TLS server presented a certificate other than the one recorded on first contact."""

    def __init__(self, address: str, expected: str, actual: str, known_file: str = ""):
        self.address, self.expected, self.actual = address, expected, actual
        where = f"（记录文件 {known_file}）" if known_file else ""
        super().__init__(
            f"{address} 的 TLS 证书与首次连接时记录的不一致，已拒绝连接{where}。"
            f"记录的指纹 SHA-256 {format_fingerprint(expected)}，"
            f"当前的指纹 SHA-256 {format_fingerprint(actual)}。"
            "如果证书确实已更换（例如重装了 CloudTower），请删除记录文件中该地址的条目后重试；"
            "否则请检查是否连到了错误的机器。"
            f" (TLS certificate of {address} changed since first contact)"
        )


class HostKeyError(ClientError):
    """SSH host key unknown in strict mode, or different from the recorded one."""


class CommandError(ClientError):
    """A remote command ended with a non-zero exit status (``CommandResult.check``)."""

    def __init__(self, message: str, result: Any = None):
        self.result = result
        super().__init__(message)


def format_fingerprint(hex_digest: str) -> str:
    h = hex_digest.replace(":", "").upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _short(obj: Any, limit: int = 500) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
