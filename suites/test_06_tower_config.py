"""06-通过 CloudTower 配置集群：默认存储策略（双副本、精简置备）、集群存储使用率告警阈值、
监控视图（Cluster/Host/VM 及其图表）、机架拓扑（主机规划 P/Q 列）。

每一项先查看现状，只在不一致时修改，再读回验证；视图、图表、机架和机箱只在缺少时创建。
"""
from __future__ import annotations

import logging

import pytest

from voyager.plan.model import Plan
from voyager.report import facts
from voyager.steps import tower_config

LOG = logging.getLogger("voyager.suite.tower_config")


@pytest.mark.dependency(depends=["attach_cluster"], scope="session")
def test_default_storage_policy(tower, cluster_id):
    """集群默认存储策略为 REPLICA_2_THIN_PROVISION（2 副本、精简置备），设置返回值与读回都一致。"""
    LOG.info(tower_config.ensure_storage_policy(tower, cluster_id))


@pytest.mark.dependency(depends=["attach_cluster"], scope="session")
def test_storage_alert_rule(tower, cluster_id, plan: Plan):
    """集群存储使用率告警（zbs_cluster_data_space_use_rate）：NOTICE 阈值 = floor(((n−1)/n − 5%)·100)
    （n 为规划的主机数），CRITICAL 90，读回一致。"""
    LOG.info(tower_config.ensure_storage_alert(tower, cluster_id, len(plan.hosts)))


@pytest.mark.parametrize("view", list(tower_config.VIEWS))
@pytest.mark.dependency(depends=["attach_cluster"], scope="session")
def test_monitoring_view(view, tower, cluster_id):
    """监控视图（Cluster/Host/VM）及其图表齐全，每个图表只有一个；缺少时才创建。"""
    LOG.info(tower_config.ensure_view(tower, cluster_id, view))


@pytest.mark.dependency(depends=["attach_cluster"], scope="session")
def test_racks(tower, cluster_id, plan: Plan):
    """规划的机架（主机规划 P 列）已在集群的机房拓扑中创建；规划表没有机架时跳过。"""
    if not tower_config.planned_racks(plan):
        reason = "规划表没有填写机架（主机规划 P 列），不配置机架拓扑"
        facts.note(reason)
        pytest.skip(reason)
    LOG.info(tower_config.ensure_racks(tower, cluster_id, plan))


# not chained to test_racks: without a planned rack both skip with their own reason
@pytest.mark.dependency(depends=["attach_cluster"], scope="session")
def test_host_rack_position(host, tower, cluster_id, plan: Plan):
    """该主机的机箱位于规划的机架与 U 位（主机规划 P/Q 列），主机节点在该机箱中，读回一致；
    该主机没有规划机架时跳过。"""
    if not host.rack:
        reason = f"主机 {host.name} 没有规划机架（主机规划!P{host.row}）"
        facts.note(reason)
        pytest.skip(reason)
    LOG.info(tower_config.ensure_host_position(tower, cluster_id, plan, host))


@pytest.mark.dependency(name="tower_config", depends=[
    "test_default_storage_policy", "test_storage_alert_rule", "test_monitoring_view"])
def test_tower_configured(plan: Plan):
    """CloudTower 配置完成：默认存储策略、存储使用率告警阈值与 Cluster/Host/VM 监控视图均已就绪
    （机架拓扑按规划可选，不作为后续步骤的前提）。"""
    facts.record("CloudTower 配置（存储策略、告警、监控视图）", "已完成", "已完成",
                 cell="集群管理信息")
    LOG.info("CloudTower 配置完成：集群 %s", plan.cluster.name)
