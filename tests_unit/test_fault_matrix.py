"""End to end: the fault matrix of the whole suite — every fault kind of the
simulator at the places of steps 01-11 where it matters, one row per case
(suites as subprocesses against the embedded simulator, speed 0, each case in
its own ``--state-dir``).

A row names the step it faults, the fault spec (``--sim-faults``) and what must happen:

* ``RECOVERS`` — a transient fault: the run passes by itself (rc 0);
* a failing check — a persistent fault: the run fails exactly that check (a
  node id; a parametrized check without its parameter means any of its rows)
  with a clear Chinese message containing the fragment given (the cause), and
  ``--lf`` then completes (rc 0, every check passed in the ledger).

Every rule of the spec must really have fired (the run's terminal summary lists
how often each injected fault fired): a row whose fault hits nothing proves nothing.

What a row runs (CI time: the matrix has to stay within a few minutes of a
2-core machine, and the suite's fault-free prefix is the same for every row):

* rows of steps 01-03 run suites 01-03 from an empty state dir (deployment and
  cluster configuration, the part that must work from scratch);
* rows of steps 04-11 start from a copy of the state dir (run state, ledger,
  simulator world, plan copy) a clean run had just before that step, and run
  every suite from that step to 11 — the rest of the suite must still complete
  after the fault. The clean run is made once per matrix in stages (01-03,
  then each later suite in its own session, a snapshot after each: exactly the
  rerun path of an engineer who runs the suite step by step), shared by the
  xdist workers through a file lock.

Measured on the 2-core machine shared with other sessions: the default rows take
6-11 minutes with ``-n 2`` (load 1-9), about 375 CPU seconds; running every row
from an empty state dir through step 11 would cost about three times as much
(a fresh 01-11 run is ~12 CPU seconds, a 01-03 run ~3).

After every case: the simulator holds what the clean run leaves at the same
point (its status equals the baseline's after 03 or after 11, and so do the
counts of CloudTower applications, packages, upload tasks and associations,
so nothing was made twice), no upload is open, the plan file is intact apart
from the serial cells (集群 主机规划!E19, CloudTower 集群管理信息!M3, the components'
M4/M5: ``cells.WRITE_BACK``; the plan's fields, and every other stored cell of every
sheet, equal the clean run's), and no plan
secret (any form of ``secret_forms`` of a secret of at least 6 characters) is
in any file under the state dir except the plan copy and its backups, nor in
the runs' output, their JUnit XML or any file of the reports dir (HTML reports,
Allure results, attachments).

Rows are added by listing them in :data:`CASES`. A row whose fault kind or
target form the simulator does not know yet (the parser is probed) is skipped
with the reason. Rows marked ``extended`` (more places and kinds per step, each
passing) run only with ``VOYAGER_FAULT_MATRIX=full``: CI runs the default rows
(at least 60; every step 04-11 with a recovering and a failing row), a full run
all of them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from filelock import FileLock

from e2e_support import ROOT, SUITES, ledger_of, plan_without_serial, run_suites, sim_status, \
    workbook_cells_without_serial
from voyager.plan import read_plan
from voyager.redact import secret_forms

pytestmark = pytest.mark.e2e

RECOVERS = "recovers"
FULL_MATRIX = ("VOYAGER_FAULT_MATRIX", "full")  # the environment setting that also runs the extended rows
HTTP_KINDS = ("http-500", "http-reset", "slow")
KINDS = ("http-500", "http-reset", "slow", "fail-job", "drop-chunk", "ssh-fail", "ssh-drop")

ALL_SUITES = sorted(f"suites/{p.name}" for p in (ROOT / "suites").glob("test_[0-9][0-9]_*.py"))
EARLY = list(SUITES)  # 01-03: rows of these steps run them from scratch


def step_of(suite: str) -> str:
    return re.match(r"suites/test_(\d\d)_", suite).group(1)


LAST_EARLY = step_of(EARLY[-1])
STEPS = [step_of(s) for s in ALL_SUITES]
# the clean run's stages: 01-03 together, then every later suite alone
STAGES = [(LAST_EARLY, EARLY)] + [(step_of(s), [s]) for s in ALL_SUITES if step_of(s) > LAST_EARLY]


def suites_from(step: str) -> list[str]:
    return [s for s in ALL_SUITES if step_of(s) >= step]


S01 = "suites/test_01_prepare.py"
S02 = "suites/test_02_init_cluster.py"
S03 = "suites/test_03_config_cluster.py"
S04 = "suites/test_04_cloudtower.py"
S05 = "suites/test_05_attach_cluster.py"
S06 = "suites/test_06_tower_config.py"
S07 = "suites/test_07_components.py"
S08 = "suites/test_08_inspection.py"
S09 = "suites/test_09_workload.py"
S10 = "suites/test_10_perf.py"
S11 = "suites/test_11_cleanup.py"


@dataclass(frozen=True)
class Case:
    id: str
    faults: str  # --sim-faults
    outcome: str  # RECOVERS, or the node id of the check that must fail
    message: str = ""  # fragment of that check's failure message (the cause)
    proof: str = ""  # regex the evidence log of the faulted run must match: the fault really hit
    skip: str = ""  # a reason to skip this row whatever the simulator supports (Chinese)
    step: str = "01"  # the step the fault is injected in ("01".."11")
    extended: bool = False  # run only with VOYAGER_FAULT_MATRIX=full (CI time)

    @property
    def suites(self) -> list[str]:
        return EARLY if self.step <= LAST_EARLY else suites_from(self.step)

    @property
    def start(self) -> Optional[str]:
        """The baseline stage the row starts from (None: an empty state dir)."""
        if self.step <= LAST_EARLY:
            return None
        return STAGES[[name for name, _ in STAGES].index(self.step) - 1][0]


def row(id: str, faults: str, outcome: str = RECOVERS, message: str = "", *, proof: str = "",
        skip: str = "", step: str = "", extended: bool = False) -> pytest.param:
    """A row; the step defaults to the failing check's module (and to 01 for a recovering row)."""
    if outcome != RECOVERS:
        module = step_of(outcome.split("::", 1)[0])
        step = step or module
        assert step <= module, f"{id}: the failing check {outcome} comes before step {step}"
    return pytest.param(Case(id, faults, outcome, message, proof, skip, step or "01", extended), id=id)


