"""End to end: a run killed (SIGKILL) in the middle of an operation of steps
02-11, then ``pytest suites/ --lf`` (suites as subprocesses against the embedded
simulator, each row in its own state dir).

One row per kill point (:data:`POINTS`). The kill is decided from what the
simulator saved (``sim-world.json``: the deployment, an upload's chunks, a job,
a CloudTower task, the installer, an inspection job, a test VM's import, a
migration, a fio run) together with the suite's verbose output (which check is
running) — never after a fixed sleep. At the kill the point checks that the
work was in flight and already recorded in the run state (recorded before
waiting). After ``--lf``:

* rc 0 and no check left open in the ledger;
* the report is complete: the ``--lf`` run's JUnit lists every check of the
  suite, those it did not rerun carried over (``voyager_carried_over``), and
  its report.html names every check and says 沿用 for the carried ones;
* nothing duplicated: the simulator's status equals a clean run's (images,
  VMs, datacenters, connections, views, VLANs…, no upload open) and so does
  what it was asked to do (:func:`e2e_support.operations`: every job, task,
  inspection, deployment… counted; work started twice counts one more);
* per point: the in-flight work was followed, not started again (the same
  deployment, installer run, upload volume…); an upload was resumed: chunks
  sent in total < 1.5 × the chunk count.

Where the runs start. Rows of steps 02-03 start from nothing (``pytest
suites/``). Later rows start from a snapshot of a clean run taken at the end
of the step before (:func:`chain`: steps run at speed 0 in stages, each stage
copied; built once per session, shared by the xdist workers), and the killed
run is ``pytest suites/ --lf``, which runs the steps not run yet — the same run
an engineer makes after stopping at a step; re-observing the passed steps at a
speed above 0 would triple the time of the file. The last stage's state is the
clean run every row is compared with.

Speeds. A row's ``--sim-speed`` (killed run and ``--lf`` run alike) is the
smallest that keeps the operation in flight long enough for the kill to land
inside it on a loaded machine; an upload is not scaled by the speed (its length
is its size: 400 MiB ISOs in their own media folder).
"""
from __future__ import annotations

import html
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
from filelock import FileLock

from e2e_support import (deploying, kill_when, open_checks, operations, run_state_facts, run_suites, sim_status,
                         sim_world, start_suites)

pytestmark = pytest.mark.e2e

S01, S02, S03 = "suites/test_01_prepare.py", "suites/test_02_init_cluster.py", "suites/test_03_config_cluster.py"
S04, S05, S06 = "suites/test_04_cloudtower.py", "suites/test_05_attach_cluster.py", "suites/test_06_tower_config.py"
S07, S08, S09 = "suites/test_07_components.py", "suites/test_08_inspection.py", "suites/test_09_workload.py"
S10, S11 = "suites/test_10_perf.py", "suites/test_11_cleanup.py"
ALL = ["suites/"]

# the clean run, in stages: (name = last step, suites); a row starts from the copy of a stage
STAGES = [("03", [S01, S02, S03]), ("04", [S04]), ("07", [S05, S06, S07]), ("08", [S08]), ("09", [S09]),
          ("10", [S10]), ("11", [S11])]

CHUNK = 8 * 1024 * 1024  # the simulator's ISO / SVT upload chunk
BIG_CHUNKS = 50  # a 400 MiB ISO
SVT_BIG = "SMTX_VMTOOLS-3.2.0-e2e.iso"
ISO_BIG = "cloudtower-4.7.1-e2e.iso"


