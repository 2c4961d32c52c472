"""03-配置集群：管理员密码与登录、VIP、序列号写回、DNS/NTP、IPMI、业务网络、主机密码、
虚拟机工具、CPU 兼容性。

每一步先查看现状，只做缺少的部分，再读回验证；重跑时不会重复创建任何资源。
"""
from __future__ import annotations

import logging

import pytest

from voyager.clients import FisheyeClient
from voyager.plan import cells
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import config
from voyager.steps.upload import ensure_svt_image

LOG = logging.getLogger("voyager.suite.config_cluster")


@pytest.fixture(scope="module")
def ipmi_results() -> dict:
    """IPMI upsert answers of this session, by node uuid."""
    return {}


@pytest.mark.dependency(depends=["init_cluster"], scope="session")
def test_fisheye_admin_password(fisheye_anon, plan: Plan):
    """fisheye 管理员密码已按规划（主机规划!L19/M19）设置，且只设置一次。"""
    LOG.info(config.ensure_root_password(fisheye_anon, plan))


@pytest.mark.dependency(depends=["test_fisheye_admin_password"])
def test_fisheye_login(endpoints, plan: Plan):
    """可以用规划的管理员账号登录 fisheye，获得会话（有效期至 expire_time）。"""
    client = FisheyeClient(endpoints, plan.hosts[0].mgmt_ip)
    session = client.login(plan.cluster.admin_user or "root", plan.cluster.admin_password)
    try:
        facts.record(f"用 {plan.cluster.admin_user or 'root'} 登录 fisheye", "已登录",
                     "已登录" if client.logged_in else "未登录", cell=cells.ref(cells.HOSTS, cells.HOST_ADMIN_USER))
        facts.record("登录响应 user_id", "非空", session.get("user_id") or "（没有）", ok=bool(session.get("user_id")))
        assert client.logged_in
        assert session.get("user_id"), f"登录响应中没有 user_id：{session!r}"
        LOG.info("已登录 fisheye，会话有效期至 %s", session.get("expire_time"))
    finally:
        client.logout()


@pytest.mark.dependency(depends=["test_fisheye_login"])
def test_vip(fisheye, endpoints, plan: Plan, run_state):
    """集群 VIP 已设置为规划的地址（主机规划!I19），设置作业完成，VIP 可以连通。"""
    LOG.info(config.ensure_vip(fisheye, endpoints, plan, run_state=run_state))
    run_state.set("cluster", "vip", plan.cluster.vip)


@pytest.mark.dependency(depends=["test_fisheye_login"])
def test_license_serial(fisheye, run_state, write_back_path):
    """读取集群序列号，记入运行状态，并写回规划表 主机规划!E19（规划来自文件、且不是模拟演练时）。"""
    serial = config.license_serial(fisheye)
    run_state.set("cluster", "serial", serial)
    LOG.info("集群序列号 %s", serial)
    LOG.info(config.write_back_serial(write_back_path, serial))


@pytest.mark.dependency(depends=["test_fisheye_login"])
def test_dns(fisheye, plan: Plan, run_state):
    """DNS 服务器已设置为规划的地址（集群管理信息!E25:E26），设置作业完成并读回一致。"""
    LOG.info(config.ensure_dns(fisheye, plan, run_state))


@pytest.mark.dependency(depends=["test_fisheye_login"])
def test_ntp(fisheye, plan: Plan, run_state):
    """NTP 已设置为外部模式和规划的服务器（集群管理信息!E22:E24），设置作业完成并读回一致。"""
    LOG.info(config.ensure_ntp(fisheye, plan, run_state))


