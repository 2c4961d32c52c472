"""Inspector (巡检中心) front-end on the CloudTower address: ``/api/inspector/...``.

Walkthrough step 08:

* ``POST /api/inspector/api/v3/jobs`` ``{version, cluster_uuids, user_defined_items_names}``
  → the job ``{id, version, cluster_uuids, cluster_names, user_defined_items_names}``;
* ``POST /api/inspector/api/v3/jobs/{id}:exportReport?format=word`` ``{options: [...]}``
  → ``{filename: "InspectorReport-<time>-<id>.zip"}``;
* ``GET /api/inspector/api/v3/export/status?filename=`` → ``{filename, status}``
  (``EXPORT_RUNNING`` → ``EXPORT_SUCCEEDED``);
* ``GET /api/inspector/api/v1/export/download?filename=`` → the zip;
* ``GET /api/inspector/api/v3/jobs/{id}`` [INF] (not in the walkthrough) → the job
  with ``status`` RUNNING → SUCCEEDED, ``progress`` and, once finished,
  ``results`` (per cluster, per item: status PASS | WARNING | FAIL, value, advice).

The inspector is a grpc-gateway service: errors are ``{code, message, details}``
(grpc codes: 3 invalid argument → 400, 5 not found → 404, 9 failed
precondition → 400, 16 unauthenticated → 401) [INF]. The CloudTower token is
required (``Authorization``).
"""
from __future__ import annotations

from typing import Any, Callable

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyager.sim.tower.inspection import InspectorError
from voyager.sim.web.frontend import BadJson, Frontend, drain, json_response

PREFIX = "/api/inspector/api"
HTTP_STATUS = {3: 400, 5: 404, 9: 400, 16: 401}


def _error(exc: InspectorError) -> Response:
    return json_response({"code": exc.code, "message": exc.message, "details": []},
                         HTTP_STATUS.get(exc.code, 500))


class InspectorFrontend(Frontend):
    kinds = ("tower",)
    url_map = Map([
        Rule(f"{PREFIX}/v3/jobs", methods=["POST"], endpoint="create_job"),
        Rule(f"{PREFIX}/v3/jobs/<job_id>:exportReport", methods=["POST"], endpoint="export_report"),
        Rule(f"{PREFIX}/v3/jobs/<job_id>", methods=["GET"], endpoint="get_job"),
        Rule(f"{PREFIX}/v3/export/status", methods=["GET"], endpoint="export_status"),
        Rule(f"{PREFIX}/v1/export/download", methods=["GET"], endpoint="download"),
    ])

    @property
    def inspector(self):
        return self.world.tower.inspector

    def _call(self, request: Request, fn: Callable[[], Any]) -> Response:
        with self.world.lock:
            try:
                if self.world.tower.authenticate(request.headers.get("Authorization")) is None:
                    drain(request)
                    raise InspectorError(16, "unauthenticated: missing or invalid token")
                result = fn()
            except InspectorError as exc:
                return _error(exc)
        return result if isinstance(result, Response) else json_response(result)

    def _body(self, request: Request) -> Any:
        try:
            return self.json_body(request)
        except BadJson as exc:
            raise InspectorError(3, f"request body is not valid JSON ({exc})") from None

    def create_job(self, request: Request, machine) -> Response:
        def run() -> dict[str, Any]:
            self.world.tower.advance()
            return self.inspector.render_job(self.inspector.create_job(self._body(request)))

        return self._call(request, run)

    def get_job(self, request: Request, machine, job_id: str) -> Response:
        return self._call(request, lambda: self.inspector.job_status(job_id))

    def export_report(self, request: Request, machine, job_id: str) -> Response:
        def run() -> dict[str, Any]:
            filename = self.inspector.export(job_id, request.args.get("format"), self._body(request))
            return {"filename": filename}

        return self._call(request, run)

    def export_status(self, request: Request, machine) -> Response:
        def run() -> dict[str, Any]:
            filename = request.args.get("filename")
            return {"filename": filename, "status": self.inspector.export_status(filename)}

        return self._call(request, run)

    def download(self, request: Request, machine) -> Response:
        def run() -> Response:
            filename = request.args.get("filename") or ""
            data = self.inspector.download(filename)
            resp = Response(data, status=200, mimetype="application/zip")
            resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
            return resp

        return self._call(request, run)


FRONTENDS = [InspectorFrontend]