# -- the clean run and the media, shared by the xdist workers ------------------------------------
def _shared_root(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session sees (the workers' common base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


@dataclass
class Chain:
    root: Path  # root / <stage> / {state, reports, …}

    def stage(self, name: str) -> Path:
        return self.root / name

    @property
    def clean_state(self) -> Path:
        return self.stage(STAGES[-1][0]) / "state"


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> Chain:
    """A clean run, stage by stage at speed 0, each stage's folder copied (built once)."""
    root = _shared_root(tmp_path_factory) / "interruptions-chain"
    with FileLock(str(root) + ".lock"):
        done = root / "done"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            work = root / "work"
            for name, suites in STAGES:
                run = run_suites(work / "state", suites=suites)
                assert run.returncode == 0, f"clean run, stage {name}: " + run.explain()
                shutil.copytree(work, root / name, symlinks=True)
            shutil.rmtree(work)
            done.write_text("ok")
    return Chain(root)


def _big_iso(path: Path) -> None:
    block = bytes(range(256)) * (CHUNK // 256)
    with open(path, "wb") as fh:
        for i in range(BIG_CHUNKS):  # every chunk different: a chunk sent to a wrong offset shows in the md5
            fh.write(i.to_bytes(4, "big") + block[4:])


def _media(tmp_path_factory, big: str) -> Path:
    """A media folder with a 400 MiB ISO ``big`` and rehearsal media for the rest."""
    from voyager.steps.media import ensure_rehearsal_media
    from voyager.steps.workload_config import ensure_rehearsal_workload

    folder = _shared_root(tmp_path_factory) / f"interruptions-media-{big}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / big).exists():
            folder.mkdir(parents=True, exist_ok=True)
            _big_iso(folder / (big + ".part"))
            (folder / (big + ".part")).rename(folder / big)
        ensure_rehearsal_media(folder, None)
        ensure_rehearsal_workload(folder)
    return folder


# -- what a kill point looks at ---------------------------------------------------------------------
def _running(started: float, real_seconds: float, speed: float) -> bool:
    """A simulated operation started at ``started`` (wall) that lasts ``real_seconds`` has not ended."""
    return started + real_seconds * speed > time.time()


def fisheye_jobs(world: dict, description: str) -> list[dict]:
    return [j for j in ((world.get("jobs") or {}).get("jobs") or {}).values() if j.get("description") == description]


def tower_tasks(world: dict, key: str, name: str = "") -> list[dict]:
    return [t for t in (world.get("tower") or {}).get("tasks") or []
            if t.get("key") == key and name in (t.get("description") or "")]


def task_running(task: dict, speed: float) -> bool:
    return task.get("status") in ("PENDING", "EXECUTING") and _running(
        task["created_at"], task["pending_for"] + task["executing_for"], speed)


def uploads_of(world: dict, kind: str) -> list[dict]:
    return [u for u in ((world.get("images") or {}).get("uploads") or {}).values() if u.get("kind") == kind]


def cloudtower_vm(world: dict) -> Optional[dict]:
    return next((v for v in ((world.get("vms") or {}).get("vms") or {}).values() if v.get("profile") == "cloudtower"),
                None)


def chunks_accepted(world: dict) -> int:
    return int(((world.get("images") or {}).get("chunks_accepted")) or 0)


@dataclass(frozen=True)
class Killed:
    """What the point saw at the kill: the saved world and run state, and the output."""
    world: dict
    facts: dict
    output: str


@dataclass(frozen=True)
class Point:
    id: str
    start: Optional[str]  # None: from nothing; else the stage whose copy the row starts from
    speed: float
    ready: Callable[[str, dict, dict, float], bool]  # (output so far, saved world, run state, speed) -> kill now
    at_kill: Callable[[Killed, float], None]  # in flight and recorded (asserts)
    after: Callable[[Killed, dict, dict, "Row"], None] = lambda killed, world, facts, row: None
    media: Optional[str] = None  # a big ISO of a media folder: SVT_BIG or ISO_BIG
    ends: Optional[Callable[[dict, float], float]] = None  # (killed world, speed) -> when the work ends (wall)
    timeout: float = 240.0


@dataclass
class Row:
    state: Path
    before_chunks: int = 0
    media: Optional[Path] = None
    before_images: frozenset = frozenset()  # names of the images the row started with


# -- 02 deployment ----------------------------------------------------------------------------------
def deployment_ready(out, world, facts, speed):
    return "::test_deploy_finished" in out and deploying(world)


def deployment_at_kill(k: Killed, speed):
    assert deploying(k.world), "the deployment had ended before the kill"
    assert k.facts["cluster"]["deploy_host"]  # recorded before the trigger


def deployment_after(k: Killed, world, facts, row):
    assert world["deploy"]["started_at"] == k.world["deploy"]["started_at"], "a second deployment was triggered"
    assert world["deploy"]["result"] == "ok"


# -- 03 SVT upload / 04 CloudTower ISO upload ------------------------------------------------------------
def upload_ready(kind: str, check: str):
    def ready(out, world, facts, speed):
        ups = uploads_of(world, kind)
        return check in out and bool(ups) and 10 <= len(ups[0]["received"]) <= BIG_CHUNKS - 10
    return ready


def upload_at_kill(kind: str, name: str):
    def at_kill(k: Killed, speed):
        [upload] = uploads_of(k.world, kind)
        recorded = k.facts["uploads"][f"{kind}/{name}"]
        assert recorded["image_uuid"] == upload["image_uuid"]  # recorded before the chunks were sent
    return at_kill


def upload_after(kind: str, name: str):
    def after(k: Killed, world, facts, row):
        [upload] = uploads_of(k.world, kind)
        image = world["images"]["images"].get(upload["image_uuid"])
        assert image is not None, "the upload volume of the killed run was not the one finished (started over)"
        assert image["size"] == BIG_CHUNKS * CHUNK
        # the other ISOs uploaded since the row started (those of the snapshot are counted in before_chunks)
        others = sum(math.ceil(p.stat().st_size / CHUNK) for p in row.media.glob("*.iso")
                     if p.name != name and p.name not in row.before_images)
        sent = chunks_accepted(world) - row.before_chunks - others
        print(f"{name}: killed after {len(upload['received'])} chunks; {sent} sent in total of {BIG_CHUNKS}")
        assert sent < 1.5 * BIG_CHUNKS, f"{sent} chunks sent for {BIG_CHUNKS}: the upload was restarted"
        assert not facts.get("uploads"), facts.get("uploads")  # nothing left in flight
    return after


# -- 04 CloudTower VM: OS install from the ISO, installer ---------------------------------------------
def os_install_ready(out, world, facts, speed):
    vm = cloudtower_vm(world)
    return "::test_cloudtower_guest_agent" in out and bool(vm) and bool(vm.get("boot_started")) \
        and not vm.get("os_installed")


def os_install_at_kill(k: Killed, speed):
    vm = cloudtower_vm(k.world)
    assert k.facts["cloudtower"]["vm_uuid"] == vm["uuid"]
    assert not k.facts["cloudtower"].get("vm_create_job"), "the create job ended: its record is dropped"


def os_install_after(k: Killed, world, facts, row):
    vm = cloudtower_vm(world)
    assert vm["uuid"] == cloudtower_vm(k.world)["uuid"] and vm["os_installed"]
    assert vm["boot_started"] == cloudtower_vm(k.world)["boot_started"], "the CloudTower VM was booted again"


def installer_ready(out, world, facts, speed):
    inst = world.get("installer") or {}
    return "::test_cloudtower_installer" in out and bool(inst.get("started_at")) and inst.get("result") is None \
        and bool((facts.get("cloudtower") or {}).get("installer_runs"))


def installer_at_kill(k: Killed, speed):
    assert k.world["installer"]["result"] is None
    assert k.facts["cloudtower"]["installer_runs"] == 1  # recorded before following the log


def installer_after(k: Killed, world, facts, row):
    assert world["installer"]["started_at"] == k.world["installer"]["started_at"], "the installer was run again"
    assert world["installer"]["result"] == "ok"
    assert facts["cloudtower"]["installer_runs"] == 1


# -- 05 connect-cluster ---------------------------------------------------------------------------------
def connect_ready(out, world, facts, speed):
    return "::test_cluster_connection" in out and bool((facts.get("cloudtower") or {}).get("connect_task")) and any(
        task_running(t, speed) for t in tower_tasks(world, "CONNECT_CLUSTER"))


def connect_at_kill(k: Killed, speed):
    [task] = tower_tasks(k.world, "CONNECT_CLUSTER")
    recorded = k.facts["cloudtower"]["connect_task"]
    assert (recorded.get("task_id") if isinstance(recorded, dict) else recorded) == task["id"]


# -- 08 inspection ---------------------------------------------------------------------------------------
INSPECTION_SECONDS = 180.0


def inspection_ready(out, world, facts, speed):
    jobs = (((world.get("tower") or {}).get("inspector") or {}).get("jobs") or {}).values()
    return "::test_inspection_job" in out and bool((facts.get("inspection") or {}).get("job_id")) and any(
        _running(j["created_at"], INSPECTION_SECONDS, speed) for j in jobs)


def inspection_at_kill(k: Killed, speed):
    [job] = k.world["tower"]["inspector"]["jobs"].values()
    assert k.facts["inspection"]["job_id"] == job["id"] and not k.facts["inspection"]["finished"]


def inspection_after(k: Killed, world, facts, row):
    assert list(world["tower"]["inspector"]["jobs"]) == list(k.world["tower"]["inspector"]["jobs"])
    assert facts["inspection"]["finished"]


# -- 09 test VM import --------------------------------------------------------------------------------------
def import_ready(out, world, facts, speed):
    recorded = ((facts.get("test_vms") or {}).get("voyager-test-01") or {}).get("import_task")
    return "::test_vm_created[voyager-test-01]" in out and bool(recorded) and any(
        task_running(t, speed) for t in tower_tasks(world, "IMPORT_VM", "voyager-test-01"))


def import_at_kill(k: Killed, speed):
    [task] = tower_tasks(k.world, "IMPORT_VM", "voyager-test-01")
    assert k.facts["test_vms"]["voyager-test-01"]["import_task"] == task["id"]


# -- 10 live migration, fio --------------------------------------------------------------------------------
def migration_ready(out, world, facts, speed):
    recorded = [v.get("migrate_task") for v in (facts.get("test_vms") or {}).values() if v.get("migrate_task")]
    return "::test_live_migration" in out and bool(recorded) and any(
        task_running(t, speed) for t in tower_tasks(world, "MIGRATE_VM"))


def migration_at_kill(k: Killed, speed):
    [task] = tower_tasks(k.world, "MIGRATE_VM")
    recorded = [v.get("migrate_task") for v in k.facts["test_vms"].values()]
    assert task["id"] in recorded


TEST_VMS = ("voyager-test-01", "voyager-test-02", "voyager-test-03", "voyager-test-04")


def fio_running_sessions(world: dict, speed: float) -> list[dict]:
    return [f for f in (world.get("vms") or {}).get("fio_sessions") or []
            if f.get("frozen") is None and _running(f["started"], f["seconds"], speed)]


def fio_ready(out, world, facts, speed):
    recorded = [n for n in TEST_VMS if ((facts.get("test_vms") or {}).get(n) or {}).get("fio")]
    return "::test_perf[" in out and len(recorded) == len(TEST_VMS) and len(
        fio_running_sessions(world, speed)) == len(TEST_VMS)


def fio_at_kill(k: Killed, speed):
    running = fio_running_sessions(k.world, speed)
    assert len(running) == len(TEST_VMS), "not every VM's fio was running at the kill"
    assert all(k.facts["test_vms"][n]["fio"]["command"] for n in TEST_VMS)  # recorded before started


def last_evidence(state: Path) -> str:
    """The evidence log of the last run (evidence/<timestamp>.log)."""
    return sorted((state / "evidence").glob("*.log"))[-1].read_text(encoding="utf-8", errors="replace")


def fio_after(k: Killed, world, facts, row):
    evidence = last_evidence(row.state)
    started = evidence.count("nohup fio ")
    assert started == 0, f"the --lf run started fio {started} more times instead of following the recorded runs"
    assert evidence.count("pgrep -x fio") >= len(TEST_VMS)  # it looked at the runs it followed
    assert not any((v or {}).get("fio") for v in (facts.get("test_vms") or {}).values())
    fio_dir = sorted((row.state.parent / "reports").glob("*/2*/artifacts/fio"))[-1]
    assert sorted(p.name for p in fio_dir.glob("*.fio.json")) == [f"{n}.fio.json" for n in TEST_VMS]


def deletion_ready(out, world, facts, speed):
    recorded = [v.get("delete_task") for v in (facts.get("test_vms") or {}).values() if v.get("delete_task")]
    return "::test_test_vms_removed" in out and bool(recorded) and any(
        task_running(t, speed) for t in tower_tasks(world, "DELETE_VM"))


def deletion_at_kill(k: Killed, speed):
    running = {t["id"] for t in tower_tasks(k.world, "DELETE_VM") if task_running(t, speed)}
    recorded = {v.get("delete_task") for v in k.facts["test_vms"].values()}
    assert running & recorded, "no deletion in flight was recorded"  # (the last one sent may not be yet)


def _task_end(task: dict, speed: float) -> float:
    return task["created_at"] + (task["pending_for"] + task["executing_for"]) * speed


def _last_task_end(key: str):
    return lambda world, speed: max(_task_end(t, speed) for t in tower_tasks(world, key))


def _deployment_end(world, speed):
    from voyager.sim.backend.deployer import TOTAL
    return world["deploy"]["started_at"] + TOTAL * speed


def _os_install_end(world, speed):
    from voyager.sim.backend.vms import OS_INSTALL
    return cloudtower_vm(world)["boot_started"] + OS_INSTALL * speed


def _installer_end(world, speed):
    from voyager.sim.backend.installer import INSTALL
    return world["installer"]["started_at"] + INSTALL * speed


def _inspection_end(world, speed):
    return max(j["created_at"] for j in world["tower"]["inspector"]["jobs"].values()) + INSPECTION_SECONDS * speed


def _fio_end(world, speed):
    return max(f["started"] + f["seconds"] * speed for f in world["vms"]["fio_sessions"])


POINTS = [
    Point("02-deployment", None, 0.006, deployment_ready, deployment_at_kill, deployment_after,
          ends=_deployment_end),
    Point("03-svt-upload", None, 0.0, upload_ready("svt", "::test_svt_uploaded"), upload_at_kill("svt", SVT_BIG),
          upload_after("svt", SVT_BIG), media=SVT_BIG),
    Point("04-iso-upload", "03", 0.0, upload_ready("iso", "::test_cloudtower_iso"), upload_at_kill("iso", ISO_BIG),
          upload_after("iso", ISO_BIG), media=ISO_BIG),
    Point("04-os-install", "03", 0.005, os_install_ready, os_install_at_kill, os_install_after, ends=_os_install_end),
    Point("04-installer", "03", 0.005, installer_ready, installer_at_kill, installer_after, ends=_installer_end),
    Point("05-connect-cluster", "04", 0.02, connect_ready, connect_at_kill, ends=_last_task_end("CONNECT_CLUSTER")),
    Point("08-inspection", "07", 0.03, inspection_ready, inspection_at_kill, inspection_after, ends=_inspection_end),
    Point("09-vm-import", "08", 0.02, import_ready, import_at_kill, ends=_last_task_end("IMPORT_VM")),
    Point("10-fio", "09", 0.02, fio_ready, fio_at_kill, fio_after, ends=_fio_end),
    Point("10-migration", "09", 0.02, migration_ready, migration_at_kill, ends=_last_task_end("MIGRATE_VM")),
    Point("11-vm-deletion", "10", 1.0, deletion_ready, deletion_at_kill, ends=_last_task_end("DELETE_VM")),
]


def _report_html(state: Path) -> str:
    """The report.html of the last run (reports/<cluster>/<YYYYmmdd-HHMMSS>/)."""
    pages = sorted((state.parent / "reports").glob("*/2*/report.html"), key=lambda p: p.parent.name)
    return pages[-1].read_text(encoding="utf-8")


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_sigkill_then_lf_completes(point: Point, tmp_path, request):
    """运行在某一操作进行中被强制结束（SIGKILL）后，--lf 重跑：退出码 0，没有未完成的检查；报告列出全部检查
    （未重跑的标注沿用）；模拟器的状态与所做的操作与一次干净运行相同（没有重复创建或重复启动任何东西，
    没有未完成的上传）；进行中的工作在结束前已记入运行状态，重跑时继续跟踪而不是重新开始；上传为续传
    （两次运行共发送的块数少于总块数的 1.5 倍）。"""
    media = _media(request.getfixturevalue("tmp_path_factory"), point.media) if point.media else None
    media_args = ("--media-dir", str(media)) if media else ()
    if point.start is None:
        state, first = tmp_path / "state", ()
    else:
        shutil.copytree(request.getfixturevalue("chain").stage(point.start), tmp_path, symlinks=True,
                        dirs_exist_ok=True)
        state, first = tmp_path / "state", ("--lf",)
    start_world = sim_world(state)
    row = Row(state, chunks_accepted(start_world), media,
              frozenset(i.get("name") for i in ((start_world.get("images") or {}).get("images") or {}).values()))
    speed = f"{point.speed:g}"

    proc = start_suites(state, *first, *media_args, speed=speed, suites=ALL)
    output = kill_when(proc, lambda out: point.ready(out, sim_world(state), run_state_facts(state), point.speed),
                       timeout=point.timeout)
    assert proc.returncode == -9, output[-3000:]
    killed = Killed(sim_world(state), run_state_facts(state), output)
    point.at_kill(killed, point.speed)
    assert open_checks(state), "nothing was left open by the killed run"

    lf_started = time.time()
    lf = run_suites(state, "--lf", "--sim-speed", speed, *media_args, suites=ALL)
    if point.ends is not None:  # whether the rerun met the work still in flight (then it had to follow it)
        left = point.ends(killed.world, point.speed) - lf_started
        print(f"{point.id}: the interrupted work had {left:.1f} s left when --lf started")
    assert lf.returncode == 0, lf.explain()
    assert open_checks(state) == []

    chain = request.getfixturevalue("chain")
    clean = chain.clean_state
    every = set(json.loads(next(clean.glob("ledger-*.json")).read_text(encoding="utf-8"))["entries"])
    assert set(lf.outcomes) | lf.carried == every, sorted(every - set(lf.outcomes) - lf.carried)
    assert lf.carried and not set(lf.outcomes) & lf.carried
    page = _report_html(state)
    missing = [n for n in every if html.escape(n.split("::", 1)[1], quote=False) not in page]
    assert not missing and "沿用" in page, missing[:5]

    world = sim_world(state)
    status = sim_status(state)
    assert status == sim_status(clean)
    assert status["uploads_in_progress"] == 0
    assert operations(world) == operations(sim_world(clean))
    point.after(killed, world, run_state_facts(state), row)
