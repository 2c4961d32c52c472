"""Every wait of the project: :func:`wait_for` and the typed helpers built on it.

``wait_for`` polls ``probe()`` until ``until(state)``. Rules every wait follows:

* **Transient is not final.** An exception of ``probe`` matching ``retry_on``
  (by default :func:`is_transient`: 5xx answers, connection resets, read
  timeouts) is ridden out within the wait's timeout and counted; only
  ``failed(state)`` — an explicit terminal state the API reported — ends a wait
  as failed (:class:`WaitFailed`). Any other exception propagates unchanged.
* **Messages say what, how long, what was last seen.** :class:`WaitFailed` and
  :class:`WaitTimeout` name what was awaited, the time really waited (measured
  with the wait's own ``clock`` from its start to the failure, including the
  reads that established the failure), the last state seen (the ``progress``
  text of the last good state, e.g. ``阶段 4/9 …``) and, for a timeout, how many
  transient errors were ridden out (``期间 N 次临时错误``).
* **Pacing** is :mod:`voyager.pacing`'s one rule: the next poll comes after
  ``clamp(share × age, floor, cap)``, ``age`` counted from the operation's own
  start (``started``: an epoch timestamp or a function of the state reading it
  from the API's answer; else the wait's start), so an operation of duration
  ``D`` is noticed at most ``share × D`` late. ``interval``/``max_interval`` are
  the floor and cap in *API seconds* (scaled by the process-wide time scale,
  the simulator's speed in ``--sim`` runs; never below ``MIN_SLEEP`` wall);
  ``fraction(state)`` (the share done as the API reports it) places one poll just
  after the end the observed rate predicts. ``timeout`` is wall seconds, not scaled.

Progress is logged (texts from :mod:`voyager.progress`) (logger ``voyager.wait``) at a steady cadence, so pytest's
live log shows long waits moving. Messages are Chinese first and redacted.
``clock``/``sleep`` are injectable for tests.
"""
from __future__ import annotations

import itertools
import json
import logging
import shlex
import time
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from voyager.evidence import RECORDER
from voyager.pacing import MIN_SLEEP, PACING, SHARE, Pacer, configure, epoch_of  # noqa: F401 - re-exported
from voyager.progress import format_duration, stage_text
from voyager.redact import REDACTOR, RedactedError

LOG = logging.getLogger("voyager.wait")

DEFAULT_INTERVAL = 1.0  # API seconds: the floor of the pause between two polls
DEFAULT_MAX_INTERVAL = 15.0  # API seconds: its cap
DEFAULT_REPORT_EVERY = 15.0

_NOTHING = object()
_WAITS = itertools.count(1)  # ids of waits, for the evidence's poll marks

# when the awaited operation began: epoch seconds, or a function of a state returning them (or None)
Started = Union[None, float, Callable[[Any], Optional[float]]]


class WaitError(RedactedError):
    """Base of wait errors."""


def _transient_note(count: int, last_error: Any) -> str:
    if not count:
        return ""
    text = f"，期间 {count} 次临时错误"
    if last_error is not None:
        text += f"（最近一次：{describe_state(last_error, 200)}）"
    return text


class WaitTimeout(WaitError):
    def __init__(self, describe: str, timeout: float, elapsed: float, last_state: Any, attempts: int,
                 *, transient_errors: int = 0, last_error: Any = None, shown: Optional[str] = None):
        self.describe, self.timeout, self.elapsed = describe, timeout, elapsed
        self.last_state = shown if shown is not None else describe_state(last_state)
        self.attempts = attempts
        self.transient_errors = transient_errors
        super().__init__(
            f"等待超时：{describe}，已等待 {format_duration(elapsed)}（上限 {format_duration(timeout)}，"
            f"查询 {attempts} 次{_transient_note(transient_errors, last_error)}），最后状态：{self.last_state}"
            f" (timed out waiting for: {describe})"
        )


