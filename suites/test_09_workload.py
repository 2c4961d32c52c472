"""09-测试虚拟机：在每个业务网络上创建测试虚拟机（至少两台、分布在不同主机），地址取自临时测试
地址段（集群管理信息!E18:E19），掩码与网关取自该业务网络（虚拟网络 H/I 列），并确认运行、
guest agent、SSH 以及同一业务网络内互通。

前提（假设）：06 结束时的阶段标记 ``tower_config`` 已通过——CloudTower 已部署、集群已关联并配置
（suites/test_04 ~ test_06）；本模块用 fixture ``tower``、``cluster_id``、``fisheye_vip``。
测试虚拟机模板与账号见 ``voyager.steps.workload_config``（介质目录中的 voyager-workload*.ova 与
voyager-workload.json）。重跑时按名称找到已有的虚拟机，绝不重复创建；上一次运行的 11-清理 已删除
测试虚拟机时，重跑的检查先重新创建它所需的虚拟机（本次运行结束时再删除，见 fixture ``ready_vms``）。
"""
from __future__ import annotations

import logging

import pytest

from fixtures.workload import planned
from voyager.report import facts
from voyager.steps import workload

LOG = logging.getLogger("voyager.suite.workload")


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_vm_created(test_vm, tower, cluster_id, workload_template, guest, run_state, ready_vms):
    """测试虚拟机已创建且只有一台（按名称查找；不存在时从模板导入到规划的主机与业务网络，
    导入任务完成）。"""
    spec = planned(test_vm)
    result = workload.ensure_test_vm(tower, cluster_id, spec, workload_template, run_state, guest.vm)
    if result.how != workload.EXISTING:
        ready_vms.made_now(spec.name)
    count = len(workload.find_vms(tower, cluster_id, spec.name))
    facts.record(f"名为 {spec.name} 的虚拟机数量", 1, count)
    LOG.info("%s：%s（id %s）", spec.name, result.how, result.id)
    assert count == 1, f"CloudTower 中名为 {spec.name} 的虚拟机有 {count} 台，应为 1 台"


@pytest.mark.dependency(depends=["test_vm_created"])
def test_vm_running(test_vm, tower, cluster_id, ready_vms):
    """测试虚拟机处于运行状态（CloudTower status = RUNNING）。"""
    spec = planned(test_vm)
    ready_vms.present([spec])
    vm = workload.tower_vm(tower, cluster_id, spec)
    facts.record(f"{spec.name} 运行状态", "RUNNING", vm.get("status"))
    assert vm.get("status") == "RUNNING", f"{spec.name} 的状态为 {vm.get('status')}，应为 RUNNING"


@pytest.mark.dependency(depends=["test_vm_running"])
def test_vm_guest_agent(test_vm, tower, cluster_id, fisheye_vip, ready_vms):
    """测试虚拟机的 guest agent（VMTools）在运行（ga_state = Running）。"""
    spec = planned(test_vm)
    ready_vms.present([spec])
    vm = workload.wait_guest_agent(fisheye_vip, workload.tower_vm(tower, cluster_id, spec)["local_id"])
    state = (vm.get("guest_info") or {}).get("ga_state")
    facts.record(f"{spec.name} guest agent", "Running", state)
    assert state == "Running"


@pytest.mark.dependency(depends=["test_vm_guest_agent"])
def test_vm_address(test_vm, tower, cluster_id, fisheye_vip, endpoints, ready_vms):
    """测试虚拟机网卡地址为规划的临时测试地址，掩码与网关为该业务网络的（虚拟网络 H/I 列），
    SSH 端口可以连接。"""
    spec = planned(test_vm)
    ready_vms.present([spec])
    local_id = workload.tower_vm(tower, cluster_id, spec)["local_id"]
    LOG.info("%s：%s", spec.name, workload.ensure_address(fisheye_vip, local_id, spec))
    vm = fisheye_vip.vm(local_id)
    ip, netmask, gateway = workload.nic_config(vm)
    vlan = workload.tower_vlan(tower, spec.vlan.name)
    nic_vlan = (vm.get("nics") or [{}])[0].get("vlan_uuid")
    facts.record(f"{spec.name} 网卡所在业务网络", spec.vlan.name, spec.vlan.name if nic_vlan == vlan.get("local_id")
                 else f"其他网络（vlan_uuid {nic_vlan}）", cell=f"虚拟网络!D{spec.vlan.row}")
    facts.record(f"{spec.name} 地址", spec.ip, ip, cell="集群管理信息!E18:E19")
    facts.record(f"{spec.name} 掩码 / 网关", f"{spec.netmask} / {spec.gateway}", f"{netmask} / {gateway}",
                 cell=f"虚拟网络!H{spec.vlan.row}/I{spec.vlan.row}")
    assert nic_vlan == vlan.get("local_id"), f"{spec.name} 的网卡不在业务网络 {spec.vlan.name} 上"
    assert (ip, netmask, gateway) == (spec.ip, spec.netmask, spec.gateway), (
        f"{spec.name} 的网卡配置为 {ip}/{netmask} 网关 {gateway}，应为 {spec.ip}/{spec.netmask} 网关 {spec.gateway}"
        f"（{spec.cells}）")
    workload.wait_ssh(endpoints, spec)


