"""Step 10 (performance): the fio run inside the test VMs, its JSON parsed into
figures, and the figures checked against thresholds.

fio job (one invocation per VM, all VMs at the same time)
----------------------------------------------------------
Four profiles run one after the other (``--stonewall``), each ``--ramp_time``
then ``--runtime`` seconds, ``--direct=1 --ioengine=libaio --time_based
--group_reporting`` on one file of ``--size`` in the guest user's home:

===============  =====  ====  =======  =======
profile          rw     bs    iodepth  numjobs
===============  =====  ====  =======  =======
4k-randread      randread  4k   16       2
4k-randwrite     randwrite 4k   16       2
1m-seqread       read      1M   8        1
1m-seqwrite      write     1M   8        1
===============  =====  ====  =======  =======

Defaults: ``size=2G``, ``ramp_time=10``, ``runtime=60`` (a run takes about
4 × 70 s). Every value can be changed in the workload config (``fio`` section,
see :mod:`voyager.steps.workload_config`), per profile or for all.

Figures (fio's JSON schema, ``--output-format=json``)
-----------------------------------------------------
``jobs[]`` has one entry per profile (``jobname``; ``group_reporting`` folds
numjobs together). For a read profile its ``read`` section, for a write profile
its ``write`` section gives ``iops`` (float), ``bw`` (KiB/s) and
``clat_ns.percentile["50.000000" / "99.000000" / "99.900000"]`` (ns). We
report IOPS, bandwidth in MiB/s (bw / 1024) and latency in ms (ns / 1e6).
Totals per profile: IOPS and bandwidth are summed over the VMs; a latency
percentile cannot be summed, so the total shows the highest of the VMs' values.

The run in the guest (:func:`run_fio`)
--------------------------------------
fio runs detached in the guest (``nohup fio ... > voyager-fio.json 2>
voyager-fio.log &`` in the user's home), recorded in the run state before it
starts (``test_vms.<vm>.fio``: the command and when) and followed through
``voyager.waiters`` until its JSON document is complete (``pgrep -x fio`` says
whether it still runs). A fio started over a plain SSH channel would outlive an
interrupted runner (no terminal, no hang-up signal) and measure against the
rerun's; detached and recorded, it is followed instead: a rerun finding the
recorded fio still running waits for it, finding its output complete takes it
(one uninterrupted run with the same command), and starts one only when the
recorded run died without output. It never starts a fio while another one runs
in the VM. The record is dropped once the output is read. [INF] The template
has ``pgrep`` (procps); without it the output file alone decides.

Thresholds (defaults, overridable)
----------------------------------
``DEFAULT_THRESHOLDS`` are per-VM floors (IOPS, MiB/s: measured must be >=)
and ceilings (latency ms: measured must be <=). Source: smtx-voyager
engineering defaults [INF], not a SmartX figure: a healthy 3-node cluster
(hybrid NVMe cache + HDD or all-flash, 10GbE storage network) with one or two
test VMs per host clears them by a wide margin, while a VM on a host whose
storage is degraded (e.g. cache lost, disks failing) does not. The latency
ceilings follow Little's law from the floors (outstanding I/O = iodepth ×
numjobs). Replace them with the figures of the customer's contract in the
workload config (``thresholds`` section) or with ``--perf-threshold
PROFILE.METRIC=VALUE``.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from voyager.steps.workload import STATE
from voyager.waiters import wait_for

PERCENTILES = {"p50": "50.000000", "p99": "99.000000", "p99_9": "99.900000"}
METRICS = ("iops", "bw_mib", "p50_ms", "p99_ms", "p99_9_ms")
METRIC_LABELS = {"iops": "IOPS", "bw_mib": "带宽 MiB/s", "p50_ms": "延迟 p50 ms", "p99_ms": "延迟 p99 ms",
                 "p99_9_ms": "延迟 p99.9 ms"}
HIGHER_IS_BETTER = {"iops": True, "bw_mib": True, "p50_ms": False, "p99_ms": False, "p99_9_ms": False}


@dataclass(frozen=True)
class Profile:
    name: str
    rw: str
    bs: str
    iodepth: int
    numjobs: int

    @property
    def direction(self) -> str:
        """The fio JSON section holding this profile's figures."""
        return "read" if self.rw in ("read", "randread") else "write"


PROFILES = (
    Profile("4k-randread", "randread", "4k", 16, 2),
    Profile("4k-randwrite", "randwrite", "4k", 16, 2),
    Profile("1m-seqread", "read", "1M", 8, 1),
    Profile("1m-seqwrite", "write", "1M", 8, 1),
)
PROFILE_NAMES = tuple(p.name for p in PROFILES)

