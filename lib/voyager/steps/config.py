"""Walkthrough step 03 (配置集群): each function observes first, acts only
when needed and verifies, so a rerun neither repeats work nor duplicates
resources. Each returns a short Chinese sentence saying what it found or did.

Network architectures: 三网独立 gets a business VDS of its own (虚拟网络!C8,
J8, K8) associated with every host (``data_ip`` = the host's storage IP, as
the walkthrough sends it); 存储独立 (管理&业务融合) puts the business VLANs on
the management VDS created by the deployment (虚拟网络!C4).

Jobs go through ``voyager.steps.jobs.run_job`` with the run state: a job an
interrupted run started is followed by the rerun, never started twice.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from voyager.clients import ApiError, ClientError, TransportError
from voyager.plan import cells, read_plan, write_back
from voyager.plan.model import BusinessVlan, Plan, Secret
from voyager.report import facts
from voyager.steps.jobs import run_job
from voyager.waiters import wait_port

SEPARATE = "三网独立"
SHARED_MGMT = "存储独立"
JOB_TIMEOUT = 1800.0
VIP_TIMEOUT = 600.0
VLAN_TYPE_VM = 3


class StepError(AssertionError):
    """A step's verification failed (message in Chinese, naming the plan cell)."""


# --------------------------------------------------------------------------- helpers
def _observe(fisheye, path: str) -> Optional[Any]:
    """GET ``path``; None when the API has no such reading (older versions)."""
    try:
        return fisheye.get(path)
    except ApiError as exc:
        if exc.status == 404 or exc.matches("NOT_FOUND"):
            return None
        raise


def _job_id(answer: Any, what: str) -> str:
    job_id = (answer or {}).get("job_id") if isinstance(answer, dict) else None
    if not job_id:
        raise StepError(f"{what}：接口没有返回 job_id（{answer!r}）")
    return job_id


# --------------------------------------------------------------------------- admin / login
def ensure_root_password(fisheye_anon, plan: Plan) -> str:
    """fisheye admin password (主机规划!L19/M19) set with setupRoot, once."""
    user, password = plan.cluster.admin_user or "root", plan.cluster.admin_password
    if not password:
        raise StepError(f"规划表未填写集群管理员密码（{cells.ref(cells.HOSTS, cells.HOST_ADMIN_PASSWORD)}）")
    cell = cells.ref(cells.HOSTS, cells.HOST_ADMIN_PASSWORD)
    try:
        fisheye_anon.login(user, password)
        fisheye_anon.logout()
        facts.record(f"管理员 {user} 用规划的密码登录", "可以登录", "可以登录（已设置过，未再次设置）", cell=cell, ok=True)
        return f"管理员 {user} 已能用规划的密码登录，无需再次设置"
    except ApiError:
        pass
    try:
        fisheye_anon.setup_root(password)
    except ApiError as exc:
        if exc.status == 409 or exc.matches("already"):
            raise StepError(
                f"fisheye 管理员已被设置为与规划不同的密码（{cells.ref(cells.HOSTS, cells.HOST_ADMIN_PASSWORD)}）："
                "请核对规划表中的集群管理员密码") from None
        raise
    fisheye_anon.login(user, password)
    fisheye_anon.logout()
    facts.record(f"管理员 {user} 用规划的密码登录", "可以登录", "可以登录（本次通过 setupRoot 设置）", cell=cell, ok=True)
    return f"已设置管理员 {user} 的密码并验证可以登录"


# --------------------------------------------------------------------------- settings
def ensure_vip(fisheye, endpoints, plan: Plan, *, timeout: float = VIP_TIMEOUT, run_state=None) -> str:
    vip = plan.cluster.vip
    current = _observe(fisheye, "/api/v2/settings/vip")
    if isinstance(current, dict) and current.get("management_vip") == vip:
        done = f"集群 VIP 已是 {vip}"
    else:
        run_job(fisheye, run_state, "vip", lambda: _job_id(
            fisheye.put("/api/v2/settings/vip", json={"iscsi_vip": None, "management_vip": vip}), "设置 VIP"),
            timeout=JOB_TIMEOUT)
        current = _observe(fisheye, "/api/v2/settings/vip")
        if isinstance(current, dict) and current.get("management_vip") != vip:
            raise StepError(f"设置后读到的 VIP 为 {current.get('management_vip')!r}，应为 {vip}"
                            f"（{cells.ref(cells.HOSTS, cells.HOST_VIP)}）")
        done = f"已设置集群 VIP {vip}"
    facts.record("集群 VIP management_vip", vip, (current or {}).get("management_vip") if isinstance(current, dict)
                 else "（此版本没有 VIP 读取接口）", cell=cells.ref(cells.HOSTS, cells.HOST_VIP),
                 ok=not isinstance(current, dict) or current.get("management_vip") == vip)
    wait_port(endpoints, vip, 443, timeout=timeout, describe=f"集群 VIP {vip} 的 443 端口应答")
    facts.record(f"VIP {vip} 的 TCP 443", "应答", "应答", cell=cells.ref(cells.HOSTS, cells.HOST_VIP))
    return done + "，VIP 的 443 端口已应答"


