"""The test workload VMs' guests (step 09/10): accounts baked into their disk
image, ``fio`` and ``ping`` over SSH, and the pause of a live migration.

Everything is derived from the simulated hardware and the simulated timeline,
never random.

Guest accounts
--------------
An imported disk image may carry its account the way a real image does (it
is in the image): a line ``voyager-sim-guest-user: <user>`` and a line
``voyager-sim-guest-password: <pbkdf2 digest>`` (:mod:`voyager.sim.backend.passwords`)
in its first bytes. The rehearsal placeholder of step 09 writes them; a disk
without them gives a VM nobody can log into.

fio (``fio --output-format=json --name=... --rw=... ...``)
-----------------------------------------------------------
Per job the figures come from the host the VM runs on:

* device capability (4 KiB random IOPS, 1 MiB sequential MiB/s): ``SSD`` and
  ``HDD`` below; an all-flash host adds its SSD data disks; a hybrid host
  serves from its SSD cache disks at ``CACHE_TIER`` efficiency plus its HDDs;
* writes are stored ``REPLICAS`` times; the storage stack delivers
  ``STACK_EFFICIENCY`` of the devices; bandwidth is capped by the storage
  network speed (the plan's 存储网络 speed);
* the host's capability is shared evenly by the test VMs running on it
  (imported VMs with a running guest), then capped per VM (``VM_IOPS_CAP``,
  ``VM_BW_CAP``) and by Little's law: IOPS <= outstanding I/O (iodepth x
  numjobs) / the floor latency ``BASE_LATENCY_MS``;
* mean completion latency = outstanding / IOPS (never below the floor);
  percentiles are that mean times the fixed shape ``PERCENTILE_SHAPE``.

Fault ``slow-storage:<host mgmt ip or name glob>:N`` divides the capability of
the matching host by ``SLOW_FACTOR`` for the next N fio runs on VMs there.

Run in the background (``nohup fio ... > out.json 2> err &``) fio is a session
of the world (it outlives the SSH channel and a restart of the simulator, as a
real guest's process outlives the client that started it): its output file is
empty until its ``(ramp_time + runtime) × jobs`` real seconds have passed, then
holds the JSON document (figures taken then, and kept). ``pgrep [-x] NAME``
lists the background ``fio`` and ``ping`` runs of the VM that have not ended.

ping (iputils syntax: ``-c -i -w -W -D -q``)
-------------------------------------------
A reply comes when the target is a test VM whose guest is up and which has a
NIC on the same VLAN as the pinging VM (no router is simulated: other VLANs
do not answer). RTT: ``RTT_SAME_HOST_MS`` or ``RTT_CROSS_HOST_MS`` plus a
fixed per-sequence ripple. A live migration (CloudTower ``/migrate-vm``)
pauses its VM for ``MIGRATION_PAUSE`` real seconds just before the task ends:
packets due then are lost. Run in the background (``nohup ping ... > log &``)
the output file fills in as simulated time passes; at speed 0 it is complete
at its first read, every migration started since the ping began included.

A background program's output file belongs to the VM's user like any file in
its home: ``rm`` or a ``>`` redirection replaces it (the program keeps running,
its output no longer shows there), so a second background run may write to
the same file.
"""
from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any, Optional

from voyager.sim.backend.hosts import speed_bits
from voyager.sim.ssh.shell import Proc, UsageError

GUEST_USER_MARK = "voyager-sim-guest-user:"
GUEST_PASSWORD_MARK = "voyager-sim-guest-password:"

SSD = {"randread": 80000.0, "randwrite": 30000.0, "read": 1600.0, "write": 900.0}
HDD = {"randread": 200.0, "randwrite": 180.0, "read": 180.0, "write": 160.0}
CACHE_TIER = {"randread": 0.7, "randwrite": 0.9, "read": 0.6, "write": 0.8}
STACK_EFFICIENCY = 0.5
REPLICAS = 2
VM_IOPS_CAP = 100_000.0
VM_BW_CAP = 2000.0  # MiB/s
BASE_LATENCY_MS = {"randread": 0.12, "randwrite": 0.25, "read": 0.5, "write": 0.8}
SLOW_FACTOR = 20.0
PERCENTILE_SHAPE = {
    "1.000000": 0.35, "5.000000": 0.45, "10.000000": 0.52, "20.000000": 0.62, "30.000000": 0.72,
    "40.000000": 0.80, "50.000000": 0.88, "60.000000": 0.97, "70.000000": 1.08, "80.000000": 1.25,
    "90.000000": 1.55, "95.000000": 1.85, "99.000000": 2.60, "99.500000": 3.00, "99.900000": 4.20,
    "99.950000": 4.80, "99.990000": 6.50,
}
FIO_VERSION = "fio-3.29"
RTT_SAME_HOST_MS = 0.060
RTT_CROSS_HOST_MS = 0.210
MIGRATION_PAUSE = 2.0  # real seconds without answer at the switch-over
MIN_USER_INTERVAL = 0.2
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmgt]?)(i?b)?$", re.I)