DEFAULT_FIO = {"size": "2G", "ramp_time": 10, "runtime": 60, "ioengine": "libaio",
               "filename": "voyager-fio.dat"}

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "4k-randread": {"iops": 5000, "bw_mib": 19.5, "p50_ms": 5, "p99_ms": 20, "p99_9_ms": 50},
    "4k-randwrite": {"iops": 2000, "bw_mib": 7.8, "p50_ms": 10, "p99_ms": 30, "p99_9_ms": 80},
    "1m-seqread": {"iops": 150, "bw_mib": 150, "p50_ms": 60, "p99_ms": 200, "p99_9_ms": 400},
    "1m-seqwrite": {"iops": 80, "bw_mib": 80, "p50_ms": 100, "p99_ms": 300, "p99_9_ms": 600},
}


class FioOutputError(ValueError):
    """fio's output is not the JSON document expected (message in Chinese)."""


# -- the job ------------------------------------------------------------------------------------
@dataclass
class FioJob:
    profiles: tuple[Profile, ...] = PROFILES
    size: str = DEFAULT_FIO["size"]
    ramp_time: int = DEFAULT_FIO["ramp_time"]
    runtime: int = DEFAULT_FIO["runtime"]
    ioengine: str = DEFAULT_FIO["ioengine"]
    filename: str = DEFAULT_FIO["filename"]

    @classmethod
    def from_config(cls, fio: Optional[dict[str, Any]]) -> "FioJob":
        """``fio`` section of the workload config: global keys (size, ramp_time,
        runtime, iodepth, numjobs, ioengine, filename) and per-profile tables
        (``{"4k-randread": {"iodepth": 32}}``)."""
        fio = dict(fio or {})
        profiles = []
        for p in PROFILES:
            own = fio.get(p.name) or {}
            profiles.append(Profile(p.name, p.rw, str(own.get("bs", p.bs)),
                                    int(own.get("iodepth", fio.get("iodepth", p.iodepth))),
                                    int(own.get("numjobs", fio.get("numjobs", p.numjobs)))))
        return cls(tuple(profiles), str(fio.get("size", DEFAULT_FIO["size"])),
                   int(fio.get("ramp_time", DEFAULT_FIO["ramp_time"])), int(fio.get("runtime", DEFAULT_FIO["runtime"])),
                   str(fio.get("ioengine", DEFAULT_FIO["ioengine"])), str(fio.get("filename", DEFAULT_FIO["filename"])))

    def command(self) -> str:
        """The fio command line (global options, then one ``--name`` per profile)."""
        words = ["fio", "--output-format=json", f"--ioengine={self.ioengine}", "--direct=1",
                 f"--filename={self.filename}", f"--size={self.size}", "--time_based",
                 f"--ramp_time={self.ramp_time}", f"--runtime={self.runtime}", "--group_reporting"]
        for p in self.profiles:
            words += [f"--name={p.name}", "--stonewall", f"--rw={p.rw}", f"--bs={p.bs}",
                      f"--iodepth={p.iodepth}", f"--numjobs={p.numjobs}"]
        return " ".join(shlex.quote(w) for w in words)

    @property
    def seconds(self) -> int:
        """How long the run lasts (real seconds)."""
        return len(self.profiles) * (self.ramp_time + self.runtime)

    def describe(self) -> dict[str, Any]:
        return {"direct": 1, "ioengine": self.ioengine, "size": self.size, "ramp_time": self.ramp_time,
                "runtime": self.runtime,
                "profiles": {p.name: {"rw": p.rw, "bs": p.bs, "iodepth": p.iodepth, "numjobs": p.numjobs}
                             for p in self.profiles}}


# -- the run in the guest --------------------------------------------------------------------------
FIO_OUTPUT = "voyager-fio.json"  # in the guest user's home: fio's JSON document once it has ended
FIO_LOG = "voyager-fio.log"  # fio's messages (stderr)
FIO_MARGIN = 600.0  # wall seconds a fio may take beyond its planned length before the wait gives up
FIO_KEY = "fio"  # run state: test_vms.<vm>.fio


@dataclass(frozen=True)
class FioRun:
    output: str  # fio's JSON document
    how: str  # started, followed or taken over (Chinese, for the report)


def background_command(job: FioJob) -> str:
    """``job`` detached in the guest, its JSON in :data:`FIO_OUTPUT` and messages in :data:`FIO_LOG`."""
    return f"rm -f {FIO_OUTPUT} {FIO_LOG}; nohup {job.command()} > {FIO_OUTPUT} 2> {FIO_LOG} < /dev/null &"


def fio_running(client) -> Optional[bool]:
    """Does a fio run in the guest (``pgrep -x fio``)? None when the guest cannot tell (no pgrep)."""
    result = client.run("pgrep -x fio", timeout=60)
    return result.exit_status == 0 if result.exit_status in (0, 1) else None


