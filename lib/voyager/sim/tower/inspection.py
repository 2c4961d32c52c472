"""CloudTower's inspection center (巡检中心): inspection jobs and report exports.

``world.tower.inspector``. A job inspects connected clusters, named by their
``local_id`` (the SMTX license serial, API-FACTS), for a list of known check
items; it runs ``JOB_SECONDS`` real seconds. An export of a job's report is
``EXPORT_RUNNING`` until the job has finished and ``EXPORT_SECONDS`` more have
passed, then ``EXPORT_SUCCEEDED``; the download is a zip built on demand
holding one Word document per exported cluster (python-docx): a summary and a
table with one row per exported item that the job inspected (``REPORT_COLUMNS``:
item, Chinese name, verdict 通过/警告/不通过, value, advice).

The items are judged when the job starts, on the simulated cluster's state
(:mod:`voyager.sim.tower.inspector_checks`: IPMI accounts, hosts, NICs, NTP, CPU
model; ``inspect-fail:<item glob>:N`` faults). ``GET /api/v3/jobs/{id}`` [INF]
answers the job's status, progress and, once finished, the per-item results.
"""
from __future__ import annotations

import datetime as dt
import io
import secrets
import string
import zipfile
from typing import Any, Optional

from voyager.sim.tower.inspector_checks import evaluate
from voyager.steps.inspection_items import JOB_ITEMS

from voyager.sim.tower.common import CONNECTED

JOB_SECONDS = 180.0
EXPORT_SECONDS = 30.0
FORMATS = ("word",)
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

# Check items the inspection center knows (the walkthrough's fixed lists).
ITEMS = frozenset(JOB_ITEMS)


class InspectorError(Exception):
    """Rendered in the grpc-gateway shape ``{code, message, details}``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def ksuid() -> str:
    """A 27-character base-62 id like the inspector's job ids."""
    return "".join(secrets.choice(_B62) for _ in range(27))


def _str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InspectorError(3, f"{field} must be a non-empty list of strings")
    return value


def _items(value: Any, field: str) -> list[str]:
    items = _str_list(value, field)
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        raise InspectorError(3, f"unknown inspection item {unknown[0]} in {field}")
    return items


