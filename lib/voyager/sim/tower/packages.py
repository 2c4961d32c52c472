"""Installation packages uploaded to CloudTower (walkthrough step 07, optional).

The walkthrough documents how each upload *starts*; what follows ("进行部署")
is still blank there, so the simulator models exactly the documented calls:

* Observability (OBS): ``POST /api/ovm-operator/api/v3/chunkedUploads``
  ``{"origin_file_name": "Observability-X86_64-<version>.tar.gz"}`` with the
  CloudTower token → the upload ``{id, package_name: "", offset: "0",
  status: "UPLOADING", origin_file_name, error_code: "", error_message: "",
  package_id: "", create_time, update_time}``. ovm-operator is a grpc-gateway
  service: errors are ``{code, message, details}`` (3 → 400, 16 → 401) [INF].
* Backup: GraphQL ``createUploadTask(data: UploadTaskCreateInput!)`` →
  ``{id, current_chunk, chunk_size}`` (see :mod:`voyager.sim.tower.graphql_api`;
  :meth:`PackageUploads.create_upload_task` holds the rules).

Both are kept in CloudTower's state (``tower.packages``) and listed nowhere
else yet.
"""
from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import Any, Callable

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.common import TowerError, cuid, iso
from voyager.sim.web.frontend import BadJson, Frontend, drain, json_response

PREFIX = "/api/ovm-operator/api/v3"
UPLOAD_RESOURCE_TYPES = ("CLOUDTOWER_APPLICATION_PACKAGE", "ELF_IMAGE", "CONTENT_LIBRARY_IMAGE", "SVT_IMAGE")
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class PackageError(Exception):
    """An ovm-operator rule refused a request (grpc code + message, never a secret)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ksuid() -> str:
    """A 27-character base-62 id like ovm-operator's."""
    return "".join(secrets.choice(_B62) for _ in range(27))


def rfc3339_nano(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


class PackageUploads:
    """``tower.packages``: chunked uploads of OBS packages and upload tasks of backup packages."""

    def __init__(self, tower) -> None:
        self.tower = tower
        self.chunked: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []

    def start_chunked_upload(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise PackageError(3, "request body must be an object {origin_file_name}")
        name = body.get("origin_file_name")
        if not isinstance(name, str) or not name.strip():
            raise PackageError(3, "origin_file_name is required")
        if not name.endswith((".tar.gz", ".tgz")):
            raise PackageError(3, f"{name} is not an installation package (.tar.gz)")
        now = self.tower.clock.now()
        upload = {"id": ksuid(), "package_name": "", "offset": "0", "status": "UPLOADING",
                  "origin_file_name": name, "error_code": "", "error_message": "", "package_id": "",
                  "create_time": rfc3339_nano(now), "update_time": rfc3339_nano(now)}
        self.chunked.append(upload)
        self.tower.changed()
        return dict(upload)

    def create_upload_task(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise TowerError('Variable "$data" of required type "UploadTaskCreateInput!" was not provided.',
                             code="BAD_USER_INPUT")
        if data.get("status") != "INITIALIZING":
            raise TowerError('"status" must be INITIALIZING for a new upload task', code="BAD_USER_INPUT")
        for field in ("current_chunk", "chunk_size", "size"):
            value = data.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TowerError(f'"{field}" must be a positive integer', code="BAD_USER_INPUT")
        if data.get("resource_type") not in UPLOAD_RESOURCE_TYPES:
            raise TowerError(f'"resource_type" must be one of {", ".join(UPLOAD_RESOURCE_TYPES)}',
                             code="BAD_USER_INPUT")
        args = data.get("args")
        if not isinstance(args, dict) or not isinstance(args.get("name"), str) or not args["name"].strip():
            raise TowerError('"args.name" (the package file name) is required', code="BAD_USER_INPUT")
        if not isinstance(data.get("started_at"), str):
            raise TowerError('"started_at" (DateTime) is required', code="BAD_USER_INPUT")
        task = {"id": cuid(), "status": "INITIALIZING", "current_chunk": data["current_chunk"],
                "chunk_size": data["chunk_size"], "size": data["size"], "resource_type": data["resource_type"],
                "args": {"name": args["name"], "package_name": args.get("package_name")},
                "started_at": data["started_at"], "created_at": iso(self.tower.clock.now())}
        self.tasks.append(task)
        self.tower.changed()
        return task

    def to_state(self) -> dict[str, Any]:
        return {"chunked": self.chunked, "tasks": self.tasks}

    def load_state(self, state: dict[str, Any]) -> None:
        self.chunked = list(state.get("chunked") or [])
        self.tasks = list(state.get("tasks") or [])


_HTTP = {3: 400, 16: 401}


class OvmOperatorFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map([Rule(f"{PREFIX}/chunkedUploads", methods=["POST"], endpoint="chunked_uploads")])

    def _call(self, request: Request, fn: Callable[[], Any]) -> Response:
        with self.world.lock:
            try:
                if self.world.tower.authenticate(request.headers.get("Authorization")) is None:
                    drain(request)
                    raise PackageError(16, "unauthenticated: missing or invalid token")
                result = fn()
            except PackageError as exc:
                return json_response({"code": exc.code, "message": exc.message, "details": []},
                                     _HTTP.get(exc.code, 500))
        return json_response(result)

    def chunked_uploads(self, request: Request, machine) -> Response:
        def run() -> dict[str, Any]:
            try:
                body = self.json_body(request)
            except BadJson as exc:
                raise PackageError(3, f"request body is not valid JSON ({exc})") from None
            return self.world.tower.packages.start_chunked_upload(body)

        return self._call(request, run)


FRONTENDS = [OvmOperatorFrontend]
