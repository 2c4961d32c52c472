"""Every wait of the project: :func:`wait_for` and the typed helpers built on it.

``wait_for`` polls ``probe()`` until ``until(state)``; the interval starts short
and grows (x ``backoff``) toward ``max_interval`` so a finished operation is
noticed quickly without hammering the API. ``failed(state)`` ends the wait early
(:class:`WaitFailed` naming the state); running out of time raises
:class:`WaitTimeout` naming what was awaited, for how long and the last state
seen. Progress is logged (logger ``voyager.wait``) at a steady cadence, so
pytest's live log shows long waits moving. Messages are Chinese first and
redacted. ``clock``/``sleep`` are injectable for tests.
"""
from __future__ import annotations

import json
import logging
import shlex
import time
from typing import Any, Callable, Iterable, Optional, Sequence

from voyager.redact import REDACTOR, RedactedError

LOG = logging.getLogger("voyager.wait")

DEFAULT_INTERVAL = 1.0
DEFAULT_MAX_INTERVAL = 15.0
DEFAULT_BACKOFF = 1.5
DEFAULT_REPORT_EVERY = 15.0

_NOTHING = object()


class WaitError(RedactedError):
    """Base of wait errors."""


class WaitTimeout(WaitError):
    def __init__(self, describe: str, timeout: float, elapsed: float, last_state: Any, attempts: int):
        self.describe, self.timeout, self.elapsed = describe, timeout, elapsed
        self.last_state = describe_state(last_state)
        self.attempts = attempts
        super().__init__(
            f"等待超时：{describe}，已等待 {format_duration(elapsed)}（上限 {format_duration(timeout)}，"
            f"查询 {attempts} 次），最后状态：{self.last_state}"
            f" (timed out waiting for: {describe})"
        )


class WaitFailed(WaitError):
    def __init__(self, describe: str, state: Any, reason: str, elapsed: float):
        self.describe, self.elapsed = describe, elapsed
        self.state = describe_state(state)
        self.reason = reason
        super().__init__(
            f"{describe} 失败：{reason}（已等待 {format_duration(elapsed)}），状态：{self.state}"
            f" (wait ended in a failed state)"
        )


