"""The backend's error type, rendered by each front-end in its API's shape."""
from __future__ import annotations

from typing import Optional


class SimError(Exception):
    """A rule of the backend refused an operation. ``msg`` never contains a secret.

    ``ec`` is the fisheye-style error code (``REST_FORM_ERROR`` ...), ``status``
    the HTTP status a front-end should use, ``detail`` ``{field: [messages]}``.
    """

    def __init__(self, ec: str, msg: str, *, status: int = 400, detail: Optional[dict] = None):
        super().__init__(msg)
        self.ec = ec
        self.msg = msg
        self.status = status
        self.detail = detail or {}


def form_error(field: str, message: str, msg: str = "表单校验失败 (form validation failed)") -> SimError:
    return SimError("REST_FORM_ERROR", msg, detail={field: [message]})


def not_found(what: str, key: str) -> SimError:
    return SimError("REST_NOT_FOUND", f"{what} {key} not found", status=404)
