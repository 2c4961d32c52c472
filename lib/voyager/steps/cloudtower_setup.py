"""Walkthrough step 04, CloudTower itself: the installer run over SSH in the
VM (``nohup.out`` followed), port 443, and CloudTower's first setup through
GraphQL and REST — root user, organization, login — then NTP, DNS and the
license serial written back to 集群管理信息!M3.

Each function observes first, acts only when the effect is missing and
verifies; each records what it expected and found (``voyager.report.facts``)
and returns a short Chinese sentence. The installer's start is recorded in the
run-state section ``cloudtower`` (``installer_started``, ``installer_runs``);
its log decides on a rerun whether it is followed, or run again after a failure.
"""
from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from typing import Any, Optional

from voyager.clients import is_already_exists
from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.redact import REDACTOR
from voyager.report import facts
from voyager.steps.cloudtower import (ENCODED_ROOT_PASSWORD, ROOT_PASSWORD, ROOT_USER, SECTION, organization_name,
                                      tower_cell, tower_ip)
from voyager.steps.config import StepError, write_back_checked
from voyager.waiters import WaitError, epoch_of, wait_installer_log, wait_port


INSTALL_TIMEOUT = 3600.0

# -- the installer ------------------------------------------------------------------------------------
# The walkthrough's `sudo sh preinstall.sh && sudo nohup sudo installer deploy &`, as two commands:
# the pre-installation runs in the foreground (its failure is shown, and the installer is not
# started), then the installer is detached with its output sent to nohup.out explicitly — over a
# non-interactive SSH channel nohup would otherwise keep writing to the channel and hold it open.
PREINSTALL_COMMAND = "sudo sh /usr/share/smartx/tower/preinstall.sh"
INSTALL_LOG = "nohup.out"  # in the cloudtower user's login directory, where nohup writes it
INSTALLER_COMMAND = (f"sudo nohup sudo /usr/share/smartx/tower/installer/binary/installer deploy "
                     f">> {INSTALL_LOG} 2>&1 < /dev/null &")
SUCCESS_MARKER = "Install Operation Center Successfully"
FAILURE_MARKERS = ("Install Operation Center Failed",)
TAIL_LINES = 20
PORT_RETRIES, PORT_INTERVAL = 3, 10.0  # walkthrough: 443 not answering -> retry 3 times, 10 s apart

# -- GraphQL operations, as the walkthrough sends them ---------------------------------------------
CREATE_ROOT_USER = (
    "mutation createRootUser($root_password: String!, $now: DateTime!) {\n  createUser(data: {name: \"root\", "
    "source: LOCAL, role: ROOT, username: \"root\", display_username: \"root\", password: $root_password, "
    "password_recover_qa: {enabled: false, items: []}, password_updated_at: $now}, effect: {encoded: true}) {\n"
    "    id\n    __typename\n  }\n}\n")
CREATE_ORGANIZATION = ("mutation createOrganization($data: OrganizationCreateInput!) {\n  createOrganization("
                       "data: $data) {\n    id\n    __typename\n  }\n}\n")
CHECK_TOWER_IS_SETUP = ("query checkTowerIsSetup {\n  organizations(first: 1) {\n    id\n    name\n    __typename\n"
                        "  }\n  userCreated {\n    created\n    __typename\n  }\n}\n")
UPDATE_NTP = ("mutation updateCloudTowerNtpUrl($data: NtpCommonUpdateInput!) {\n  updateCloudTowerNtpUrl(data: "
              "$data) {\n    ntp_service_url\n    __typename\n  }\n}\n")
DEPLOYED_LICENSE = (
    "query deployedLicense {\n  deploys(first: 1) {\n    id\n    license {\n      id\n      license_serial\n"
    "      maintenance_end_date\n      maintenance_start_date\n      max_chunk_num\n      max_cluster_num\n"
    "      max_vm_num\n      used_vm_num\n      sign_date\n      expire_date\n      software_edition\n      type\n"
    "      vendor\n      __typename\n    }\n    __typename\n  }\n}\n")