def fio_output(client) -> str:
    result = client.run(f"cat {FIO_OUTPUT}", timeout=60)
    return result.stdout if result.exit_status == 0 else ""


def output_complete(text: str) -> bool:
    """fio has written its whole JSON document (it writes it when it ends)."""
    start = text.find("{") if isinstance(text, str) else -1
    if start < 0:
        return False
    try:
        json.loads(text[start:])
    except ValueError:
        return False
    return True


def _recorded(run_state, vm_name: str) -> Optional[dict[str, Any]]:
    return ((run_state.get(STATE, vm_name) or {}).get(FIO_KEY)) if run_state is not None else None


def fio_recorded(run_state, vm_name: str) -> bool:
    """Whether a fio run started in ``vm_name`` is recorded and not yet consumed (an
    interrupted session's: :func:`run_fio` follows it or takes its result)."""
    return bool(_recorded(run_state, vm_name))


def _forget(run_state, vm_name: str) -> None:
    facts = run_state.get(STATE, vm_name) if run_state is not None else None
    if isinstance(facts, dict) and FIO_KEY in facts:
        run_state.set(STATE, vm_name, {k: v for k, v in facts.items() if k != FIO_KEY})


def run_fio(client, job: FioJob, run_state, vm_name: str, *, timeout: Optional[float] = None) -> FioRun:
    """fio in the guest behind ``client`` (see the module docstring): the JSON
    document of one uninterrupted run of ``job``; raises :class:`FioOutputError`
    when fio ended without one (with its messages)."""
    timeout = float(timeout if timeout is not None else job.seconds + FIO_MARGIN)
    command = job.command()
    recorded = _recorded(run_state, vm_name)
    how = None
    if recorded and recorded.get("command") == command:
        running = fio_running(client)
        text = fio_output(client)
        if output_complete(text):
            _forget(run_state, vm_name)
            return FioRun(text, f"上次运行中断时 {vm_name} 中的 fio（{recorded.get('started')} 启动）已完成，沿用其结果，"
                                f"没有再运行一次")
        if running is not False:
            how = f"继续跟踪上次运行在 {vm_name} 中启动、仍在运行的 fio（{recorded.get('started')} 启动），没有再启动一次"
    if how is None:
        if fio_running(client):  # one the runner did not record, or of another command: never two at once
            wait_for(f"{vm_name} 中已在运行的 fio 结束", lambda: fio_running(client), lambda running: not running,
                     timeout, interval=2.0, max_interval=10.0, progress=lambda r: "运行中" if r else "已结束")
        if run_state is not None:
            run_state.merge(STATE, vm_name, {FIO_KEY: {
                "command": command, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}})
        client.run(background_command(job), timeout=60).check(f"在 {vm_name} 中启动 fio")
        how = f"已在 {vm_name} 中启动 fio"

    def probe() -> tuple[Optional[bool], str]:
        running = fio_running(client)  # first: a fio that ended before the read has written its document
        return running, fio_output(client)

    running, text = wait_for(f"{vm_name} 中的 fio 结束（约 {job.seconds} 秒）", probe,
                             lambda st: output_complete(st[1]) or st[0] is False, timeout, interval=2.0,
                             max_interval=10.0, progress=lambda st: "fio 运行中" if st[0] else "fio 已结束")
    _forget(run_state, vm_name)
    if not output_complete(text):
        log = client.run(f"tail -n 20 {FIO_LOG}", timeout=60)
        raise FioOutputError(f"{vm_name} 中的 fio 已结束，但没有输出 JSON 结果：{(log.stdout or '').strip()[-600:]}")
    return FioRun(text, how)


# -- parsing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    iops: float
    bw_mib: float
    p50_ms: float
    p99_ms: float
    p99_9_ms: float

    def get(self, metric: str) -> float:
        return float(getattr(self, metric))

    def as_dict(self) -> dict[str, float]:
        return {m: self.get(m) for m in METRICS}


def parse_fio_json(text: str, profiles: Iterable[Profile] = PROFILES) -> dict[str, Figures]:
    """``{profile name: Figures}`` from fio's ``--output-format=json`` output.

    fio may print warnings before the JSON document: parsing starts at the first
    ``{``. A profile missing from ``jobs[]`` or a job with ``error != 0`` raises
    :class:`FioOutputError`."""
    start = text.find("{") if isinstance(text, str) else -1
    if start < 0:
        raise FioOutputError(f"fio 没有输出 JSON（--output-format=json）：{str(text)[:200]!r}")
    try:
        doc = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise FioOutputError(f"fio 的输出不是有效的 JSON：{exc}") from None
    jobs = {j.get("jobname"): j for j in doc.get("jobs") or [] if isinstance(j, dict)}
    out: dict[str, Figures] = {}
    for p in profiles:
        job = jobs.get(p.name)
        if job is None:
            raise FioOutputError(f"fio 结果中没有作业 {p.name}（jobs[].jobname：{', '.join(map(str, jobs)) or '无'}）")
        if job.get("error"):
            raise FioOutputError(f"fio 作业 {p.name} 出错：error={job.get('error')}")
        side = job.get(p.direction) or {}
        pct = (side.get("clat_ns") or {}).get("percentile") or {}
        try:
            out[p.name] = Figures(
                iops=float(side["iops"]), bw_mib=float(side["bw"]) / 1024.0,
                p50_ms=float(pct[PERCENTILES["p50"]]) / 1e6, p99_ms=float(pct[PERCENTILES["p99"]]) / 1e6,
                p99_9_ms=float(pct[PERCENTILES["p99_9"]]) / 1e6)
        except (KeyError, TypeError, ValueError) as exc:
            raise FioOutputError(f"fio 作业 {p.name} 的 {p.direction} 部分缺少字段 {exc}") from None
    return out