@pytest.mark.dependency(depends=["test_vm_address"])
def test_vm_ssh(test_vm, ssh, guest, ready_vms):
    """可以用模板账号通过 SSH 登录测试虚拟机的规划地址，主机名为虚拟机名称。"""
    spec = planned(test_vm)
    ready_vms.present([spec])
    client = workload.guest_login(ssh, spec, guest)
    hostname = client.run("hostname", timeout=60).check("hostname").stdout.strip()
    facts.record(f"{spec.ip} 上的主机名", spec.name, hostname)
    assert hostname == spec.name, f"{spec.ip} 上登录到的是 {hostname}，应为 {spec.name}"


@pytest.mark.dependency(depends=["test_vm_ssh"])
def test_vm_reaches_peers(test_vm, planned_test_vms, ssh, guest, ready_vms):
    """同一业务网络上的测试虚拟机互相 ping 通（显示丢包率与 RTT），丢包不超过配置的上限（默认 0%）。"""
    spec = planned(test_vm)
    peers = workload.same_vlan_peers(planned_test_vms, spec)
    ready_vms.present([spec, *peers])
    if not peers:  # nothing to compare: said in the report, the row passes
        facts.note(f"业务网络 {spec.vlan.name} 上只有 {spec.name} 一台测试虚拟机，没有可以互 ping 的对象")
        return
    client = workload.guest_login(ssh, spec, guest)
    bound = guest.ping["max_loss_percent"]
    failures = []
    for peer in peers:
        result = workload.ping(client, peer.ip, count=int(guest.ping["count"]), interval=guest.ping["interval"])
        ok = result.loss_percent <= bound
        facts.record(f"{spec.name} → {peer.name}（{peer.ip}）丢包率 %", f"≤ {bound:g}", round(result.loss_percent, 1),
                     ok=ok)
        facts.note(f"{spec.name} → {peer.name}：{result.describe()}")
        LOG.info("%s → %s：%s", spec.name, peer.name, result.describe())
        if not ok:
            failures.append(f"{peer.name}（{peer.ip}）：{result.describe()}")
    assert not failures, f"{spec.name} 到同一业务网络的虚拟机不通：" + "；".join(failures)


@pytest.mark.dependency(depends=["test_vm_created"])
def test_vms_spread_over_hosts(planned_test_vms, tower, cluster_id, ready_vms):
    """测试虚拟机分布在至少两台主机上，同一业务网络上的测试虚拟机分别在不同主机上。"""
    ready_vms.present(planned_test_vms)
    hosts = workload.tower_hosts(tower, cluster_id)
    placed = {}
    for spec in planned_test_vms:
        vm = workload.tower_vm(tower, cluster_id, spec)
        host = (vm.get("host") or {}).get("management_ip") or (workload.host_by_node_ip(hosts, vm.get("node_ip")) or {}).get(
            "management_ip")
        placed[spec.name] = host
    facts.record("测试虚拟机所在主机数", "≥ 2", len(set(placed.values())), ok=len(set(placed.values())) >= 2)
    clashes = []
    for spec in planned_test_vms:
        for peer in workload.same_vlan_peers(planned_test_vms, spec):
            if spec.index < peer.index and placed[spec.name] == placed[peer.name]:
                clashes.append(f"{spec.name} 与 {peer.name} 都在 {placed[spec.name]}")
    facts.record("同一业务网络上同主机的测试虚拟机", "无", "；".join(clashes) or "无")
    assert len(set(placed.values())) >= 2, f"测试虚拟机都在同一台主机上：{placed}"
    assert not clashes, "同一业务网络的测试虚拟机应在不同主机上：" + "；".join(clashes)


@pytest.mark.dependency(name="workload_ready", depends=[
    "test_vm_reaches_peers", "test_vms_spread_over_hosts"])
def test_workload_ready(planned_test_vms, run_state, ready_vms):
    """全部测试虚拟机就绪：其 id 与地址都已记入运行状态（test_vms）。"""
    ready_vms.present(planned_test_vms)
    recorded = run_state.section(workload.STATE)
    missing = [s.name for s in planned_test_vms if not (recorded.get(s.name) or {}).get("id")]
    facts.record("运行状态中的测试虚拟机", len(planned_test_vms), len(planned_test_vms) - len(missing))
    assert not missing, f"运行状态中缺少测试虚拟机：{'、'.join(missing)}"
