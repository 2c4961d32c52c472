"""Walkthrough step 03 helpers (voyager.steps.config) against a scripted fisheye:
the business VDS check covers name, bond_mode and hosts_associated (both the
detail's list and the creating job's map), settings are read back, and a step
acts only when the observation says it must."""
from __future__ import annotations

from typing import Any

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.steps import config

PLAN = build_demo_plan()
UUIDS = {h.mgmt_ip: f"uuid-{i}" for i, h in enumerate(PLAN.hosts)}


def assoc(storage_ip=None, nics=None) -> list[dict[str, Any]]:
    return [{"host_uuid": UUIDS[h.mgmt_ip], "nics_associated": list(nics or PLAN.networks.business.nics),
             "data_ip": storage_ip or h.storage_ip} for h in PLAN.hosts]


def good_vds(**over) -> dict[str, Any]:
    biz = PLAN.networks.business
    return {"uuid": "vds-1", "name": biz.vds, "bond_mode": biz.bond, "hosts_associated": assoc(), **over}


class FakeFisheye:
    """Answers GETs from ``reads`` (a callable may change with calls), records writes."""

    def __init__(self, reads: dict[str, Any], jobs: dict[str, dict] | None = None, post_answer=None):
        self.reads, self.jobs, self.post_answer = reads, jobs or {}, post_answer
        self.writes: list[tuple[str, str, Any]] = []

    def get(self, path):
        value = self.reads.get(path)
        return value() if callable(value) else value

    def post(self, path, json=None):
        self.writes.append(("POST", path, json))
        return self.post_answer

    def put(self, path, json=None):
        self.writes.append(("PUT", path, json))
        return {"job_id": "job-1"}

    def job(self, job_id):
        return self.jobs.get(job_id, {"job_id": job_id, "state": "done"})


def test_vds_as_planned_has_no_problem():
    assert config.check_vds(good_vds(), PLAN, UUIDS) == []


@pytest.mark.parametrize("vds, expected", [
    (good_vds(name="vDS-Other"), "虚拟网络!C8"),
    (good_vds(bond_mode="balance-tcp"), "虚拟网络!K8"),
    (good_vds(hosts_associated=assoc(nics=["ens999"])), "虚拟网络!J8"),
    (good_vds(hosts_associated=assoc(storage_ip="127.10.99.1")), "主机规划!N3"),
    (good_vds(hosts_associated=assoc()[1:]), "未关联到虚拟交换机"),
], ids=["name", "bond_mode", "nics", "data_ip", "host-missing"])
def test_vds_check_names_the_plan_cell(vds, expected):
    problems = config.check_vds(vds, PLAN, UUIDS)
    assert problems and any(expected in p for p in problems), problems


def test_vds_check_reads_the_job_resources_map_form():
    as_map = {a["host_uuid"]: a for a in assoc(nics=["ens999"])}
    problems = config.check_vds(good_vds(hosts_associated=as_map), PLAN, UUIDS)
    assert len(problems) == len(PLAN.hosts) and all("虚拟网络!J8" in p for p in problems)


def test_created_vds_is_checked_against_the_job_when_the_detail_lists_no_hosts():
    name = PLAN.networks.business.vds
    wrong = {a["host_uuid"]: a for a in assoc(nics=["ens999"])}
    job = {"job_id": "job-vds", "state": "done",
           "resources": {"r": {"type": "NETWORK_VDS", "uuid": "vds-1", "name": name, "hosts_associated": wrong}}}
    fe = FakeFisheye({"/api/v2/network/vds": [], "/api/v2/network/vds/vds-1": good_vds(hosts_associated=[])},
                     jobs={"job-vds": job}, post_answer={"job_id": "job-vds"})
    with pytest.raises(config.StepError, match="虚拟网络!J8"):
        config.ensure_business_vds(fe, PLAN, UUIDS)
    assert [w[:2] for w in fe.writes] == [("POST", "/api/v2/network/vds")]
    assert fe.writes[0][2] == config.vds_body(PLAN, UUIDS)


def test_existing_vds_is_not_created_again():
    fe = FakeFisheye({"/api/v2/network/vds": [good_vds()]})
    vds, how = config.ensure_business_vds(fe, PLAN, UUIDS)
    assert vds["uuid"] == "vds-1" and "已存在" in how and fe.writes == []


def test_dns_is_set_only_when_different_and_read_back():
    state = {"dns_servers": ["127.0.0.53"]}
    fe = FakeFisheye({"/api/v2/settings/dns": lambda: dict(state)})
    fe.put = lambda path, json=None: (fe.writes.append(("PUT", path, json)), state.update(json), {"job_id": "j"})[-1]
    assert "已设置 DNS" in config.ensure_dns(fe, PLAN)
    assert fe.writes == [("PUT", "/api/v2/settings/dns", {"dns_servers": list(PLAN.dns)})]
    assert "DNS 已是" in config.ensure_dns(fe, PLAN)
    assert len(fe.writes) == 1


def test_dns_that_does_not_read_back_fails():
    fe = FakeFisheye({"/api/v2/settings/dns": {"dns_servers": ["127.0.0.53"]}})
    with pytest.raises(config.StepError, match="设置 dns 后读到.*集群管理信息!E25:E26"):
        config.ensure_dns(fe, PLAN)


def test_cpu_model_is_read_back():
    fe = FakeFisheye({"/api/v2/elf/cluster_recommended_cpu_models": {"cpu_models": ["Skylake"]},
                      "/api/v2/elf/cluster_cpu_compatibility": {"cpu_model": "Haswell"}})
    with pytest.raises(config.StepError, match="Skylake"):
        config.ensure_cpu_compatibility(fe)
    assert fe.writes == [("PUT", "/api/v2/elf/cluster_cpu_compatibility", {"cpu_model": "Skylake"})]


def test_vlan_is_created_once_and_checked_against_the_plan():
    vlan = PLAN.networks.business.vlans[0]
    listing: list[dict] = []
    fe = FakeFisheye({"/api/v2/network/vds/vds-1/vlans": lambda: {"entities": list(listing)}})
    created = {"uuid": "v-1", "name": vlan.name, "vlan_id": vlan.vlan, "vds_uuid": "vds-1", "type": 3}
    fe.post_answer = created
    entity, how = config.ensure_vlan(fe, "vds-1", vlan)
    assert entity == created and "已创建" in how and len(fe.writes) == 1
    listing.append(created)
    entity, how = config.ensure_vlan(fe, "vds-1", vlan)
    assert "已存在" in how and len(fe.writes) == 1
    listing[0] = {**created, "vlan_id": vlan.vlan + 1}
    with pytest.raises(config.StepError, match=f"虚拟网络!F{vlan.row}"):
        config.ensure_vlan(fe, "vds-1", vlan)