# -- guest accounts ------------------------------------------------------------------------
def guest_account_from_image(head: bytes) -> Optional[dict[str, str]]:
    """``{user: digest}`` when the first bytes of a disk image carry an account."""
    text = head[:4096].decode("utf-8", "replace")
    user = re.search(re.escape(GUEST_USER_MARK) + r"\s*(\S+)", text)
    digest = re.search(re.escape(GUEST_PASSWORD_MARK) + r"\s*(\S+)", text)
    return {user.group(1): digest.group(1)} if user and digest else None


def guest_image_header(user: str, digest: str) -> bytes:
    return f"# voyager simulated guest disk\n{GUEST_USER_MARK} {user}\n{GUEST_PASSWORD_MARK} {digest}\n".encode()


# -- storage model ---------------------------------------------------------------------------
def host_capability(world, host) -> dict[str, float]:
    """IOPS (randread/randwrite, 4 KiB) and MiB/s (read/write, 1 MiB) the host's storage delivers."""
    data = [d for d in host.disks if d["function"] == "data"]
    cache = [d for d in host.disks if d["function"] == "cache"]
    cap = {}
    for rw in SSD:
        if host.all_flash:
            raw = sum(SSD[rw] for d in data if d["type"] == "SSD")
        else:
            raw = sum(SSD[rw] * CACHE_TIER[rw] for d in cache if d["type"] == "SSD")
            raw += sum(HDD[rw] for d in data if d["type"] == "HDD")
        if rw in ("randwrite", "write"):
            raw /= REPLICAS
        cap[rw] = raw * STACK_EFFICIENCY
    net = speed_bits(world.plan.networks.storage.speed) if world.plan.networks.storage else None
    if net:
        net_mib = net / 8 / 2 ** 20
        cap["read"] = min(cap["read"], net_mib)
        cap["write"] = min(cap["write"], net_mib)
    return cap


def vms_sharing(world, vm: dict[str, Any]) -> int:
    """Test VMs (imported, guest up) running on the VM's host, itself included."""
    table = world.vms
    return max(1, sum(1 for other in table.vms.values()
                      if other["node_ip"] == vm["node_ip"] and other.get("imported") and table.ga_running(other)))


def host_of(world, vm: dict[str, Any]):
    return next((h for h in world.hosts.values() if vm["node_ip"] in (h.storage_ip, h.mgmt_ip)), None)


def _bytes(text: str) -> int:
    m = _SIZE.match(str(text).strip())
    if not m:
        raise UsageError(f"fio: failed parsing bs/size={text}")
    factor = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}[m.group(2).lower()]
    return int(float(m.group(1)) * factor)


def job_figures(world, vm: dict[str, Any], rw: str, bs: int, iodepth: int, numjobs: int,
                slow: bool) -> tuple[float, float]:
    """``(IOPS, mean completion latency ms)`` of one fio job on ``vm``."""
    host = host_of(world, vm)
    cap = host_capability(world, host)
    if slow:
        cap = {k: v / SLOW_FACTOR for k, v in cap.items()}
    share = cap[rw] / vms_sharing(world, vm)
    if rw.startswith("rand"):
        iops = share * min(1.0, 4096 / bs)
    else:
        iops = share * 2 ** 20 / bs
    iops = min(iops, VM_IOPS_CAP, VM_BW_CAP * 2 ** 20 / bs)
    outstanding = max(1, iodepth) * max(1, numjobs)
    iops = min(iops, outstanding / (BASE_LATENCY_MS[rw] / 1000))
    latency_ms = max(BASE_LATENCY_MS[rw], outstanding / iops * 1000)
    return iops, latency_ms


