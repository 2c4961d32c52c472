"""The deploy payload built from the demo plan and scans shaped like the real
capture (api-samples/scan-host-response.json), compared field by field with the
real payloads (api-samples/deploy-cluster-payload-*.jsonc)."""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from voyager.clients import ApiError
from voyager.plan.demo import build_demo_plan
from voyager.steps.deploy import (
    DEPLOY_ACCEPTED,
    PayloadError,
    build_payload,
    check_payload,
    master_count,
    netmask,
    trigger,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "reference" / "api-samples"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/reference/api-samples 不存在")


def load_jsonc(path: Path):
    text = "\n".join(re.sub(r"//.*$", "", line) for line in path.read_text(encoding="utf-8").splitlines())
    return json.loads(text)


@pytest.fixture(scope="module")
def sample_scan():
    return json.loads((SAMPLES / "scan-host-response.json").read_text(encoding="utf-8"))["data"]


def demo_scans(plan, sample_scan):
    """One scan per demo host: the real capture with this host's identity."""
    scans = {}
    for host in plan.hosts:
        scan = copy.deepcopy(sample_scan)
        scan["host_uuid"] = f"1f967a52-9ac8-11f0-9b61-05cf1b7143{host.index:02d}"
        scan["host_ip"] = host.mgmt_ip
        scan["hostname"] = host.name
        for i in scan["ifaces"]:  # distinct link-local addresses per host
            if i["ipv6"]:
                i["ipv6"] = i["ipv6"][:-2] + f"{host.index:02x}"
        scans[host.mgmt_ip] = scan
    return scans


@pytest.mark.parametrize("sample", ["deploy-cluster-payload-3node.jsonc", "deploy-cluster-payload-4node.jsonc"])
def test_payload_has_the_structure_of_the_real_payload(sample, sample_scan):
    real = load_jsonc(SAMPLES / sample)
    plan = build_demo_plan(hosts=len(real["hosts"]))
    payload = build_payload(plan, demo_scans(plan, sample_scan))

    def same_shape(a, b, where):
        assert type(a) is type(b) or (a is None) == (b is None), f"{where}: {type(a)} vs {type(b)}"
        if isinstance(a, dict):
            assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
            for k in a:
                same_shape(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list) and a and b:
            for n, x in enumerate(a):  # each item shaped like the capture's item
                same_shape(x, b[min(n, len(b) - 1)], f"{where}[{n}]")

    same_shape(payload, real, "payload")
    for key in ("vdses", "networks", "hosts"):
        assert len(payload[key]) == len(real[key])


@pytest.mark.parametrize("sample", ["deploy-cluster-payload-3node.jsonc", "deploy-cluster-payload-4node.jsonc"])
def test_payload_values_follow_plan_and_scan(sample, sample_scan):
    real = load_jsonc(SAMPLES / sample)
    n = len(real["hosts"])
    plan = build_demo_plan(hosts=n)
    scans = demo_scans(plan, sample_scan)
    now = datetime(2025, 9, 26, 14, 2, 29, 381000, tzinfo=timezone.utc)
    payload = build_payload(plan, scans, now=now)

    # constants of the walkthrough
    assert payload["platform"] == real["platform"] == "kvm"
    assert payload["ntp"] == {"mode": "internal", "ntp_server": None, "current_time": "2025-09-26T14:02:29.381Z"}
    assert payload["ntp"]["mode"] == real["ntp"]["mode"]
    assert [net["name"] for net in payload["networks"]] == [net["name"] for net in real["networks"]]
    assert [net["network_type"] for net in payload["networks"]] == ["mgt", "storage"]
    assert [net["mode"]["type"] for net in payload["networks"]] == [net["mode"]["type"] for net in real["networks"]]
    # from the plan
    assert payload["cluster_name"] == "DEMO-SMTX-Cls01"
    assert payload["dns_server"] == ["127.10.0.114", "127.10.0.1"]
    mgmt, storage = payload["vdses"]
    assert (mgmt["name"], mgmt["bond_mode"]) == ("vDS-MgMt-Network", "active-backup")
    assert (storage["name"], storage["bond_mode"]) == ("vDS-Storage-Network", "active-backup")
    uuids = [scans[h.mgmt_ip]["host_uuid"] for h in plan.hosts]
    assert [a["host_uuid"] for a in mgmt["hosts_associated"]] == uuids
    assert all(a["nics_associated"] == ["ens192", "ens224"] for a in mgmt["hosts_associated"])
    assert all(a["nics_associated"] == ["ens161", "ens256"] for a in storage["hosts_associated"])
    mgt_net, storage_net = payload["networks"]
    assert mgt_net["attached_vds"] == "vDS-MgMt-Network" and storage_net["attached_vds"] == "vDS-Storage-Network"
    assert [s["service_interface_ip"] for s in mgt_net["network_config"]["service"]] == [h.mgmt_ip for h in plan.hosts]
    assert [s["service_interface_ip"] for s in storage_net["network_config"]["service"]] == [h.storage_ip for h in plan.hosts]
    assert {s["netmask"] for s in mgt_net["network_config"]["service"]} == {"255.255.255.0"}
    assert {s["service_interface_name"] for s in mgt_net["network_config"]["service"]} == {"port-mgt"}
    assert {s["service_interface_name"] for s in storage_net["network_config"]["service"]} == {"port-storage"}
    assert mgt_net["network_config"]["route"] == [{"gateway": "127.10.20.1"}]
    assert "route" not in storage_net["network_config"] and "route" not in real["networks"][1]["network_config"]
    assert payload["vhost_enabled"] is True and payload["rdma_enabled"] is False  # O19 = Boost
    # hosts
    for host, entry, real_entry in zip(plan.hosts, payload["hosts"], real["hosts"]):
        scan = scans[host.mgmt_ip]
        port_mgt = next(i for i in scan["ifaces"] if i["name"] == "port-mgt")
        assert entry["host_ip"] == f"{port_mgt['ipv6']}%ens192"
        assert entry["host_uuid"] == scan["host_uuid"]
        assert entry["hostname"] == host.name
        assert entry["disk_data_with_cache"] is real_entry["disk_data_with_cache"] is False
        # default P@ssw0rd!123, encoded as in the captures
        assert entry["host_passwords"] == real_entry["host_passwords"]
        assert entry["ifaces"] == [{"ip": host.mgmt_ip, "function": "mgt"},
                                   {"ip": host.storage_ip, "function": "storage"}]
        assert entry["tags"] == []
        assert entry["with_faster_ssd_as_cache"] is True  # 混闪-分层
        assert entry["is_master"] is real_entry["is_master"]
    # disks: the capture's scan without the boot disk, NVMe cache + HDD data (3-node capture)
    if n == 3:
        assert payload["hosts"][0]["disks"] == real["hosts"][0]["disks"]
    assert check_payload(payload, plan, scans) == []


@pytest.mark.parametrize("hosts,expected", [(3, 3), (4, 3), (5, 5), (6, 5), (16, 5)])
def test_masters(hosts, expected, sample_scan):
    plan = build_demo_plan(hosts=hosts)
    payload = build_payload(plan, demo_scans(plan, sample_scan))
    assert master_count(hosts) == expected
    assert [h["is_master"] for h in payload["hosts"]] == [i < expected for i in range(hosts)]


def test_all_flash_makes_every_disk_data(sample_scan):
    plan = build_demo_plan()
    plan.cluster.storage_arch = "全闪-不分层"
    scans = demo_scans(plan, sample_scan)
    for scan in scans.values():
        for d in scan["disks"]:
            if d["function"] != "boot":
                d.update(type="SSD", function="data")
    payload = build_payload(plan, scans)
    for entry in payload["hosts"]:
        assert {d["function"] for d in entry["disks"]} == {"data"}
        assert "sda" not in {d["drive"] for d in entry["disks"]}
        assert entry["with_faster_ssd_as_cache"] is False
    assert check_payload(payload, plan, scans) == []


def test_features_and_vlans_follow_the_plan(sample_scan):
    plan = build_demo_plan()
    plan.cluster.features = "RDMA+Boost"
    plan.networks.mgmt.vlan = 1020
    plan.networks.mgmt.subnet = "127.10.20.0/23"
    payload = build_payload(plan, demo_scans(plan, sample_scan))
    assert payload["vhost_enabled"] is True and payload["rdma_enabled"] is True
    assert payload["networks"][0]["mode"]["network_identities"] == [1020]
    assert payload["networks"][0]["network_config"]["service"][0]["netmask"] == "255.255.254.0"
    plan.cluster.features = "None"
    payload = build_payload(plan, demo_scans(plan, sample_scan))
    assert payload["vhost_enabled"] is False and payload["rdma_enabled"] is False


def test_missing_scan_or_link_local_names_the_host(sample_scan):
    plan = build_demo_plan()
    scans = demo_scans(plan, sample_scan)
    del scans["127.10.20.12"]
    with pytest.raises(PayloadError, match="demo-node-02"):
        build_payload(plan, scans)
    scans = demo_scans(plan, sample_scan)
    for i in scans["127.10.20.13"]["ifaces"]:
        i["ipv6"] = None
    with pytest.raises(PayloadError, match="demo-node-03.*IPv6"):
        build_payload(plan, scans)


def test_check_payload_finds_tampering(sample_scan):
    plan = build_demo_plan()
    scans = demo_scans(plan, sample_scan)
    payload = build_payload(plan, scans)
    payload["hosts"][1]["host_ip"] = "fe80::1%ens192"
    payload["hosts"][2]["is_master"] = False
    payload["networks"][0]["network_config"]["service"][0]["netmask"] = "255.255.0.0"
    problems = check_payload(payload, plan, scans)
    assert any("demo-node-02" in p and "链路本地" in p for p in problems)
    assert any("主节点数 2" in p for p in problems)
    assert any("子网掩码" in p for p in problems)


def test_netmask():
    assert netmask("10.0.20.0/24") == "255.255.255.0"
    assert netmask("10.0.16.0/20") == "255.255.240.0"
    with pytest.raises(PayloadError):
        netmask("10.0.20.300/24")


class FakeDeploymentApi:
    """Answers like the deployment API; records what was sent."""

    def __init__(self, deployed=False, status=None, accept=True):
        self.deployed, self.status, self.accept = deployed, status, accept
        self.sent = []

    def deployment(self, method, path, **kwargs):
        self.sent.append((method, path))
        if path.endswith("deploy_verify"):
            return {"is_deployed": self.deployed, "platform": "kvm"}
        if path.endswith("deploy_status"):
            if self.status is None:
                raise ApiError("DEPLOY_TASK_NOT_FOUND", "no deploying task", None, method, path, 200)
            return self.status
        if method == "POST" and path == "/api/v2/deployment/cluster":
            return {"msg": DEPLOY_ACCEPTED if self.accept else "FAILED: something"}
        raise AssertionError(path)


def test_trigger_posts_only_when_needed():
    api = FakeDeploymentApi()
    assert "已触发" in trigger(api, "127.10.20.11", {"hosts": []})
    assert ("POST", "/api/v2/deployment/cluster") in api.sent
    for api in (FakeDeploymentApi(deployed=True),
                FakeDeploymentApi(status={"state": "running", "current_stage": 3, "total_stages": 8})):
        trigger(api, "127.10.20.11", {"hosts": []})
        assert all(method == "GET" for method, _ in api.sent)
    with pytest.raises(AssertionError, match="未被接受"):
        trigger(FakeDeploymentApi(accept=False), "127.10.20.11", {"hosts": []})
