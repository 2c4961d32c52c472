"""Every validator rule, broken exactly once: start from the (valid) demo plan, change
one field, and expect that rule's finding with its severity on the right cell."""
from __future__ import annotations

import copy

import pytest

from voyager.plan import Finding, Secret, build_demo_plan, validate
from voyager.plan.model import ER, Component
from voyager.plan.rules import RULES, check
from voyager.plan.rules.common import cell_sort_key, parse_subnet


def _baseline() -> set[tuple[str, str]]:
    return {(f.rule, f.cell) for f in validate(build_demo_plan(), sim=True)}


BASELINE = _baseline()


def new_findings(plan, sim: bool = True) -> list[Finding]:
    return [f for f in validate(plan, sim=sim) if (f.rule, f.cell) not in BASELINE]


def test_demo_plan_is_valid_on_the_simulator():
    """演示规划表在模拟器上没有任何错误或提示（plan check --sim --strict 可通过）。"""
    assert validate(build_demo_plan(), sim=True) == []


@pytest.mark.parametrize("hosts", [3, 16])
def test_demo_plan_sizes_have_no_errors(hosts):
    assert [f for f in validate(build_demo_plan(hosts), sim=True) if f.severity == "error"] == []


# (rule, severity, cell, mutation)
def _set(path: str, value):
    def mutate(plan):
        target = plan
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            setattr(target, last, value)
    return mutate


def _do(*mutations):
    def mutate(plan):
        for m in mutations:
            m(plan)
    return mutate


CASES = [
    ("required", "error", "主机规划!H4", _set("hosts.1.name", None)),
    ("required", "error", "虚拟网络!J6", _set("networks.storage.nics", [])),
    ("required", "error", "集群管理信息!E25", _set("dns", [])),
    ("ip.syntax", "error", "主机规划!I5", _set("hosts.2.mgmt_ip", "127.10.20.300")),
    ("subnet.syntax", "error", "虚拟网络!H6", _set("networks.storage.subnet", "127.10.21.0/33")),
    ("subnet.host_bits", "warning", "虚拟网络!H4", _set("networks.mgmt.subnet", "127.10.20.5/24")),
    ("subnet.overlap", "error", "虚拟网络!H8",
     _do(_set("networks.business.vlans.0.subnet", "127.10.20.128/25"),
         _set("networks.business.vlans.0.gateway", "127.10.20.129"))),
    ("ip.duplicate", "error", "主机规划!N4", _set("hosts.1.storage_ip", "127.10.21.11")),
    ("ip.gateway", "error", "主机规划!I3", _set("hosts.0.mgmt_ip", "127.10.20.1")),
    ("ip.reserved", "error", "主机规划!N3", _set("hosts.0.storage_ip", "127.10.21.255")),
    ("subnet.mgmt", "error", "主机规划!I5", _set("hosts.2.mgmt_ip", "127.10.30.13")),
    ("subnet.storage", "error", "主机规划!N3", _set("hosts.0.storage_ip", "127.10.22.11")),
    ("bmc.subnet", "error", "主机规划!E4", _set("hosts.1.bmc_ip", "127.10.18.12")),
    ("gateway.subnet", "error", "虚拟网络!I6", _set("networks.storage.gateway", "127.10.22.1")),
    ("vip.subnet", "error", "主机规划!I19", _set("cluster.vip", "127.10.30.10")),
    ("vip.host", "error", "主机规划!I19", _set("cluster.vip", "127.10.20.12")),
    ("component.subnet", "error", "集群管理信息!E3", _set("cloudtower.ip", "127.10.30.2")),
    ("test_range.incomplete", "error", "集群管理信息!E19", _set("test_ip_range.end", None)),
    ("test_range.order", "error", "集群管理信息!E18",
     _do(_set("test_ip_range.start", "127.10.20.239"), _set("test_ip_range.end", "127.10.20.231"))),
    ("test_range.subnet", "error", "集群管理信息!E18",
     _do(_set("test_ip_range.start", "127.12.0.10"), _set("test_ip_range.end", "127.12.0.20"))),
    ("test_range.overlap", "error", "集群管理信息!E18",
     _do(_set("test_ip_range.start", "127.10.20.12"), _set("test_ip_range.end", "127.10.20.12"))),
    ("vlan.range", "error", "虚拟网络!F9", _set("networks.business.vlans.1.vlan", 5000)),
    ("vlan.duplicate", "error", "虚拟网络!F10", _set("networks.business.vlans.2.vlan", 1120)),
    ("vlan.name_duplicate", "error", "虚拟网络!D9", _set("networks.business.vlans.1.name", "VLAN-1120")),
    ("list.bond", "error", "虚拟网络!K6", _set("networks.storage.bond", "lacp")),
    ("list.speed", "warning", "虚拟网络!L4", _set("networks.mgmt.speed", "10Gb")),
    ("list.port_type", "warning", "虚拟网络!M6", _set("networks.storage.port_type", "SFP")),
    ("list.switch_mode", "warning", "虚拟网络!N8", _set("networks.business.switch_mode", "Hybrid")),
    ("list.network_arch", "error", "主机规划!Q20", _set("cluster.network_arch", "四网独立")),
    ("network_arch.unsupported", "error", "主机规划!Q20", _set("cluster.network_arch", "三网融合")),
    ("list.storage_arch", "error", "主机规划!Q19", _set("cluster.storage_arch", "全闪")),
    ("list.features", "error", "主机规划!O19", _set("cluster.features", "Turbo")),
    ("rdma.unsupported", "error", "主机规划!O19", _set("cluster.features", "RDMA+Boost")),
    ("hosts.count", "error", "主机规划!H3", lambda p: p.hosts.pop()),
    ("hostname.rfc1123", "error", "主机规划!H3", _set("hosts.0.name", "demo_node 01")),
    ("hostname.duplicate", "error", "主机规划!H5", _set("hosts.2.name", "DEMO-NODE-01")),
    ("cluster.name", "error", "主机规划!C3", _set("cluster.name_refs", {"主机规划!C3": "OTHER-Cls"})),
    ("dns.ip", "error", "集群管理信息!E26", _set("dns.1", "dns.demo.local")),
    ("ntp.syntax", "error", "集群管理信息!E24", _set("ntp.2", "ntp_bad host")),
    ("ntp.two", "warning", "集群管理信息!E22", lambda p: p.ntp.pop()),
    ("nic.reuse", "error", "虚拟网络!J8", _set("networks.business.nics", ["ens225", "ens192"])),
    ("nic.duplicate", "warning", "虚拟网络!J4", _set("networks.mgmt.nics", ["ens192", "ens192"])),
    ("password.short", "warning", "主机规划!K3", _set("hosts.0.ssh_password", Secret("abc12"))),
]