SCAN = "/api/v2/deployment/host"
STATUS = "/api/v2/deployment/host/deploy_status"
VERIFY = "/api/v2/deployment/deploy_verify"
TRIGGER = "/api/v2/deployment/cluster"
SETUP_ROOT = "/api/v3/users:setupRoot"
LOGIN = "/api/v3/sessions"
LICENSE = "/api/v2/tools/license"
JOBS = "/api/v2/jobs/*"
VDS = "/api/v2/network/vds"
VLANS = "/api/v2/network/vds/*/vlans"
IPMI = "/api/v2/ipmi/upsert_accounts"
CPU = "/api/v2/elf/cluster_cpu_compatibility"
CPU_MODELS = "/api/v2/elf/cluster_recommended_cpu_models"
SVT_VOLUME = "/api/v2/svt_image/create_volume"
SVT_CHUNK = "/api/v2/svt_image/upload_template"
HTTP_500 = "接口返回错误 REST_UNKNOWN_ERROR"  # how the clients word a 5xx answer
VMS = "/api/v2/vms"
PREINSTALL = "/usr/share/smartx/tower/preinstall.sh"
GQL = "/api"  # CloudTower GraphQL: one path, targets name the operation
REST = "/v2/api"
TOWER_LOGIN = "/v2/api/login"
INSPECTOR = "/api/inspector/api/v3"


def answered(path: str, status: int = 500, method: str = r"\S+") -> str:
    """Proof regex: the evidence shows ``path`` (a sim fault glob) answered ``status``
    (only a call that was not retried shows there: the HTTP layer's retries are one record)."""
    glob = re.escape(path).replace(re.escape("*"), "[^/ ?]+")
    return rf"\] {method} \S+{glob}(\?\S*)? → {status}"


