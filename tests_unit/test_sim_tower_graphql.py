"""CloudTower GraphQL (/api) of the simulator: the walkthrough's operations and their errors."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sim_support import plan  # noqa: F401 (fixture)
from graphql import parse
from graphql.language import FieldNode

from sim_tower_support import (ALERT_FILTER, QUERIES, WALKTHROUGH_QUERIES, alert_rule_update, sim,  # noqa: F401
                               tower)
from voyager.sim.tower.alerts import notice_threshold


def error(body):
    assert body["data"] is None and len(body["errors"]) == 1, body
    return body["errors"][0]


def storage_rule(tower, where=None):
    rules = tower.gql("globalAlertRules", {"where": where or ALERT_FILTER, "orderBy": "id_ASC", "skip": 0,
                                           "first": 50})["data"]["globalAlertRules"]
    return next(r for r in rules if r["name"] == "zbs_cluster_data_space_use_rate")


# -- setup operations ------------------------------------------------------------------------------------
def test_create_root_user_once(tower):
    body = tower.create_root()
    assert body["data"]["createUser"]["__typename"] == "User" and body["data"]["createUser"]["id"].startswith("c")
    again = error(tower.create_root())
    assert "already exists" in again["message"] and again["extensions"]["code"] == "UserAlreadyExists"


@pytest.mark.parametrize("variables, text", [
    ({"root_password": "bm90LXRoZS1rbm93bi12YWx1ZQ==", "now": "2025-09-30T18:42:47.920Z"}, "decrypt"),
    ({"now": "2025-09-30T18:42:47.920Z"}, "root_password"),
    ({"root_password": "x"}, "$now"),
])
def test_create_root_user_validates_variables(tower, variables, text):
    assert text in error(tower.gql("createRootUser", variables, auth=None))["message"]
    assert tower.gql("checkTowerIsSetup", auth=None)["data"]["userCreated"]["created"] is False


def test_organization_setup_and_check(tower):
    before = tower.gql("checkTowerIsSetup", auth=None)["data"]
    assert before == {"organizations": [], "userCreated": {"created": False, "__typename": "UserCreatedData"}}
    tower.create_root()
    org = tower.gql("createOrganization", {"data": {"name": "八九实验室"}}, auth=None)["data"]["createOrganization"]
    assert org["__typename"] == "Organization"
    after = tower.gql("checkTowerIsSetup", auth=None)["data"]
    assert after["organizations"] == [{"id": org["id"], "name": "八九实验室", "__typename": "Organization"}]
    assert after["userCreated"]["created"] is True
    # once set up, creating organizations needs a token
    assert error(tower.gql("createOrganization", {"data": {"name": "其他"}}, auth=None))["extensions"]["code"] == \
        "UNAUTHENTICATED"
    tower.login()
    dup = error(tower.gql("createOrganization", {"data": {"name": "八九实验室"}}))
    assert "already exists" in dup["message"]
    assert tower.gql("createOrganization", {"data": {"name": "其他"}})["data"]["createOrganization"]["id"]
    assert "name" in error(tower.gql("createOrganization", {"data": {}}))["message"]


@pytest.mark.parametrize("payload, text", [
    ({"operationName": "nosuchOp", "variables": {}, "query": "query nosuchOp { x }"}, "Cannot query field 'x'"),
    ({"operationName": "checkTowerIsSetup", "variables": {}, "query": "query other { userCreated { created } }"},
     "Unknown operation"),
    ({"operationName": "checkTowerIsSetup", "variables": {}, "query": "query checkTowerIsSetup {"}, "Syntax Error"),
    ({"operationName": "checkTowerIsSetup", "variables": {}}, "query string"),
    ({"operationName": "checkTowerIsSetup", "variables": [], "query": QUERIES["checkTowerIsSetup"]}, "Variables"),
    (["not", "an", "object"], "object"),
])
def test_malformed_requests_are_graphql_errors(tower, payload, text):
    resp = tower.post("/api", auth=None, json=payload)
    assert resp.status_code == 200
    assert text in error(resp.json())["message"]


def test_invalid_json_body(tower):
    resp = tower.post("/api", auth=None, data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and "JSON" in error(resp.json())["message"]


@pytest.mark.parametrize("op", ["updateCloudTowerNtpUrl", "deployedLicense", "updateClusterSettings",
                                "globalAlertRules", "updateGlobalAlertRule"])
def test_operations_need_a_token(tower, op):
    tower.setup()
    assert error(tower.gql(op, {}, auth=None))["extensions"]["code"] == "UNAUTHENTICATED"
    assert error(tower.gql(op, {}, auth="bogus-token"))["extensions"]["code"] == "UNAUTHENTICATED"


# -- settings ----------------------------------------------------------------------------------------------
def test_ntp_url_is_answered_joined_with_semicolons(tower):
    tower.setup()
    out = tower.gql("updateCloudTowerNtpUrl", {"data": {"ntp_service_url": "127.10.0.2,ntp.demo.local,127.10.0.3"}})
    assert out["data"]["updateCloudTowerNtpUrl"] == {"ntp_service_url": "127.10.0.2;ntp.demo.local;127.10.0.3",
                                                     "__typename": "UpdateNtpCommonResult"}
    for bad in ("127.10.0.2,,x", "not a host", "300.1.1.1"):
        assert "NTP" in error(tower.gql("updateCloudTowerNtpUrl", {"data": {"ntp_service_url": bad}}))["message"]
    assert error(tower.gql("updateCloudTowerNtpUrl", {}))["extensions"]["code"] == "BAD_USER_INPUT"


def test_deployed_license_is_a_stable_90_day_trial(tower):
    tower.setup()
    first = tower.gql("deployedLicense")["data"]["deploys"]
    lic = first[0]["license"]
    assert lic["type"] == "TRIAL" and lic["__typename"] == "License" and len(lic["license_serial"]) == 36
    sign = datetime.strptime(lic["sign_date"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expire = datetime.strptime(lic["expire_date"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expire - sign == timedelta(days=90)
    assert tower.gql("deployedLicense")["data"]["deploys"] == first


def test_update_cluster_settings_as_the_walkthrough(tower, plan):
    org = tower.setup()
    _dc, cluster = tower.connect(plan, org)
    data = {"default_storage_policy": "REPLICA_2_THIN_PROVISION", "default_storage_policy_replica_num": 2,
            "default_storage_policy_ec_k": None, "default_storage_policy_ec_m": None,
            "default_storage_policy_thin_provision": True}
    out = tower.gql("updateClusterSettings", {"data": data, "where": {"id": cluster["settings"]["id"]}})
    settings = out["data"]["updateClusterSettings"]
    assert settings["id"] == cluster["settings"]["id"] and settings["__typename"] == "ClusterSettings"
    assert {k: settings[k] for k in data} == data
    assert settings["default_ha_priority"] == "LEVEL_2_MEDIUM"
    again = tower.gql("updateClusterSettings", {"data": {"default_ha": True}, "where": {"id": settings["id"]}})
    assert again["data"]["updateClusterSettings"]["default_storage_policy"] == "REPLICA_2_THIN_PROVISION"


@pytest.mark.parametrize("data, where, text", [
    ({"default_storage_policy": "REPLICA_2_THIN_PROVISION", "default_storage_policy_replica_num": 3}, None,
     "replica_num = 2"),
    ({"default_storage_policy": "REPLICA_2_THICK_PROVISION", "default_storage_policy_replica_num": 2}, None,
     "thin_provision = false"),
    ({"default_storage_policy": "REPLICA_9"}, None, "enum"),
    ({"default_storage_policy_replica_num": "2"}, None, "invalid value"),
    ({"no_such_setting": 1}, None, "not defined"),
    ({"default_ha": True}, {"id": "cnope"}, "No ClusterSettings"),
    ({"default_ha": True}, {}, "$where"),
])
def test_update_cluster_settings_errors(tower, plan, data, where, text):
    org = tower.setup()
    _dc, cluster = tower.connect(plan, org)
    body = tower.gql("updateClusterSettings", {"data": data, "where": where if where is not None
                                               else {"id": cluster["settings"]["id"]}})
    assert text in error(body)["message"]


# -- alert rules -------------------------------------------------------------------------------------------
def test_notice_threshold_formula():
    assert [notice_threshold(n) for n in (3, 4, 5, 6, 16)] == [61, 70, 75, 78, 88]


def test_global_alert_rules_with_the_walkthrough_filter(tower, plan):
    tower.setup()
    empty = tower.gql("globalAlertRules", {"where": ALERT_FILTER, "orderBy": "id_ASC", "skip": 0, "first": 50})
    assert empty["data"]["globalAlertRules"] == []  # no cluster yet: no rule has per-cluster rules
    assert empty["data"]["globalAlertRulesConnection"]["aggregate"]["count"] == 0
    org = tower.gql("checkTowerIsSetup", auth=None)["data"]["organizations"][0]["id"]
    _dc, cluster = tower.connect(plan, org)
    out = tower.gql("globalAlertRules", {"where": ALERT_FILTER, "orderBy": "id_ASC", "skip": 0, "first": 50})["data"]
    rules = out["globalAlertRules"]
    names = [r["name"] for r in rules]
    assert "zbs_cluster_data_space_use_rate" in names
    assert not any(n.startswith(("elf_", "scvm_", "vsphere_", "witness_", "zone", "metro_", "system.")) for n in names)
    assert out["globalAlertRulesConnection"]["aggregate"]["count"] == len(rules)
    assert [r["id"] for r in rules] == sorted(r["id"] for r in rules)
    rule = storage_rule(tower)
    assert rule["object"] == "CLUSTER" and rule["__typename"] == "GlobalAlertRule" and not rule["disabled"]
    assert len(rule["alert_rules"]) == 1
    alert = rule["alert_rules"][0]
    assert alert["cluster"]["id"] == cluster["id"] and not alert["customized"]
    assert {t["severity"]: t["value"] for t in alert["thresholds"]} == {"CRITICAL": 90, "NOTICE": 80}
    page = tower.gql("globalAlertRules", {"where": ALERT_FILTER, "orderBy": "id_ASC", "skip": 1, "first": 2})["data"]
    assert [r["id"] for r in page["globalAlertRules"]] == [r["id"] for r in rules[1:3]]
    assert page["globalAlertRulesConnection"]["aggregate"]["count"] == len(rules)
    everything = tower.gql("globalAlertRules", {})["data"]["globalAlertRulesConnection"]["aggregate"]["count"]
    assert everything > len(rules)


def test_update_global_alert_rule_as_the_walkthrough(tower, plan):
    org = tower.setup()
    _dc, cluster = tower.connect(plan, org)
    rule = storage_rule(tower)
    notice = notice_threshold(len(plan.hosts))
    out = tower.gql("updateGlobalAlertRule", alert_rule_update(rule, notice))["data"]["updateGlobalAlertRule"]
    assert out["id"] == rule["id"] and out["__typename"] == "GlobalAlertRule"
    alert = out["alert_rules"][0]
    assert alert["customized"] is True and alert["cluster"]["id"] == cluster["id"]
    assert alert["cluster"]["name"] == plan.cluster.name
    assert {t["severity"]: t["value"] for t in alert["thresholds"]} == {"CRITICAL": 90, "NOTICE": 61}
    again = storage_rule(tower)["alert_rules"][0]
    assert {t["severity"]: t["value"] for t in again["thresholds"]}["NOTICE"] == 61 and again["customized"]


@pytest.mark.parametrize("mutate, text", [
    (lambda v: v["where"].update(id="cnope"), "No GlobalAlertRule"),
    (lambda v: v["data"]["alert_rules"]["update"][0]["where"].update(id="cnope"), "No AlertRule"),
    (lambda v: v["data"]["thresholds"][0].update(severity="HUGE"), "SeverityEnum"),
    (lambda v: v["data"]["thresholds"][0].update(value="80"), "Float cannot represent"),
    (lambda v: v["data"].update(thresholds=[]), "non-empty"),
    (lambda v: v["data"].update(bogus=1), "not defined"),
    (lambda v: v["data"]["alert_rules"]["update"][0]["data"].update(customized="yes"), "boolean"),
])
def test_update_global_alert_rule_errors_change_nothing(tower, plan, mutate, text):
    org = tower.setup()
    tower.connect(plan, org)
    rule = storage_rule(tower)
    variables = {"where": {"id": rule["id"]}, "data": {
        "thresholds": [{"value": 80, "severity": "NOTICE"}, {"value": 90, "severity": "CRITICAL"}],
        "alert_rules": {"update": [{"where": {"id": rule["alert_rules"][0]["id"]}, "data": {
            "customized": True, "thresholds": [{"value": 50, "severity": "NOTICE"}]}}]}}}
    mutate(variables)
    assert text in error(tower.gql("updateGlobalAlertRule", variables))["message"]
    assert storage_rule(tower) == rule


# -- the selection set decides the answer ----------------------------------------------------------------
WALK_ALERT_VARIABLES = {"where": ALERT_FILTER, "orderBy": "id_ASC", "skip": 0, "first": 50}
REDUCED_ALERT_QUERY = """query globalAlertRules($where: GlobalAlertRuleWhereInput, $first: Int) {
  globalAlertRules(where: $where, first: $first) { id alert_rules { thresholds { value } } }
}"""


def _selection(query: str) -> dict:
    """The selection tree of the query's operation: {field: subtree or None}."""
    def tree(selection_set):
        return {f.name.value: tree(f.selection_set) if f.selection_set else None
                for f in selection_set.selections if isinstance(f, FieldNode)}
    return tree(parse(query).definitions[0].selection_set)


