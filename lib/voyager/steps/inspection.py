"""Step 08: CloudTower's inspection center (巡检中心) — the job, its Word export,
and the inspector's verdict on each item.

Walkthrough step 08: ``POST /api/inspector/api/v3/jobs`` with the fixed version
and item list for the cluster (``cluster_uuids`` = the cluster's ``local_id``);
``POST .../jobs/{id}:exportReport?format=word`` with the export item list and
``graph_duration_months: 6``; ``GET .../export/status`` every second until
``EXPORT_SUCCEEDED``; ``GET /api/v1/export/download`` into the artifacts folder.

Not in the walkthrough [INF]: ``GET /api/inspector/api/v3/jobs/{id}`` for the
job's progress (``status``, ``progress``) and per-item ``results``
(``{item_name, display_name, status: PASS | WARNING | FAIL, value, advice}`` per
cluster). When the job answer carries no results, the verdicts are read from the
exported Word document (python-docx): a table row naming the item (its key or
its Chinese name) with a verdict column (headers in ``REPORT_HEADERS``).

Rerun rules (run state section ``inspection``: ``job_id``, ``cluster``,
``session``, ``finished``, ``filename``, ``open`` — the items that did not
pass): a job in flight is followed, never started twice; within one pytest
session the job is run once; a new session reuses the last finished job when no
item was left open, and runs one new inspection when some item was open (the
cause may have been fixed) — never one per item.
"""
from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from voyager.clients import ApiError, TransportError
from voyager.clients.inspector import InspectorClient
from voyager.steps.config import StepError
from voyager.steps.inspection_items import (EXPORT_ITEMS, GRAPH_DURATION_MONTHS, INSPECTOR_VERSION, JOB_ITEMS,
                                            NAMES, chinese_name)
from voyager.waiters import epoch_of, wait_for

LOG = logging.getLogger("voyager.inspection")

STATE = "inspection"
JOB_TIMEOUT = 3600.0
EXPORT_TIMEOUT = 900.0
PASS, WARNING, FAIL = "pass", "warning", "fail"
VERDICTS = {"PASS": PASS, "PASSED": PASS, "NORMAL": PASS, "OK": PASS, "通过": PASS, "正常": PASS,
            "WARNING": WARNING, "WARN": WARNING, "警告": WARNING, "注意": WARNING,
            "FAIL": FAIL, "FAILED": FAIL, "ERROR": FAIL, "CRITICAL": FAIL, "不通过": FAIL, "异常": FAIL, "失败": FAIL}
VERDICT_TEXT = {PASS: "通过", WARNING: "警告", FAIL: "不通过"}
JOB_DONE = ("SUCCEEDED", "JOB_SUCCEEDED", "FINISHED", "DONE", "COMPLETED")
JOB_FAILED = ("FAILED", "JOB_FAILED", "ERROR", "CANCELLED")
# [INF] the column headers of the report's item table
REPORT_HEADERS = {"verdict": ("结果", "检查结果", "巡检结果", "状态", "结论"),
                  "value": ("检查值", "当前值", "值", "检查项值", "详情"),
                  "advice": ("建议", "处理建议", "修复建议")}


@dataclass
class ItemResult:
    item: str
    name: str
    verdict: str  # pass | warning | fail
    value: str
    advice: str
    source: str  # "job" (inspector API) | "report" (the exported Word document)

    @property
    def verdict_text(self) -> str:
        return VERDICT_TEXT[self.verdict]


@dataclass
class Inspection:
    """What one session's inspection produced (see :func:`run_inspection`)."""

    job_id: str
    cluster: str
    how: str
    job: dict[str, Any] = field(default_factory=dict)
    filename: Optional[str] = None
    zip_path: Optional[Path] = None
    document_name: Optional[str] = None
    results: Optional[dict[str, ItemResult]] = None
    results_source: Optional[str] = None
    unavailable: Optional[str] = None  # why per-item verdicts could not be read


def export_options(local_id: str) -> list[dict[str, Any]]:
    return [{"cluster_uuid": local_id, "items_names": list(EXPORT_ITEMS), "graph_duration_months": GRAPH_DURATION_MONTHS}]