@pytest.mark.parametrize("rule_id,severity,cell,mutate", CASES,
                         ids=[f"{c[0]}@{c[2]}" for c in CASES])
def test_rule_breaks_alone(rule_id, severity, cell, mutate):
    plan = build_demo_plan()
    mutate(plan)
    found = new_findings(plan)
    assert found, f"no finding for {rule_id}"
    assert {f.rule for f in found} == {rule_id}, [f.to_dict() for f in found]
    assert {(f.severity, f.cell) for f in found} == {(severity, cell)}
    for f in found:
        assert f.message.startswith(f"{cell}: ")
        assert f.hint, "every finding says what to do"
    # the single-rule entry point sees the same thing
    assert {(f.rule, f.cell) for f in check(rule_id, plan, sim=True)} >= {(rule_id, cell)}


def test_every_registered_rule_has_a_breaking_case():
    covered = {c[0] for c in CASES} | {"ip.loopback"}
    assert set(RULES) == covered


def test_message_names_value_and_problem():
    plan = build_demo_plan()
    plan.hosts[2].mgmt_ip = "10.0.20.300"
    (f,) = [f for f in validate(plan) if f.rule == "ip.syntax"]
    assert f.message == "主机规划!I5: 10.0.20.300 不是有效的 IPv4 地址（主机 demo-node-03 管理地址）"