CASES = [
    # -- 01 host scan (GET, retried by the HTTP layer) ---------------------------------------
    row("scan-500-transient", f"http-500:{SCAN}:2"),
    row("scan-reset-transient", f"http-reset:{SCAN}:2"),
    row("scan-slow", f"slow:{SCAN}:1"),
    row("scan-500-persistent", f"http-500:{SCAN}:40", f"{S01}::test_host_scanned", f"失败：{HTTP_500}",
        proof=answered(SCAN)),
    row("scan-reset-persistent", f"http-reset:{SCAN}:40", f"{S01}::test_host_scanned", "在响应前断开了连接"),
    # -- 02 deploy trigger (a POST: never resent blindly), deploy status and verify -----------
    row("deploy-trigger-500", f"http-500:POST {TRIGGER}:1", f"{S02}::test_deploy_triggered",
        f"{HTTP_500}：simulated internal error", proof=answered(TRIGGER, method="POST")),
    row("deploy-trigger-500-path", f"http-500:{TRIGGER}:1", f"{S02}::test_deploy_triggered",
        f"POST {TRIGGER}，HTTP 500", proof=answered(TRIGGER, method="POST")),
    row("deploy-trigger-reset", f"http-reset:{TRIGGER}:1", f"{S02}::test_deploy_triggered", "在响应前断开了连接"),
    row("deploy-status-500", f"http-500:{STATUS}:4", step="02"),
    row("deploy-status-reset", f"http-reset:{STATUS}:3", step="02"),
    row("deploy-verify-500", f"http-500:{VERIFY}:3", step="02"),
    row("deploy-failed", "fail-job:DEPLOY_CLUSTER:1", f"{S02}::test_deploy_finished",
        "部署失败，最后看到的阶段：阶段 5/8（62%） deploy_zbs"),
    # -- 03 admin password, login, serial ------------------------------------------------------
    row("setup-root-500", f"http-500:{SETUP_ROOT}:1", f"{S03}::test_fisheye_admin_password", f"POST {SETUP_ROOT}"),
    row("login-500", f"http-500:{LOGIN}:2", step="03"),
    row("license-500", f"http-500:{LICENSE}:2", step="03"),
    # -- 03 jobs: every job kind of step 03 fails once; job polls hit by 5xx/resets -----------
    row("job-vip-failed", "fail-job:UPDATE_VIP:1", f"{S03}::test_vip", "任务 UPDATE_VIP 失败（EVIP_ADDRESS_IN_USE）"),
    row("job-dns-failed", "fail-job:UPDATE_DNS:1", f"{S03}::test_dns", "任务 UPDATE_DNS 失败",
        skip="演示规划表的 DNS 已随部署写入集群，步骤 03 不发起 UPDATE_DNS 作业：此故障无处可注入"),
    row("job-ntp-failed", "fail-job:UPDATE_NTP:1", f"{S03}::test_ntp", "任务 UPDATE_NTP 失败（ENTP_SERVICE_RESTART）"),
    row("job-vds-failed", "fail-job:NETWORK_CREATE_VDS:1", f"{S03}::test_business_vds",
        "任务 NETWORK_CREATE_VDS 失败（ENETWORK_OVS_TIMEOUT）"),
    row("job-poll-500", f"http-500:{JOBS}:3", step="03"),
    row("job-poll-reset", f"http-reset:{JOBS}:2", step="03"),
    row("vip-put-500", "http-500:PUT /api/v2/settings/vip:1", step="03"),
    row("ntp-read-500-persistent", "http-500:/api/v2/settings/ntp:8", f"{S03}::test_ntp",
        "GET /api/v2/settings/ntp，HTTP 500"),
    # -- 03 business VDS and VLANs (POSTs that create: never resent blindly) ------------------
    row("vds-create-500", f"http-500:POST {VDS}:1", f"{S03}::test_business_vds", f"POST {VDS}，HTTP 500",
        proof=answered(VDS, method="POST")),
    row("vds-create-reset", f"http-reset:POST {VDS}:1", f"{S03}::test_business_vds", "在响应前断开了连接"),
    row("vds-list-500", f"http-500:GET {VDS}:2", step="03"),
    row("vlan-create-500", f"http-500:POST {VLANS}:1", f"{S03}::test_business_vlan", "/vlans，HTTP 500",
        proof=answered(VLANS, method="POST")),
    row("vlan-path-500", f"http-500:{VLANS}:1", step="03"),
    # -- 03 IPMI upsert (idempotent: resent), CPU compatibility ---------------------------------
    row("ipmi-upsert-500", f"http-500:{IPMI}:1", step="03"),
    row("ipmi-upsert-reset", f"http-reset:{IPMI}:1", step="03"),
    row("ipmi-upsert-500-persistent", f"http-500:{IPMI}:8", f"{S03}::test_ipmi_accounts_upserted",
        f"POST {IPMI}，HTTP 500", proof=answered(IPMI)),
    row("cpu-models-500", f"http-500:{CPU_MODELS}:2", step="03"),
    row("cpu-set-500", f"http-500:{CPU}:1", step="03"),
    row("cpu-500-persistent", f"http-500:{CPU}:8", f"{S03}::test_cpu_compatibility", f"{CPU}，HTTP 500"),
    # -- 03 SVT ISO: volume, chunks --------------------------------------------------------------
    row("svt-volume-500", f"http-500:{SVT_VOLUME}:1", step="03"),
    row("svt-chunk-dropped", "drop-chunk:SMTX_VMTOOLS*:1", step="03"),
    row("svt-chunks-dropped-twice", "drop-chunk:SMTX_VMTOOLS*:2", step="03"),
    row("svt-chunk-reset", f"http-reset:{SVT_CHUNK}:2", step="03"),
    row("svt-chunks-dropped-persistent", "drop-chunk:SMTX_VMTOOLS*:20", f"{S03}::test_svt_uploaded",
        "上传虚拟机工具（SVT） SMTX_VMTOOLS-3.2.0-sim-rehearsal.iso 失败"),
    # -- 03 host password change over SSH -----------------------------------------------------
    row("ssh-chpasswd-fails", "ssh-fail:chpasswd*:1", f"{S03}::test_host_passwords", "pam_chauthtok() failed"),
    row("ssh-chpasswd-drop", "ssh-drop:chpasswd*:1", f"{S03}::test_host_passwords", "SSH 命令执行失败"),
    # -- 04 CloudTower ISO chunks, VM create job, NIC job, installer, GraphQL setup, login, DNS ------------
    row("iso-chunks-dropped", "drop-chunk:cloudtower*:3", step="04"),  # the issue's own case
    row("tower-vm-create-failed", "fail-job:VM_CREATE:1", f"{S04}::test_cloudtower_vm", "EVM_INSUFFICIENT_RESOURCE"),
    row("tower-nic-job-failed", "fail-job:VM_UPDATE cloudtower:1", f"{S04}::test_cloudtower_vm_ip",
        "EVM_GUEST_AGENT_TIMEOUT"),
    row("installer-failed", "fail-job:CLOUDTOWER_INSTALL:1", f"{S04}::test_cloudtower_installer", "CloudTower 安装失败"),
    row("installer-log-drop", "ssh-drop:tail -n 20 nohup.out:1", step="04"),
    row("tower-root-user-500", f"http-500:{GQL}#createRootUser:1", f"{S04}::test_tower_root_user", "createRootUser"),
    row("tower-login-500", f"http-500:{TOWER_LOGIN}:2", step="04"),
    row("tower-dns-write-fails", "ssh-fail:tee /etc/resolv.conf:1", f"{S04}::test_tower_dns", "/etc/resolv.conf"),
    # extended rows of 04
    row("iso-chunks-dropped-persistent", "drop-chunk:cloudtower-*:20", f"{S04}::test_cloudtower_iso",
        "cloudtower-4.7.1-sim-rehearsal.iso", extended=True),
    row("tower-vm-create-reset", f"http-reset:POST {VMS}:1", f"{S04}::test_cloudtower_vm", "在响应前断开了连接",
        extended=True),
    row("tower-vm-read-500", f"http-500:GET {VMS}/*:3", step="04", extended=True),
    row("tower-nic-put-500", f"http-500:PUT {VMS}/*:1", step="04", extended=True),
    row("installer-preinstall-fails", f"ssh-fail:sh {PREINSTALL}:1", f"{S04}::test_cloudtower_installer",
        "preinstall.sh 失败", extended=True),
    row("installer-ssh-drop", "ssh-drop:*installer deploy:1", f"{S04}::test_cloudtower_installer",
        "SSH 命令执行失败", extended=True),
    row("tower-setup-check-500", f"http-500:{GQL}#checkTowerIsSetup:2", step="04", extended=True),
    row("tower-organization-reset", f"http-reset:{GQL}#createOrganization:1", f"{S04}::test_tower_organization",
        "在响应前断开了连接", extended=True),
    row("tower-login-500-persistent", f"http-500:{TOWER_LOGIN}:4", f"{S04}::test_tower_login",
        f"POST {TOWER_LOGIN}，HTTP 500", extended=True),
    row("tower-ntp-update-500", f"http-500:{GQL}#updateCloudTowerNtpUrl:1", f"{S04}::test_tower_ntp",
        "updateCloudTowerNtpUrl", extended=True),
    row("tower-ntp-read-500", f"http-500:{REST}/get-ntp-service-url:2", step="04", extended=True),
    row("tower-dns-read-drop", "ssh-drop:cat /etc/resolv.conf:1", step="04", extended=True),
    row("tower-license-500", f"http-500:{GQL}#deployedLicense:2", step="04", extended=True),
    # -- 05 datacenter, connect-cluster ----------------------------------------------------------------
    row("datacenter-create-500", f"http-500:{REST}/create-datacenter:1", f"{S05}::test_datacenter",
        "create-datacenter，HTTP 500"),
    row("connect-cluster-failed", "fail-job:CONNECT_CLUSTER:1", f"{S05}::test_cluster_connection", "关联集群"),
    row("clusters-list-500", f"http-500:{REST}/get-clusters:3", step="05"),
    # extended rows of 05
    row("datacenter-list-slow", f"slow:{REST}/get-datacenters:1", step="05", extended=True),
    row("connect-cluster-reset", f"http-reset:{REST}/connect-cluster:1", f"{S05}::test_cluster_connection",
        "在响应前断开了连接", extended=True),
    row("tower-tasks-reset", f"http-reset:{REST}/get-tasks:2", step="05", extended=True),
    # -- 06 storage policy, alert rule, views, topology ---------------------------------------------------
    row("storage-policy-500", f"http-500:{GQL}#updateClusterSettings:1", f"{S06}::test_default_storage_policy",
        "updateClusterSettings"),
    row("alert-rules-read-500", f"http-500:{GQL}#globalAlertRules:2", step="06"),
    row("view-create-500", f"http-500:{REST}/create-view:1", f"{S06}::test_monitoring_view", "create-view，HTTP 500"),
    row("brick-task-failed", "fail-job:CREATE_BRICK_TOPO:1", f"{S06}::test_host_rack_position", "机箱"),
    row("rack-task-failed", "fail-job:CREATE_RACK_TOPO:1", f"{S06}::test_racks", "创建机架"),
    row("node-move-task-failed", "fail-job:MOVE_NODE_TOPO:1", f"{S06}::test_host_rack_position", "放入机箱"),
    # extended rows of 06
    row("alert-rule-reset", f"http-reset:{GQL}#updateGlobalAlertRule:1", f"{S06}::test_storage_alert_rule",
        "在响应前断开了连接", extended=True),
    row("graph-create-reset", f"http-reset:{REST}/create-graph:1", f"{S06}::test_monitoring_view",
        "在响应前断开了连接", extended=True),
    row("node-move-500", f"http-500:{REST}/move-node-topo:1", f"{S06}::test_host_rack_position", "move-node-topo",
        extended=True),
    # -- 07 component packages and deployments ------------------------------------------------------------
    row("backup-chunk-dropped", "drop-chunk:smtx-backup-dr-*:1", step="07"),
    row("obs-deploy-failed", "fail-job:DEPLOY_CLOUDTOWER_APPLICATION:1", f"{S07}::test_obs_deployed", "INSTALL_FAILED"),
    row("obs-associate-failed", "fail-job:ASSOCIATE_OBS_CLUSTER:1", f"{S07}::test_obs_cluster_associated", "失败"),
    row("backup-associate-failed", "fail-job:ASSOCIATE_BACKUP_CLUSTER:1", f"{S07}::test_backup_cluster_associated",
        "ASSOCIATE_BACKUP_CLUSTER"),
    # extended rows of 07
    row("obs-chunk-dropped", "drop-chunk:Observability-*:1", step="07", extended=True),
    row("backup-chunks-dropped-persistent", "drop-chunk:smtx-backup-dr-*:6", f"{S07}::test_backup_package_uploaded",
        "备份安装包第 1 块连续 3 次上传失败", extended=True),
    # -- 08 inspection job, export, download, an item judged FAIL -----------------------------------------
    row("inspection-item-fails", "inspect-fail:host_disk_is_healthy:1",
        f"{S08}::test_inspection_item[host_disk_is_healthy]", "不通过"),
    row("inspection-export-500", f"http-500:{INSPECTOR}/jobs/*:exportReport:1", f"{S08}::test_inspection_job",
        "exportReport"),
    row("inspection-download-reset", "http-reset:/api/inspector/api/v1/export/download:1", step="08"),
    # extended rows of 08
    row("inspection-job-500", f"http-500:POST {INSPECTOR}/jobs:1", f"{S08}::test_inspection_job", "HTTP 500",
        extended=True),
    row("inspection-status-500", f"http-500:{INSPECTOR}/export/status:2", step="08", extended=True),
    # -- 09 OVA upload, OVF import, NIC job, guest SSH and ping -------------------------------------------
    row("ova-chunk-dropped", "drop-chunk:voyager-workload-disk1.vmdk:1", step="09"),
    row("vm-import-failed", "fail-job:IMPORT_VM:1", f"{S09}::test_vm_created", "IMPORT_VM"),
    row("test-vm-nic-failed", "fail-job:VM_UPDATE voyager-test-*:1", f"{S09}::test_vm_address",
        "EVM_GUEST_AGENT_TIMEOUT"),
    # extended rows of 09
    row("ova-chunks-dropped-persistent", "drop-chunk:voyager-workload-disk1.vmdk:3", f"{S09}::test_vm_created",
        "voyager-workload-disk1.vmdk", extended=True),
    row("ovf-parse-500", f"http-500:{REST}/parse-ovf:1", step="09", extended=True),
    row("vm-import-reset", f"http-reset:{REST}/import-vm:1", f"{S09}::test_vm_created", "在响应前断开了连接",
        extended=True),
    row("guest-ssh-drop", "ssh-drop:hostname:1", f"{S09}::test_vm_ssh", "SSH 命令执行失败", extended=True),
    row("guest-ping-fails", "ssh-fail:ping -c *:1", f"{S09}::test_vm_reaches_peers", "ping", extended=True),
    row("vms-list-reset", f"http-reset:{REST}/get-vms:2", step="09", extended=True),
    # -- 10 fio over SSH, live migration --------------------------------------------------------------------
    row("fio-fails", "ssh-fail:fio *:1", f"{S10}::test_perf", "fio"),
    row("migration-failed", "fail-job:MIGRATE_VM:1", f"{S10}::test_live_migration", "MIGRATE_VM"),
    row("migration-ping-read-drop", "ssh-drop:cat voyager-migration-ping.log:1", step="10"),
    # extended rows of 10
    row("fio-ssh-drop", "ssh-drop:fio *:1", f"{S10}::test_perf", "SSH 命令执行失败", extended=True),
    row("fio-slow-storage", "slow-storage:127.10.20.11:1", f"{S10}::test_perf", "未达到阈值", extended=True),
    row("migration-500", f"http-500:{REST}/migrate-vm:1", f"{S10}::test_live_migration", "migrate-vm，HTTP 500",
        extended=True),
    # -- 11 cleanup -------------------------------------------------------------------------------------------
    row("vm-delete-failed", "fail-job:DELETE_VM:1", f"{S11}::test_test_vms_removed", "DELETE_VM"),
    row("upload-list-reset", f"http-reset:{REST}/get-upload-tasks:1", step="11"),
    # extended rows of 11
    row("vm-delete-500", f"http-500:{REST}/delete-vm:1", f"{S11}::test_test_vms_removed", "delete-vm，HTTP 500",
        extended=True),
    row("upload-cancel-500", f"http-500:{REST}/cancel-upload-task:1", f"{S11}::test_test_uploads_removed",
        "cancel-upload-task，HTTP 500", extended=True),
]


