"""What every part of the CloudTower backend shares: the error type, ids,
timestamps and the task / cluster states (imported by :mod:`voyager.sim.tower.models`
and the parts it composes, so none of them imports another)."""
from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import Any, Optional

PENDING, EXECUTING, SUCCESSED, FAILED = "PENDING", "EXECUTING", "SUCCESSED", "FAILED"
INITIALIZING, CONNECTED = "INITIALIZING", "CONNECTED"

_B36 = string.digits + string.ascii_lowercase


class TowerError(Exception):
    """A CloudTower rule refused a request. REST renders ``{message, status, path,
    code}``; GraphQL renders ``errors[0].message`` (+ ``extensions.code``).
    ``message`` never contains a secret."""

    def __init__(self, message: str, *, status: int = 400, code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def cuid() -> str:
    """A CloudTower-style id: 25 lowercase base-36 characters starting with ``c``."""
    return "c" + "".join(secrets.choice(_B36) for _ in range(24))


def iso(ts: float) -> str:
    """Epoch seconds -> ``2025-09-30T18:30:42.192Z``."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def require_str(data: dict[str, Any], field: str, *, allow_empty: bool = False) -> str:
    value = data.get(field)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise TowerError(f'"{field}" is required and must be a non-empty string', code="VALIDATION")
    return value


BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4, "PB": 1024 ** 5}  # ByteUnit


def to_bytes(size: Any, unit: Any, what: str) -> int:
    """A size in a ``ByteUnit`` (``B`` when absent [INF]) as bytes; a positive integer is required."""
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise TowerError(f"{what} must be a positive integer", code="VALIDATION")
    return size * BYTE_UNITS[unit or "B"]