def test_loopback_is_an_error_for_a_real_deployment_only():
    plan = build_demo_plan()
    real = [f for f in validate(plan) if f.rule == "ip.loopback"]
    assert len(real) == 1
    (f,) = real
    assert (f.severity, f.cell) == ("error", "虚拟网络!H3")
    assert "主机规划!I3" in f.cells and "集群管理信息!E25" in f.cells
    assert [f for f in validate(plan, sim=True) if f.rule == "ip.loopback"] == []


def test_non_loopback_plan_has_no_loopback_finding():
    plan = _relocated_demo("10.")
    assert [f for f in validate(plan) if f.rule == "ip.loopback"] == []
    assert [f for f in validate(plan) if f.severity == "error"] == []


def _relocated_demo(prefix: str):
    """The demo plan moved from 127.x to ``prefix``x (for checks of real addresses)."""
    plan = build_demo_plan()

    def move(value):
        return prefix + value[4:] if isinstance(value, str) and value.startswith("127.") else value

    for h in plan.hosts:
        h.mgmt_ip, h.storage_ip, h.bmc_ip = move(h.mgmt_ip), move(h.storage_ip), move(h.bmc_ip)
    n = plan.networks
    for net in (n.bmc, n.mgmt, n.storage):
        net.subnet, net.gateway = move(net.subnet), move(net.gateway)
    for v in n.business.vlans:
        v.subnet, v.gateway = move(v.subnet), move(v.gateway)
    plan.cluster.vip = move(plan.cluster.vip)
    for comp in (plan.cloudtower, plan.obs, plan.backup_service):
        comp.ip = move(comp.ip)
    plan.ntp = [move(x) for x in plan.ntp]
    plan.dns = [move(x) for x in plan.dns]
    plan.test_ip_range.start = move(plan.test_ip_range.start)
    plan.test_ip_range.end = move(plan.test_ip_range.end)
    return plan


def test_ip_syntax_rejects_unusable_addresses():
    plan = build_demo_plan()
    plan.hosts[0].bmc_ip = "0.0.0.0"
    found = [f for f in validate(plan, sim=True) if f.rule == "ip.syntax"]
    assert [(f.severity, f.cell) for f in found] == [("error", "主机规划!E3")]


def test_duplicate_lists_every_use():
    plan = build_demo_plan()
    plan.cloudtower.ip = "127.10.20.13"  # host 3's management IP
    (f,) = [f for f in validate(plan, sim=True) if f.rule == "ip.duplicate"]
    assert f.cell == "集群管理信息!E3"
    assert set(f.cells) == {"集群管理信息!E3", "主机规划!I5"}


def test_vip_equal_to_host_is_not_reported_twice():
    plan = build_demo_plan()
    plan.cluster.vip = plan.hosts[0].mgmt_ip
    rules = [f.rule for f in new_findings(plan)]
    assert rules == ["vip.host"]


def test_component_may_use_the_extra_management_network():
    plan = build_demo_plan()
    from voyager.plan.model import Network

    plan.networks.extra_mgmt = Network(row=5, vds=plan.networks.mgmt.vds, name="Infra-network", vlan=30,
                                       subnet="127.10.30.0/24", gateway="127.10.30.1",
                                       nics=list(plan.networks.mgmt.nics), bond="active-backup")
    plan.cloudtower.ip = "127.10.30.2"
    assert new_findings(plan) == []


def test_optional_components_are_checked():
    plan = build_demo_plan()
    plan.obs = Component(row=4, vm_name="observability", version="1.4.1", ip="127.10.40.3")
    plan.er = ER(vip="127.10.20.2", nodes=["127.10.20.21"])
    found = {(f.rule, f.cell) for f in new_findings(plan)}
    assert ("component.subnet", "集群管理信息!E4") in found
    assert ("ip.duplicate", "集群管理信息!E6") in found  # ER VIP = CloudTower IP


def test_network_arch_message_names_supported_models():
    plan = build_demo_plan()
    plan.cluster.network_arch = "三网融合"
    (f,) = [f for f in validate(plan, sim=True) if f.rule == "network_arch.unsupported"]
    assert "存储独立" in f.message and "三网独立" in f.message