def unsupported(spec: str) -> Optional[str]:
    """Why the simulator cannot inject ``spec`` yet (None when it can): its parser
    refuses the kind, or an HTTP target with a method does not match that method."""
    from voyager.sim.backend.faults import Faults

    try:
        faults = Faults(spec)  # the simulator's own parser
    except ValueError as exc:  # FaultSpecError
        return f"模拟器尚不支持此故障：{exc}"
    for rule in faults.rules:
        method, space, path = rule.target.partition(" ")
        if rule.kind in HTTP_KINDS and space and faults.take_http(path.replace("*", "x"), method) != rule.kind:
            return f"模拟器的 HTTP 故障目标尚不支持指定方法（{rule.target!r} 只会按路径匹配，永远不会命中）"
    return None


# -- the clean baseline ----------------------------------------------------------------------------
def _copy_or_link(src: str, dst: str) -> None:
    """Copy a file of the state dir; the rehearsal media (read-only inputs, tens of MiB) are hard-linked."""
    if "media" in Path(src).parts:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def copy_state(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, copy_function=_copy_or_link, ignore=shutil.ignore_patterns("run.lock*"))


def world_counts(state: Path) -> dict:
    """What the simulator's status does not count but a rerun must not duplicate or leave
    open: CloudTower applications, backup services, associations, packages and their
    upload tasks, the test VMs' disk uploads (from the saved world)."""
    world = json.loads((state / "sim-world.json").read_text(encoding="utf-8"))
    tower = world.get("tower") or {}
    apps, packages = tower.get("applications") or {}, tower.get("packages") or {}
    return {"applications": len(apps.get("apps") or []), "backup_services": len(apps.get("backup_services") or []),
            "associations": len(apps.get("links") or []), "packages": len(packages.get("packages") or []),
            "package_uploads": len(packages.get("tasks") or []) + len(packages.get("chunked") or []),
            "vm_disk_uploads": len((tower.get("workloads") or {}).get("uploads") or [])}


