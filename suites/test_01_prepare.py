"""01-准备阶段：解析规划表，验证网络连通性，检查依赖环境。

读规划表并逐组校验 → 检查安装介质 → 逐台检查管理地址连通 → 并行扫描主机并与规划比对
（网卡、链路、速率、磁盘、是否已部署、版本一致）→ 确认规划的地址没有被占用。
全部通过后，02-初始化集群才会开始。
"""
from __future__ import annotations

import contextvars
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from voyager.plan import validate
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import prepare
from voyager.steps.media import cloudtower_isos

LOG = logging.getLogger("voyager.suite.prepare")


@pytest.fixture(scope="module")
def findings(plan: Plan, simulated: bool):
    return validate(plan, sim=simulated)


@pytest.mark.dependency()
def test_plan_readable(plan: Plan, plan_path):
    """规划表可以读取：集群名称、主机与网络都已解析（来源文件或演示规划表）。"""
    facts.record("集群名称", "已填写", plan.cluster.name or "（空）", cell="虚拟网络!B3",
                 ok=bool(plan.cluster.name))
    facts.record("主机", "至少 1 台", f"{len(plan.hosts)} 台", cell="主机规划 第 3-18 行", ok=bool(plan.hosts))
    facts.record("业务网络", "已解析", f"{len(plan.networks.business.vlans)} 个", cell="虚拟网络 D8:D18", ok=True)
    assert plan.cluster.name, "规划表中没有集群名称（虚拟网络!B3）"
    assert plan.hosts, "规划表中没有任何主机（主机规划 第 3-18 行）"
    LOG.info("规划表 %s：集群 %s，%d 台主机，%d 个业务网络", plan_path or "（演示规划表）",
             plan.cluster.name, len(plan.hosts), len(plan.networks.business.vlans))


@pytest.mark.dependency()
@pytest.mark.parametrize("group", prepare.rule_groups())
def test_plan_rules(group: str, findings):
    """规划表的该组校验规则全部通过；不通过时列出每个要修改的单元格及原因。"""
    mine = [f for f in findings if prepare.rule_group(f.rule) == group]
    for f in mine:
        if f.severity == "warning":
            warnings.warn(UserWarning(f"规划表提示 {prepare.format_finding(f)}"))
    errors = [f for f in mine if f.severity == "error"]
    for f in errors:
        facts.record(f.message, "符合规则", f"不符合（{f.rule}）", cell=f.cell, ok=False)
    facts.record(f"「{prepare.RULE_GROUPS.get(group, group)}」组规则的错误", 0, len(errors))
    for f in mine:
        if f.severity == "warning":
            facts.note(f"提示 {prepare.format_finding(f)}")
    assert not errors, (f"规划表「{prepare.RULE_GROUPS.get(group, group)}」校验未通过：\n"
                        + "\n".join(prepare.format_finding(f) for f in errors))


@pytest.mark.dependency()
def test_cloudtower_iso(media_dir, cloudtower_iso):
    """安装介质目录中有 CloudTower ISO（cloudtower*.iso，取最高版本）且文件不为空。"""
    facts.record("CloudTower ISO", "cloudtower*.iso（最高版本）",
                 cloudtower_iso.describe() if cloudtower_iso is not None else "未找到",
                 ok=cloudtower_iso is not None)
    if cloudtower_iso is not None:
        facts.record("文件大小", "大于 0", f"{cloudtower_iso.size} 字节", ok=cloudtower_iso.size > 0)
        if cloudtower_iso.rehearsal:
            facts.note("模拟演练用占位文件，不是真实的安装介质")
    assert cloudtower_iso is not None, (
        f"在介质目录 {media_dir} 中没有找到 CloudTower ISO（cloudtower*.iso）；"
        "请把 ISO 放到规划表所在目录，或用 --media-dir 指定目录")
    assert cloudtower_iso.size > 0, f"{cloudtower_iso.path} 是空文件"
    others = [m.describe() for m in cloudtower_isos(media_dir)[1:]]
    LOG.info("CloudTower ISO：%s%s%s", cloudtower_iso.describe(),
             "（模拟演练用占位文件）" if cloudtower_iso.rehearsal else "",
             f"；未使用的较低版本：{'、'.join(others)}" if others else "")


