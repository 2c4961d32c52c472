"""05-关联 CloudTower：查询组织 ID，创建（或找到）规划的数据中心，用集群 VIP 与规划的管理员账号
关联集群，确认集群状态为 CONNECTED，主机数量与每台主机的管理地址与规划一致。

CloudTower 中已有该集群时不再关联；关联任务先记入运行状态再等待。
"""
from __future__ import annotations

import logging

import pytest

from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import attach

LOG = logging.getLogger("voyager.suite.attach_cluster")


@pytest.mark.dependency(depends=["cloudtower"], scope="session")
def test_organization_id(tower, plan: Plan, run_state):
    """通过 /v2/api/get-organizations 查到规划的组织（文档描述!C15）及其 ID。"""
    org = attach.find_organization(tower, plan)
    run_state.set("cloudtower", "organization_id", org["id"])
    LOG.info("组织 %s 的 ID 为 %s", org["name"], org["id"])


@pytest.mark.dependency(depends=["test_organization_id"])
def test_datacenter(tower, plan: Plan, organization_id, run_state):
    """规划的数据中心（文档描述!C17）已在该组织下创建；已存在时不再创建。"""
    dc, how = attach.ensure_datacenter(tower, plan, organization_id)
    run_state.set("cloudtower", "datacenter_id", dc["id"])
    LOG.info("%s（id %s）", how, dc["id"])


@pytest.mark.dependency(depends=["test_datacenter"])
def test_cluster_connection(tower, plan: Plan, datacenter_id, run_state):
    """集群已用 VIP（主机规划!I19）与规划的管理员账号（主机规划!L19/M19）关联到该数据中心；
    CloudTower 中已有该集群时不再关联；关联任务完成。"""
    cluster, how = attach.ensure_connected(tower, plan, datacenter_id, run_state)
    LOG.info("%s（id %s，%s）", how, cluster["id"], cluster.get("connect_state"))


@pytest.mark.dependency(depends=["test_cluster_connection"])
def test_cluster_connected(tower, plan: Plan, cluster_id):
    """get-clusters 显示集群 CONNECTED，名称、主机数量与管理地址与规划一致。"""
    cluster = attach.connected_cluster(tower, cluster_id)
    attach.check_cluster(cluster, plan)
    LOG.info("集群 %s 已关联（%d 台主机）", cluster.get("name"), cluster.get("host_num"))


@pytest.mark.dependency(depends=["test_cluster_connection"])
def test_cluster_host_listed(host, tower, cluster_id):
    """该主机出现在 CloudTower 的集群主机列表中，管理地址与主机名与规划一致（主机规划 H/I 列）。"""
    row = attach.check_host_listed(attach.connected_cluster(tower, cluster_id), host)
    LOG.info("主机 %s（%s）在 CloudTower 中的 id 为 %s", host.name, host.mgmt_ip, row.get("id"))


@pytest.mark.dependency(name="attach_cluster", depends=["test_cluster_connected", "test_cluster_host_listed"])
def test_cluster_attached(run_state):
    """集群关联完成：组织、数据中心与集群的 CloudTower ID 都已记入运行状态。"""
    for key in ("organization_id", "datacenter_id", "cluster_id"):
        value = run_state.get("cloudtower", key)
        facts.record(f"运行状态 cloudtower.{key}", "已记录", value or "（缺少）", ok=bool(value))
        assert value, f"运行状态中没有 cloudtower.{key}"