@dataclass
class Baseline:
    root: Path
    stages: dict  # stage -> {"status": ..., "world": ...}

    def state(self, stage: str) -> Path:
        return self.root / stage / "state"

    def expected(self, case: Case) -> dict:
        return self.stages[LAST_EARLY if case.start is None else STAGES[-1][0]]


class SharedBaseline:
    """The clean staged run, made on first use (a row of 01-03 asks for it only after its own
    runs, so one xdist worker runs rows while the other makes it) and shared by the workers."""

    def __init__(self, root: Path):
        self.root = root
        self._baseline: Optional[Baseline] = None

    def get(self) -> Baseline:
        if self._baseline is None:
            with FileLock(str(self.root) + ".lock"):
                done = self.root / "stages.json"
                if not done.exists():
                    stages = build_baseline(self.root)
                    done.write_text(json.dumps(stages), encoding="utf-8")
                self._baseline = Baseline(self.root, json.loads(done.read_text(encoding="utf-8")))
        return self._baseline


def build_baseline(root: Path) -> dict:
    """One clean run in stages (01-03, then each later suite alone), a snapshot of the
    state dir after each stage; returns {stage: {status, world}}."""
    shutil.rmtree(root, ignore_errors=True)
    state = root / "run" / "state"
    stages = {}
    for name, suites in STAGES:
        run = run_suites(state, suites=suites)
        assert run.returncode == 0 and not run.having("failed") and not run.having("error"), run.explain()
        copy_state(state, root / name / "state")
        stages[name] = {"status": sim_status(state), "world": world_counts(state)}
    return stages


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> SharedBaseline:
    """The clean staged run, made once per matrix and shared by the xdist workers."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's base temp, shared by the workers
    return SharedBaseline(base / "fault-matrix-baseline")


# -- the checks after a case ------------------------------------------------------------------------
def secret_forms_of(plan_file: Path) -> set[str]:
    return {form for s in read_plan(plan_file).secrets() if len(s.reveal()) >= 6
            for form in secret_forms(s.reveal()) if len(form) >= 6}


def output_files(state: Path) -> list[Path]:
    """Every file a run wrote under the state dir, but the plan copy and its backups."""
    return [p for p in state.rglob("*") if p.is_file() and not p.name.startswith("demo-plan.")]


def assert_no_secret(state: Path, outputs: list[str]) -> None:
    forms = secret_forms_of(state / "demo-plan.xlsx")
    assert forms, "the demo plan has no secret of 6 characters or more: nothing would be checked"
    anyone = re.compile(b"|".join(re.escape(f.encode("utf-8")) for f in sorted(forms)))  # one pass per file
    leaks = [str(p.relative_to(state)) for p in output_files(state) if anyone.search(p.read_bytes())]
    leaks += [f"output of run {i}" for i, text in enumerate(outputs) if any(f in text for f in forms)]
    leaks += [p.name for p in state.parent.glob("junit-*.xml") if anyone.search(p.read_bytes())]
    reports = state.parent / "reports"  # the HTML reports, Allure results and their attachments
    assert reports.is_dir(), f"no reports were written to {reports}"
    leaks += [str(p.relative_to(state.parent)) for p in reports.rglob("*") if p.is_file()
              and anyone.search(p.read_bytes())]
    assert not leaks, f"plan secrets found in: {leaks}"


def failing(run, outcome: str) -> set[str]:
    return {n for n in run.having("failed") | run.having("error")
            if n == outcome or n.startswith(outcome + "[")} if outcome != RECOVERS else set()


def evidence_text(state: Path, before: set[Path]) -> str:
    """The evidence logs written since ``before`` (the logs of the row's own runs)."""
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in sorted((state / "evidence").glob("*.log")) if p not in before)


