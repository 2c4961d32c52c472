"""02-初始化集群：按规划表和主机扫描结果生成部署载荷，触发部署，逐阶段跟踪，确认部署成功。

载荷与部署手册一致（管理/存储虚拟交换机与网络、子网掩码、网关、链路本地 host_ip、
按存储架构划分磁盘、主节点、集群功能），脱敏后附在报告中。集群已部署时不再触发部署。
"""
from __future__ import annotations

import logging

import pytest

from voyager.clients import FisheyeClient
from voyager.plan.model import Plan
from voyager.plan import cells
from voyager.report import facts
from voyager.report.attach import attach_json
from voyager.steps import deploy

LOG = logging.getLogger("voyager.suite.init_cluster")


@pytest.fixture(scope="module")
def scans(host_scans, plan: Plan) -> dict:
    failed = {ip: s for ip, s in host_scans.items() if isinstance(s, Exception)}
    if failed:
        pytest.fail("主机扫描失败：" + "；".join(f"{ip}: {exc}" for ip, exc in failed.items()))
    return host_scans


@pytest.fixture(scope="module")
def payload(plan: Plan, scans) -> dict:
    return deploy.build_payload(plan, scans)


@pytest.fixture(scope="module")
def deploy_host(plan: Plan) -> str:
    """The host the deployment is sent to (the first planned host, as the walkthrough does)."""
    return plan.hosts[0].mgmt_ip


@pytest.mark.dependency(depends=["prepare"], scope="session")
def test_deploy_payload(request, plan: Plan, scans, payload):
    """部署载荷按规划与扫描结果生成：每台主机的 UUID、链路本地 host_ip、管理/存储地址与掩码、
    按存储架构划分的磁盘、主节点数量、vhost/RDMA 开关都正确；脱敏后附在报告中。"""
    shown = attach_json(request, "部署载荷（已脱敏）deploy-cluster-payload.json", payload,
                        filename="deploy-cluster-payload.json")
    problems = deploy.check_payload(payload, plan, scans)
    facts.record("集群名称 cluster_name", plan.cluster.name, payload.get("cluster_name"),
                 cell=cells.ref(cells.NET, cells.NET_CLUSTER_NAME))
    facts.record("主机数量", len(plan.hosts), len(payload.get("hosts", [])), cell="主机规划 H 列")
    facts.record("主节点数量 is_master", deploy.master_count(len(plan.hosts)),
                 sum(1 for h in payload.get("hosts", []) if h.get("is_master")))
    facts.record("虚拟交换机", [plan.networks.mgmt.vds, plan.networks.storage.vds],
                 [v.get("name") for v in payload.get("vdses", [])], cell="虚拟网络!C4、C6")
    facts.record("vhost / RDMA", f"{plan.cluster.vhost_enabled} / {plan.cluster.rdma_enabled}",
                 f"{payload.get('vhost_enabled')} / {payload.get('rdma_enabled')}",
                 cell=cells.ref(cells.HOSTS, "O19"))
    for problem in problems:
        facts.record("载荷与规划/扫描的差异", "无", problem, ok=False)
    facts.record("载荷中的主机密码", "已脱敏（******）",
                 "已脱敏（******）" if all(p["password"] == "******" for h in shown["hosts"]
                                         for p in h["host_passwords"]) else "未脱敏")
    assert not problems, "部署载荷与规划不一致：\n" + "\n".join(problems)
    assert all(p["password"] == "******" for h in shown["hosts"] for p in h["host_passwords"])
    LOG.info("部署载荷：集群 %s，%d 台主机（主节点 %d 台），虚拟交换机 %s", payload["cluster_name"],
             len(payload["hosts"]), sum(h["is_master"] for h in payload["hosts"]),
             "、".join(v["name"] for v in payload["vdses"]))


@pytest.fixture(scope="module")
def triggered_now() -> dict:
    """Set by test_deploy_triggered when this session started the deployment."""
    return {}


@pytest.mark.dependency(depends=["test_deploy_payload"])
def test_deploy_triggered(fisheye_anon, deploy_host, payload, run_state, triggered_now):
    """部署已触发：POST /api/v2/deployment/cluster 返回 SUCCEEDED；集群已部署或正在部署时不重复触发。"""
    run_state.set("cluster", "deploy_host", deploy_host)  # recorded before the deployment starts
    done = deploy.trigger(fisheye_anon, deploy_host, payload, run_state)
    triggered_now["yes"] = done.startswith(deploy.TRIGGERED)
    facts.record(f"部署请求（经由第一台规划主机 {deploy_host}）", "已被接受，或集群已部署/正在部署（不重复触发）",
                 done, cell=cells.ref(cells.HOSTS, "I3"), ok=True)  # trigger() raises when refused
    LOG.info(done)


@pytest.mark.dependency(depends=["test_deploy_triggered"])
def test_deploy_finished(fisheye_anon, deploy_host, payload, run_state, triggered_now):
    """逐阶段跟踪部署进度（deploy_status），部署结束后 deploy_verify 返回 is_deployed=true；
    重跑时部署仍在进行则继续跟踪，上次部署失败或未开始则重新触发。"""
    run_state.set("cluster", "deploy_host", deploy_host)
    if triggered_now.get("yes"):  # started a moment ago: its outcome is this check's verdict
        verify = deploy.follow(fisheye_anon, deploy_host, run_state=run_state)
    else:
        verify, how = deploy.ensure_deployed(fisheye_anon, deploy_host, payload, run_state=run_state)
        facts.note(how)
        LOG.info(how)
    facts.record(f"{deploy_host} 的 deploy_verify.is_deployed", True, verify.get("is_deployed"))
    assert verify.get("is_deployed") is True, f"经由主机 {deploy_host} 的 deploy_verify 未显示已部署：{verify!r}"
    run_state.set("cluster", "deployed", True)


@pytest.mark.dependency(depends=["test_deploy_finished"])
def test_host_deployed(host, endpoints, run_state):
    """每台主机都确认已加入集群：其 deploy_verify 返回 is_deployed=true。"""
    verify = deploy.deploy_verify(FisheyeClient(endpoints, host.mgmt_ip))
    facts.record(f"{host.name} 的 deploy_verify.is_deployed", True, verify.get("is_deployed"),
                 cell=f"主机规划!I{host.row}")
    assert verify.get("is_deployed") is True, f"主机 {host.name}（{host.mgmt_ip}）未部署：{verify!r}"
    run_state.merge("hosts", host.mgmt_ip, {"deployed": True})


@pytest.mark.dependency(name="init_cluster", depends=["test_deploy_finished", "test_host_deployed"])
def test_cluster_initialised(plan: Plan, run_state):
    """集群初始化完成：运行状态记录集群已部署，全部规划主机均已加入。"""
    facts.record("运行状态：集群已部署", True, run_state.get("cluster", "deployed"))
    hosts = run_state.section("hosts")
    for h in plan.hosts:
        facts.record(f"运行状态：{h.name} 已部署", True, (hosts.get(h.mgmt_ip) or {}).get("deployed"))
    assert run_state.get("cluster", "deployed") is True, "运行状态没有记录集群已部署"
    missing = [f"{h.name}（{h.mgmt_ip}）" for h in plan.hosts if not (hosts.get(h.mgmt_ip) or {}).get("deployed")]
    assert not missing, f"运行状态中这些主机未记录为已部署：{'、'.join(missing)}"