# --------------------------------------------------------------------------- the job
def ensure_job(inspector: InspectorClient, local_id: str, run_state, session: str) -> tuple[str, str]:
    """The job of this session: followed when recorded (same session, or unfinished),
    reused when finished with no open item, else a new one. Returns (job id, how)."""
    record = run_state.section(STATE)
    if record and record.get("job_id") and record.get("cluster") == local_id:
        if record.get("session") == session:
            return record["job_id"], f"沿用本次运行的巡检任务 {record['job_id']}"
        if not record.get("finished"):
            run_state.update(STATE, {"session": session})
            return record["job_id"], f"继续跟踪未完成的巡检任务 {record['job_id']}"
        if not record.get("open"):
            run_state.update(STATE, {"session": session})
            return record["job_id"], f"上次巡检任务 {record['job_id']} 全部通过，沿用其结果"
    job = inspector.create_job([local_id], JOB_ITEMS, version=INSPECTOR_VERSION)
    run_state.delete(STATE)
    run_state.update(STATE, {"job_id": job["id"], "cluster": local_id, "session": session, "finished": False,
                             "open": []})
    reason = f"（上次有 {len(record['open'])} 项未通过，重新巡检）" if record and record.get("open") else ""
    return job["id"], f"已创建巡检任务 {job['id']}（{len(JOB_ITEMS)} 项）{reason}"


def wait_job(inspector: InspectorClient, job_id: str, *, timeout: float = JOB_TIMEOUT, **kwargs: Any) -> dict[str, Any]:
    """Follow the job's progress [INF: ``GET /api/v3/jobs/{id}``]. An inspector that
    does not serve it (404/405/501) ends the wait at once: the export waits for the job."""
    def probe() -> dict[str, Any]:
        try:
            return inspector.job(job_id)
        except ApiError as exc:
            if exc.status in (404, 405, 501):
                return {"status": "UNKNOWN", "unsupported": f"HTTP {exc.status}"}
            raise

    def done(job: dict[str, Any]) -> bool:
        return job.get("status") in JOB_DONE or bool(job.get("unsupported"))

    def progress(job: dict[str, Any]) -> str:
        pct = job.get("progress")
        return f"状态 {job.get('status')}" + (f"，进度 {float(pct) * 100:.0f}%" if isinstance(pct, (int, float)) else "")

    def fraction(job: dict[str, Any]) -> Optional[float]:
        pct = job.get("progress")
        return float(pct) if isinstance(pct, (int, float)) and not isinstance(pct, bool) else None

    kwargs.setdefault("started", lambda job: epoch_of(job.get("create_time")))
    return wait_for(f"巡检任务 {job_id} 完成", probe, done, timeout, interval=kwargs.pop("interval", 0.5),
                    max_interval=kwargs.pop("max_interval", 15.0), progress=progress, fraction=fraction,
                    failed=lambda job: f"任务状态 {job.get('status')}" if job.get("status") in JOB_FAILED else None,
                    retry_on=_transient, **kwargs)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) or (isinstance(exc, ApiError) and (exc.status or 0) >= 500)


# --------------------------------------------------------------------------- the export
def export_report(inspector: InspectorClient, job_id: str, local_id: str, dest_dir: Path, run_state, *,
                  timeout: float = EXPORT_TIMEOUT) -> tuple[str, Path]:
    """Request the Word export (the recorded one when still downloadable), await
    EXPORT_SUCCEEDED, download the zip into ``dest_dir``. Returns (filename, path)."""
    filename = run_state.get(STATE, "filename")
    if filename:
        try:
            if inspector.export_status(filename) == "EXPORT_FAILED":
                filename = None
        except ApiError as exc:
            if exc.status != 404:
                raise
            filename = None
    if not filename:
        filename = inspector.export(job_id, export_options(local_id))
        run_state.update(STATE, {"filename": filename})
    inspector.wait_export(filename, timeout=timeout, retry_on=_transient)
    Path(dest_dir).mkdir(parents=True, exist_ok=True)
    path = inspector.download(filename, Path(dest_dir))
    return filename, path