# =========================================================================== installer
def log_tail(ssh, lines: int = TAIL_LINES) -> Optional[str]:
    """The last ``lines`` lines of the installer log, or None when there is none."""
    result = ssh.sudo(f"tail -n {int(lines)} {shlex.quote(INSTALL_LOG)}", idempotent=True)
    return result.stdout if result.ok else None


def installer_state(tail: Optional[str]) -> str:
    """``none`` (never started), ``running``, ``ok`` or ``failed`` — from the log."""
    if not tail or not tail.strip():
        return "none"
    if SUCCESS_MARKER in tail:
        return "ok"
    if any(m in tail for m in FAILURE_MARKERS):
        return "failed"
    return "running"


def _installer_failed(ssh, reason: str) -> StepError:
    tail = log_tail(ssh) or "（日志为空 / empty）"
    return StepError(f"CloudTower 安装失败：{reason}\n{INSTALL_LOG} 最后 {TAIL_LINES} 行：\n{REDACTOR.redact(tail)}")


def install(ssh, endpoints, plan: Plan, run_state, *, timeout: float = INSTALL_TIMEOUT) -> str:
    """Run the installer once (the walkthrough's command), follow ``nohup.out`` until
    the success line; a failure names the log's last lines. A rerun after a failed
    installation removes the failed log and runs the installer again."""
    ip = tower_ip(plan)
    tail = log_tail(ssh)
    state = installer_state(tail)
    if state == "none" and endpoints.tcp_open(ip, 443):
        facts.record("CloudTower 443 端口", "应答", "应答")
        facts.note("没有安装日志，CloudTower 已在 443 端口应答：视为已安装")
        return "CloudTower 已安装（443 端口已应答）"
    how = "安装程序已在运行，继续跟踪日志" if state == "running" else "CloudTower 已安装"
    if state in ("none", "failed"):
        if state == "failed":
            facts.note("上次安装失败，删除失败的安装日志后重新运行安装程序")
            ssh.sudo(f"rm -f {shlex.quote(INSTALL_LOG)}").check("删除失败的安装日志")
        for command in (PREINSTALL_COMMAND, INSTALLER_COMMAND):
            result = ssh.run(command, timeout=600)
            if not result.ok:
                raise StepError(f"CloudTower 安装命令 {command.split(' >>')[0]} 失败（退出码 {result.exit_status}）：\n"
                                f"{REDACTOR.redact((result.stdout + result.stderr)[-2000:])}")
        runs = int(run_state.get(SECTION, "installer_runs") or 0) + 1
        run_state.update(SECTION, {"installer_started": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                                   "installer_runs": runs})
        how = "已运行 CloudTower 安装程序" + (f"（第 {runs} 次）" if runs > 1 else "")
    try:
        # one `tail` over SSH at most every 30 s, paced from the installer's start (run state)
        wait_installer_log(ssh, INSTALL_LOG, SUCCESS_MARKER, failure_markers=FAILURE_MARKERS, sudo=True,
                           lines=TAIL_LINES, timeout=timeout, interval=5.0, max_interval=30.0,
                           started=epoch_of(run_state.get(SECTION, "installer_started")))
    except WaitError as exc:
        raise _installer_failed(ssh, getattr(exc, "reason", None) or str(exc)) from None
    facts.record("安装日志", SUCCESS_MARKER, SUCCESS_MARKER)
    return how + "，日志出现 " + SUCCESS_MARKER


def wait_https(endpoints, plan: Plan, *, retries: int = PORT_RETRIES, interval: float = PORT_INTERVAL) -> str:
    """443 answers (walkthrough: retry three times, 10 s apart, then fail)."""
    ip = tower_ip(plan)
    wait_port(endpoints, ip, 443, timeout=retries * interval, interval=interval, max_interval=interval,
              describe=f"CloudTower {ip} 的 443 端口应答")
    facts.record("CloudTower 443 端口", "应答", "应答")
    return f"CloudTower {ip} 的 443 端口已应答"


# =========================================================================== first setup (GraphQL)
def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def check_setup(tower_anon) -> dict[str, Any]:
    data = tower_anon.graphql("checkTowerIsSetup", CHECK_TOWER_IS_SETUP, {}, auth=False, idempotent=True) or {}
    return {"organizations": list(data.get("organizations") or []),
            "created": bool((data.get("userCreated") or {}).get("created"))}