class WaitFailed(WaitError):
    def __init__(self, describe: str, state: Any, reason: str, elapsed: float, *, transient_errors: int = 0,
                 shown: Optional[str] = None):
        self.describe, self.elapsed = describe, elapsed
        self.state = shown if shown is not None else describe_state(state)
        self.reason = reason
        self.transient_errors = transient_errors
        super().__init__(
            f"{describe} 失败：{reason}（已等待 {format_duration(elapsed)}"
            f"{_transient_note(transient_errors, None)}），最后状态：{self.state}"
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


def is_transient(exc: BaseException) -> bool:
    """Errors a wait rides out: transport failures (resets, read timeouts,
    refused connections while a service restarts) and 5xx answers."""
    from voyager.clients.errors import ApiError, TransportError  # clients import the waiters

    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and exc.status is not None and exc.status >= 500


def _transient_predicate(retry_on: Any) -> Callable[[BaseException], bool]:
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
             fraction: Optional[Callable[[Any], Optional[float]]] = None,
             started: Started = None, progress_began: Optional[Callable[[Any], Optional[float]]] = None,
             share: float = SHARE, report_every: float = DEFAULT_REPORT_EVERY,
             retry_on: Any = None, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep, epoch: Optional[Callable[[], float]] = None,
             logger: logging.Logger = LOG, announce: bool = True) -> Any:
    """Poll until ``until(state)``; return the final state.

    ``failed(state)`` returning something truthy ends the wait with
    :class:`WaitFailed` (a string return value is used as the reason).
    ``progress(state)`` returns the text logged every ``report_every`` seconds
    and shown as the last state in error messages (default: the state itself).
    ``fraction(state)`` is the share of the operation done (0..1, None when
    unknown) used for pacing; ``progress_began(state)`` is when that share was 0, in
    epoch seconds, when the API says (a task's ``started_at``). ``started`` is when the awaited operation began,
    in epoch seconds (``epoch``'s clock: ``time.time``, or an injected ``clock``):
    a number, or a function of a state returning one or None (e.g. a job's
    ``ctime``); the pause before the next poll is :mod:`voyager.pacing`'s
    ``clamp(share × age, interval, max_interval)`` (API seconds, scaled).
    Exceptions from ``probe`` matching ``retry_on``
    (exception types or a predicate; default :func:`is_transient`, ``()`` for
    none) are transient: they are counted and polling goes on.
    ``announce=False`` logs the start and the end at DEBUG (short reads that
    only ride out transient errors)."""
    transient = _transient_predicate(is_transient if retry_on is None else retry_on)
    start = clock()
    deadline = start + float(timeout)
    pacer = Pacer.scaled(interval, max_interval, share=share, origin=start)
    now_epoch = epoch or (time.time if clock is time.monotonic else clock)

    def began(state: Any) -> None:
        """Tell the pacer the operation's own start (epoch) as a reading of our clock."""
        at = started(state) if callable(started) else started
        if isinstance(at, (int, float)) and not isinstance(at, bool):
            pacer.started(clock() - (now_epoch() - float(at)))

    if not callable(started):
        began(None)
    last: Any = _NOTHING
    last_error: Optional[ProbeError] = None
    errors = 0
    last_report: Optional[float] = None
    attempts = 0
    level = logging.INFO if announce else logging.DEBUG

    def shown(state: Any) -> str:
        text = progress(state) if progress is not None and state is not _NOTHING else None
        return REDACTOR.redact(text) if text else describe_state(state)

    wait_id = next(_WAITS)
    logger.log(level, "开始等待：%s（最长 %s）", describe, format_duration(timeout))
    while True:
        attempts += 1
        asked = clock()
        try:
            with RECORDER.poll(wait_id, attempts):  # the report shows a wait's first and last polls
                state = probe()
        except Exception as exc:  # noqa: BLE001 - filtered right below
            if not transient(exc):
                raise
            errors += 1
            last_error = ProbeError(exc)
            current: Any = last_error
        else:
            reason = failed(state) if failed is not None else None
            if reason:
                text = reason if isinstance(reason, str) else f"状态 {describe_state(state)}"
                raise WaitFailed(describe, state, text, clock() - start, transient_errors=errors,
                                 shown=shown(state))
            if until(state):
                logger.log(level, "完成：%s（用时 %s）", describe, format_duration(clock() - start))
                return state
            last = current = state
        now = clock()
        if not isinstance(current, ProbeError):
            if callable(started):
                began(current)
            if fraction is not None:
                pacer.observe((asked + now) / 2, fraction(current))  # the state as of mid-read
            began_at = progress_began(current) if progress_began is not None else None
            if isinstance(began_at, (int, float)) and not isinstance(began_at, bool):
                at = now - (now_epoch() - float(began_at))
                if at <= asked:  # a start after the read that saw it running: the cluster's clock is off
                    pacer.progress_began(at)
        else:
            pacer.observe(now, None)  # a failed read brought nothing new
        if last_report is None or now - last_report >= report_every:
            last_report = now
            logger.info("等待中：%s — %s（已等待 %s）", describe,
                        describe_state(current) if isinstance(current, ProbeError) else shown(current),
                        format_duration(now - start))
        if now >= deadline:
            raise WaitTimeout(describe, timeout, now - start, last, attempts, transient_errors=errors,
                              last_error=last_error, shown=shown(last))
        sleep(min(pacer.next_sleep(now), deadline - now))