@pytest.mark.voyager_optional
def test_svt_iso(media_dir, svt_iso):
    """提供了 SVT 虚拟机工具 ISO（SMTX_VMTOOLS-*.iso）时文件可读且不为空；未提供则跳过上传。"""
    if svt_iso is None:
        facts.note("未提供 SVT ISO：这是可选步骤，没有可比较的文件")
        pytest.skip(f"介质目录 {media_dir} 中没有 SMTX_VMTOOLS-*.iso，03 中不上传虚拟机工具")
    facts.record("SVT ISO", "SMTX_VMTOOLS-*.iso", svt_iso.describe(), ok=True)
    facts.record("文件大小", "大于 0", f"{svt_iso.size} 字节", ok=svt_iso.size > 0)
    assert svt_iso.size > 0, f"{svt_iso.path} 是空文件"
    LOG.info("SVT ISO：%s", svt_iso.describe())


@pytest.mark.dependency()
def test_host_reachable(host, endpoints):
    """主机的管理地址可以连通：TCP 80（部署接口）、443（fisheye）、22（SSH）端口都能建立连接。"""
    ports = prepare.reachability(endpoints, host.mgmt_ip, cell=f"主机规划!I{host.row}")
    closed = [str(p) for p, is_open in ports.items() if not is_open]
    assert not closed, (f"{prepare.host_label(host)}的端口 {'、'.join(closed)} 无法连接"
                        f"（主机规划!I{host.row}）；请检查网络、交换机配置与主机是否开机")


@pytest.mark.dependency()
def test_host_scanned(host, host_scans, run_state, plan):
    """通过部署接口扫描到主机（并行扫描全部主机）：产品为 SMTXOS，得到主机 UUID，并记入运行状态。"""
    scan = host_scans.get(host.mgmt_ip)
    facts.record("部署接口扫描", "成功", f"失败：{scan}" if isinstance(scan, Exception) else "成功",
                 cell=f"主机规划!I{host.row}")
    if isinstance(scan, Exception):
        pytest.fail(f"扫描{prepare.host_label(host)}失败：{scan}")
    facts.record("产品 product", "SMTXOS", scan.get("product"))
    facts.record("主机 UUID", "已取得", scan.get("host_uuid"), ok=bool(scan.get("host_uuid")))
    facts.record("设备序列号 sn", host.sn or "（规划未填写）", scan.get("sn"), cell=f"主机规划!D{host.row}",
                 ok=not host.sn or host.sn == scan.get("sn"))
    facts.note(f"扫描到的版本 {prepare.version_text(scan)}，状态 {scan.get('status')}（版本一致性见 test_same_version）")
    assert scan.get("product") == "SMTXOS", f"{prepare.host_label(host)}的产品为 {scan.get('product')!r}，不是 SMTXOS"
    run_state.merge("hosts", host.mgmt_ip, prepare.scan_facts(scan, plan))
    LOG.info("%s：UUID %s，%s，状态 %s", prepare.host_label(host), scan["host_uuid"],
             prepare.version_text(scan), scan.get("status"))


@pytest.mark.dependency(depends=["test_host_scanned"])
def test_host_nics(host, host_scans, plan):
    """主机上有规划的全部网卡，链路已连接，速率与规划表一致（虚拟网络 J/L 列）。"""
    problems = prepare.nic_problems(plan, host, host_scans[host.mgmt_ip])
    assert not problems, "\n".join(problems)


@pytest.mark.dependency(depends=["test_host_scanned"])
def test_host_disks(host, host_scans, plan):
    """主机的磁盘满足规划的存储架构（主机规划!Q19）：混闪-分层有缓存盘和 HDD 数据盘，全闪-不分层全部为 SSD。"""
    problems = prepare.disk_problems(plan, host, host_scans[host.mgmt_ip])
    assert not problems, "\n".join(problems)


