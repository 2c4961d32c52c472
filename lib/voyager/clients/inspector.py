"""CloudTower's inspector (巡检中心): create a job, export its report, wait, download.

Paths are those of the walkthrough (step 08) under ``/api/inspector``; calls carry
the CloudTower token of the :class:`TowerClient` they are built on.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import requests

from voyager.clients.errors import ApiError, TransportError
from voyager.clients.tower import TowerClient
from voyager.waiters import wait_for

LOG = logging.getLogger(__name__)

PREFIX = "/api/inspector"
DEFAULT_VERSION = "1.1.1-rc.11"
EXPORT_SUCCEEDED = "EXPORT_SUCCEEDED"
EXPORT_FAILED = "EXPORT_FAILED"


class InspectorClient:
    SERVICE = "inspector"

    def __init__(self, tower: TowerClient):
        self.tower = tower

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.tower.call(method, PREFIX + path, service=self.SERVICE, **kwargs)

    def create_job(self, cluster_uuids: Iterable[str], items: Iterable[str], *,
                   version: str = DEFAULT_VERSION) -> dict[str, Any]:
        """``POST /api/v3/jobs`` → the job (``id`` ...)."""
        body = {"version": version, "cluster_uuids": list(cluster_uuids),
                "user_defined_items_names": list(items)}
        job = self._call("POST", "/api/v3/jobs", json=body)
        if not isinstance(job, dict) or not job.get("id"):
            raise ApiError("NO_JOB_ID", "巡检任务创建响应中没有 id (no job id)", job, "POST", PREFIX + "/api/v3/jobs")
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v3/jobs/{id}``."""
        answer = self._call("GET", f"/api/v3/jobs/{job_id}")
        return answer if isinstance(answer, dict) else {}

    def export(self, job_id: str, options: list[dict[str, Any]], *, fmt: str = "word") -> str:
        """``POST /api/v3/jobs/{id}:exportReport?format=word`` → the export file name."""
        path = f"/api/v3/jobs/{job_id}:exportReport"
        answer = self._call("POST", path, params={"format": fmt}, json={"options": options})
        filename = answer.get("filename") if isinstance(answer, dict) else None
        if not filename:
            raise ApiError("NO_FILENAME", "导出响应中没有 filename (no filename)", answer, "POST", PREFIX + path)
        return filename

    def export_status(self, filename: str) -> str:
        """``GET /api/v3/export/status?filename=`` → EXPORT_RUNNING | EXPORT_SUCCEEDED | EXPORT_FAILED."""
        answer = self._call("GET", "/api/v3/export/status", params={"filename": filename})
        return str(answer.get("status", "")) if isinstance(answer, dict) else ""

    def wait_export(self, filename: str, *, timeout: float = 900.0, interval: float = 1.0,
                    max_interval: float = 10.0, **kwargs: Any) -> str:
        """Wait until the export succeeded (raises on EXPORT_FAILED or timeout)."""
        return wait_for(
            f"巡检报告导出 {filename}",
            lambda: self.export_status(filename),
            lambda status: status == EXPORT_SUCCEEDED,
            timeout,
            interval=interval,
            max_interval=max_interval,
            failed=lambda status: f"导出状态 {status}" if status == EXPORT_FAILED else None,
            **kwargs,
        )

    def download(self, filename: str, dest: os.PathLike[str] | str, *, chunk_size: int = 1 << 20) -> Path:
        """``GET /api/v1/export/download?filename=`` streamed to ``dest`` (a file path,
        or a directory to hold ``filename``); written atomically. Returns the path."""
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / Path(filename).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        resp = self._call("GET", "/api/v1/export/download", params={"filename": filename}, stream=True)
        fd, tmp = tempfile.mkstemp(prefix=".download.", dir=str(dest.parent))
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in resp.iter_content(chunk_size=chunk_size):
                    if chunk:
                        fh.write(chunk)
                        size += len(chunk)
            os.replace(tmp, dest)
        except requests.RequestException as exc:
            Path(tmp).unlink(missing_ok=True)
            raise TransportError(f"下载巡检报告 {filename} 中断：{type(exc).__name__} (download interrupted)",
                                 target=self.tower.ip) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            resp.close()
        LOG.info("已下载巡检报告 %s（%d 字节）到 %s", filename, size, dest)
        return dest
