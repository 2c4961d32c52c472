"""SMTX OS: the deployment API and fisheye (``/api/v2`` envelope, ``/api/v3`` bare JSON).

* :meth:`FisheyeClient.deployment` calls the deployment API with the fixed
  pre-deployment token of the walkthrough.
* :meth:`FisheyeClient.setup_root` / :meth:`FisheyeClient.login` use ``/api/v3``
  (bare JSON); the session token is registered with the redactor and sent as
  ``x-smartx-token``; a 401 triggers one automatic re-login and replay.
* ``/api/v2`` answers are unwrapped: ``data`` is returned; a non-EOK ``ec`` raises
  :class:`ApiError` whatever the HTTP status.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import requests

from voyager.clients.endpoints import Endpoints
from voyager.clients.errors import ApiError
from voyager.clients.http import HttpClient, parse_json
from voyager.plan.model import Secret
from voyager.redact import REDACTOR

LOG = logging.getLogger(__name__)

DEPLOY_TOKEN = "e79b85fc18b7402fbcc0391fe8d7d24c"
TOKEN_HEADER = "x-smartx-token"
EOK = "EOK"


def unwrap(resp: requests.Response, method: str, path: str) -> Any:
    """The ``data`` of an ``/api/v2`` envelope, or :class:`ApiError`.

    Bodies without an envelope (``/api/v3``) are returned as parsed JSON when the
    status is 2xx; any other status raises."""
    body = parse_json(resp)
    status = resp.status_code
    if isinstance(body, dict) and "ec" in body:
        ec = body.get("ec")
        error = body.get("error") or {}
        if not isinstance(error, dict):
            error = {"msg": str(error)}
        if ec != EOK:
            raise ApiError(str(ec), error.get("msg") or "", error.get("detail"), method, path, status)
        if status >= 400:
            raise ApiError(f"HTTP_{status}", error.get("msg") or resp.reason or "", error.get("detail"),
                           method, path, status)
        return body.get("data")
    if status >= 400:
        raise http_error(resp, body, method, path)
    if body is None:
        return resp.text
    return body


def http_error(resp: requests.Response, body: Any, method: str, path: str) -> ApiError:
    """An :class:`ApiError` for a non-2xx answer without an ``ec`` envelope."""
    msg = ""
    detail = None
    if isinstance(body, dict):
        msg = str(body.get("message") or body.get("msg") or body.get("error") or "")
        detail = body
        ec = str(body.get("code") or f"HTTP_{resp.status_code}")
    else:
        ec = f"HTTP_{resp.status_code}"
        msg = (resp.text or resp.reason or "")[:300]
    return ApiError(ec, msg, detail, method, path, resp.status_code)


class FisheyeClient:
    """One SMTX OS host (or the cluster VIP) at planned address ``ip``."""

    def __init__(self, endpoints: Endpoints, ip: str, *, service: str = "fisheye"):
        self.endpoints = endpoints
        self.ip = ip
        self._http = HttpClient(endpoints, ip, service)
        self._token: Optional[Secret] = None
        self._credentials: Optional[tuple[str, Secret]] = None

    def __repr__(self) -> str:
        return f"FisheyeClient({self.ip!r}, logged_in={self.logged_in})"

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    # -- deployment API (fixed token) -------------------------------------------------
    def deployment(self, method: str, path: str, *, params: Any = None, json: Any = None,
                   idempotent: bool = False, service: str = "deploy", timeout: Any = None) -> Any:
        """A deployment-API call with the fixed pre-deployment token (http 80 by
        default; ``service="fisheye"`` for the https variant)."""
        http = self._http if service == self._http.service else HttpClient(self.endpoints, self.ip, service)
        resp = http.request(method, path, params=params, json=json, idempotent=idempotent, timeout=timeout,
                            headers={TOKEN_HEADER: DEPLOY_TOKEN})
        return unwrap(resp, method, path)

    # -- /api/v3 ------------------------------------------------------------------------
    def setup_root(self, password: Secret) -> Any:
        """``POST /api/v3/users:setupRoot`` (sets the fisheye admin password)."""
        REDACTOR.add_secret(password)
        body = {"password": password, "repeat": password, "encrypted": False}
        resp = self._http.request("POST", "/api/v3/users:setupRoot", json=body)
        return unwrap(resp, "POST", "/api/v3/users:setupRoot")

    def login(self, user: str, password: Secret) -> dict[str, Any]:
        """``POST /api/v3/sessions``; keeps the token for later calls and returns the
        session facts without the token (``user_id``, ``create_time``, ``expire_time``)."""
        REDACTOR.add_secret(password)
        body = {"username": user, "password": password, "encrypted": False}
        resp = self._http.request("POST", "/api/v3/sessions", json=body, idempotent=True)
        data = unwrap(resp, "POST", "/api/v3/sessions")
        token = data.get("token") if isinstance(data, dict) else None
        if not token:
            raise ApiError("NO_TOKEN", "登录响应中没有 token (no token in the login answer)", None,
                           "POST", "/api/v3/sessions", resp.status_code)
        REDACTOR.add_secret(token)
        self._token = Secret(token)
        self._credentials = (user, password)
        LOG.info("已登录 fisheye %s（用户 %s）", self.ip, user)
        return {k: v for k, v in data.items() if k != "token"}

    def logout(self) -> None:
        """``DELETE /api/v3/sessions``; a no-op when not logged in."""
        if self._token is None:
            return
        try:
            resp = self._http.request("DELETE", "/api/v3/sessions", headers=self._auth_headers())
            if resp.status_code not in (401, 404):
                unwrap(resp, "DELETE", "/api/v3/sessions")
        finally:
            self._token = None

    # -- authenticated calls ---------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self._token.reveal()} if self._token is not None else {}

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None, data: Any = None,
                files: Any = None, headers: Optional[dict[str, str]] = None, idempotent: bool = False,
                timeout: Any = None, stream: bool = False, raw: bool = False) -> Any:
        """An authenticated call: the unwrapped ``data`` (or the response when ``raw``).
        On 401 the client logs in again once (when it has logged in before) and
        replays the call — the server refused it, so the replay is safe.

        ``data`` may also be a zero-argument callable returning the body, e.g. a
        fresh ``MultipartEncoder`` stream or ``FilePartBody`` (see :meth:`HttpClient.request`): it is
        called for each send, so the replay after a re-login sends the whole body
        again."""
        method = method.upper()

        def send() -> requests.Response:
            body = data() if callable(data) else data
            return self._http.request(method, path, params=params, json=json, data=body, files=files,
                                      headers={**(headers or {}), **self._auth_headers()},
                                      idempotent=idempotent, timeout=timeout, stream=stream)

        resp = send()
        if resp.status_code == 401 and self._credentials is not None:
            LOG.info("fisheye %s 返回 401，重新登录后重试 %s %s (re-login on 401)", self.ip, method, path)
            resp.close()
            self.login(*self._credentials)
            resp = send()
        if raw:
            if resp.status_code >= 400:
                unwrap(resp, method, path)
            return resp
        return unwrap(resp, method, path)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    # -- small typed reads used by waiters ----------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v2/jobs/{id}`` → the ``job`` object."""
        data = self.get(f"/api/v2/jobs/{job_id}")
        return (data or {}).get("job", data) if isinstance(data, dict) else {}

    def vm(self, vm_uuid: str) -> dict[str, Any]:
        """``GET /api/v2/vms/{uuid}``."""
        data = self.get(f"/api/v2/vms/{vm_uuid}")
        return data if isinstance(data, dict) else {}