class ProbeError:
    """The state recorded when a probe raised a tolerated (transient) error."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __repr__(self) -> str:
        return f"查询失败 (probe error): {REDACTOR.redact_exception(self.exc)}"


def describe_state(state: Any, limit: int = 400) -> str:
    """A short, redacted rendering of a probed state."""
    if state is _NOTHING:
        return "（尚未获得任何状态 / no state seen）"
    if isinstance(state, ProbeError):
        text = repr(state)
    elif isinstance(state, (dict, list)):
        text = json.dumps(REDACTOR.redact_obj(state), ensure_ascii=False, default=str)
    else:
        text = REDACTOR.redact(str(state)).strip()
        if len(text) > limit:  # the end of a text (a log tail) is what matters
            return "…" + text[-limit:]
    return text if len(text) <= limit else text[:limit] + "…"


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} 秒" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f} 秒"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} 分 {sec} 秒"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分"


def _transient_predicate(retry_on: Any) -> Callable[[BaseException], bool]:
    if retry_on is None:
        return lambda exc: False
    if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
        return lambda exc: isinstance(exc, retry_on)
    if isinstance(retry_on, tuple):
        return lambda exc: isinstance(exc, retry_on) if retry_on else False
    if callable(retry_on):
        return retry_on
    raise TypeError("retry_on must be exception types or a predicate")


def wait_for(describe: str, probe: Callable[[], Any], until: Callable[[Any], bool], timeout: float,
             interval: float = DEFAULT_INTERVAL, max_interval: float = DEFAULT_MAX_INTERVAL,
             progress: Optional[Callable[[Any], Optional[str]]] = None,
             failed: Optional[Callable[[Any], Any]] = None, *,
             backoff: float = DEFAULT_BACKOFF, report_every: float = DEFAULT_REPORT_EVERY,
             retry_on: Any = (), clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep, logger: logging.Logger = LOG) -> Any:
    """Poll until ``until(state)``; return the final state.

    ``failed(state)`` returning something truthy ends the wait with
    :class:`WaitFailed` (a string return value is used as the reason).
    ``progress(state)`` returns the text logged every ``report_every`` seconds
    (default: the state itself). Exceptions from ``probe`` matching ``retry_on``
    (exception types or a predicate) are transient: they become the last state and
    polling goes on."""
    transient = _transient_predicate(retry_on)
    start = clock()
    deadline = start + float(timeout)
    delay = max(0.0, float(interval))
    ceiling = max(delay, float(max_interval))
    last: Any = _NOTHING
    last_report: Optional[float] = None
    attempts = 0
    logger.info("开始等待：%s（最长 %s）", describe, format_duration(timeout))
    while True:
        attempts += 1
        try:
            state = probe()
        except Exception as exc:  # noqa: BLE001 - filtered right below
            if not transient(exc):
                raise
            state = ProbeError(exc)
        else:
            reason = failed(state) if failed is not None else None
            if reason:
                text = reason if isinstance(reason, str) else f"状态 {describe_state(state)}"
                raise WaitFailed(describe, state, text, clock() - start)
            if until(state):
                logger.info("完成：%s（用时 %s）", describe, format_duration(clock() - start))
                return state
        last = state
        now = clock()
        if last_report is None or now - last_report >= report_every:
            last_report = now
            text = None
            if progress is not None and not isinstance(state, ProbeError):
                text = progress(state)
            logger.info("等待中：%s — %s（已等待 %s）", describe,
                        REDACTOR.redact(text) if text else describe_state(state), format_duration(now - start))
        if now >= deadline:
            raise WaitTimeout(describe, timeout, now - start, last, attempts)
        sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * backoff, ceiling)


# -- progress helpers ---------------------------------------------------------------------------
def stage_text(current: Any, total: Any, info: Any = None) -> str:
    """``阶段 3/7（43%） prepare_network`` — deploy stages and the like."""
    try:
        cur, tot = int(current), int(total)
        pct = f"（{cur * 100 // tot}%）" if tot > 0 else ""
        text = f"阶段 {cur}/{tot}{pct}"
    except (TypeError, ValueError):
        text = f"阶段 {current}/{total}"
    return f"{text} {info}" if info else text


MIB = 1024 * 1024


class TransferProgress:
    """Progress of an upload/download, logged at a steady cadence:
    ``上传 X：45%（360.0/800.0 MiB），12.3 MiB/s，预计剩余 36 秒``."""

    def __init__(self, describe: str, total_bytes: int, *, report_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = LOG):
        self.describe = describe
        self.total = max(0, int(total_bytes))
        self.done = 0
        self.report_every = report_every
        self.clock = clock
        self.logger = logger
        self.started = clock()
        self._last_report: Optional[float] = None

    def advance(self, nbytes: int) -> None:
        self.update(self.done + int(nbytes))

    def update(self, done_bytes: int) -> None:
        self.done = max(0, int(done_bytes))
        now = self.clock()
        if self._last_report is None or now - self._last_report >= self.report_every:
            self._last_report = now
            self.logger.info("%s", self.text())

    def rate(self) -> float:
        """Bytes per second since the start."""
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        pct = (self.done * 100 // self.total) if self.total else 100
        rate = self.rate()
        parts = [f"{self.describe}：{pct}%（{self.done / MIB:.1f}/{self.total / MIB:.1f} MiB）",
                 f"{rate / MIB:.1f} MiB/s"]
        remaining = self.total - self.done
        if remaining > 0 and rate > 0:
            parts.append(f"预计剩余 {format_duration(remaining / rate)}")
        return "，".join(parts)

    def finish(self) -> None:
        self.done = max(self.done, self.total)
        elapsed = self.clock() - self.started
        self.logger.info("%s：完成 %.1f MiB，用时 %s，平均 %.1f MiB/s", self.describe, self.done / MIB,
                         format_duration(elapsed), (self.done / elapsed / MIB) if elapsed > 0 else 0.0)


# -- typed helpers --------------------------------------------------------------------------------
def _transient(exc: BaseException) -> bool:
    """Errors a long wait rides out: transport failures and 5xx answers."""
    from voyager.clients.errors import ApiError, TransportError

    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and exc.status is not None and exc.status >= 500


def job_reason(job: dict[str, Any]) -> str:
    """Why a fisheye job failed, from whichever of ``error_msg``, ``error``
    (text or ``{msg}``), failed ``task_list`` entries and ``event`` it carries
    (API-FACTS: the walkthrough does not show a failed job)."""
    parts: list[str] = []
    for key in ("error_code", "error_msg"):
        if job.get(key):
            parts.append(str(job[key]))
    err = job.get("error")
    if isinstance(err, dict):
        err = err.get("msg") or err.get("message") or (err or None)
    if err:
        parts.append(describe_state(err, 200))
    for task in job.get("task_list") or []:
        if isinstance(task, dict) and str(task.get("state", "")).lower() == "failed":
            parts.append(" ".join(str(task[k]) for k in ("error_code", "msg") if task.get(k)) or "子任务失败")
    if not parts and job.get("event"):
        parts.append(describe_state(job["event"], 200))
    return "；".join(parts) or "（作业没有给出原因 / no reason given）"


def wait_job(fisheye: Any, job_id: str, *, timeout: float = 1800.0, interval: float = 1.0,
             max_interval: float = 10.0, **kwargs: Any) -> dict[str, Any]:
    """Wait for a fisheye job (``pending → processing → done | failed``); returns the job.
    A failed job ends the wait with its reason (:func:`job_reason`)."""
    def failed(job: dict[str, Any]) -> Optional[str]:
        if job.get("state") == "failed":
            return f"作业 {job.get('description') or ''} 状态 failed，原因：{job_reason(job)}"
        return None

    return wait_for(
        f"作业 {job_id} 完成", lambda: fisheye.job(job_id), lambda job: job.get("state") == "done",
        timeout, interval=interval, max_interval=max_interval,
        progress=lambda job: f"{job.get('description') or '-'} 状态 {job.get('state')}",
        failed=failed, retry_on=kwargs.pop("retry_on", _transient), **kwargs,
    )


def wait_deploy(fisheye: Any, host_ip: str, *, timeout: float = 7200.0, interval: float = 5.0,
                max_interval: float = 10.0, verify_service: str = "fisheye", **kwargs: Any) -> dict[str, Any]:
    """Wait for cluster deployment started through ``host_ip``: poll
    ``deploy_status`` while ``state == running`` (an error answer means it ended),
    then read ``deploy_verify``; raises :class:`WaitFailed` unless ``is_deployed``."""
    from voyager.clients.errors import ApiError

    def probe() -> dict[str, Any]:
        try:
            data = fisheye.deployment("GET", "/api/v2/deployment/host/deploy_status", params={"host_ip": host_ip})
        except ApiError as exc:
            if exc.status is not None and exc.status >= 500 and exc.ec.startswith("HTTP_"):
                raise
            return {"state": "ended", "answer": exc.ec}
        return data if isinstance(data, dict) else {"state": "ended", "answer": data}

    def progress(s: dict[str, Any]) -> str:
        return stage_text(s.get("current_stage"), s.get("total_stages"), s.get("stage_info")) \
            if s.get("total_stages") else f"状态 {s.get('state')}"

    describe = f"集群部署（经由主机 {host_ip}）"
    wait_for(describe, probe, lambda s: s.get("state") != "running", timeout, interval=interval,
             max_interval=max_interval, progress=progress, retry_on=kwargs.pop("retry_on", _transient), **kwargs)
    verify = fisheye.deployment("GET", "/api/v2/deployment/deploy_verify", service=verify_service,
                                idempotent=True)
    verify = verify if isinstance(verify, dict) else {}
    if not verify.get("is_deployed"):
        raise WaitFailed(describe, verify, "deploy_verify 返回 is_deployed=false，部署失败", 0.0)
    return verify


def wait_port(endpoints: Any, ip: str, port: int, *, timeout: float = 600.0, interval: float = 2.0,
              max_interval: float = 10.0, describe: Optional[str] = None, **kwargs: Any) -> bool:
    """Wait until TCP ``port`` of planned address ``ip`` accepts connections."""
    return wait_for(describe or f"{ip}:{port} 端口可连接", lambda: endpoints.tcp_open(ip, port), bool,
                    timeout, interval=interval, max_interval=max_interval,
                    progress=lambda is_open: "端口已开放" if is_open else "端口未开放",
                    retry_on=kwargs.pop("retry_on", _transient), **kwargs)


def wait_tower_tasks(tower: Any, ids: Sequence[str], *, timeout: float = 1800.0, interval: float = 2.0,
                     max_interval: float = 15.0, **kwargs: Any) -> list[dict[str, Any]]:
    """Wait until every CloudTower task in ``ids`` is SUCCESSED (FAILED ends the wait)."""
    wanted = [i for i in ids if i]
    if not wanted:
        return []

    def probe() -> list[dict[str, Any]]:
        answer = tower.rest("get-tasks", {"where": {"id_in": list(wanted)}})
        return answer if isinstance(answer, list) else []

    def failed(tasks: list[dict[str, Any]]) -> Optional[str]:
        bad = [t for t in tasks if t.get("status") == "FAILED"]
        if not bad:
            return None
        return "；".join(f"任务 {t.get('id')} 失败 {t.get('error_code') or ''} {t.get('error_message') or ''}".strip()
                        for t in bad)

    def done(tasks: list[dict[str, Any]]) -> bool:
        ok = {t.get("id") for t in tasks if t.get("status") == "SUCCESSED"}
        return all(i in ok for i in wanted)

    def progress(tasks: list[dict[str, Any]]) -> str:
        finished = sum(1 for t in tasks if t.get("status") == "SUCCESSED")
        pct = sum(float(t.get("progress") or 0) for t in tasks) / len(wanted) * 100
        return f"任务 {finished}/{len(wanted)} 完成，平均进度 {pct:.0f}%"

    return wait_for(f"CloudTower 任务 {', '.join(wanted)} 完成", probe, done, timeout, interval=interval,
                    max_interval=max_interval, progress=progress, failed=failed,
                    retry_on=kwargs.pop("retry_on", _transient), **kwargs)


def wait_cluster_connected(tower: Any, cluster_id: str, *, timeout: float = 1800.0, interval: float = 2.0,
                           max_interval: float = 15.0, **kwargs: Any) -> dict[str, Any]:
    """Wait until the CloudTower cluster's ``connect_state`` is CONNECTED."""
    def probe() -> dict[str, Any]:
        answer = tower.rest("get-clusters", {"where": {"id": cluster_id}})
        clusters = answer if isinstance(answer, list) else []
        return clusters[0] if clusters else {"connect_state": "(集群不存在 / not found)"}

    def progress(c: dict[str, Any]) -> str:
        reason = c.get("disconnected_reason")
        return f"connect_state={c.get('connect_state')}" + (f"，原因 {reason}" if reason else "")

    return wait_for(f"集群 {cluster_id} 关联到 CloudTower（CONNECTED）", probe,
                    lambda c: c.get("connect_state") == "CONNECTED", timeout, interval=interval,
                    max_interval=max_interval, progress=progress,
                    failed=lambda c: "集群正在被移除 (REMOVING)" if c.get("connect_state") == "REMOVING" else None,
                    retry_on=kwargs.pop("retry_on", _transient), **kwargs)


