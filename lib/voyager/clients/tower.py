"""CloudTower: REST ``/v2/api/<operation>`` and GraphQL ``/api``.

* REST: every call is a POST with a JSON body; the raw token goes in
  ``Authorization`` (no ``Bearer``). ``get-*`` operations are reads and are
  retried like GETs. Non-2xx answers raise :class:`ApiError` (``code``/``message``).
* GraphQL: ``{operationName, variables, query}``; an answer with ``errors`` raises
  :class:`GraphQLError`.
* Idempotent steps of the walkthrough pass ``already_ok=True``: an answer saying
  the object already exists ("already exists", "UserAlreadyExists", "Duplicate")
  returns an :class:`AlreadyExists` marker instead of raising.
* A 401 triggers one re-login (when the client has logged in) and a replay.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import requests

from voyager.clients.endpoints import Endpoints
from voyager.clients.errors import ApiError, GraphQLError
from voyager.clients.fisheye import http_error
from voyager.clients.http import HttpClient, parse_json
from voyager.plan.model import Secret
from voyager.redact import REDACTOR

LOG = logging.getLogger(__name__)

REST_PREFIX = "/v2/api"
GRAPHQL_PATH = "/api"
ALREADY_PATTERNS = ("already exists", "already exist", "alreadyexists", "duplicate", "已存在")


@dataclass(frozen=True)
class AlreadyExists:
    """Returned (instead of raising) for an "already exists" answer when
    ``already_ok=True``: the step's object is there, the step is done."""

    operation: str
    message: str

    def __bool__(self) -> bool:
        return True


def is_already_exists(value: Any) -> bool:
    return isinstance(value, AlreadyExists)


def _says_already(text: str) -> bool:
    low = text.lower().replace("_", " ")
    return any(p in low or p in low.replace(" ", "") for p in ALREADY_PATTERNS)


