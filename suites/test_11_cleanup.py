"""11-清理与交付：删除测试虚拟机与上传的测试模板并确认已不存在（CloudTower、组件、业务网络保留）；
主机、fisheye、CloudTower 的密码为规划表中的密码（各登录一次）；最后把交付摘要（序列号、地址、版本、
部署内容、产出物位置）附在报告中。

前提（假设）：06 结束时的阶段标记 ``tower_config`` 已通过。测试虚拟机按名称 voyager-test-NN 识别，
只删除它们；重跑时没有可删除的对象即视为完成。
"""
from __future__ import annotations

import logging

import pytest

from voyager.clients import FisheyeClient, TowerClient
from voyager.report import facts
from voyager.report.attach import attach_json
from voyager.steps import cleanup, config

LOG = logging.getLogger("voyager.suite.cleanup")


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_test_vms_removed(tower, cluster_id, run_state):
    """测试虚拟机（voyager-test-NN）已全部删除，CloudTower 中不再列出。"""
    removed = cleanup.remove_test_vms(tower, cluster_id, run_state)
    LOG.info("删除测试虚拟机：%s", "、".join(removed) or "（没有需要删除的）")
    left = cleanup.test_vms_in_tower(tower, cluster_id)
    facts.record("剩余测试虚拟机", 0, len(left))
    facts.note(f"本次删除：{'、'.join(removed) or '无'}")


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_test_uploads_removed(tower, run_state):
    """上传的测试虚拟机模板（upload-elf-file 的上传任务）已取消删除，CloudTower 中不再列出。"""
    ids = cleanup.recorded_uploads(run_state)
    removed = cleanup.remove_test_uploads(tower, run_state)
    left = tower.rest("get-upload-tasks", {"where": {"id_in": ids}}) if ids else []
    facts.record("剩余测试模板上传", 0, len(left or []))
    facts.note(f"本次删除上传任务：{'、'.join(removed) or '无'}")


@pytest.mark.dependency(depends=["test_test_vms_removed", "test_test_uploads_removed"])
def test_delivery_kept(tower, cluster_id, plan):
    """清理没有删除交付需要的内容：CloudTower 虚拟机与规划的全部业务网络仍然存在。"""
    found = cleanup.kept(tower, cluster_id, plan)
    facts.record("CloudTower 虚拟机仍存在", True, found["cloudtower_vm"], cell="集群管理信息!C3")
    for name, present in found["vlans"].items():
        facts.record(f"业务网络 {name} 仍存在", True, present)
    missing = [n for n, ok in found["vlans"].items() if not ok]
    assert found["cloudtower_vm"], "CloudTower 虚拟机不见了"
    assert not missing, f"业务网络不见了：{'、'.join(missing)}"


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_host_password(host, ssh):
    """主机的 smartx 与 root 密码为规划的密码（主机规划 K/M 列）：各用它登录一次。"""
    failed = []
    for user, password, cell in config.host_password_targets(host):
        ok = config.can_login(ssh, host.mgmt_ip, user, password)
        facts.record(f"{host.name} 以 {user} 和规划的密码登录", True, ok, cell=cell)
        if not ok:
            failed.append(f"{user}（{cell}）")
    assert not failed, f"{host.name}（{host.mgmt_ip}）不能用规划的密码登录：{'、'.join(failed)}"


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_fisheye_password(endpoints, plan):
    """fisheye 管理员密码为规划的密码（主机规划!L19/M19）：用它登录一次。"""
    client = FisheyeClient(endpoints, plan.cluster.vip)
    session = client.login(plan.cluster.admin_user or "root", plan.cluster.admin_password)
    client.logout()
    facts.record("fisheye 登录", True, bool(session.get("user_id")), cell="主机规划!L19/M19")


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_cloudtower_password(endpoints, plan):
    """CloudTower 管理员密码为规划的密码（集群管理信息 第 3 行）：用它登录一次。"""
    client = TowerClient(endpoints, plan.cloudtower.ip)
    client.login(plan.cloudtower.web_user or "root", plan.cloudtower.web_password)
    facts.record("CloudTower 登录", True, client.logged_in, cell="集群管理信息!F3/G3")


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_final_summary(request, tower, cluster_id, plan, run_state, state_dir, artifacts_dir):
    """交付摘要已附在报告中：集群与 CloudTower 的序列号、地址、版本、部署内容与产出物位置。"""
    clusters = tower.rest("get-clusters", {"where": {"id": cluster_id}}) or []
    html = getattr(request.config.option, "htmlpath", None)
    artifacts = {"报告 report": str(html or "(未生成 HTML 报告)"), "产出物 artifacts": str(artifacts_dir),
                 "状态目录 state": str(state_dir)}
    summary = cleanup.summary(plan, run_state, clusters[0] if clusters else None, artifacts)
    attach_json(request, "交付摘要 delivery summary", summary)
    facts.record("集群序列号", "已记录", "已记录" if summary["集群 cluster"]["序列号 serial"] else "缺失")
    assert summary["集群 cluster"]["序列号 serial"], "运行状态中没有集群序列号（03-配置集群 的 test_license_serial）"
