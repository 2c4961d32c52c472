"""Step 01 logic without a simulator: scan vs plan, addresses, media."""
from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.plan.rules import RULES
from voyager.state import open_state
from voyager.steps import media, prepare

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCAN = SHARED / "reference" / "api-samples" / "scan-host-response.json"


@pytest.fixture
def plan():
    return build_demo_plan()


@pytest.fixture
def capture():
    if not SCAN.exists():
        pytest.skip("../shared/reference/api-samples 不存在")
    return json.loads(SCAN.read_text(encoding="utf-8"))["data"]


@pytest.fixture
def scan(capture):
    """The real capture with the demo's business NICs (ens225/ens257, no link in
    the capture) cabled at the planned 10G."""
    scan = copy.deepcopy(capture)
    for i in scan["ifaces"]:
        if i["name"] in ("ens225", "ens257"):
            i.update(physical_link_up=True, running=True, speed=10_000_000_000)
    return scan


def test_real_scan_matches_the_demo_plan(plan, scan):
    host = plan.hosts[0]
    assert prepare.nic_problems(plan, host, scan) == []
    assert prepare.disk_problems(plan, host, scan) == []
    assert prepare.deployed_problem(host, scan, cluster_deployed=False) is None


def test_missing_nic_link_down_and_wrong_speed_name_host_and_cell(plan, scan):
    host = plan.hosts[1]
    scan = copy.deepcopy(scan)
    scan["ifaces"] = [i for i in scan["ifaces"] if i["name"] != "ens224"]
    for i in scan["ifaces"]:
        if i["name"] == "ens161":
            i.update(physical_link_up=False, running=False, speed=None)
        if i["name"] == "ens256":
            i["speed"] = 10_000_000_000
    problems = prepare.nic_problems(plan, host, scan)
    assert "主机 demo-node-02（127.10.20.12）缺少规划的网卡 ens224（虚拟网络!J4 管理网络）" in problems
    assert any("ens161 链路未连接（虚拟网络!J6 存储网络）" in p for p in problems)
    assert any("ens256 速率为 10G，与规划的 25G 不符（虚拟网络!L6 存储网络）" in p for p in problems)
    assert len(problems) == 3


def test_business_nics_without_link_are_reported(plan, capture):
    # in the real capture ens225/ens257 (the demo's business NICs) have no link
    problems = prepare.nic_problems(plan, plan.hosts[0], capture)
    assert len(problems) == 2
    assert all("链路未连接（虚拟网络!J8 业务网络）" in p for p in problems)


def test_disks_by_storage_architecture(plan, scan):
    host = plan.hosts[0]
    no_hdd = copy.deepcopy(scan)
    no_hdd["disks"] = [d for d in no_hdd["disks"] if d["type"] != "HDD"]
    assert any("没有 HDD 数据盘" in p and "主机规划!Q19" in p for p in prepare.disk_problems(plan, host, no_hdd))
    plan.cluster.storage_arch = "全闪-不分层"
    problems = prepare.disk_problems(plan, host, scan)
    assert problems and "sdb" in problems[0] and "全闪-不分层" in problems[0]
    assert prepare.disk_problems(plan, host, no_hdd) == []
    only_boot = copy.deepcopy(scan)
    only_boot["disks"] = [d for d in scan["disks"] if d["function"] == "boot"]
    assert "没有可用于存储的磁盘" in prepare.disk_problems(plan, host, only_boot)[0]


def test_deployed_host_is_refused_unless_the_cluster_is(plan, scan):
    host = plan.hosts[2]
    deployed = dict(scan, status="enabled")
    assert "已经部署" in prepare.deployed_problem(host, deployed, cluster_deployed=False)
    assert prepare.deployed_problem(host, deployed, cluster_deployed=True) is None
    scans = {h.mgmt_ip: deployed for h in plan.hosts}
    assert prepare.cluster_deployed_from_scans(scans) is True
    scans[plan.hosts[0].mgmt_ip] = dict(scan)
    assert prepare.cluster_deployed_from_scans(scans) is False


def test_versions_must_agree(plan, scan):
    scans = {h.mgmt_ip: copy.deepcopy(scan) for h in plan.hosts}
    assert prepare.version_problems(plan, scans) == ([], [])
    scans[plan.hosts[2].mgmt_ip]["version"] = "6.1.0"
    problems, notes = prepare.version_problems(plan, scans)
    assert problems and "demo-node-03" in problems[0] and "6.1.0" in problems[0]
    assert any("6.1.0P4" in n and "主机规划!C19" in n for n in notes)


def test_scan_hosts_runs_in_parallel_and_keeps_failures(plan):
    seen = set()

    def fake_scan(endpoints, ip):
        seen.add(threading.current_thread().name)
        if ip.endswith(".12"):
            raise ValueError("boom")
        return {"host_uuid": ip}

    results = prepare.scan_hosts(None, [h.mgmt_ip for h in plan.hosts], scan=fake_scan)
    assert results["127.10.20.11"] == {"host_uuid": "127.10.20.11"}
    assert isinstance(results["127.10.20.12"], ValueError)
    assert all(name.startswith("scan") for name in seen)


class FakeEndpoints:
    def __init__(self, open_ports):
        self.open_ports = open_ports
        self.asked = []

    def tcp_open(self, ip, port):
        self.asked.append((ip, port))
        return (ip, port) in self.open_ports