def _assert_shape(value, selection, where="data"):
    if isinstance(value, list):
        for i, item in enumerate(value):
            _assert_shape(item, selection, f"{where}[{i}]")
        return
    assert set(value) == set(selection), f"{where}: {sorted(value)} != {sorted(selection)}"
    for key, sub in selection.items():
        if sub is not None and value[key] is not None:
            _assert_shape(value[key], sub, f"{where}.{key}")


def test_walkthrough_alert_query_answers_exactly_its_selection(tower, plan):
    """步骤 06 的 globalAlertRules 查询（原样）：返回的每一层字段恰好是查询所选的字段，
    不多出 thresholds[].value、alert_rules[].cluster 等未选字段。"""
    org = tower.setup()
    tower.connect(plan, org)
    query = WALKTHROUGH_QUERIES["globalAlertRules"]
    data = tower.gql("globalAlertRules", WALK_ALERT_VARIABLES, query=query)["data"]
    assert data["globalAlertRules"] and data["globalAlertRulesConnection"]["aggregate"]["count"] > 0
    _assert_shape(data, _selection(query))
    rule = next(r for r in data["globalAlertRules"] if r["name"] == "zbs_cluster_data_space_use_rate")
    assert rule["thresholds"] == [{"severity": "CRITICAL", "__typename": "Thresholds"},
                                  {"severity": "NOTICE", "__typename": "Thresholds"}]
    assert rule["alert_rules"][0]["thresholds"][0] == {"severity": "CRITICAL", "value": 90, "__typename": "Thresholds"}