@pytest.mark.dependency(depends=["test_vip"])
def test_ipmi_accounts_upserted(fisheye_vip, plan: Plan, host_uuids, ipmi_results):
    """所有规划了带外地址的主机的 IPMI 账号已提交（upsert_accounts），每个节点都有返回结果。"""
    with_bmc = [h for h in plan.hosts if h.bmc_ip]
    if not with_bmc:
        facts.note("规划表没有带外地址（主机规划 E 列），不配置 IPMI，没有可比较的结果")
        LOG.info("规划表没有带外地址（主机规划 E 列），不配置 IPMI")
        return
    results = config.upsert_ipmi(fisheye_vip, plan, host_uuids)
    ipmi_results.update(results)
    for h in with_bmc:
        got = results.get(host_uuids[h.mgmt_ip])
        facts.record(f"{h.name} 的 upsert_accounts 结果", "有返回", got.get("outcome") if got else "没有返回",
                     cell=f"主机规划!E{h.row}", ok=got is not None)
    missing = [h.name for h in with_bmc if host_uuids[h.mgmt_ip] not in results]
    assert not missing, f"upsert_accounts 没有返回这些节点的结果：{'、'.join(missing)}"


@pytest.mark.dependency(depends=["test_ipmi_accounts_upserted"])
def test_ipmi_account_valid(host, fisheye_vip, plan: Plan, host_uuids, ipmi_results, run_state):
    """该节点的 IPMI 账号有效（is_valid=true）：带外地址、用户名、密码与规划一致且可以登录。"""
    if not host.bmc_ip:
        facts.note(f"{host.name} 没有规划带外地址（主机规划!E{host.row}），不检查 IPMI")
        LOG.info("%s 没有规划带外地址，不检查 IPMI", host.name)
        return
    uuid = host_uuids[host.mgmt_ip]
    result = ipmi_results.get(uuid)
    if result is None:  # a rerun of this row alone: upsert this node again
        result = config.upsert_ipmi(fisheye_vip, plan, host_uuids, hosts=[host]).get(uuid)
    facts.record("IPMI 账号 is_valid", True, (result or {}).get("is_valid"), cell=f"主机规划!E{host.row}:G{host.row}")
    assert result is not None, f"{host.name} 的 IPMI 账号没有返回结果"
    run_state.merge("hosts", host.mgmt_ip, {"ipmi_valid": bool(result.get("is_valid"))})
    assert result.get("is_valid") is True, (
        f"{host.name} 的 IPMI 账号无效：带外地址 {host.bmc_ip}（主机规划!E{host.row}），"
        f"用户 {host.bmc_user}（主机规划!F{host.row}）；请检查带外网络与账号密码（主机规划!G{host.row}）")


@pytest.mark.dependency(depends=["test_vip"])
def test_business_vds(fisheye_vip, plan: Plan, host_uuids, run_state):
    """承载业务网络的虚拟交换机就绪：三网独立时按规划创建业务虚拟交换机（虚拟网络!C8/J8/K8）并核对
    名称、绑定模式与关联网口；存储独立时使用管理虚拟交换机（虚拟网络!C4）。"""
    vds, how = config.ensure_business_vds(fisheye_vip, plan, host_uuids, run_state)
    run_state.update("network", {"business_vds": vds["uuid"], "business_vds_name": vds["name"]})
    LOG.info("%s（uuid %s）", how, vds["uuid"])


@pytest.mark.dependency(depends=["test_business_vds"])
def test_business_vlan(vlan, fisheye_vip, vds_id, run_state):
    """规划的业务网络已创建在业务虚拟交换机上，名称与 VLAN ID 与规划一致（虚拟网络 D/F 列）。"""
    entity, how = config.ensure_vlan(fisheye_vip, vds_id, vlan)
    run_state.set("vlans", vlan.name, {"uuid": entity["uuid"], "vlan_id": entity["vlan_id"], "vds_uuid": vds_id})
    LOG.info("%s（VLAN %s，uuid %s）", how, entity["vlan_id"], entity["uuid"])


@pytest.mark.dependency(depends=["test_business_vlan"])
def test_vlans_count(fisheye_vip, plan: Plan, vds_id):
    """业务虚拟交换机的 vlans_count 与规划表中的业务网络数量一致。"""
    LOG.info(config.check_vlans_count(fisheye_vip, plan, vds_id))