def _ensure_setting(fisheye, what: str, wanted: dict[str, Any], same, cell: str, run_state=None) -> str:
    """PUT ``/api/v2/settings/<what>`` unless the reading is ``same`` already;
    wait for the job and read back (``cell`` names the plan cells in errors)."""
    path = f"/api/v2/settings/{what}"
    current = _observe(fisheye, path)
    if isinstance(current, dict) and same(current):
        _setting_facts(what, wanted, current, cell, "读取，无需设置")
        return "unchanged"
    job = run_job(fisheye, run_state, what,
                  lambda: _job_id(fisheye.put(path, json=wanted), f"设置 {what}"), timeout=JOB_TIMEOUT)
    after = _observe(fisheye, path)
    _setting_facts(what, wanted, after, cell, "设置后读回")
    if isinstance(after, dict) and not same(after):
        raise StepError(f"设置 {what} 后读到 {after!r}，与规划 {wanted!r} 不一致（{cell}）")
    return f"job {job.get('job_id', '')} done".strip()


def _setting_facts(what: str, wanted: dict[str, Any], reading: Any, cell: str, how: str) -> None:
    if not isinstance(reading, dict):
        facts.note(f"{what} 没有读取接口（{reading!r}），只能确认设置作业完成")
        return
    for key, value in wanted.items():
        facts.record(f"{what}.{key}（{how}）", value, reading.get(key), cell=cell,
                     ok=(str(value).lower() == str(reading.get(key)).lower()) if isinstance(value, str)
                     else value == reading.get(key))


def ensure_dns(fisheye, plan: Plan, run_state=None) -> str:
    servers = list(plan.dns)
    if not servers:
        raise StepError(f"规划表未填写 DNS 服务器（{cells.ref(cells.MGMT, cells.MGMT_DNS[0])}）")
    result = _ensure_setting(fisheye, "dns", {"dns_servers": servers},
                             lambda cur: list(cur.get("dns_servers") or []) == servers,
                             cells.ref(cells.MGMT, f"{cells.MGMT_DNS[0]}:{cells.MGMT_DNS[-1]}"), run_state)
    return f"DNS 已是 {servers}" if result == "unchanged" else f"已设置 DNS {servers}（作业完成）"


def ensure_ntp(fisheye, plan: Plan, run_state=None) -> str:
    servers = list(plan.ntp)
    if not servers:
        raise StepError(f"规划表未填写 NTP 服务器（{cells.ref(cells.MGMT, cells.MGMT_NTP[0])}）")
    result = _ensure_setting(
        fisheye, "ntp", {"ntp_mode": "external", "ntp_servers": servers},
        lambda cur: (cur.get("ntp_mode") or "").lower() == "external" and list(cur.get("ntp_servers") or []) == servers,
        cells.ref(cells.MGMT, f"{cells.MGMT_NTP[0]}:{cells.MGMT_NTP[-1]}"), run_state)
    return f"NTP 已是 {servers}" if result == "unchanged" else f"已设置外部 NTP {servers}（作业完成）"


def license_serial(fisheye) -> str:
    data = fisheye.get("/api/v2/tools/license") or {}
    serial = data.get("serial") if isinstance(data, dict) else None
    facts.record("集群序列号（/api/v2/tools/license）", "已取得", serial or "（没有）", ok=bool(serial))
    if not serial:
        raise StepError(f"许可证信息中没有序列号：{data!r}")
    return serial


NO_WRITE_BACK = "模拟演练不改动工程师的规划表（或规划不来自文件），不写回 {cell}"