FIRED = re.compile(r"^  (\S+?):(.+):(\d+) 已触发 (\d+) 次$", re.M)


def fired(output: str) -> dict[str, int]:
    """``{"kind:target:count": times fired}`` from a run's terminal summary."""
    return {f"{kind}:{target}:{count}": int(n) for kind, target, count, n in FIRED.findall(output)}


def check_case(case: Case, tmp_path: Path, shared: SharedBaseline) -> None:
    """Run one row and assert what the module docstring promises."""
    state = tmp_path / "state"
    if case.start is not None:
        copy_state(shared.get().state(case.start), state)
    before = set((state / "evidence").glob("*.log"))
    first = run_suites(state, "--sim-faults", case.faults, suites=case.suites)
    outputs = [first.output]
    rules = [r.strip() for r in case.faults.split(",") if r.strip()]
    hits = fired(first.output)
    assert set(hits) == set(rules), f"the terminal summary does not list the injected faults: {hits}\n" + first.explain()
    assert all(hits.values()), f"a fault never fired (it hit nothing): {hits}\n" + first.explain()
    if case.proof:
        assert re.search(case.proof, evidence_text(state, before), re.M), f"the fault did not hit ({case.proof})"
    if case.outcome == RECOVERS:
        assert first.returncode == 0 and not first.having("failed") and not first.having("error"), first.explain()
    else:
        bad = first.having("failed") | first.having("error")
        hit = failing(first, case.outcome)
        assert first.returncode == 1 and hit and bad == hit, f"expected {case.outcome} to fail\n" + first.explain()
        for nodeid in hit:
            message = first.messages[nodeid]
            assert case.message in message, message[:3000]
            assert re.search(r"[\u4e00-\u9fff]", message.split("\n", 1)[0]), message[:3000]
        lf = run_suites(state, "--lf", suites=case.suites)
        outputs.append(lf.output)
        assert lf.returncode == 0, lf.explain()
    entries = ledger_of(state)
    assert entries and {n: e["outcome"] for n, e in entries.items() if e["outcome"] != "passed"
                        and not (e["outcome"] == "skipped" and not e.get("dependency_skip"))} == {}
    baseline = shared.get()
    clean = baseline.expected(case)
    status = sim_status(state)
    assert status == clean["status"]
    assert status["uploads_in_progress"] == 0
    assert world_counts(state) == clean["world"]
    assert plan_without_serial(state) == plan_without_serial(baseline.state(STAGES[-1][0]))
    assert workbook_cells_without_serial(state / "demo-plan.xlsx") == workbook_cells_without_serial(
        baseline.state(STAGES[-1][0]) / "demo-plan.xlsx")  # every cell of every sheet, not only the plan's fields
    assert read_plan(state / "demo-plan.xlsx").cluster.serial
    assert_no_secret(state, outputs)