def _lat(mean_ns: float, n: int, *, percentiles: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"min": int(mean_ns * 0.3), "max": int(mean_ns * 9.0), "mean": round(mean_ns, 6),
                           "stddev": round(mean_ns * 0.45, 6), "N": n}
    if percentiles:
        out["percentile"] = {k: int(mean_ns * v) for k, v in PERCENTILE_SHAPE.items()}
    return out


def _section(iops: float, bs: int, runtime_s: int, latency_ms: float) -> dict[str, Any]:
    if iops <= 0:
        zero = {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0}
        return {"io_bytes": 0, "io_kbytes": 0, "bw_bytes": 0, "bw": 0, "iops": 0.0, "runtime": 0, "total_ios": 0,
                "short_ios": 0, "drop_ios": 0, "slat_ns": dict(zero), "clat_ns": dict(zero), "lat_ns": dict(zero),
                "bw_min": 0, "bw_max": 0, "bw_agg": 0.0, "bw_mean": 0.0, "bw_dev": 0.0, "bw_samples": 0,
                "iops_min": 0, "iops_max": 0, "iops_mean": 0.0, "iops_stddev": 0.0, "iops_samples": 0}
    total = int(iops * runtime_s)
    io_bytes = total * bs
    bw_kib = int(io_bytes / 1024 / runtime_s)
    clat_ns = latency_ms * 1e6
    slat_ns = min(clat_ns * 0.02, 20_000.0)
    return {
        "io_bytes": io_bytes, "io_kbytes": io_bytes // 1024, "bw_bytes": int(io_bytes / runtime_s), "bw": bw_kib,
        "iops": round(total / runtime_s, 6), "runtime": runtime_s * 1000, "total_ios": total, "short_ios": 0,
        "drop_ios": 0, "slat_ns": _lat(slat_ns, total, percentiles=False),
        "clat_ns": _lat(clat_ns, total, percentiles=True), "lat_ns": _lat(clat_ns + slat_ns, total, percentiles=False),
        "bw_min": int(bw_kib * 0.8), "bw_max": int(bw_kib * 1.15), "bw_agg": 100.0, "bw_mean": float(bw_kib),
        "bw_dev": round(bw_kib * 0.05, 6), "bw_samples": runtime_s * 2,
        "iops_min": int(iops * 0.8), "iops_max": int(iops * 1.15), "iops_mean": round(iops, 6),
        "iops_stddev": round(iops * 0.05, 6), "iops_samples": runtime_s * 2,
    }


FIO_GLOBAL = ("ioengine", "direct", "filename", "size", "time_based", "ramp_time", "runtime", "group_reporting")
FIO_JOB = ("stonewall", "rw", "bs", "iodepth", "numjobs")