def ensure_root_user(tower_anon) -> str:
    """CloudTower's root user (``createRootUser`` with the walkthrough's encoded
    password); an existing user is accepted. ``checkTowerIsSetup`` shows it."""
    if check_setup(tower_anon)["created"]:
        how = "CloudTower 管理员 root 已存在"
    else:
        answer = tower_anon.graphql("createRootUser", CREATE_ROOT_USER,
                                    {"root_password": ENCODED_ROOT_PASSWORD, "now": _now()},
                                    auth=False, already_ok=True)
        how = "CloudTower 管理员 root 已存在" if is_already_exists(answer) else "已创建 CloudTower 管理员 root"
    created = check_setup(tower_anon)["created"]
    facts.record("checkTowerIsSetup.userCreated.created", True, created)
    if not created:
        raise StepError("checkTowerIsSetup 显示 CloudTower 管理员尚未创建")
    return how


def _organizations(tower) -> list[dict[str, Any]]:
    return list(tower.rest("get-organizations", {}) or [])


def ensure_organization(tower_anon, plan: Plan) -> tuple[str, str]:
    """The organization named from 文档描述!C15: created (before setup without a
    token, afterwards logged in); an existing one is accepted. Returns (id, how)."""
    name = organization_name(plan)
    cell = cells.ref(cells.DOC, cells.DOC_CUSTOMER)
    mine = find_organization(tower_anon, name)
    if mine is not None:
        how = f"CloudTower 组织 {name} 已存在"
    else:
        # before setup createOrganization needs no token; with other organizations present it does
        answer = tower_anon.graphql("createOrganization", CREATE_ORGANIZATION, {"data": {"name": name}},
                                    auth=tower_anon.logged_in, already_ok=True)
        how = f"CloudTower 组织 {name} 已存在" if is_already_exists(answer) else f"已创建 CloudTower 组织 {name}"
        mine = find_organization(tower_anon, name)
    setup = check_setup(tower_anon)
    facts.record("CloudTower 组织", name, mine.get("name") if mine else None, cell=cell)
    facts.record("checkTowerIsSetup.organizations", "至少一个组织", [o.get("name") for o in setup["organizations"]],
                 ok=bool(setup["organizations"]))
    if mine is None:
        raise StepError(f"CloudTower 中没有组织 {name}（{cell}）")
    return mine["id"], how


def find_organization(tower_anon, name: str) -> Optional[dict[str, Any]]:
    """The organization ``name``: checkTowerIsSetup shows the first one only, so
    when organizations exist and the first is another one, all are listed
    (logged in as root)."""
    orgs = check_setup(tower_anon)["organizations"]
    if not orgs:
        return None
    if orgs[0].get("name") != name:
        if not tower_anon.logged_in:
            tower_anon.login(ROOT_USER, ROOT_PASSWORD)
        orgs = _organizations(tower_anon)
    return next((o for o in orgs if o.get("name") == name), None)


def login(tower, plan: Plan) -> str:
    """``POST /v2/api/login`` as root with the walkthrough's fixed password."""
    tower.login(ROOT_USER, ROOT_PASSWORD)
    facts.record("CloudTower 登录（/v2/api/login）", "获得 token", "获得 token" if tower.logged_in else "没有 token")
    if plan.cloudtower.web_password and plan.cloudtower.web_password.reveal() != ROOT_PASSWORD.reveal():
        facts.note(f"规划表的 CloudTower 密码（{tower_cell('web_password')}）与部署手册固定的初始密码不同；"
                   "部署时使用固定的初始密码")
    return f"已登录 CloudTower {tower.ip}（用户 {ROOT_USER}）"


# =========================================================================== NTP / DNS / license
def _servers(text: Any) -> list[str]:
    return [s.strip() for s in re.split(r"[;,]", str(text or "")) if s.strip()]


def tower_ntp_servers(tower) -> list[str]:
    return _servers((tower.rest("get-ntp-service-url", {}) or {}).get("ntp_service_url"))


