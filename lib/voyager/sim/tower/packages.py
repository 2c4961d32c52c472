"""Installation packages uploaded to CloudTower (walkthrough step 07, optional).

The walkthrough documents how each upload *starts*; what follows is modelled on
the CloudTower 4.6.0 OpenAPI spec where it documents it, and inferred [INF]
where nothing documents it:

* Observability (OBS): ``POST /api/ovm-operator/api/v3/chunkedUploads``
  ``{"origin_file_name": "Observability-X86_64-<version>.tar.gz"}`` with the
  CloudTower token → the upload ``{id, package_name: "", offset: "0",
  status: "UPLOADING", origin_file_name, error_code: "", error_message: "",
  package_id: "", create_time, update_time}`` (walkthrough). Then [INF]:
  ``POST .../chunkedUploads/{id}:upload?offset=N`` (raw bytes, N = the upload's
  ``offset``, else grpc 9 naming the expected offset) → the upload with the new
  offset; ``GET .../chunkedUploads/{id}`` (resume: read the offset);
  ``POST .../chunkedUploads/{id}:complete`` → ``status: "COMPLETED"``,
  ``package_id`` / ``package_name`` of the registered package. ovm-operator is a
  grpc-gateway service: errors are ``{code, message, details}`` (3 → 400,
  5 → 404, 9 → 400, 16 → 401) [INF]. A ``drop-chunk:<file name>:N`` fault fails
  a chunk (500; the offset stays).
* Backup: GraphQL ``createUploadTask(data: UploadTaskCreateInput!)`` →
  ``{id, current_chunk, chunk_size}`` (walkthrough; :mod:`voyager.sim.tower.graphql_api`),
  then ``POST /v2/api/upload-cloudtower-application-package`` (OpenAPI: multipart
  ``file``, ``upload_task_id``, ``name``, ``size``, ``size_unit`` → ``[UploadTask]``)
  once per chunk [INF: one call per chunk, ``file`` = chunk ``current_chunk``
  (1-based), exactly ``chunk_size`` bytes but the last]; the task goes
  INITIALIZING → UPLOADING → SUCCESSED when ``size`` bytes arrived.
  ``/v2/api/get-upload-tasks`` lists the tasks (OpenAPI ``UploadTask``).
* A completed upload registers a ``CloudTowerApplicationPackage`` (OpenAPI;
  ``/v2/api/get-cloudtower-application-packages``): name (OBS ``observability``,
  backup the task's ``args.package_name``), version from the file name,
  architecture. The same name and version uploaded again is the same package.

Everything is kept in CloudTower's state (``tower.packages``); the REST calls are
served by :mod:`voyager.sim.tower.component_rest`.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from typing import Any, Callable, Optional

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.common import TowerError, cuid, iso
from voyager.sim.web.frontend import BadJson, Frontend, drain, json_response

PREFIX = "/api/ovm-operator/api/v3"
OBS_PACKAGE_NAME = "observability"
COMPLETED = "COMPLETED"
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
        self.packages: list[dict[str, Any]] = []

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

    # -- OBS chunks [INF] --------------------------------------------------------------------
    def chunked_upload(self, upload_id: str) -> dict[str, Any]:
        upload = next((u for u in self.chunked if u["id"] == upload_id), None)
        if upload is None:
            raise PackageError(5, f"chunked upload {upload_id} not found")
        return upload

    def send_chunk(self, upload_id: str, offset: Any, length: int) -> dict[str, Any]:
        upload = self.chunked_upload(upload_id)
        if upload["status"] != "UPLOADING":
            raise PackageError(9, f"chunked upload {upload_id} is {upload['status']}, not UPLOADING")
        try:
            start = int(offset)
        except (TypeError, ValueError):
            raise PackageError(3, "offset (query parameter) must be an integer") from None
        if start != int(upload["offset"]):
            raise PackageError(9, f"offset {start} does not match the upload's offset {upload['offset']}")
        if length <= 0:
            raise PackageError(3, "the chunk is empty")
        upload["offset"] = str(start + length)
        upload["update_time"] = rfc3339_nano(self.tower.clock.now())
        self.tower.changed()
        return dict(upload)

    def complete_chunked_upload(self, upload_id: str) -> dict[str, Any]:
        upload = self.chunked_upload(upload_id)
        if upload["status"] == COMPLETED:
            return dict(upload)
        if int(upload["offset"]) <= 0:
            raise PackageError(9, f"chunked upload {upload_id} has no data")
        package = self.register(OBS_PACKAGE_NAME, upload["origin_file_name"])
        upload.update(status=COMPLETED, package_id=package["id"], package_name=package["name"],
                      size=upload["offset"], update_time=rfc3339_nano(self.tower.clock.now()))
        self.tower.changed()
        return dict(upload)

    # -- upload-task chunks (backup) ---------------------------------------------------------
    def upload_task(self, task_id: Any) -> dict[str, Any]:
        task = next((t for t in self.tasks if t["id"] == task_id), None)
        if task is None:
            raise TowerError(f"UploadTask {task_id} not found", status=404, code="UPLOAD_TASK_NOT_FOUND")
        return task

    def upload_task_chunk(self, task_id: Any, length: int) -> dict[str, Any]:
        task = self.upload_task(task_id)
        if task["status"] not in ("INITIALIZING", "UPLOADING"):
            raise TowerError(f"UploadTask {task_id} is {task['status']}", code="UPLOAD_TASK_FINISHED")
        done = (task["current_chunk"] - 1) * task["chunk_size"]
        expected = min(task["chunk_size"], task["size"] - done)
        if length != expected:
            raise TowerError(f"chunk {task['current_chunk']} of UploadTask {task_id} must be {expected} bytes, "
                             f"got {length}", code="UPLOAD_CHUNK_SIZE")
        task["current_chunk"] += 1
        task["status"] = "UPLOADING"
        now = self.tower.clock.now()
        task["updated_at"] = iso(now)
        if done + length >= task["size"]:
            task["status"] = "SUCCESSED"
            task["finished_at"] = iso(now)
            package = self.register(task["args"].get("package_name") or _stem(task["args"]["name"]),
                                    task["args"]["name"])
            task["package_id"] = package["id"]
        self.tower.changed()
        return task

    def render_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """OpenAPI ``UploadTask``."""
        return {"args": dict(task["args"]), "chunk_size": task["chunk_size"], "current_chunk": task["current_chunk"],
                "finished_at": task.get("finished_at"), "id": task["id"], "resource_type": task["resource_type"],
                "size": task["size"], "started_at": task["started_at"], "status": task["status"],
                "updatedAt": task.get("updated_at") or task["created_at"]}

    # -- application packages ---------------------------------------------------------------
    def register(self, name: str, file_name: str) -> dict[str, Any]:
        version = package_version(file_name)
        found = next((p for p in self.packages if p["name"] == name and p["version"] == version), None)
        if found is None:
            arch = "AARCH64" if re.search(r"aarch64|arm64", file_name, re.I) else "X86_64"
            found = {"id": cuid(), "name": name, "version": version, "architecture": arch, "file_name": file_name,
                     "created_at": self.tower.clock.now()}
            self.packages.append(found)
        return found

    def package(self, package_id: Any) -> Optional[dict[str, Any]]:
        return next((p for p in self.packages if p["id"] == package_id), None)

    def to_state(self) -> dict[str, Any]:
        return {"chunked": self.chunked, "tasks": self.tasks, "packages": self.packages}

    def load_state(self, state: dict[str, Any]) -> None:
        self.chunked = list(state.get("chunked") or [])
        self.tasks = list(state.get("tasks") or [])
        self.packages = list(state.get("packages") or [])


def package_version(file_name: str) -> str:
    """``Observability-X86_64-v1.4.2-release.20250926-24.tar.gz`` → ``1.4.2-release.20250926-24``;
    ``smtx-backup-dr-x86_64-2.2.1.tar.gz`` → ``2.2.1``."""
    stem = re.sub(r"\.(tar\.gz|tgz)$", "", file_name)
    m = re.search(r"(?:^|[-_])v?(\d+(?:\.\d+)+.*)$", stem)
    return m.group(1) if m else stem


def _stem(file_name: str) -> str:
    return re.sub(r"[-_]v?\d.*$", "", file_name)


_HTTP = {3: 400, 5: 404, 9: 400, 16: 401}


class OvmOperatorFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map([
        Rule(f"{PREFIX}/chunkedUploads", methods=["POST"], endpoint="chunked_uploads"),
        Rule(f"{PREFIX}/chunkedUploads/<upload_id>", methods=["GET"], endpoint="get_upload"),
        Rule(f"{PREFIX}/chunkedUploads/<upload_id>:upload", methods=["POST"], endpoint="upload_chunk"),
        Rule(f"{PREFIX}/chunkedUploads/<upload_id>:complete", methods=["POST"], endpoint="complete"),
    ])

    @property
    def packages(self) -> PackageUploads:
        return self.world.tower.packages

    def _call(self, request: Request, fn: Callable[[], Any]) -> Response:
        with self.world.lock:
            try:
                if self.world.tower.authenticate(request.headers.get("Authorization")) is None:
                    drain(request)
                    raise PackageError(16, "unauthenticated: missing or invalid token")
                result = fn()
            except PackageError as exc:
                drain(request)
                return json_response({"code": exc.code, "message": exc.message, "details": []},
                                     _HTTP.get(exc.code, 500))
        return json_response(result)

    def chunked_uploads(self, request: Request, machine) -> Response:
        def run() -> dict[str, Any]:
            try:
                body = self.json_body(request)
            except BadJson as exc:
                raise PackageError(3, f"request body is not valid JSON ({exc})") from None
            return self.packages.start_chunked_upload(body)

        return self._call(request, run)

    def get_upload(self, request: Request, machine, upload_id: str) -> Response:
        return self._call(request, lambda: dict(self.packages.chunked_upload(upload_id)))

    def upload_chunk(self, request: Request, machine, upload_id: str) -> Response:
        def run() -> dict[str, Any]:
            upload = self.packages.chunked_upload(upload_id)
            length = len(request.get_data(cache=False))
            if self.world.faults.take("drop-chunk", upload["origin_file_name"]):
                raise PackageError(13, "simulated failure of this chunk (drop-chunk fault)")
            return self.packages.send_chunk(upload_id, request.args.get("offset"), length)

        return self._call(request, run)

    def complete(self, request: Request, machine, upload_id: str) -> Response:
        def run() -> dict[str, Any]:
            drain(request)
            return self.packages.complete_chunked_upload(upload_id)

        return self._call(request, run)


FRONTENDS = [OvmOperatorFrontend]