def open_report(path: Path) -> tuple[str, Any]:
    """The report document in the downloaded zip: (member name, python-docx Document)."""
    from docx import Document

    if not zipfile.is_zipfile(path):
        raise StepError(f"下载的巡检报告 {path} 不是有效的 zip 文件")
    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
        if bad is not None:
            raise StepError(f"巡检报告 {path.name} 中的 {bad} 已损坏（CRC 错误）")
        docs = [n for n in zf.namelist() if n.lower().endswith(".docx")]
        if not docs:
            raise StepError(f"巡检报告 {path.name} 中没有 Word 文档（.docx），内容：{', '.join(zf.namelist()) or '空'}")
        try:
            return docs[0], Document(io.BytesIO(zf.read(docs[0])))
        except Exception as exc:  # noqa: BLE001 - python-docx raises several kinds
            raise StepError(f"巡检报告中的 {docs[0]} 无法用 python-docx 打开：{type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------- verdicts
def _verdict(text: Any) -> Optional[str]:
    return VERDICTS.get(str(text or "").strip().upper()) or VERDICTS.get(str(text or "").strip())


def results_from_job(job: dict[str, Any], local_id: str) -> Optional[dict[str, ItemResult]]:
    """Per-item results in the job answer [INF shape], or None when it has none."""
    groups = job.get("results")
    if not isinstance(groups, list):
        return None
    out: dict[str, ItemResult] = {}
    for group in groups:
        if not isinstance(group, dict) or group.get("cluster_uuid") not in (None, local_id):
            continue
        for row in group.get("items") or []:
            verdict = _verdict(row.get("status"))
            item = row.get("item_name")
            if item and verdict:
                out[item] = ItemResult(item, row.get("display_name") or chinese_name(item), verdict,
                                       str(row.get("value") or ""), str(row.get("advice") or ""), "job")
    return out or None


def results_from_report(document) -> Optional[dict[str, ItemResult]]:
    """Per-item verdicts from the report's tables: a header row with a verdict column
    (``REPORT_HEADERS``), rows naming an item by key or Chinese name. None when no table fits."""
    by_name = {name: item for item, name in NAMES.items()}
    out: dict[str, ItemResult] = {}
    for table in document.tables:
        rows = [[c.text.strip() for c in r.cells] for r in table.rows]
        if not rows:
            continue
        header = rows[0]
        cols = {key: next((i for i, h in enumerate(header) if h in names), None)
                for key, names in REPORT_HEADERS.items()}
        if cols["verdict"] is None:
            continue
        for row in rows[1:]:
            item = next((c for c in row if c in NAMES), None) or next((by_name[c] for c in row if c in by_name), None)
            verdict = _verdict(row[cols["verdict"]]) if cols["verdict"] < len(row) else None
            if not item or not verdict:
                continue

            def col(key: str) -> str:
                i = cols[key]
                return row[i] if i is not None and i < len(row) else ""

            name = next((c for c in row if by_name.get(c) == item), chinese_name(item))
            out[item] = ItemResult(item, name, verdict, col("value"), col("advice"), "report")
    return out or None


def item_results(job: dict[str, Any], local_id: str, document) -> tuple[Optional[dict[str, ItemResult]], str]:
    """(results, source or why unavailable): the job's results first, else the report's."""
    from_job = results_from_job(job, local_id)
    if from_job:
        return from_job, "巡检接口（GET /api/v3/jobs/{id} 的 results）"
    from_report = results_from_report(document) if document is not None else None
    if from_report:
        return from_report, "导出的 Word 报告（python-docx 读取表格）"
    return None, ("巡检接口没有返回逐项结果，导出的 Word 报告中也没有可识别的巡检项表格"
                  "（需要含“结果”列、按巡检项名称列出的表格）")


def record_open(run_state, item: str, verdict: Optional[str]) -> None:
    """Keep the run state's list of items that did not pass (what makes a new session inspect again)."""
    before = sorted(run_state.get(STATE, "open") or [])
    open_items = set(before)
    if verdict == FAIL:
        open_items.add(item)
    else:
        open_items.discard(item)
    if sorted(open_items) != before:  # one write per change, not one per item
        run_state.update(STATE, {"open": sorted(open_items)})


def run_inspection(inspector: InspectorClient, local_id: str, run_state, session: str, dest_dir: Path, *,
                   job_timeout: float = JOB_TIMEOUT, export_timeout: float = EXPORT_TIMEOUT) -> Inspection:
    """Job (created or followed), its progress, the export downloaded and opened, the verdicts read."""
    job_id, how = ensure_job(inspector, local_id, run_state, session)
    result = Inspection(job_id, local_id, how)
    result.job = wait_job(inspector, job_id, timeout=job_timeout)
    result.filename, result.zip_path = export_report(inspector, job_id, local_id, dest_dir, run_state,
                                                     timeout=export_timeout)
    run_state.update(STATE, {"finished": True})
    result.document_name, document = open_report(result.zip_path)
    result.results, text = item_results(result.job, local_id, document)
    if result.results is None:
        result.unavailable = text
    else:
        result.results_source = text
    return result
