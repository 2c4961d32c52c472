"""``fixtures.ids.recorded_or_found``: the id fixtures' one rule — the run state's
id first, else looked up and recorded for the next run; nothing found fails the
check with the lookup's Chinese message."""
from __future__ import annotations

import pytest

from fixtures.ids import recorded_or_found
from voyager.plan.demo import build_demo_plan
from voyager.state import open_state
from voyager.steps.config import StepError


@pytest.fixture
def run_state(tmp_path):
    return open_state(tmp_path / "state", build_demo_plan())


def test_a_recorded_id_is_used_without_a_lookup(run_state):
    run_state.set("cloudtower", "vm_uuid", "vm-1")
    assert recorded_or_found(run_state, "cloudtower", "vm_uuid", lambda: pytest.fail("looked up")) == "vm-1"


def test_a_found_id_is_recorded_with_its_companions(run_state):
    found = recorded_or_found(run_state, "network", "business_vds",
                              lambda: {"business_vds": "vds-1", "business_vds_name": "VDS-BIZ"})
    assert found == "vds-1"
    assert run_state.section("network") == {"business_vds": "vds-1", "business_vds_name": "VDS-BIZ"}
    assert recorded_or_found(run_state, "network", "business_vds", lambda: pytest.fail("looked up")) == "vds-1"


def test_nothing_found_fails_the_check_with_the_lookups_message(run_state):
    def find():
        raise StepError("CloudTower 中没有数据中心 DEMO-DC，请先完成 05 的数据中心检查")

    with pytest.raises(pytest.fail.Exception, match="请先完成 05 的数据中心检查"):
        recorded_or_found(run_state, "cloudtower", "datacenter_id", find)
    assert run_state.get("cloudtower", "datacenter_id") is None