def totals(per_vm: dict[str, dict[str, Figures]]) -> dict[str, Figures]:
    """Per profile: IOPS and bandwidth summed over the VMs; latency percentiles the highest."""
    names: list[str] = []
    for figures in per_vm.values():
        names += [n for n in figures if n not in names]
    out = {}
    for name in names:
        rows = [f[name] for f in per_vm.values() if name in f]
        out[name] = Figures(iops=sum(r.iops for r in rows), bw_mib=sum(r.bw_mib for r in rows),
                            p50_ms=max(r.p50_ms for r in rows), p99_ms=max(r.p99_ms for r in rows),
                            p99_9_ms=max(r.p99_9_ms for r in rows))
    return out


# -- thresholds ---------------------------------------------------------------------------------
class ThresholdError(ValueError):
    pass


def thresholds(section: Optional[dict[str, Any]] = None, overrides: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """The defaults, updated by the config's ``thresholds`` section
    (``{"4k-randread": {"iops": 8000}}``) and then by ``PROFILE.METRIC=VALUE`` overrides."""
    table = {name: dict(values) for name, values in DEFAULT_THRESHOLDS.items()}

    def put(profile: str, metric: str, value: Any, where: str) -> None:
        if profile not in table:
            raise ThresholdError(f"{where}：没有性能场景 {profile!r}（可用：{', '.join(PROFILE_NAMES)}）")
        if metric not in METRICS:
            raise ThresholdError(f"{where}：没有指标 {metric!r}（可用：{', '.join(METRICS)}）")
        try:
            table[profile][metric] = float(value)
        except (TypeError, ValueError):
            raise ThresholdError(f"{where}：{profile}.{metric} 的阈值 {value!r} 不是数字") from None

    for profile, values in (section or {}).items():
        if not isinstance(values, dict):
            raise ThresholdError(f"性能阈值配置 thresholds.{profile} 应为 {{指标: 数值}}")
        for metric, value in values.items():
            put(profile, metric, value, "性能阈值配置 thresholds")
    for text in overrides:
        key, eq, value = text.partition("=")
        profile, dot, metric = key.strip().rpartition(".")
        if not eq or not dot:
            raise ThresholdError(f"--perf-threshold {text!r} 格式应为 场景.指标=数值，例如 4k-randread.iops=8000")
        put(profile, metric, value.strip(), f"--perf-threshold {text}")
    return table


@dataclass
class Verdict:
    metric: str
    measured: float
    limit: float
    ok: bool

    @property
    def expected(self) -> str:
        return f"{'≥' if HIGHER_IS_BETTER[self.metric] else '≤'} {format_figure(self.limit)}"


def check(figures: Figures, limits: dict[str, float]) -> list[Verdict]:
    """One verdict per metric that has a limit."""
    out = []
    for metric in METRICS:
        if metric not in limits:
            continue
        value, limit = figures.get(metric), float(limits[metric])
        ok = value >= limit if HIGHER_IS_BETTER[metric] else value <= limit
        out.append(Verdict(metric, value, limit, ok))
    return out


def format_figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class PerfResults:
    """Every VM's fio output of this session (raw JSON kept) and its figures."""

    raw: dict[str, str] = field(default_factory=dict)
    figures: dict[str, dict[str, Figures]] = field(default_factory=dict)

    def add(self, vm: str, raw: str, profiles: Iterable[Profile] = PROFILES) -> dict[str, Figures]:
        parsed = parse_fio_json(raw, profiles)
        self.raw[vm] = raw
        self.figures[vm] = parsed
        return parsed

    def table(self) -> dict[str, Any]:
        """Per VM and total, per profile, every metric (what the report shows)."""
        return {"vms": {vm: {p: f.as_dict() for p, f in figs.items()} for vm, figs in sorted(self.figures.items())},
                "total": {p: f.as_dict() for p, f in totals(self.figures).items()}}