def write_back_checked(plan_path, key: str, value: str, read: Callable[[Plan], Any]) -> tuple[str, Any]:
    """Write ``value`` to the write-back cell ``key`` (``cells.WRITE_BACK``) unless
    it is there already, and read it back (``read(plan)``). Returns (what was
    done, the value read back); a different read-back raises StepError. Without a
    workbook to write to (``plan_path`` None: a rehearsal of the engineer's plan)
    nothing is written: the report notes it (``NO_WRITE_BACK``), (the note, None)."""
    cell = cells.ref(*cells.WRITE_BACK[key])
    if plan_path is None:
        note = NO_WRITE_BACK.format(cell=cell)
        facts.note(note)
        return note, None
    if read(read_plan(plan_path)) == value:
        facts.record(f"规划表 {cell}（读取）", value, value, cell=cell)
        return f"规划表 {cell} 已是序列号 {value}", value
    backup = write_back(plan_path, {key: value})
    got = read(read_plan(plan_path))
    facts.record(f"规划表 {cell}（写回后读回）", value, got, cell=cell)
    if got != value:
        raise StepError(f"写回后 {cell} 读到 {got!r}，应为 {value}")
    return f"已写回 {cell}（原文件备份 {backup.name if backup else '无'}）", got


def write_back_serial(plan_path, serial: str) -> str:
    """Write the cluster serial to 主机规划!E19 and read it back (not without a
    workbook: ``write_back_checked``)."""
    return write_back_checked(plan_path, "cluster_serial", serial, lambda p: p.cluster.serial)[0]


# --------------------------------------------------------------------------- IPMI
def ipmi_accounts(plan: Plan, host_uuids: dict[str, str], hosts=None) -> list[dict[str, Any]]:
    """Accounts for ``POST /api/v2/ipmi/upsert_accounts`` (password stays a Secret
    until the HTTP layer puts it on the wire)."""
    accounts = []
    for h in hosts or plan.hosts:
        if not h.bmc_ip:
            continue
        accounts.append({"node_name": h.name, "host": h.bmc_ip, "user": h.bmc_user or cells.DEFAULT_BMC_USER,
                         "node_uuid": host_uuids[h.mgmt_ip], "password": h.bmc_password})
    return accounts


def upsert_ipmi(fisheye, plan: Plan, host_uuids: dict[str, str], hosts=None) -> dict[str, dict[str, Any]]:
    """Upsert the BMC accounts; ``{node uuid: account answer}`` (``is_valid`` each).
    An upsert of the same accounts is idempotent: a 5xx or a reset is resent."""
    accounts = ipmi_accounts(plan, host_uuids, hosts)
    if not accounts:
        return {}
    answer = fisheye.post("/api/v2/ipmi/upsert_accounts", json={"accounts": accounts}, idempotent=True) or {}
    results: dict[str, dict[str, Any]] = {}
    for kind in ("success", "failure"):
        for acc in answer.get(kind) or []:
            if isinstance(acc, dict) and acc.get("node_uuid"):
                results[acc["node_uuid"]] = {**acc, "outcome": kind}
    return results


# --------------------------------------------------------------------------- networks
def business_vds_name(plan: Plan) -> Optional[str]:
    arch = (plan.cluster.network_arch or "").strip()
    return plan.networks.mgmt.vds if arch == SHARED_MGMT else plan.networks.business.vds


def find_vds(fisheye, name: Optional[str]) -> Optional[dict[str, Any]]:
    listing = fisheye.get("/api/v2/network/vds") or []
    if isinstance(listing, dict):
        listing = listing.get("entities") or listing.get("vdses") or []
    return next((v for v in listing if v.get("name") == name), None)


def vds_body(plan: Plan, host_uuids: dict[str, str]) -> dict[str, Any]:
    biz = plan.networks.business
    return {
        "name": biz.vds,
        "bond_mode": biz.bond,
        "hosts_associated": [{"host_uuid": host_uuids[h.mgmt_ip], "nics_associated": list(biz.nics),
                              "data_ip": h.storage_ip} for h in plan.hosts],
    }