def test_reduced_selection_gets_exactly_the_selected_fields(tower, plan):
    """同一查询只选 id 与 alert_rules.thresholds.value 时，答复只含这些字段（数值按 JavaScript 写法，80 而非 80.0）。"""
    org = tower.setup()
    tower.connect(plan, org)
    rules = tower.gql("globalAlertRules", {"where": ALERT_FILTER, "first": 3}, query=REDUCED_ALERT_QUERY)
    rules = rules["data"]["globalAlertRules"]
    assert len(rules) == 3
    for rule in rules:
        assert set(rule) == {"id", "alert_rules"}
        assert all(set(t) == {"value"} for a in rule["alert_rules"] for t in a["thresholds"])
        assert all(type(t["value"]) is int for a in rule["alert_rules"] for t in a["thresholds"])


def test_typename_alone(tower):
    """只选 __typename 也是合法查询，答复给出类型名。"""
    out = tower.gql("checkTowerIsSetup", {}, auth=None, query="query checkTowerIsSetup { userCreated { __typename } }")
    assert out == {"data": {"userCreated": {"__typename": "UserCreatedData"}}}


@pytest.mark.parametrize("query, text", [
    ("query globalAlertRules { globalAlertRules { id colour } }", "Cannot query field 'colour' on type 'GlobalAlertRule'"),
    ("query globalAlertRules { globalAlertRules(colour: 1) { id } }", "Unknown argument 'colour'"),
    ("query globalAlertRules { globalAlertRules }", "must have a selection of subfields"),
    ("query globalAlertRules($where: NoSuchInput) { globalAlertRules(where: $where) { id } }", "Unknown type"),
])
def test_unknown_fields_and_arguments_are_validation_errors(tower, query, text):
    """查询所选字段或参数在该类型上不存在时：data 为 null，errors 给出 GRAPHQL_VALIDATION_FAILED（先于鉴权检查）。"""
    body = tower.gql("globalAlertRules", {}, auth=None, query=query)
    err = error(body)
    assert text in err["message"] and err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert err["locations"]