def ensure_ntp(tower, plan: Plan) -> str:
    """CloudTower's NTP servers = the plan's (集群管理信息!E22:E24), read back."""
    servers = list(plan.ntp)
    cell = cells.ref(cells.MGMT, f"{cells.MGMT_NTP[0]}:{cells.MGMT_NTP[-1]}")
    if not servers:
        raise StepError(f"规划表未填写 NTP 服务器（{cell}）")
    if tower_ntp_servers(tower) == servers:
        how = f"CloudTower NTP 已是 {servers}"
    else:
        data = tower.graphql("updateCloudTowerNtpUrl", UPDATE_NTP, {"data": {"ntp_service_url": ",".join(servers)}})
        answered = _servers(((data or {}).get("updateCloudTowerNtpUrl") or {}).get("ntp_service_url"))
        facts.record("updateCloudTowerNtpUrl 的返回", servers, answered, cell=cell)
        how = f"已设置 CloudTower NTP {servers}"
    after = tower_ntp_servers(tower)
    facts.record("CloudTower NTP 服务器（读回）", servers, after, cell=cell)
    if after != servers:
        raise StepError(f"CloudTower 读回的 NTP 服务器为 {after}，应为规划的 {servers}（{cell}）")
    return how


RESOLV_CONF = "/etc/resolv.conf"


def nameservers(text: str) -> list[str]:
    return [parts[1] for parts in (line.split() for line in (text or "").splitlines())
            if len(parts) >= 2 and parts[0] == "nameserver"]


def read_resolv_conf(ssh) -> str:
    result = ssh.run(f"cat {RESOLV_CONF}", idempotent=True)
    return result.stdout if result.ok else ""


def ensure_dns(ssh, plan: Plan) -> str:
    """``/etc/resolv.conf`` of the CloudTower VM names the plan's DNS servers
    (集群管理信息!E25:E26), in order; other lines are kept. Read back."""
    servers = list(plan.dns)
    cell = cells.ref(cells.MGMT, f"{cells.MGMT_DNS[0]}:{cells.MGMT_DNS[-1]}")
    if not servers:
        raise StepError(f"规划表未填写 DNS 服务器（{cell}）")
    text = read_resolv_conf(ssh)
    if nameservers(text) == servers:
        how = f"{RESOLV_CONF} 已是 {servers}"
    else:
        kept = [line for line in text.splitlines() if not line.split()[:1] == ["nameserver"]]
        content = "\n".join(kept + [f"nameserver {s}" for s in servers]) + "\n"
        ssh.sudo(f"tee {RESOLV_CONF}", stdin=content).check(f"写入 {RESOLV_CONF}")
        how = f"已写入 {RESOLV_CONF}：{servers}"
    after = nameservers(read_resolv_conf(ssh))
    facts.record(f"CloudTower {RESOLV_CONF} 的 nameserver（读回）", servers, after, cell=cell)
    if after != servers:
        raise StepError(f"{RESOLV_CONF} 读回的 DNS 为 {after}，应为规划的 {servers}（{cell}）")
    return how


def license_serial(tower) -> dict[str, Any]:
    """``deployedLicense`` → the license of the first deploy (serial, type, dates)."""
    data = tower.graphql("deployedLicense", DEPLOYED_LICENSE, {}, idempotent=True) or {}
    deploys = data.get("deploys") or []
    lic = (deploys[0] or {}).get("license") if deploys else None
    if not lic or not lic.get("license_serial"):
        raise StepError(f"deployedLicense 没有返回 CloudTower 序列号：{data!r}")
    facts.record("CloudTower 序列号", "非空", lic["license_serial"], ok=True)
    facts.note(f"许可类型 {lic.get('type')}，版本 {lic.get('software_edition')}，"
               f"签发 {lic.get('sign_date')}，到期 {lic.get('expire_date')}")
    return lic


def write_back_serial(plan_path, serial: str) -> str:
    """The CloudTower serial into 集群管理信息!M3, read back (not without a
    workbook: ``steps.config.write_back_checked``)."""
    message, found = write_back_checked(plan_path, "cloudtower_serial", serial, lambda p: p.cloudtower.serial)
    if plan_path is None:
        return message
    facts.record("规划表 CloudTower 序列号（写回后读回）", serial, found,
                 cell=cells.ref(cells.MGMT, cells.MGMT_CLOUDTOWER_SERIAL))
    return message