def associations(vds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``hosts_associated`` by host uuid: the VDS detail answers a list, the
    creating job's resource a map keyed by host uuid (walkthrough step 03)."""
    raw = vds.get("hosts_associated") or []
    entries = raw.values() if isinstance(raw, dict) else raw
    return {a["host_uuid"]: a for a in entries if isinstance(a, dict) and a.get("host_uuid")}


def check_vds(vds: dict[str, Any], plan: Plan, host_uuids: dict[str, str]) -> list[str]:
    """What differs between the VDS and the plan: name, bond_mode and
    hosts_associated (each host's NICs, and for the business VDS its data_ip =
    the host's storage IP), as the walkthrough's detail check says."""
    problems = []
    arch = (plan.cluster.network_arch or "").strip()
    net = plan.networks.mgmt if arch == SHARED_MGMT else plan.networks.business
    row = cells.NET_ROW_MGMT if arch == SHARED_MGMT else cells.NET_BUSINESS_ROWS[0]
    facts.record("虚拟交换机名称", business_vds_name(plan), vds.get("name"), cell=cells.ref(cells.NET, f"C{row}"))
    if net.bond:
        facts.record("绑定模式 bond_mode", net.bond, vds.get("bond_mode"), cell=cells.ref(cells.NET, f"K{row}"))
    if vds.get("name") != business_vds_name(plan):
        problems.append(f"虚拟交换机名称为 {vds.get('name')!r}，应为 {business_vds_name(plan)!r}"
                        f"（{cells.ref(cells.NET, f'C{row}')}）")
    if net.bond and vds.get("bond_mode") != net.bond:
        problems.append(f"虚拟交换机 {vds.get('name')} 的绑定模式为 {vds.get('bond_mode')!r}，"
                        f"应为 {net.bond!r}（{cells.ref(cells.NET, f'K{row}')}）")
    by_uuid = associations(vds)
    if not by_uuid:  # the walkthrough's sample detail answers [] here; check when present
        facts.note(f"虚拟交换机 {vds.get('name')} 的详情没有列出 hosts_associated，不核对各主机的关联网口")
        return problems
    storage_col = cells.HOST_COL["storage_ip"]
    for h in plan.hosts:
        a = by_uuid.get(host_uuids.get(h.mgmt_ip))
        facts.record(f"{h.name} 关联的网口", list(net.nics) if net.nics else "已关联",
                     (a.get("nics_associated") or []) if a is not None else "未关联",
                     cell=cells.ref(cells.NET, f"J{row}"),
                     ok=a is not None and (not net.nics or sorted(a.get("nics_associated") or []) == sorted(net.nics)))
        if arch == SEPARATE and a is not None and a.get("data_ip"):
            facts.record(f"{h.name} 的 data_ip", h.storage_ip, a.get("data_ip"),
                         cell=cells.ref(cells.HOSTS, f"{storage_col}{h.row}"))
        if a is None:
            problems.append(f"主机 {h.name}（{h.mgmt_ip}）未关联到虚拟交换机 {vds.get('name')}")
            continue
        if net.nics and sorted(a.get("nics_associated") or []) != sorted(net.nics):
            problems.append(f"主机 {h.name} 关联的网口为 {a.get('nics_associated')}，应为 {list(net.nics)}"
                            f"（{cells.ref(cells.NET, f'J{row}')}）")
        if arch == SEPARATE and a.get("data_ip") and a.get("data_ip") != h.storage_ip:
            problems.append(f"主机 {h.name} 在虚拟交换机上的 data_ip 为 {a.get('data_ip')}，应为其存储地址 "
                            f"{h.storage_ip}（{cells.ref(cells.HOSTS, f'{storage_col}{h.row}')}）")
    return problems


def _create_business_vds(fisheye, plan: Plan, host_uuids: dict[str, str], run_state=None) -> dict[str, Any]:
    """POST the business VDS (or follow the job an interrupted run started),
    wait for its job and read the new VDS back; when the detail lists no
    hosts_associated, the job resource's are checked."""
    name = plan.networks.business.vds
    job = run_job(fisheye, run_state, "business_vds", lambda: _job_id(
        fisheye.post("/api/v2/network/vds", json=vds_body(plan, host_uuids)), f"创建虚拟交换机 {name}"),
        timeout=JOB_TIMEOUT)
    resources = [r for r in (job.get("resources") or {}).values() if isinstance(r, dict)]
    created = next((r for r in resources if r.get("type") == "NETWORK_VDS"), None) or \
        next((r for r in resources if r.get("name") == name), None)
    vds = fisheye.get(f"/api/v2/network/vds/{created['uuid']}") if created and created.get("uuid") \
        else find_vds(fisheye, name)  # the job named no VDS resource: look it up by name
    if vds is None:
        raise StepError(f"创建虚拟交换机 {name} 的作业已完成，但集群中没有该虚拟交换机")
    if not associations(vds) and created and associations(created):
        vds = {**vds, "hosts_associated": created["hosts_associated"]}
    return vds


def ensure_business_vds(fisheye, plan: Plan, host_uuids: dict[str, str],
                        run_state=None) -> tuple[dict[str, Any], str]:
    """The VDS for the business VLANs; created (三网独立) when missing."""
    arch = (plan.cluster.network_arch or "").strip()
    name = business_vds_name(plan)
    existing = find_vds(fisheye, name)
    if arch == SHARED_MGMT:
        if existing is None:
            raise StepError(f"存储独立架构下业务网络使用管理虚拟交换机 {name}，但集群中没有它"
                            f"（{cells.ref(cells.NET, 'C4')}）")
        how = f"存储独立：业务网络使用管理虚拟交换机 {name}"
        vds = existing
    elif arch == SEPARATE:
        facts.record(f"业务虚拟交换机 {name}", "存在（不存在时按规划创建）",
                     "已存在" if existing is not None else "不存在，本次创建", cell=cells.ref(cells.NET, "C8"), ok=True)
        if existing is not None:
            vds, how = existing, f"业务虚拟交换机 {name} 已存在"
        else:
            vds, how = _create_business_vds(fisheye, plan, host_uuids, run_state), f"已创建业务虚拟交换机 {name}"
    else:
        raise StepError(f"网络架构 {arch!r} 不是 存储独立 或 三网独立（{cells.ref(cells.HOSTS, cells.HOST_NETWORK_ARCH)}）")
    problems = check_vds(vds, plan, host_uuids)
    if problems:
        raise StepError("；".join(problems))
    return vds, how


def vlans_of(fisheye, vds_uuid: str) -> list[dict[str, Any]]:
    data = fisheye.get(f"/api/v2/network/vds/{vds_uuid}/vlans") or {}
    return list(data.get("entities") or []) if isinstance(data, dict) else list(data)


def ensure_vlan(fisheye, vds_uuid: str, vlan: BusinessVlan) -> tuple[dict[str, Any], str]:
    cell = cells.ref(cells.NET, f"F{vlan.row}")
    same_name = [v for v in vlans_of(fisheye, vds_uuid) if v.get("name") == vlan.name]
    if same_name:
        entity, how = same_name[0], f"业务网络 {vlan.name} 已存在"
    else:
        entity = fisheye.post(f"/api/v2/network/vds/{vds_uuid}/vlans",
                              json={"name": vlan.name, "vlan_id": vlan.vlan, "vds_uuid": vds_uuid})
        how = f"已创建业务网络 {vlan.name}"
    facts.record(f"业务网络 {vlan.name}", "存在", how, cell=cells.ref(cells.NET, f"D{vlan.row}"), ok=True)
    facts.record("VLAN ID", vlan.vlan, entity.get("vlan_id"), cell=cell)
    facts.record("所在虚拟交换机", vds_uuid, entity.get("vds_uuid") or vds_uuid,
                 cell=cells.ref(cells.NET, f"D{vlan.row}"))
    if entity.get("vlan_id") != vlan.vlan:
        raise StepError(f"业务网络 {vlan.name} 的 VLAN ID 为 {entity.get('vlan_id')}，应为 {vlan.vlan}（{cell}）")
    if entity.get("vds_uuid") not in (None, vds_uuid):
        raise StepError(f"业务网络 {vlan.name} 在虚拟交换机 {entity.get('vds_uuid')} 上，"
                        f"不在业务虚拟交换机 {vds_uuid} 上（{cells.ref(cells.NET, f'D{vlan.row}')}）")
    return entity, how


def check_vlans_count(fisheye, plan: Plan, vds_uuid: str) -> str:
    vds = fisheye.get(f"/api/v2/network/vds/{vds_uuid}") or {}
    count = vds.get("vlans_count")
    planned = [v.name for v in plan.networks.business.vlans]
    vm_networks = [v for v in vlans_of(fisheye, vds_uuid) if v.get("type", VLAN_TYPE_VM) == VLAN_TYPE_VM]
    names = [v.get("name") for v in vm_networks]
    missing = [n for n in planned if n not in names]
    for n in planned:
        facts.record(f"业务网络 {n}", "在业务虚拟交换机上", "在" if n in names else "缺少",
                     cell=cells.ref(cells.NET, "D8") + ":D18")
    if missing:
        raise StepError(f"虚拟交换机 {vds.get('name')} 上缺少业务网络：{'、'.join(missing)}")
    if (plan.cluster.network_arch or "").strip() == SHARED_MGMT:
        # the management VDS also carries the deployment's own VM network(s)
        expected = len(planned) + len([n for n in names if n not in planned])
    else:
        expected = len(planned)
    facts.record(f"虚拟交换机 {vds.get('name')} 的 vlans_count", expected, count, cell=cells.ref(cells.NET, "D8") + ":D18")
    if count != expected:
        raise StepError(f"虚拟交换机 {vds.get('name')} 的 vlans_count 为 {count}，应为 {expected}"
                        f"（规划的业务网络 {len(planned)} 个，{cells.ref(cells.NET, 'D8')}:D18）")
    return f"虚拟交换机 {vds.get('name')} 的 vlans_count = {count}，与规划一致"


# --------------------------------------------------------------------------- host passwords
DEFAULT_HOST_PASSWORD = Secret(cells.DEFAULT_HOST_PASSWORD_AFTER_DEPLOY)


def host_password_targets(host) -> list[tuple[str, Secret, str]]:
    """``(user, planned password, cell)`` for the accounts changed over SSH."""
    row = host.row
    return [
        (host.ssh_user or cells.DEFAULT_SSH_USER, host.ssh_password, cells.ref(cells.HOSTS, f"K{row}")),
        (host.admin_user or cells.DEFAULT_ADMIN_USER, host.admin_password, cells.ref(cells.HOSTS, f"M{row}")),
    ]


def can_login(ssh, ip: str, user: str, password: Secret) -> bool:
    client = ssh(ip, user, password)
    try:
        client.connect()
        return client.run("true").ok
    except TransportError:
        raise
    except ClientError:
        return False
    finally:
        client.close()


def ensure_host_passwords(ssh, host) -> list[str]:
    """root and smartx get the plan's passwords: log in as the SSH user with the
    default password (or already the plan's), change with chpasswd through the
    clients' SSH helper, verify by logging in with the new password."""
    ip = host.mgmt_ip
    targets = host_password_targets(host)
    for user, password, cell in targets:
        if not password:
            raise StepError(f"主机 {host.name} 的 {user} 密码未填写（{cell}）")
    notes = []
    pending = [(u, p, c) for u, p, c in targets if not can_login(ssh, ip, u, p)]
    if not pending:
        for user, _, cell in targets:
            facts.record(f"{user} 用规划的密码 SSH 登录", "可以登录", "可以登录（已是规划的密码）", cell=cell, ok=True)
        return [f"{u} 已是规划的密码" for u, _, _ in targets]
    login_user, login_planned, _ = targets[0]
    for candidate in (login_planned, DEFAULT_HOST_PASSWORD):
        if can_login(ssh, ip, login_user, candidate):
            session = ssh(ip, login_user, candidate)
            break
    else:
        raise StepError(f"主机 {host.name}（{ip}）的 {login_user} 既不能用默认密码也不能用规划的密码登录"
                        f"（{targets[0][2]}）")
    try:
        for user, password, cell in pending:
            session.change_password(user, password)
            notes.append(f"已修改 {user} 的密码")
    finally:
        session.close()
    for user, password, cell in targets:
        ok = can_login(ssh, ip, user, password)
        facts.record(f"{user} 用规划的密码 SSH 登录（修改后）", "可以登录", "可以登录" if ok else "不能登录", cell=cell)
        if not ok:
            raise StepError(f"主机 {host.name}（{ip}）的 {user} 修改后仍不能用规划的密码登录（{cell}）")
    return notes + ["已用新密码登录验证 root 与 smartx"]


# --------------------------------------------------------------------------- CPU compatibility
def ensure_cpu_compatibility(fisheye) -> str:
    recommended = (fisheye.get("/api/v2/elf/cluster_recommended_cpu_models") or {}).get("cpu_models") or []
    if not recommended:
        raise StepError("集群没有推荐的 CPU 型号（cluster_recommended_cpu_models 为空）")
    model = recommended[0]
    current = _observe(fisheye, "/api/v2/elf/cluster_cpu_compatibility")
    if isinstance(current, dict) and current.get("cpu_model") == model:
        facts.record("CPU 兼容性 cpu_model（读取）", model, current.get("cpu_model"))
        return f"CPU 兼容性已是推荐型号 {model}"
    fisheye.put("/api/v2/elf/cluster_cpu_compatibility", json={"cpu_model": model})
    after = _observe(fisheye, "/api/v2/elf/cluster_cpu_compatibility")
    facts.record("CPU 兼容性 cpu_model（设置后读回）", model, (after or {}).get("cpu_model") if isinstance(after, dict) else after)
    if not isinstance(after, dict) or after.get("cpu_model") != model:
        raise StepError(f"设置后读回的 CPU 兼容性为 {after!r}，应为推荐型号 {model}")
    return f"已将 CPU 兼容性设置为推荐型号 {model} 并读回确认"