class TowerClient:
    """CloudTower at planned address ``ip`` (https 443 by default)."""

    def __init__(self, endpoints: Endpoints, ip: str, *, service: str = "tower"):
        self.endpoints = endpoints
        self.ip = ip
        self.service = service
        self._https: dict[str, HttpClient] = {service: HttpClient(endpoints, ip, service)}
        self._token: Optional[Secret] = None
        self._credentials: Optional[tuple[str, Secret, str]] = None

    def __repr__(self) -> str:
        return f"TowerClient({self.ip!r}, logged_in={self.logged_in})"

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    def _http(self, service: Optional[str] = None) -> HttpClient:
        service = service or self.service
        if service not in self._https:
            self._https[service] = HttpClient(self.endpoints, self.ip, service)
        return self._https[service]

    # -- auth ---------------------------------------------------------------------------
    def login(self, user: str, password: Secret, *, source: str = "LOCAL") -> None:
        """``POST /v2/api/login``; the token is kept for later calls and registered
        with the redactor (never returned)."""
        REDACTOR.add_secret(password)
        body = {"username": user, "password": password, "source": source}
        resp = self._http().request("POST", f"{REST_PREFIX}/login", json=body, idempotent=True)
        parsed = self._check(resp, "POST", f"{REST_PREFIX}/login")
        token = ((parsed or {}).get("data") or {}).get("token") if isinstance(parsed, dict) else None
        if not token:
            raise ApiError("NO_TOKEN", "CloudTower 登录响应中没有 token (no token in the login answer)", None,
                           "POST", f"{REST_PREFIX}/login", resp.status_code)
        REDACTOR.add_secret(token)
        self._token = Secret(token)
        self._credentials = (user, password, source)
        LOG.info("已登录 CloudTower %s（用户 %s）", self.ip, user)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._token.reveal()} if self._token is not None else {}

    # -- transport ------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: Any = None, data: Any = None,
                files: Any = None, auth: bool = True, idempotent: bool = False, timeout: Any = None,
                stream: bool = False, service: Optional[str] = None, headers: Optional[dict[str, str]] = None
                ) -> requests.Response:
        """A call with the token (when ``auth``); one re-login + replay on 401.
        Returns the response whatever its status."""
        http = self._http(service)
        method = method.upper()

        def send() -> requests.Response:
            __tracebackhide__ = True  # holds the token
            hdrs = dict(headers or {})
            if auth:
                hdrs.update(self._auth_headers())
            return http.request(method, path, json=json, params=params, data=data, files=files,
                                headers=hdrs, idempotent=idempotent, timeout=timeout, stream=stream)

        resp = send()
        if resp.status_code == 401 and auth and self._credentials is not None:
            LOG.info("CloudTower %s 返回 401，重新登录后重试 %s %s (re-login on 401)", self.ip, method, path)
            resp.close()
            user, password, source = self._credentials
            self.login(user, password, source=source)
            resp = send()
        return resp

    @staticmethod
    def _check(resp: requests.Response, method: str, path: str) -> Any:
        body = parse_json(resp)
        if resp.status_code >= 400:
            raise http_error(resp, body, method, path)
        return body if body is not None else resp.text

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated call returning the parsed JSON; non-2xx raises ApiError."""
        resp = self.request(method, path, **kwargs)
        if kwargs.get("stream"):
            if resp.status_code >= 400:
                self._check(resp, method.upper(), path)
            return resp
        return self._check(resp, method.upper(), path)

    # -- REST ----------------------------------------------------------------------------------
    def rest(self, operation: str, body: Any = None, *, idempotent: bool = False, already_ok: bool = False,
             timeout: Any = None) -> Any:
        """``POST /v2/api/<operation>``; the parsed answer as received (arrays or
        objects — mirror what you get). ``get-*`` reads are retried like GETs."""
        path = f"{REST_PREFIX}/{operation.lstrip('/')}"
        idempotent = idempotent or operation.startswith("get-")
        try:
            return self.call("POST", path, json=body if body is not None else {}, idempotent=idempotent,
                             timeout=timeout)
        except ApiError as exc:
            if already_ok and _says_already(f"{exc.ec} {exc.msg}"):
                LOG.info("CloudTower %s: %s 已存在，视为完成 (already exists)", self.ip, operation)
                return AlreadyExists(operation, exc.msg)
            raise

    # -- GraphQL -----------------------------------------------------------------------------------
    def graphql(self, operation_name: str, query: str, variables: Optional[dict[str, Any]] = None, *,
                auth: bool = True, already_ok: bool = False, idempotent: bool = False,
                timeout: Any = None) -> Any:
        """``POST /api``; returns ``data``. ``errors`` raise :class:`GraphQLError`, or
        give :class:`AlreadyExists` when ``already_ok`` and they say so."""
        body = {"operationName": operation_name, "variables": variables or {}, "query": query}
        resp = self.request("POST", GRAPHQL_PATH, json=body, auth=auth, idempotent=idempotent, timeout=timeout)
        parsed = parse_json(resp)
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        if errors:
            if not isinstance(errors, list):
                errors = [errors]
            messages = " ".join(str(e.get("message", "")) if isinstance(e, dict) else str(e) for e in errors)
            codes = " ".join(str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict))
            if already_ok and _says_already(f"{messages} {codes}"):
                LOG.info("CloudTower %s: %s 已存在，视为完成 (already exists)", self.ip, operation_name)
                return AlreadyExists(operation_name, REDACTOR.redact(messages))
            raise GraphQLError(operation_name, errors, "POST", GRAPHQL_PATH, resp.status_code)
        if resp.status_code >= 400:
            raise http_error(resp, parsed, "POST", GRAPHQL_PATH)
        if not isinstance(parsed, dict):
            raise ApiError("GRAPHQL_BAD_ANSWER", f"{operation_name}: 响应不是 JSON 对象 (not a JSON object)", None,
                           "POST", GRAPHQL_PATH, resp.status_code)
        return parsed.get("data")