def parse_fio_args(args: list[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """fio's command-line job syntax: global options, then ``--name=`` starting each job."""
    glob: dict[str, str] = {}
    jobs: list[dict[str, str]] = []
    fmt = None
    for arg in args:
        if not arg.startswith("--"):
            raise UsageError(f"fio: job files are not supported by the simulated guest ({arg})")
        key, _, value = arg[2:].partition("=")
        if key == "output-format":
            fmt = value
        elif key == "name":
            jobs.append({"name": value})
        elif key in FIO_GLOBAL + FIO_JOB:
            (jobs[-1] if jobs else glob)[key] = value
        else:
            raise UsageError(f"fio: unrecognized option '--{key}'")
    if fmt != "json":
        raise UsageError("fio: the simulated guest only prints --output-format=json")
    if not jobs:
        raise UsageError("fio: no jobs defined")
    return glob, jobs


def fio_document(world, vm: dict[str, Any], glob: dict[str, str], jobs: list[dict[str, str]],
                 slow: bool) -> dict[str, Any]:
    """fio's JSON output (schema of fio 3.x) for ``jobs`` run on ``vm``."""
    now = world.clock.now()
    ramp, runtime = int(glob.get("ramp_time", 0)), int(glob.get("runtime", 0) or 60)
    entries = []
    for k, job in enumerate(jobs):
        opts = {**{key: glob[key] for key in ("rw", "bs", "iodepth", "numjobs") if key in glob}, **job}
        rw = opts.get("rw", "read")
        if rw not in SSD:
            raise UsageError(f"fio: unsupported rw={rw}")
        bs = _bytes(opts.get("bs", "4k"))
        iodepth, numjobs = int(opts.get("iodepth", 1)), int(opts.get("numjobs", 1))
        iops, latency = job_figures(world, vm, rw, bs, iodepth, numjobs, slow)
        reading = rw in ("read", "randread")
        section = _section(iops, bs, runtime, latency)
        empty = _section(0, bs, runtime, 0)
        entries.append({
            "jobname": job["name"], "groupid": k, "error": 0, "eta": 0, "elapsed": ramp + runtime + 1,
            "job options": {key: value for key, value in job.items() if key != "name"} | {"name": job["name"]},
            "read": section if reading else empty, "write": empty if reading else section, "trim": dict(empty),
            "sync": {"total_ios": 0, "lat_ns": {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0}},
            "job_runtime": runtime * 1000 * numjobs, "usr_cpu": 3.1, "sys_cpu": 11.7, "ctx": int(iops * runtime * 0.9),
            "majf": 0, "minf": 40 * numjobs,
            "iodepth_level": {"1": 0.1, "2": 0.1, "4": 0.1, "8": 0.1 if iodepth > 8 else 99.6,
                              "16": 99.6 if iodepth > 8 else 0.0, "32": 0.0, ">=64": 0.0},
            "iodepth_submit": {"0": 0.0, "4": 100.0, "8": 0.0, "16": 0.0, "32": 0.0, "64": 0.0, ">=64": 0.0},
            "iodepth_complete": {"0": 0.0, "4": 99.9, "8": 0.1, "16": 0.0, "32": 0.0, "64": 0.0, ">=64": 0.0},
            "latency_ns": {"2": 0.0, "4": 0.0, "10": 0.0, "20": 0.0, "50": 0.0, "100": 0.0, "250": 0.0, "500": 0.0,
                           "750": 0.0, "1000": 0.0},
            "latency_us": {"2": 0.0, "4": 0.0, "10": 0.0, "20": 0.0, "50": 0.0, "100": 0.0, "250": 0.0, "500": 0.0,
                           "750": 0.0, "1000": 0.0},
            "latency_ms": {"2": 0.0, "4": 0.0, "10": 0.0, "20": 0.0, "50": 0.0, "100": 0.0, "250": 0.0, "500": 0.0,
                           "750": 0.0, "1000": 0.0, "2000": 0.0, ">=2000": 0.0},
            "latency_depth": iodepth, "latency_target": 0, "latency_percentile": 100.0, "latency_window": 0,
        })
    total_read = sum(e["read"]["total_ios"] for e in entries)
    total_write = sum(e["write"]["total_ios"] for e in entries)
    return {
        "fio version": FIO_VERSION, "timestamp": int(now), "timestamp_ms": int(now * 1000),
        "time": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(now)),
        "global options": dict(glob), "jobs": entries,
        "disk_util": [{"name": "vda", "read_ios": total_read, "write_ios": total_write, "read_merges": 0,
                       "write_merges": 0, "read_ticks": total_read // 10, "write_ticks": total_write // 10,
                       "in_queue": (total_read + total_write) // 10, "util": 99.5}],
    }


def _session_vm(proc: Proc) -> dict[str, Any]:
    vm = proc.session.world.vms.vm_by_ip(proc.session.ip)
    if vm is None:
        raise UsageError("this machine is not a simulated test VM")
    return vm


def fio_program(proc: Proc, args: list[str]) -> int:
    world = proc.session.world
    glob, jobs = parse_fio_args(args)
    with world.lock:
        vm = _session_vm(proc)
        host = host_of(world, vm)
        slow = world.faults.take("slow-storage", host.mgmt_ip) or world.faults.take("slow-storage", host.hostname)
    ramp, runtime = int(glob.get("ramp_time", 0)), int(glob.get("runtime", 0) or 60)
    seconds = (ramp + runtime) * len(jobs)
    with world.lock:
        world.timeline.add("GUEST_FIO", seconds, ident=proc.session.ip)
    if proc.background:
        with world.lock:
            world.vms.add_fio_session({"src": proc.session.ip, "started": world.clock.now(), "seconds": seconds,
                                       "glob": glob, "jobs": jobs, "slow": bool(slow), "frozen": None,
                                       "output": proc.stdout_path})
        return 0
    wall = world.clock.wall(seconds)
    if wall > 0:
        time.sleep(min(wall, 600.0))
    with world.lock:
        doc = fio_document(world, _session_vm(proc), glob, jobs, slow)
    proc.write(json.dumps(doc, indent=2) + "\n")
    return 0


def _fio_ended(world, session: dict[str, Any]) -> bool:
    return session.get("frozen") is not None or world.clock.reached(session["started"], session["seconds"])


def background_fio_output(world, session: dict[str, Any]) -> str:
    """What a background fio has written: nothing until it ends, then its JSON document (kept)."""
    if session.get("frozen") is not None:
        return session["frozen"]
    if not _fio_ended(world, session):
        return ""
    vm = world.vms.vm_by_ip(session["src"])
    if vm is None:
        return ""
    session["frozen"] = json.dumps(fio_document(world, vm, session["glob"], session["jobs"], session["slow"]),
                                   indent=2) + "\n"
    world.changed()
    return session["frozen"]


def _ping_ended(world, session: dict[str, Any]) -> bool:
    return session.get("frozen") is not None or world.clock.reached(
        session["started"], max(0, session["count"] - 1) * session["interval"])


def pgrep_program(proc: Proc, args: list[str]) -> int:
    """``pgrep [-x] NAME``: the background fio / ping runs of this VM that have not ended."""
    names = [a for a in args if not a.startswith("-")]
    if any(a not in ("-x",) for a in args if a.startswith("-")) or len(names) != 1:
        raise UsageError("pgrep: the simulated guest knows only 'pgrep [-x] NAME'", 2)
    world, ip = proc.session.world, proc.session.ip
    with world.lock:
        if names[0] == "fio":
            running = [k for k, f in enumerate(world.vms.fio_sessions) if f["src"] == ip and not _fio_ended(world, f)]
        elif names[0] == "ping":
            running = [k for k, p in enumerate(world.vms.ping_sessions) if p["src"] == ip and not _ping_ended(world, p)]
        else:
            running = []
    for k in running:
        proc.write(f"{2000 + k}\n")
    return 0 if running else 1


# -- ping ------------------------------------------------------------------------------------------
def _real_between(clock, earlier: float, later: float) -> float:
    return (later - earlier) / clock.speed if clock.speed > 0 else 0.0


def _same_vlan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool({n["vlan_uuid"] for n in a["nics"] if n.get("ip_address")}
                & {n["vlan_uuid"] for n in b["nics"] if n.get("ip_address")})


def ping_lines(world, src_ip: str, dst_ip: str, count: int, interval: float, started: float,
               timestamps: bool, *, upto: Optional[int] = None) -> tuple[list[str], int]:
    """The reply lines of packets 1..``upto`` (default ``count``) and how many were answered."""
    clock = world.clock
    src = world.vms.vm_by_ip(src_ip)
    dst = world.vms.vm_by_ip(dst_ip)
    up = bool(src and dst and world.vms.reachable(dst) and _same_vlan(src, dst))
    windows = []
    if up:
        for mig in dst.get("migrations") or []:
            begin = _real_between(clock, started, mig["created"]) + mig["pause_at"]
            windows.append((begin, begin + mig["pause"]))
        rtt = RTT_SAME_HOST_MS if src["node_ip"] == dst["node_ip"] else RTT_CROSS_HOST_MS
    lines, answered = [], 0
    for seq in range(1, (upto if upto is not None else count) + 1):
        offset = (seq - 1) * interval
        if not up or any(a <= offset < b for a, b in windows):
            continue
        answered += 1
        stamp = f"[{started + clock.wall(offset):.6f}] " if timestamps else ""
        lines.append(f"{stamp}64 bytes from {dst_ip}: icmp_seq={seq} ttl=64 time={rtt + 0.004 * (seq % 5):.3f} ms")
    return lines, answered


def ping_summary(dst_ip: str, count: int, answered: int, interval: float, rtts: list[float]) -> str:
    loss = 0 if count == 0 else round((count - answered) * 100 / count)
    text = (f"\n--- {dst_ip} ping statistics ---\n{count} packets transmitted, {answered} received, "
            f"{loss}% packet loss, time {int(max(0, count - 1) * interval * 1000)}ms\n")
    if rtts:
        avg = sum(rtts) / len(rtts)
        mdev = (sum((r - avg) ** 2 for r in rtts) / len(rtts)) ** 0.5
        text += f"rtt min/avg/max/mdev = {min(rtts):.3f}/{avg:.3f}/{max(rtts):.3f}/{mdev:.3f} ms\n"
    return text


def _ping_args(args: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"count": None, "interval": 1.0, "deadline": None, "timestamps": False, "quiet": False}
    it = iter(args)
    target = None
    for arg in it:
        if arg in ("-c", "-i", "-w", "-W"):
            value = next(it, None)
            if value is None:
                raise UsageError(f"ping: option requires an argument -- '{arg[1]}'", 2)
            try:
                number = float(value)
            except ValueError:
                raise UsageError(f"ping: invalid argument: '{value}'", 2) from None
            key = {"-c": "count", "-i": "interval", "-w": "deadline", "-W": "timeout"}[arg]
            opts[key] = number
        elif arg == "-D":
            opts["timestamps"] = True
        elif arg == "-q":
            opts["quiet"] = True
        elif arg.startswith("-"):
            raise UsageError(f"ping: invalid option -- '{arg.lstrip('-')}'", 2)
        else:
            target = arg
    if target is None:
        raise UsageError("ping: usage error: Destination address required", 2)
    if opts["count"] is None:
        if opts["deadline"] is None:
            raise UsageError("ping: the simulated guest needs -c COUNT or -w DEADLINE", 2)
        opts["count"] = opts["deadline"] / opts["interval"]
    opts["count"] = int(opts["count"])
    opts["target"] = target
    return opts


def ping_program(proc: Proc, args: list[str]) -> int:
    opts = _ping_args(args)
    if opts["interval"] < MIN_USER_INTERVAL and not proc.is_root:
        raise UsageError("ping: cannot flood; minimal interval allowed for user is 200ms", 2)
    world, src_ip = proc.session.world, proc.session.ip
    started = world.clock.now()
    head = f"PING {opts['target']} ({opts['target']}) 56(84) bytes of data.\n"
    real = max(0, opts["count"] - 1) * opts["interval"]
    with world.lock:
        world.timeline.add("GUEST_PING", real, ident=src_ip, start=started, background=proc.background)
    if proc.background:
        with world.lock:
            world.vms.add_ping_session({"src": src_ip, "started": started, **opts, "frozen": None, "head": head,
                                        "output": proc.stdout_path})
        proc.write(head)
        return 0
    duration = world.clock.wall(real)
    if duration > 0:
        time.sleep(min(duration, 600.0))
    with world.lock:
        lines, answered = ping_lines(world, src_ip, opts["target"], opts["count"], opts["interval"], started,
                                     opts["timestamps"])
    rtts = [float(line.rsplit("time=", 1)[1].split()[0]) for line in lines]
    proc.write(head + ("" if opts["quiet"] else "".join(line + "\n" for line in lines))
               + ping_summary(opts["target"], opts["count"], answered, opts["interval"], rtts))
    return 0 if answered else 1


def background_ping_output(world, session: dict[str, Any]) -> str:
    """The output a background ping has written so far (complete and frozen once it ended)."""
    if session.get("frozen") is not None:
        return session["frozen"]
    clock = world.clock
    elapsed = clock.elapsed_real(session["started"])
    due = min(session["count"], int(elapsed / session["interval"]) + 1) if elapsed != float("inf") else session["count"]
    lines, answered = ping_lines(world, session["src"], session["target"], session["count"], session["interval"],
                                 session["started"], session["timestamps"], upto=due)
    text = session["head"] + "".join(line + "\n" for line in lines)
    if due >= session["count"] and elapsed >= (session["count"] - 1) * session["interval"]:
        rtts = [float(line.rsplit("time=", 1)[1].split()[0]) for line in lines]
        text += ping_summary(session["target"], session["count"], answered, session["interval"], rtts)
        session["frozen"] = text
        world.changed()
    return text


def output_files(session) -> dict[str, Any]:
    """The files a test VM's background pings and fio runs write (the latest run per file)."""
    world = session.world
    out = {}
    for ping in world.vms.ping_sessions:
        if ping["src"] == session.ip and ping.get("output"):
            out[ping["output"]] = (lambda p=ping: background_ping_output(world, p))
    for fio in world.vms.fio_sessions:
        if fio["src"] == session.ip and fio.get("output"):
            out[fio["output"]] = (lambda f=fio: background_fio_output(world, f))
    return out


def release_output(session, path: str) -> None:
    """``path`` removed or replaced by its owner: the background runs writing it no longer show there."""
    world = session.world
    for run in world.vms.ping_sessions + world.vms.fio_sessions:
        if run["src"] == session.ip and run.get("output") == path:
            run["output"] = None
            world.changed()


def quote_command(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)