@pytest.mark.dependency(depends=["test_host_scanned"])
def test_host_not_deployed(host, host_scans, cluster_deployed):
    """主机尚未部署；若整个集群都已部署，说明是在续跑，视为通过。"""
    problem = prepare.deployed_problem(host, host_scans[host.mgmt_ip], cluster_deployed)
    assert problem is None, problem
    if cluster_deployed:
        LOG.info("%s属于已部署的集群，本次为续跑", prepare.host_label(host))


@pytest.mark.dependency(depends=["test_host_scanned"])
def test_same_version(plan, host_scans):
    """所有主机的产品版本一致（与规划表版本说明 主机规划!C19 不同时给出提示）。"""
    problems, notes = prepare.version_problems(plan, host_scans)
    for note in notes:
        warnings.warn(UserWarning(note))
    assert not problems, "\n".join(problems)


@pytest.mark.dependency()
@pytest.mark.parametrize("kind", prepare.ADDRESS_KINDS)
def test_address_not_in_use(kind, plan, endpoints, simulated, run_state, cluster_deployed):
    """规划的 VIP、存储地址、CloudTower 地址和测试地址没有被其他设备占用
    （真实环境用系统 ping，模拟器按模拟器的视图；本次部署自己启用的地址除外）。"""
    addresses = prepare.planned_addresses(plan, kind)
    if not addresses:
        facts.note(f"规划表中没有 {kind} 地址，无需检查")
        LOG.info("规划表中没有 %s 地址，无需检查", kind)
        return
    owned = prepare.owned_addresses(plan, run_state, cluster_deployed)
    todo = [a for a in addresses if a.ip not in owned]
    with ThreadPoolExecutor(max_workers=min(16, len(todo) or 1), thread_name_prefix="addr") as pool:
        checks = list(pool.map(
            lambda a: (a, contextvars.copy_context().run(
                prepare.address_in_use, endpoints, a.ip, simulated=simulated)), todo))
    busy = [f"{a.label} {a.ip}（{a.cell}）已被占用（{how} 有应答）" for a, (in_use, how) in checks if in_use]
    for a, (in_use, how) in checks:
        facts.record(f"{a.label} {a.ip}", "未被占用", f"已被占用（{how} 有应答）" if in_use else f"未被占用（{how}）",
                     cell=a.cell, ok=not in_use)
    for a in addresses:
        if a.ip in owned:
            facts.note(f"{a.label} {a.ip}：{owned[a.ip]}，不视为冲突")
            LOG.info("%s %s：%s，不视为冲突", a.label, a.ip, owned[a.ip])
    assert not busy, "\n".join(busy) + "\n请确认这些地址没有分配给其他设备，或修改规划表"


@pytest.mark.dependency(name="prepare", depends=[
    "test_plan_readable", "test_plan_rules", "test_cloudtower_iso", "test_host_reachable",
    "test_host_scanned", "test_host_nics", "test_host_disks", "test_host_not_deployed",
    "test_same_version", "test_address_not_in_use"])
def test_ready_to_deploy(plan, run_state):
    """准备阶段全部检查通过，每台规划主机的 UUID 与链路本地地址已记入运行状态，可以初始化集群。"""
    hosts = run_state.section("hosts")
    for h in plan.hosts:
        seen = hosts.get(h.mgmt_ip) or {}
        facts.record(f"{h.name} 的 UUID（运行状态）", "已记录", seen.get("uuid") or "未记录", ok=bool(seen.get("uuid")))
        facts.record(f"{h.name} 的链路本地地址（运行状态）", "已记录",
                     "、".join(v for v in (seen.get("link_local") or {}).values() if v) or "未记录",
                     ok=any((seen.get("link_local") or {}).values()))
    missing = [h.name for h in plan.hosts if not (hosts.get(h.mgmt_ip) or {}).get("uuid")]
    assert not missing, f"运行状态中缺少主机 UUID：{'、'.join(missing)}"
    no_ll = [h.name for h in plan.hosts if not any((hosts[h.mgmt_ip].get("link_local") or {}).values())]
    assert not no_ll, f"运行状态中缺少主机的链路本地地址：{'、'.join(no_ll)}"