def test_address_in_use_sim_uses_the_resolver_live_uses_ping():
    ep = FakeEndpoints({("127.10.20.10", 443)})
    assert prepare.address_in_use(ep, "127.10.20.10", simulated=True) == (True, "TCP 443")
    assert prepare.address_in_use(ep, "127.10.20.2", simulated=True)[0] is False
    pinged = []
    ep = FakeEndpoints(set())
    assert prepare.address_in_use(ep, "127.0.0.1", simulated=False,
                                  pinger=lambda ip: pinged.append(ip) or True) == (True, "ping")
    assert pinged == ["127.0.0.1"] and ep.asked == []
    # no ping available: TCP through the resolver
    assert prepare.address_in_use(ep, "127.0.0.1", simulated=False, pinger=lambda ip: None)[0] is False
    assert [p for _, p in ep.asked] == [22, 80, 443]


def test_system_ping_of_loopback_or_unavailable():
    assert prepare.ping("127.0.0.1") in (True, None)  # None where ping is not installed


def test_planned_and_owned_addresses(plan, tmp_path):
    assert [a.ip for a in prepare.planned_addresses(plan, "VIP")] == ["127.10.20.10"]
    assert prepare.planned_addresses(plan, "VIP")[0].cell == "主机规划!I19"
    storage = prepare.planned_addresses(plan, "storage")
    assert [a.cell for a in storage] == ["主机规划!N3", "主机规划!N4", "主机规划!N5"]
    assert len(prepare.planned_addresses(plan, "test-range")) == 9
    state = open_state(tmp_path, plan)
    assert prepare.owned_addresses(plan, state, cluster_deployed=False) == {}
    owned = prepare.owned_addresses(plan, state, cluster_deployed=True)
    assert "127.10.20.10" in owned and "127.10.21.11" in owned and "127.10.20.2" not in owned
    state.set("cloudtower", "vm_uuid", "vm-1")
    assert "127.10.20.2" in prepare.owned_addresses(plan, state, cluster_deployed=True)


def test_rule_groups_cover_every_rule():
    groups = prepare.rule_groups()
    assert groups[:2] == ["read", "required"]
    assert {prepare.rule_group(r) for r in RULES} <= set(groups)
    assert prepare.rule_group("read.ip") == "read"
    assert prepare.rule_group("ip.duplicate") == "addresses"


def test_media_highest_version_and_placeholders(tmp_path):
    for name in ("cloudtower-4.6.0.iso", "CloudTower-4.10.1-x86_64.iso", "cloudtower-4.7.1.iso", "notes.txt",
                 "SMTX_VMTOOLS-3.2.0-2501210639.iso"):
        (tmp_path / name).write_bytes(b"x" * 10)
    assert media.find_cloudtower_iso(tmp_path).name == "CloudTower-4.10.1-x86_64.iso"
    assert media.find_svt_iso(tmp_path).name == "SMTX_VMTOOLS-3.2.0-2501210639.iso"
    assert media.find_obs_package(tmp_path) is None and media.find_backup_package(tmp_path) is None
    for name in ("Observability-X86_64-v1.4.2-release.20250926-24.tar.gz",
                 "Observability-X86_64-v1.10.0-release.20260101-3.tar.gz", "observability-notes.tar.gz",
                 "smtx-backup-dr-x86_64-2.2.1.tar.gz"):
        (tmp_path / name).write_bytes(b"x" * 10)
    assert media.find_obs_package(tmp_path).name == "Observability-X86_64-v1.10.0-release.20260101-3.tar.gz"
    assert media.find_backup_package(tmp_path).name == "smtx-backup-dr-x86_64-2.2.1.tar.gz"
    empty = tmp_path / "rehearsal"
    created = media.ensure_rehearsal_media(empty, "4.7.1", obs_version="1.4.2")
    assert {p.name for p in created} == {"cloudtower-4.7.1-sim-rehearsal.iso", "SMTX_VMTOOLS-3.2.0-sim-rehearsal.iso",
                                         "Observability-X86_64-v1.4.2-sim-rehearsal.tar.gz",
                                         "smtx-backup-dr-x86_64-2.2.1-sim-rehearsal.tar.gz"}
    iso = media.find_cloudtower_iso(empty)
    assert iso.rehearsal and iso.size == media.REHEARSAL_SIZE
    assert media.find_obs_package(empty).size == media.PACKAGE_REHEARSAL_SIZE
    assert media.ensure_rehearsal_media(empty, "4.7.1") == []  # idempotent


def test_media_dir_choice(tmp_path):
    plan_file = tmp_path / "plans" / "p.xlsx"
    plan_file.parent.mkdir()
    state = tmp_path / "state"
    assert media.choose_media_dir(tmp_path / "m", plan_file, state, True, False) == tmp_path / "m"
    assert media.choose_media_dir(None, plan_file, state, False, False) == plan_file.parent
    assert media.choose_media_dir(None, plan_file, state, True, False) == state / "media"
    (plan_file.parent / "cloudtower-4.7.1.iso").write_bytes(b"iso")
    assert media.choose_media_dir(None, plan_file, state, True, False) == plan_file.parent
    assert media.choose_media_dir(None, state / "demo-plan.xlsx", state, True, True) == state / "media"