def wait_vm_guest_agent(fisheye: Any, vm_uuid: str, *, timeout: float = 3600.0, interval: float = 5.0,
                        max_interval: float = 20.0, **kwargs: Any) -> dict[str, Any]:
    """Wait until the VM's guest agent (SVT vmtools) reports ``ga_state == Running``."""
    def ga_state(vm: dict[str, Any]) -> Any:
        return (vm.get("guest_info") or {}).get("ga_state")

    return wait_for(f"虚拟机 {vm_uuid} 的 guest agent 运行", lambda: fisheye.vm(vm_uuid),
                    lambda vm: ga_state(vm) == "Running", timeout, interval=interval, max_interval=max_interval,
                    progress=lambda vm: f"status={vm.get('status')} ga_state={ga_state(vm)} "
                                        f"os={(vm.get('guest_info') or {}).get('os_version') or '-'}",
                    retry_on=kwargs.pop("retry_on", _transient), **kwargs)


def wait_installer_log(ssh: Any, path: str, marker: str, *, timeout: float = 3600.0, interval: float = 5.0,
                       max_interval: float = 30.0, failure_markers: Iterable[str] = (), lines: int = 200,
                       sudo: bool = False, **kwargs: Any) -> str:
    """Wait until ``marker`` shows in the last ``lines`` lines of the log at ``path``
    (read over SSH); a ``failure_markers`` line ends the wait. Returns the tail."""
    failures = [m for m in failure_markers if m]
    command = f"tail -n {int(lines)} {shlex.quote(path)}"

    def probe() -> str:
        result = ssh.sudo(command) if sudo else ssh.run(command)
        return result.stdout if result.exit_status == 0 else ""

    def last_line(text: str) -> str:
        rows = [r for r in text.splitlines() if r.strip()]
        return rows[-1] if rows else "（日志为空或尚未创建 / log empty）"

    def failed(text: str) -> Optional[str]:
        hit = next((m for m in failures if m in text), None)
        return f"日志出现失败标记 {hit!r}" if hit else None

    return wait_for(f"{path} 中出现 {marker!r}", probe, lambda text: marker in text, timeout,
                    interval=interval, max_interval=max_interval, progress=last_line, failed=failed,
                    retry_on=kwargs.pop("retry_on", _transient), **kwargs)