@pytest.mark.dependency(depends=["test_fisheye_login"])
def test_host_passwords(host, ssh):
    """主机的 smartx 与 root 密码已通过 SSH 改为规划的密码（主机规划 K/M 列），并用新密码登录验证。"""
    for note in config.ensure_host_passwords(ssh, host):
        LOG.info("%s：%s", host.name, note)


@pytest.mark.voyager_optional
@pytest.mark.dependency(depends=["test_vip"])
def test_svt_uploaded(fisheye_vip, svt_iso, run_state):
    """提供了 SVT 虚拟机工具 ISO 时已上传到集群（分块上传完成，集群中可以看到该镜像）。"""
    if svt_iso is None:
        facts.note("未提供 SVT ISO：可选步骤，没有要上传的文件")
        pytest.skip("未提供 SMTX_VMTOOLS-*.iso，不上传虚拟机工具")
    done = ensure_svt_image(fisheye_vip, svt_iso, run_state=run_state)
    facts.record(f"镜像 {svt_iso.path.name}", "集群中可以看到", done, ok=True)  # ensure_svt_image raises otherwise
    LOG.info(done)


@pytest.mark.dependency(depends=["test_vip"])
def test_cpu_compatibility(fisheye_vip):
    """集群 CPU 兼容性已设置为推荐的 CPU 型号，并读回确认。"""
    LOG.info(config.ensure_cpu_compatibility(fisheye_vip))


@pytest.mark.dependency(name="config_cluster", depends=[
    "test_vip", "test_license_serial", "test_dns", "test_ntp", "test_ipmi_account_valid",
    "test_vlans_count", "test_host_passwords", "test_cpu_compatibility"])
def test_cluster_configured(fisheye_vip, run_state, plan: Plan):
    """集群配置完成：在集群上读回序列号、VIP、业务虚拟交换机与全部业务网络，并记入运行状态
    （运行状态丢失后重跑也能补全，不依赖先前检查留下的记录）。"""
    serial = config.license_serial(fisheye_vip)
    run_state.set("cluster", "serial", serial)
    facts.record("集群序列号（读回）", "已读取", serial, ok=bool(serial))
    current = fisheye_vip.get("/api/v2/settings/vip") or {}
    vip = current.get("management_vip") if isinstance(current, dict) else None
    facts.record("集群 VIP（读回）", plan.cluster.vip, vip, cell=cells.ref(cells.HOSTS, cells.HOST_VIP))
    assert vip == plan.cluster.vip, (f"集群的 VIP 为 {vip!r}，应为规划的 {plan.cluster.vip}"
                                     f"（{cells.ref(cells.HOSTS, cells.HOST_VIP)}）")
    run_state.set("cluster", "vip", vip)
    vds = config.find_vds(fisheye_vip, config.business_vds_name(plan))
    facts.record("业务虚拟交换机（读回）", config.business_vds_name(plan), vds and vds.get("name"),
                 cell=cells.ref(cells.NET, "C8"))
    assert vds is not None, f"集群中没有业务虚拟交换机 {config.business_vds_name(plan)}（{cells.ref(cells.NET, 'C8')}）"
    run_state.update("network", {"business_vds": vds["uuid"], "business_vds_name": vds["name"]})
    present = {v.get("name"): v for v in config.vlans_of(fisheye_vip, vds["uuid"])}
    planned = [v.name for v in plan.networks.business.vlans]
    facts.record("业务网络（读回）", planned, [n for n in planned if n in present], cell="虚拟网络 D8:D18")
    for name in planned:
        if name in present:
            run_state.set("vlans", name, {"uuid": present[name]["uuid"], "vlan_id": present[name].get("vlan_id"),
                                          "vds_uuid": vds["uuid"]})
    missing = [n for n in planned if n not in present]
    assert not missing, f"业务虚拟交换机上缺少业务网络：{'、'.join(missing)}"