@pytest.mark.parametrize("case", CASES)
def test_fault(case: Case, tmp_path, baseline):
    """注入故障后：瞬时故障自行恢复（整次运行通过）；持续故障使对应检查失败并给出写明原因的中文消息，
    随后 --lf 补全；之后模拟器状态与干净运行一致、没有重复创建或未完成的上传、规划表除序列号外不变、
    输出中没有规划密码。"""
    if case.skip:
        pytest.skip(case.skip)
    if case.extended and os.environ.get(FULL_MATRIX[0]) != FULL_MATRIX[1]:
        pytest.skip(f"扩展行：只在设置 {FULL_MATRIX[0]}={FULL_MATRIX[1]} 时运行（控制 CI 时间；默认的行已覆盖该步骤）")
    reason = unsupported(case.faults)
    if reason:
        pytest.skip(reason)
    check_case(case, tmp_path, baseline)


def test_matrix_covers_every_fault_kind():
    """故障矩阵覆盖模拟器的每一种故障类型（http-500、http-reset、slow、fail-job、drop-chunk、ssh-fail、ssh-drop）。"""
    kinds = {p.values[0].faults.split(":", 1)[0] for p in CASES}
    assert set(KINDS) <= kinds
    assert len({p.id for p in CASES}) == len(CASES)


# the steps with no place a fault matters (none today: every step calls an API or runs a command)
UNFAULTABLE: dict[str, str] = {}


def test_matrix_covers_the_whole_suite():
    """CI 默认运行的故障矩阵至少有 60 行（不含扩展行与按原因跳过的行），步骤 01–11 中每个有可注入故障之处的
    步骤都有行；步骤 04–11 的每一步都有持续故障（检查失败后 --lf 补全）与瞬时故障（自行恢复）两种行。"""
    cases = [p.values[0] for p in CASES]
    live = [c for c in cases if not c.skip and not c.extended]
    assert len(live) >= 60, len(live)
    steps = {c.step for c in live}
    assert steps | set(UNFAULTABLE) == set(STEPS), sorted(set(STEPS) - steps)
    for step in STEPS:
        if step > LAST_EARLY and step not in UNFAULTABLE:
            kinds = {c.outcome == RECOVERS for c in live if c.step == step}
            assert kinds == {True, False}, f"step {step}: rows {kinds}"
