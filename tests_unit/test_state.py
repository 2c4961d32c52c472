"""Run state: persisted atomically, keyed by the plan fingerprint, never a secret."""
from __future__ import annotations

import json

import pytest

from voyager.encoding import encode_host_password, fits_keystream
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret
from voyager import redact
from voyager.redact import MIN_VALUE_LEN
from voyager.state import STATE_FILE, PlanChangedError, SecretInStateError, open_state


def secret_forms(plan):
    """Every form of every plan secret; a secret shorter than MIN_VALUE_LEN
    (a short password may also be an ordinary word) only by its encoded forms,
    as the redactor does."""
    forms = set()
    for s in plan.secrets():
        value = s.reveal()
        if len(value) >= MIN_VALUE_LEN:
            forms |= redact.secret_forms(value)
        elif fits_keystream(value):
            forms.add(encode_host_password(value))
    return forms


def test_facts_survive_a_reload(tmp_path):
    plan = build_demo_plan()
    state = open_state(tmp_path, plan)
    state.merge("hosts", "127.10.20.11", {"uuid": "u-1", "link_local": "fe80::1%ens192"})
    state.set("cluster", "serial", "c8b39907-464c-44b4-94bb-7c2ac243f390")
    state.update("vlans", {"VLAN-1120": "v-1", "VLAN-1121": "v-2"})
    again = open_state(tmp_path, build_demo_plan())
    assert again.get("hosts", "127.10.20.11") == {"uuid": "u-1", "link_local": "fe80::1%ens192"}
    assert again.get("cluster", "serial") == "c8b39907-464c-44b4-94bb-7c2ac243f390"
    assert again.section("vlans") == {"VLAN-1120": "v-1", "VLAN-1121": "v-2"}
    assert again.get("vds", "business") is None
    doc = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
    assert doc["fingerprint"] == plan.fingerprint()
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind


def test_state_file_never_holds_a_secret(tmp_path):
    plan = build_demo_plan()
    plan.hosts[0].bmc_password = Secret("Bmc$ecret'9")
    plan.cluster.admin_password = Secret("Cl\\uster pw 集群")
    state = open_state(tmp_path, plan)
    state.merge("hosts", "127.10.20.11", {"uuid": "u-1", "name": "demo-node-01"})
    with pytest.raises(SecretInStateError):
        state.set("cluster", "root_password", "anything")
    with pytest.raises(SecretInStateError):
        state.merge("hosts", "127.10.20.12", {"ssh": {"token": "abc"}})
    with pytest.raises(SecretInStateError):
        state.set("cluster", "note", "the password is Bmc$ecret'9")
    text = (tmp_path / STATE_FILE).read_text(encoding="utf-8")
    for form in secret_forms(plan):
        assert form not in text
    assert "sha256:" not in text  # not even a digest of a password
    assert "hosts[0].bmc_password" in text  # only the names of the secret fields


def test_changed_plan_is_refused_with_the_fields_named(tmp_path):
    state = open_state(tmp_path, build_demo_plan())
    state.merge("hosts", "127.10.20.11", {"uuid": "u-1"})
    changed = build_demo_plan()
    changed.hosts[1].mgmt_ip = "127.10.20.99"
    changed.networks.business.vlans[0].vlan = 1200
    with pytest.raises(PlanChangedError) as err:
        open_state(tmp_path, changed)
    message = str(err.value)
    assert "hosts[1].mgmt_ip: '127.10.20.12' → '127.10.20.99'" in message
    assert "networks.business.vlans[0].vlan: 1120 → 1200" in message
    assert "--plan-changed=accept" in message
    # accepted: facts kept, re-keyed to the new fingerprint
    accepted = open_state(tmp_path, changed, accept_changes=True)
    assert accepted.get("hosts", "127.10.20.11") == {"uuid": "u-1"}
    assert accepted.fingerprint == changed.fingerprint()
    assert open_state(tmp_path, changed).fingerprint == changed.fingerprint()


def test_changed_password_is_reported_without_the_value(tmp_path):
    open_state(tmp_path, build_demo_plan())
    changed = build_demo_plan()
    changed.hosts[2].ssh_password = Secret("N3w-Pa55word")
    with pytest.raises(PlanChangedError) as err:
        open_state(tmp_path, changed)
    assert err.value.secret_changed
    assert "密码字段发生了变化" in str(err.value)
    assert "N3w-Pa55word" not in str(err.value)


def test_written_back_serial_is_not_a_change(tmp_path):
    open_state(tmp_path, build_demo_plan())
    plan = build_demo_plan()
    plan.cluster.serial = "c8b39907-464c-44b4-94bb-7c2ac243f390"
    open_state(tmp_path, plan)  # no PlanChangedError


def test_unreadable_state_file_is_reported(tmp_path):
    (tmp_path / STATE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="运行状态文件无法读取"):
        open_state(tmp_path, build_demo_plan())


def test_a_change_that_changes_nothing_writes_nothing(tmp_path):
    """写入与现有值相同的事实（set/update/merge 相同的值、delete 不存在的键）不重写运行状态文件；
    值真正改变时才写（1 与 True 是不同的值）。"""
    from voyager.plan.demo import build_demo_plan
    from voyager.state import open_state

    state = open_state(tmp_path, build_demo_plan())
    state.set("cluster", "deploy_host", "127.10.20.11")
    state.merge("hosts", "127.10.20.11", {"deployed": True})
    path = tmp_path / "run-state.json"
    path.write_text(path.read_text(encoding="utf-8") + " ", encoding="utf-8")  # a marker a rewrite would drop
    state.set("cluster", "deploy_host", "127.10.20.11")
    state.update("cluster", {"deploy_host": "127.10.20.11"})
    state.merge("hosts", "127.10.20.11", {"deployed": True})
    state.delete("cluster", "no-such-key")
    state.delete("no-such-section")
    assert path.read_text(encoding="utf-8").endswith(" ")
    state.set("cluster", "flag", 1)
    state.set("cluster", "flag", True)
    assert not path.read_text(encoding="utf-8").endswith(" ")
    assert open_state(tmp_path, build_demo_plan()).get("cluster", "flag") is True