def test_nic_reuse_allows_shared_vds_in_storage_independent_model():
    plan = build_demo_plan()
    plan.cluster.network_arch = "存储独立"
    b = plan.networks.business
    b.vds, b.nics = plan.networks.mgmt.vds, list(plan.networks.mgmt.nics)
    b.vlans[0].vlan = 1120
    assert new_findings(plan) == []
    # the storage network keeps its own NICs in every model
    plan.networks.storage.nics = ["ens161", "ens192"]
    assert [(f.rule, f.cell) for f in new_findings(plan)] == [("nic.reuse", "虚拟网络!J6")]


def test_same_vlan_on_different_switches_is_fine():
    plan = build_demo_plan()
    plan.networks.storage.vlan = 1120  # storage switch, business VLAN 1120 on another switch
    assert new_findings(plan) == []


def test_ntp_ip_like_values_must_be_valid_ips():
    plan = build_demo_plan()
    plan.ntp[0] = "10.0.0.300"
    (f,) = [f for f in validate(plan, sim=True) if f.rule == "ntp.syntax"]
    assert f.cell == "集群管理信息!E22" and "不是有效的 IPv4 地址" in f.message


def test_list_cells_follow_reader_locations():
    plan = build_demo_plan()
    plan.ntp = ["bad host!"]
    plan.locations["ntp[0]"] = "集群管理信息!E24"
    (f,) = [f for f in validate(plan, sim=True) if f.rule == "ntp.syntax"]
    assert f.cell == "集群管理信息!E24"


def test_required_skips_cells_the_reader_reported():
    plan = build_demo_plan()
    plan.networks.business.vlans[1].vlan = None
    plan.findings.append(Finding("error", "read.vlan", "虚拟网络!F9", "虚拟网络!F9: VLAN ID「abc」不是整数"))
    found = [(f.rule, f.cell) for f in validate(plan, sim=True) if f.cell == "虚拟网络!F9"]
    assert found == [("read.vlan", "虚拟网络!F9")]


def test_bmc_credentials_required_only_with_a_bmc_address():
    plan = build_demo_plan()
    plan.hosts[0].bmc_ip = None
    plan.hosts[0].bmc_user = None
    plan.hosts[0].bmc_password = Secret("")
    assert [f for f in new_findings(plan) if f.severity == "error"] == []
    plan.hosts[1].bmc_user = None
    errors = [(f.rule, f.cell) for f in new_findings(plan) if f.severity == "error"]
    assert errors == [("required", "主机规划!F4")]


def test_findings_sorted_by_sheet_then_cell():
    plan = build_demo_plan()
    plan.document.customer = None  # 文档描述!C15
    plan.cloudtower.ip = None  # 集群管理信息!E3
    plan.hosts[0].name = None  # 主机规划!H3
    plan.networks.mgmt.gateway = None  # 虚拟网络!I4
    plan.hosts[0].storage_ip = None  # 主机规划!N3
    cells = [f.cell for f in validate(plan, sim=True) if f.rule == "required"]
    assert cells == ["文档描述!C15", "虚拟网络!I4", "主机规划!H3", "主机规划!N3", "集群管理信息!E3"]
    assert cell_sort_key("主机规划!B10") > cell_sort_key("主机规划!Q9")


def test_validate_includes_reader_findings_and_keeps_plan_intact():
    plan = build_demo_plan()
    plan.findings.append(Finding("warning", "read.unit", "主机规划!Q3", "主机规划!Q3: 机架位置「x」不是整数"))
    before = copy.deepcopy(plan.to_dict())
    findings = validate(plan, sim=True)
    assert any(f.rule == "read.unit" for f in findings)
    assert plan.to_dict() == before


def test_rule_registry_shape():
    for rule_id, r in RULES.items():
        assert r.id == rule_id and r.severity in ("error", "warning", "info") and r.title


def test_findings_never_contain_secret_values():
    plan = build_demo_plan()
    plan.hosts[0].ssh_password = Secret("s3cr")
    text = " ".join(f.message + f.hint for f in validate(plan))
    assert "s3cr" not in text and "HC!r0cks" not in text


def test_subnet_parsing_requires_prefix():
    assert parse_subnet("10.0.20.0") is None
    assert str(parse_subnet("10.0.20.7/24")) == "10.0.20.0/24"