def read_through(describe: str, read: Callable[[], Any], *, timeout: float = 120.0, interval: float = 2.0,
                 max_interval: float = 10.0, **kwargs: Any) -> Any:
    """One reading that rides out transient errors (:func:`is_transient`) for up
    to ``timeout`` seconds: for an observation whose answer decides what to do
    (e.g. "is a deployment running?"), where a 5xx must not read as "no"."""
    return wait_for(describe, read, lambda _: True, timeout, interval=interval, max_interval=max_interval,
                    announce=False, **kwargs)


# -- typed helpers --------------------------------------------------------------------------------
DEPLOY_STATUS = "/api/v2/deployment/host/deploy_status"
DEPLOY_VERIFY = "/api/v2/deployment/deploy_verify"
FAILED_STATES = ("failed", "error", "FAILED", "ERROR")


def _share(value: Any) -> Optional[float]:
    """A progress value as a fraction 0..1 (``0.4`` or ``40`` -> 0.4); None when not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value / 100.0 if value > 1 else max(0.0, float(value))


def _subtasks(task: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for key in ("subtasks", "sub_tasks", "task_list", "children"):
        found += [t for t in task.get(key) or [] if isinstance(t, dict)]
    return found


def _failed_tasks(tasks: Iterable[Any]) -> list[dict[str, Any]]:
    """Failed entries of a job's ``task_list``, their failed subtasks included (depth first)."""
    out = []
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if task.get("state") in FAILED_STATES or task.get("status") in FAILED_STATES:
            out.append(task)
        out += _failed_tasks(_subtasks(task))
    return out


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("msg") or value.get("message") or value.get("zh_CN") or value.get("en_US") or \
            (json.dumps(value, ensure_ascii=False, default=str) if value else "")
    return str(value).strip() if value not in (None, "") else ""


def job_failure_reason(job: dict[str, Any]) -> str:
    """The failure reason a fisheye job carries, from wherever it carries it:
    ``error_code``/``error_msg``/``error`` of the job and the failed entries
    (and subtasks) of ``task_list`` (``error_code``, ``msg``). Never the job's
    ``event`` (it describes what the job was asked to do, not why it failed)."""
    parts: list[str] = []
    for key in ("error_msg", "error"):
        text = _text(job.get(key))
        if text and not any(text in p for p in parts):
            parts.append(text)
    for task in _failed_tasks(job.get("task_list")):
        name = task.get("name") or task.get("description") or task.get("key") or ""
        text = next((_text(task.get(k)) for k in ("msg", "error_msg", "error", "message") if _text(task.get(k))), "")
        code = task.get("error_code") if task.get("error_code") != job.get("error_code") else ""
        label = f"子任务 {name}".strip() + (f"（{code}）" if code else "")
        entry = f"{label}：{text}" if text else label
        same = [i for i, p in enumerate(parts) if text and text in p]
        if same:  # the job repeats its task's reason: say it once, naming the task
            parts[same[0]] = entry
        elif entry not in parts:
            parts.append(entry)
    head = f"任务 {job.get('description') or '-'} 失败" + (f"（{job['error_code']}）" if job.get("error_code") else "")
    if not parts:
        return head + "，作业未给出失败原因（error_msg / error / task_list 均为空）"
    return head + "：" + "；".join(parts)


def job_fraction(job: dict[str, Any]) -> Optional[float]:
    """The share of a job done as the API reports it: the job's ``progress``,
    else the mean ``progress`` of its ``task_list``; None when neither is given."""
    own = _share(job.get("progress"))
    if own is not None:
        return own
    shares = [_share(t.get("progress")) for t in job.get("task_list") or [] if isinstance(t, dict)]
    shares = [s for s in shares if s is not None]
    return sum(shares) / len(shares) if shares else None


