"""04-部署 CloudTower 并配置：上传 CloudTower ISO，创建并安装 CloudTower 虚拟机，配置网络，
运行安装程序，初始化管理员与组织，登录，配置 NTP、DNS，导出序列号写回规划表。

每一步先查看现状，只做缺少的部分，再读回验证；进行中的作业（创建虚拟机、配置网卡、安装程序）
先记入运行状态再等待，重跑时继续跟踪而不会重复创建。
"""
from __future__ import annotations

import logging

import pytest

from voyager.clients import TowerClient
from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import cloudtower as ct, cloudtower_setup as tower_setup, cloudtower_vm as tower_vm

LOG = logging.getLogger("voyager.suite.cloudtower")


@pytest.mark.dependency(depends=["config_cluster"], scope="session")
def test_cloudtower_iso(fisheye_vip, cloudtower_iso, run_state):
    """CloudTower ISO（媒体目录中版本最高的 cloudtower*.iso）已在集群镜像列表中，名称与大小一致；
    集群中已有时不再上传。"""
    image, how = tower_vm.ensure_iso(fisheye_vip, cloudtower_iso, run_state)
    LOG.info("%s（uuid %s）", how, image.get("uuid"))


@pytest.mark.dependency(depends=["config_cluster"], scope="session")
def test_cloudtower_placement(fisheye_vip, plan: Plan):
    """创建虚拟机所需的默认存储策略 uuid、管理虚拟交换机的 ovsbr_name 与默认网络的 VLAN uuid
    都通过接口查询得到（虚拟网络!C4/D4），不使用假定值。"""
    where = tower_vm.placement(fisheye_vip, plan)
    LOG.info("管理虚拟交换机 %s（%s），网络 %s（%s），默认存储策略 %s", where["vds_name"], where["ovsbr_name"],
             where["vlan_name"], where["vlan_uuid"], where["storage_policy_uuid"])


@pytest.mark.dependency(depends=["test_cloudtower_iso", "test_cloudtower_placement"])
def test_cloudtower_vm(fisheye_vip, plan: Plan, cloudtower_iso, run_state):
    """CloudTower 虚拟机（集群管理信息!B3，小写）按部署手册的固定规格创建并运行：8 vCPU（8 插槽 × 1 核）、
    内存 20401094656 字节、400 GiB virtio 系统盘 cloudtower-os、ISO 挂载为 IDE 光驱、高可用、BIOS；
    已存在时不再创建，创建作业失败时给出作业的原因。"""
    where = tower_vm.placement(fisheye_vip, plan)
    vm, how = tower_vm.ensure_vm(fisheye_vip, plan, run_state, where, tower_vm.iso_image(fisheye_vip, cloudtower_iso))
    LOG.info("%s（uuid %s）", how, vm.get("uuid"))


@pytest.mark.dependency(depends=["test_cloudtower_vm"])
def test_cloudtower_guest_agent(fisheye_vip, vm_id):
    """CloudTower 虚拟机的操作系统已从 ISO 安装并启动：guest agent（SVT vmtools）状态为 Running。"""
    vm = tower_vm.wait_guest_agent(fisheye_vip, vm_id)
    LOG.info("guest agent 运行中，操作系统 %s", (vm.get("guest_info") or {}).get("os_version"))


@pytest.mark.dependency(depends=["test_cloudtower_guest_agent"])
def test_cloudtower_vm_ip(fisheye_vip, plan: Plan, vm_id, run_state):
    """CloudTower 虚拟机网卡已配置规划的 IP（集群管理信息!E3）、子网掩码与网关（虚拟网络 H4/I4），
    配置作业完成，guest agent 报告该地址。"""
    LOG.info(tower_vm.ensure_vm_ip(fisheye_vip, plan, vm_id, run_state))


@pytest.mark.dependency(depends=["test_cloudtower_vm_ip"])
def test_cloudtower_installer(tower_ssh, endpoints, plan: Plan, run_state):
    """通过 SSH（cloudtower 账号）运行一次 CloudTower 安装程序，跟踪 nohup.out 直到出现
    Install Operation Center Successfully；失败时给出日志最后几行。"""
    LOG.info(tower_setup.install(tower_ssh, endpoints, plan, run_state))


@pytest.mark.dependency(depends=["test_cloudtower_installer"])
def test_cloudtower_https(endpoints, plan: Plan):
    """安装完成后 CloudTower 的 443 端口可以访问（不通时每 10 秒重试，共三次）。"""
    LOG.info(tower_setup.wait_https(endpoints, plan))


@pytest.mark.dependency(depends=["test_cloudtower_https"])
def test_tower_root_user(tower_anon):
    """CloudTower 管理员 root 已创建（createRootUser），checkTowerIsSetup 显示 userCreated=true；已存在时视为完成。"""
    LOG.info(tower_setup.ensure_root_user(tower_anon))


@pytest.mark.dependency(depends=["test_tower_root_user"])
def test_tower_organization(tower_anon, plan: Plan, run_state):
    """CloudTower 组织按规划命名（文档描述!C15）并已创建，checkTowerIsSetup 显示组织；已存在时视为完成。"""
    org_id, how = tower_setup.ensure_organization(tower_anon, plan)
    run_state.set("cloudtower", "organization_id", org_id)
    LOG.info("%s（id %s）", how, org_id)


@pytest.mark.dependency(depends=["test_tower_root_user"])
def test_tower_login(endpoints, plan: Plan):
    """可以用 root 通过 /v2/api/login 登录 CloudTower，获得 token。"""
    LOG.info(tower_setup.login(TowerClient(endpoints, ct.tower_ip(plan)), plan))


@pytest.mark.dependency(depends=["test_tower_login"])
def test_tower_ntp(tower, plan: Plan):
    """CloudTower 的 NTP 服务器已设置为规划的服务器（集群管理信息!E22:E24），并读回一致。"""
    LOG.info(tower_setup.ensure_ntp(tower, plan))


@pytest.mark.dependency(depends=["test_cloudtower_installer"])
def test_tower_dns(tower_ssh, plan: Plan):
    """CloudTower 虚拟机的 /etc/resolv.conf 已写入规划的 DNS 服务器（集群管理信息!E25:E26），并读回一致。"""
    LOG.info(tower_setup.ensure_dns(tower_ssh, plan))


@pytest.mark.dependency(depends=["test_tower_login"])
def test_tower_license_serial(tower, run_state, write_back_path):
    """读取 CloudTower 序列号（deployedLicense），记入运行状态，并写回规划表 集群管理信息!M3（规划来自文件、且不是模拟演练时）。"""
    lic = tower_setup.license_serial(tower)
    serial = lic["license_serial"]
    run_state.set("cloudtower", "serial", serial)
    LOG.info("CloudTower 序列号 %s（%s，到期 %s）", serial, lic.get("type"), lic.get("expire_date"))
    LOG.info(tower_setup.write_back_serial(write_back_path, serial))


@pytest.mark.dependency(name="cloudtower", depends=[
    "test_cloudtower_vm", "test_cloudtower_https", "test_tower_organization", "test_tower_ntp", "test_tower_dns",
    "test_tower_license_serial"])
def test_cloudtower_deployed(run_state):
    """CloudTower 部署完成：虚拟机、组织与序列号都已记入运行状态。"""
    for key in ("vm_uuid", "organization_id", "serial"):
        value = run_state.get("cloudtower", key)
        facts.record(f"运行状态 cloudtower.{key}", "已记录", value or "（缺少）", ok=bool(value))
        assert value, f"运行状态中没有 cloudtower.{key}"