@pytest.mark.parametrize("variables, text", [
    ({"first": "50"}, "Int cannot represent non-integer value"),
    ({"where": {"name_starts_with": 5}}, "String cannot represent a non string value"),
    ({"where": {"object": "BOGUS"}}, "does not exist in 'AlertRuleObject' enum"),
    ({"where": {"no_such_field": "x"}}, "is not defined by type 'GlobalAlertRuleWhereInput'"),
    ({"orderBy": "colour_ASC"}, "does not exist in 'GlobalAlertRuleOrderByInput' enum"),
])
def test_wrong_variable_types_are_bad_user_input(tower, variables, text):
    """变量类型不符（整数给字符串、where 字段类型或枚举值不对、where 字段不存在）：data 为 null，BAD_USER_INPUT。"""
    tower.setup()
    err = error(tower.gql("globalAlertRules", variables, query=WALKTHROUGH_QUERIES["globalAlertRules"]))
    assert text in err["message"] and err["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_single_object_is_a_list_of_one_and_typename_in_variables_is_ignored(tower, plan):
    """GraphQL 列表输入接受单个对象（AND: {...}）；变量里 Apollo 回传的 __typename 被忽略，其他未知键仍是错误。"""
    org = tower.setup()
    tower.connect(plan, org)
    single = {"AND": {"name": "zbs_cluster_data_space_use_rate", "__typename": "GlobalAlertRuleWhereInput"}}
    rules = tower.gql("globalAlertRules", {"where": single}, query=QUERIES["globalAlertRules"])["data"]
    assert [r["name"] for r in rules["globalAlertRules"]] == ["zbs_cluster_data_space_use_rate"]


def test_http_fault_on_one_graphql_operation(tower, sim):
    """HTTP 故障目标 /api#操作名 只命中该 GraphQL 操作（按 operationName）：createRootUser 失败一次，
    同一路径上的其他操作不受影响，之后再创建成功；/api 不带操作名时仍命中所有操作。"""
    from voyager.sim.backend.faults import Faults

    saved = sim.world.faults
    sim.world.faults = Faults("http-500:/api#createRootUser:1,http-reset:/api#deployedLicense:1")
    try:
        assert tower.gql("checkTowerIsSetup", auth=None)["data"]["userCreated"]["created"] is False
        variables = {"root_password": "x", "now": "2025-09-30T18:42:47.920Z"}
        r = tower.post("/api", auth=None, json={"operationName": "createRootUser", "variables": variables,
                                                "query": QUERIES["createRootUser"]})
        assert r.status_code == 500 and "http-500 fault" in r.json()["errors"][0]["message"]
        assert tower.gql("checkTowerIsSetup", auth=None)["data"]["userCreated"]["created"] is False
        assert tower.create_root()["data"]["createUser"]["id"]
        assert [r["fired"] for r in sim.world.faults.summary()] == [1, 0]
        sim.world.faults = Faults("http-500:/api:1")
        assert tower.post("/api", auth=None, json={"operationName": "checkTowerIsSetup", "variables": {},
                                                   "query": QUERIES["checkTowerIsSetup"]}).status_code == 500
    finally:
        sim.world.faults = saved