def wait_job(fisheye: Any, job_id: str, *, timeout: float = 1800.0, interval: float = 0.25,
             max_interval: float = 5.0, **kwargs: Any) -> dict[str, Any]:
    """Wait for a fisheye job (``pending → processing → done | failed``); returns
    the job. ``failed`` ends the wait with the job's own reason
    (:func:`job_failure_reason`). Paced from the job's ``ctime``."""
    def progress(job: dict[str, Any]) -> str:
        share = job_fraction(job)
        return f"{job.get('description') or '-'} 状态 {job.get('state')}" + \
            (f"（进度 {share * 100:.0f}%）" if share is not None else "")

    return wait_for(
        f"作业 {job_id}", lambda: fisheye.job(job_id), lambda job: job.get("state") == "done",
        timeout, interval=interval, max_interval=max_interval, progress=progress, fraction=job_fraction,
        failed=lambda job: job_failure_reason(job) if job.get("state") in FAILED_STATES else None,
        **{"started": lambda job: epoch_of(job.get("ctime")), **kwargs},
    )


def read_deploy_status(fisheye: Any, host_ip: str) -> dict[str, Any]:
    """One ``deploy_status`` reading through ``host_ip``: its ``data`` (``state:
    running`` with the stage while a deployment runs; a final state when the API
    reports one). An error answer is how the API says that no deployment runs
    (the walkthrough: "返回中含有error字段 … 部署过程结束"): ``{"state": "ended",
    "answer": <ec>}``. Transient errors (:func:`is_transient`) are raised."""
    from voyager.clients.errors import ApiError

    try:
        data = fisheye.deployment("GET", DEPLOY_STATUS, params={"host_ip": host_ip}, idempotent=True)
    except ApiError as exc:
        if is_transient(exc):
            raise
        return {"state": "ended", "answer": exc.ec}
    return data if isinstance(data, dict) else {"state": "ended", "answer": data}


def wait_deploy(fisheye: Any, host_ip: str, *, timeout: float = 7200.0, interval: float = 5.0,
                max_interval: float = 30.0, verify_service: str = "fisheye", **kwargs: Any) -> dict[str, Any]:
    """Wait for the cluster deployment started through ``host_ip`` and return
    ``deploy_verify``'s data. Polls ``deploy_status`` while ``state == running``;
    once it says otherwise (an error answer, or a final state) reads
    ``deploy_verify`` in the same poll: ``is_deployed`` ends the wait, its absence
    is the terminal failure (:class:`WaitFailed` naming the last stage seen and
    the reason ``deploy_status`` gave). 5xx answers and resets of either read are
    transient. ``started`` (epoch) is the trigger's time when the caller knows it
    (the API gives none): the pacing counts the deployment's age from it."""
    seen: dict[str, Any] = {}  # the last status of the running deployment

    def probe() -> dict[str, Any]:
        status = read_deploy_status(fisheye, host_ip)
        if status.get("state") == "running":
            seen["running"] = status
            return {"running": True, "status": status}
        verify = fisheye.deployment("GET", DEPLOY_VERIFY, service=verify_service, idempotent=True)
        return {"running": False, "status": status, "verify": verify if isinstance(verify, dict) else {}}

    def stage(s: dict[str, Any]) -> str:
        st = s["status"] if s["status"].get("total_stages") else seen.get("running") or {}
        if not st.get("total_stages"):
            return "（未看到部署阶段 / no stage seen）"
        return stage_text(st.get("current_stage"), st.get("total_stages"), st.get("stage_info"))

    def progress(s: dict[str, Any]) -> str:
        if s["running"]:
            return stage(s)
        status = s["status"]
        answer = status.get("answer") if "answer" in status else f"state={status.get('state')}"
        return (f"deploy_status 显示部署已结束（{answer}），deploy_verify is_deployed="
                f"{json.dumps(s['verify'].get('is_deployed'))}")

    def fraction(s: dict[str, Any]) -> Optional[float]:
        st = s["status"]
        try:
            return (int(st["current_stage"]) - 1) / int(st["total_stages"]) if s["running"] else None
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None

    def failed(s: dict[str, Any]) -> Optional[str]:
        if s["running"] or s["verify"].get("is_deployed"):
            return None
        why = _text(s["status"].get("msg")) or _text(s["status"].get("error"))
        return (f"deploy_verify 返回 is_deployed=false，部署失败，最后看到的阶段：{stage(s)}" +
                (f"；deploy_status 给出的原因：{why}" if why else ""))

    done = wait_for(f"集群部署（经由主机 {host_ip}）", probe,
                    lambda s: not s["running"] and bool(s["verify"].get("is_deployed")), timeout,
                    interval=interval, max_interval=max_interval, progress=progress, failed=failed,
                    fraction=fraction, **kwargs)
    return done["verify"]