class Inspector:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.jobs: dict[str, dict[str, Any]] = {}
        self.exports: dict[str, dict[str, Any]] = {}

    @property
    def clock(self):
        return self.tower.clock

    def _cluster_by_local_id(self, local_id: str) -> Optional[dict[str, Any]]:
        return next((c for c in self.tower.clusters
                     if c["local_id"] == local_id and c["connect_state"] == CONNECTED), None)

    def create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InspectorError(3, "request body must be an object")
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise InspectorError(3, "version is required")
        clusters = _str_list(body.get("cluster_uuids"), "cluster_uuids")
        for local_id in clusters:
            if self._cluster_by_local_id(local_id) is None:
                raise InspectorError(5, f"cluster {local_id} not found (cluster_uuids take the cluster's "
                                        "local_id, i.e. its SMTX serial)")
        items = _items(body.get("user_defined_items_names"), "user_defined_items_names")
        # the items are judged on the cluster as it is when the job starts
        results = {local_id: evaluate(self.tower.world, items) for local_id in clusters}
        job = {"id": ksuid(), "version": version, "cluster_uuids": list(clusters),
               "user_defined_items_names": list(items), "created_at": self.clock.now(), "results": results}
        self.jobs[job["id"]] = job
        self.tower.changed()
        return job

    def job_done(self, job: dict[str, Any]) -> bool:
        return self.clock.reached(job["created_at"], JOB_SECONDS)

    def render_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job as its creation answers it (walkthrough step 08)."""
        return {"id": job["id"], "version": job["version"], "cluster_uuids": job["cluster_uuids"],
                "cluster_names": {}, "user_defined_items_names": job["user_defined_items_names"]}

    def job_status(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v3/jobs/{id}`` [INF]: the creation answer plus ``status``
        (``RUNNING`` → ``SUCCEEDED``), ``progress`` (0..1) and, once finished,
        ``results``: per cluster the list of ``{item_name, display_name, status
        (PASS | WARNING | FAIL), value, advice}``."""
        job = self.jobs.get(job_id)
        if job is None:
            raise InspectorError(5, f"job {job_id} not found")
        done = self.job_done(job)
        out = self.render_job(job)
        out.update(status="SUCCEEDED" if done else "RUNNING",
                   progress=1.0 if done else round(self.clock.progress(job["created_at"], JOB_SECONDS), 2),
                   create_time=_stamp(job["created_at"]))
        if done:
            out["results"] = [{"cluster_uuid": local_id, "items": [dict(r) for r in rows]}
                              for local_id, rows in (job.get("results") or {}).items()]
        return out

    def export(self, job_id: str, fmt: Optional[str], body: Any) -> str:
        job = self.jobs.get(job_id)
        if job is None:
            raise InspectorError(5, f"job {job_id} not found")
        if fmt not in FORMATS:
            raise InspectorError(3, f"format must be one of {', '.join(FORMATS)}")
        if not isinstance(body, dict) or not isinstance(body.get("options"), list) or not body["options"]:
            raise InspectorError(3, "options must be a non-empty list")
        options = []
        for opt in body["options"]:
            if not isinstance(opt, dict) or opt.get("cluster_uuid") not in job["cluster_uuids"]:
                raise InspectorError(3, "each option needs a cluster_uuid of the job")
            months = opt.get("graph_duration_months")
            if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 12:
                raise InspectorError(3, "graph_duration_months must be an integer between 1 and 12")
            options.append({"cluster_uuid": opt["cluster_uuid"], "items_names": _items(opt.get("items_names"),
                                                                                       "items_names"),
                            "graph_duration_months": months})
        now = self.clock.now()
        stamp = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        filename = f"InspectorReport-{stamp}-{job_id}.zip"
        self.exports[filename] = {"job_id": job_id, "format": fmt, "options": options, "created_at": now}
        self.tower.changed()
        return filename

    def export_status(self, filename: Optional[str]) -> str:
        export = self.exports.get(filename or "")
        if export is None:
            raise InspectorError(5, f"export {filename} not found")
        job = self.jobs[export["job_id"]]
        job_end = job["created_at"] + self.clock.wall(JOB_SECONDS)
        start = max(job_end, export["created_at"])
        done = self.job_done(job) and self.clock.reached(start, EXPORT_SECONDS)
        return "EXPORT_SUCCEEDED" if done else "EXPORT_RUNNING"

    def download(self, filename: Optional[str]) -> bytes:
        if self.export_status(filename) != "EXPORT_SUCCEEDED":
            raise InspectorError(9, f"export {filename} is still running")
        export = self.exports[filename]
        job = self.jobs[export["job_id"]]
        info = self.tower.cluster_info() or {}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for opt in export["options"]:
                name = info.get("name") if info.get("license_serial") == opt["cluster_uuid"] else opt["cluster_uuid"]
                zf.writestr(f"InspectorReport-{name}.docx", _docx(job, opt, name, info))
        return buf.getvalue()

    def to_state(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "exports": self.exports}

    def load_state(self, state: dict[str, Any]) -> None:
        self.jobs = dict(state.get("jobs") or {})
        self.exports = dict(state.get("exports") or {})


REPORT_COLUMNS = ("巡检项", "名称", "结果", "检查值", "建议")
VERDICT_TEXT = {"PASS": "通过", "WARNING": "警告", "FAIL": "不通过"}


def _stamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _docx(job: dict[str, Any], opt: dict[str, Any], name: str, info: dict[str, Any]) -> bytes:
    """The Word report of one cluster (python-docx): a summary, then one table
    (columns ``REPORT_COLUMNS``) with a row per exported item."""
    from docx import Document

    rows = {r["item_name"]: r for r in (job.get("results") or {}).get(opt["cluster_uuid"], [])}
    doc = Document()
    doc.add_heading("SmartX 集群巡检报告", level=1)
    for line in (f"集群：{name}", f"集群序列号：{opt['cluster_uuid']}", f"版本：{info.get('version', '')}",
                 f"主机数：{len(info.get('hosts', []))}", f"巡检任务：{job['id']}（巡检版本 {job['version']}）",
                 f"图表时间范围：{opt['graph_duration_months']} 个月", f"巡检项：{len(opt['items_names'])}"):
        doc.add_paragraph(line)
    table = doc.add_table(rows=1, cols=len(REPORT_COLUMNS))
    for cell, title in zip(table.rows[0].cells, REPORT_COLUMNS):
        cell.text = title
    for item in opt["items_names"]:
        row = rows.get(item)
        if row is None:  # exported but not inspected by this job: no verdict to show
            continue
        cells = table.add_row().cells
        values = (item, row["display_name"], VERDICT_TEXT[row["status"]], row["value"], row["advice"])
        for cell, text in zip(cells, values):
            cell.text = str(text)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