def wait_port(endpoints: Any, ip: str, port: int, *, timeout: float = 600.0, interval: float = 1.0,
              max_interval: float = 10.0, describe: Optional[str] = None, **kwargs: Any) -> bool:
    """Wait until TCP ``port`` of planned address ``ip`` accepts connections."""
    return wait_for(describe or f"{ip}:{port} 端口可连接", lambda: endpoints.tcp_open(ip, port), bool,
                    timeout, interval=interval, max_interval=max_interval,
                    progress=lambda is_open: "端口已开放" if is_open else "端口未开放", **kwargs)


def wait_tower_tasks(tower: Any, ids: Sequence[str], *, timeout: float = 1800.0, interval: float = 0.25,
                     max_interval: float = 5.0, **kwargs: Any) -> list[dict[str, Any]]:
    """Wait until every CloudTower task in ``ids`` is SUCCESSED (FAILED ends the wait);
    paced from the earliest ``local_created_at`` of the tasks and by their ``progress``."""
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

    def fraction(tasks: list[dict[str, Any]]) -> float:
        """Mean ``progress`` (0..1) over the wanted tasks; a SUCCESSED task counts 1."""
        by_id = {t.get("id"): t for t in tasks}
        return sum(1.0 if (by_id.get(i) or {}).get("status") == "SUCCESSED"
                   else _share((by_id.get(i) or {}).get("progress")) or 0.0 for i in wanted) / len(wanted)

    def progress(tasks: list[dict[str, Any]]) -> str:
        finished = sum(1 for t in tasks if t.get("status") == "SUCCESSED")
        return f"任务 {finished}/{len(wanted)} 完成，平均进度 {fraction(tasks) * 100:.0f}%"

    def started(tasks: list[dict[str, Any]]) -> Optional[float]:
        times = [epoch_of(t.get("local_created_at")) for t in tasks if t.get("id") in wanted]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def executing_since(tasks: list[dict[str, Any]]) -> Optional[float]:
        """One task: its ``started_at`` (its progress counts from there); several: unknown."""
        if len(wanted) != 1:
            return None
        return next((epoch_of(t.get("started_at")) for t in tasks if t.get("id") == wanted[0]), None)

    return wait_for(f"CloudTower 任务 {', '.join(wanted)} 完成", probe, done, timeout, interval=interval,
                    max_interval=max_interval, progress=progress, failed=failed, fraction=fraction,
                    **{"started": started, "progress_began": executing_since, **kwargs})


def wait_cluster_connected(tower: Any, cluster_id: str, *, timeout: float = 1800.0, interval: float = 0.5,
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
                    **kwargs)


def wait_vm_guest_agent(fisheye: Any, vm_uuid: str, *, timeout: float = 3600.0, interval: float = 1.0,
                        max_interval: float = 20.0, **kwargs: Any) -> dict[str, Any]:
    """Wait until the VM's guest agent (SVT vmtools) reports ``ga_state == Running``;
    paced from the VM's ``last_start_time`` (its boot, or its OS install from the ISO)."""
    def ga_state(vm: dict[str, Any]) -> Any:
        return (vm.get("guest_info") or {}).get("ga_state")

    return wait_for(f"虚拟机 {vm_uuid} 的 guest agent 运行", lambda: fisheye.vm(vm_uuid),
                    lambda vm: ga_state(vm) == "Running", timeout, interval=interval, max_interval=max_interval,
                    progress=lambda vm: f"status={vm.get('status')} ga_state={ga_state(vm)} "
                                        f"os={(vm.get('guest_info') or {}).get('os_version') or '-'}",
                    **{"started": lambda vm: epoch_of(vm.get("last_start_time")), **kwargs})


def wait_installer_log(ssh: Any, path: str, marker: str, *, timeout: float = 3600.0, interval: float = 5.0,
                       max_interval: float = 30.0, failure_markers: Iterable[str] = (), lines: int = 200,
                       sudo: bool = False, **kwargs: Any) -> str:
    """Wait until ``marker`` shows in the last ``lines`` lines of the log at ``path``
    (read over SSH); a ``failure_markers`` line ends the wait. Returns the tail.
    ``started`` (epoch): when the installer was started, if the caller knows it."""
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
                    interval=interval, max_interval=max_interval, progress=last_line, failed=failed, **kwargs)
