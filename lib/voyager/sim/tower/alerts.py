"""CloudTower global alert rules and their per-cluster alert rules.

CloudTower ships a catalogue of *global* alert rules (``globalAlertRules``);
when a cluster connects, each rule applicable to an SMTX OS cluster gets a
per-cluster *alert rule* (``alert_rules``) with the default thresholds.
``updateGlobalAlertRule`` changes the global thresholds and, through
``alert_rules.update``, the thresholds of chosen clusters (``customized``).

The catalogue below is an excerpt of the real one (the walkthrough shows 94
rules): enough rules of each prefix/object the walkthrough's filter excludes
(``elf_``, ``scvm_``, ``vsphere_``, ``witness_``, ``zone``, ``metro_``,
``system.``, SKS objects) for that filter to be exercised, and the storage
rule ``zbs_cluster_data_space_use_rate`` the walkthrough configures.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

from voyager.sim.tower.common import TowerError, cuid

SEVERITIES = ("CRITICAL", "NOTICE", "INFO")

# (name, object, message, [(severity, default value)])
CATALOGUE: list[tuple[str, str, str, list[tuple[str, float]]]] = [
    ("zbs_cluster_data_space_use_rate", "CLUSTER", "集群存储空间使用率超过 { .threshold }。 ",
     [("CRITICAL", 90), ("NOTICE", 80)]),
    ("cluster_cpu_usage_percent", "CLUSTER", "集群 CPU 使用率超过 { .threshold }%。",
     [("CRITICAL", 95), ("NOTICE", 80)]),
    ("cluster_memory_usage_percent", "CLUSTER", "集群内存使用率超过 { .threshold }%。",
     [("CRITICAL", 95), ("NOTICE", 80)]),
    ("zbs_cluster_chunks_unsafe_failure_space", "CLUSTER", "集群存储容量不足以在节点失效后恢复数据。",
     [("CRITICAL", 1)]),
    ("zbs_cluster_pending_migrate_bytes", "CLUSTER", "集群待迁移数据量超过 { .threshold }。",
     [("NOTICE", 1099511627776)]),
    ("host_cpu_overall_usage_percent", "PHYSICAL_HOST", "主机 CPU 使用率超过 { .threshold }%。",
     [("CRITICAL", 95), ("NOTICE", 80)]),
    ("host_memory_usage_percent", "PHYSICAL_HOST", "主机内存使用率超过 { .threshold }%。",
     [("CRITICAL", 95), ("NOTICE", 80)]),
    ("host_cpu_temperature_celsius", "PHYSICAL_HOST", "主机 CPU 温度超过 { .threshold } ℃。",
     [("CRITICAL", 90), ("NOTICE", 80)]),
    ("host_time_diff_with_ntp_leader_seconds", "PHYSICAL_HOST", "主机与 NTP leader 时间差超过 { .threshold } 秒。",
     [("NOTICE", 10)]),
    ("host_bond_slave_is_normal", "PHYSICAL_HOST", "主机绑定网口的从网口状态异常。", [("NOTICE", 1)]),
    ("host_disk_remaining_life_percent", "DISK", "物理盘剩余寿命低于 { .threshold }%。",
     [("CRITICAL", 10), ("NOTICE", 20)]),
    ("zbs_chunk_data_space_use_rate", "PHYSICAL_HOST", "主机存储空间使用率超过 { .threshold }。",
     [("CRITICAL", 95), ("NOTICE", 90)]),
    ("zbs_chunk_avg_readwrite_latency_ns", "PHYSICAL_HOST", "主机存储平均读写延迟超过 { .threshold }。",
     [("NOTICE", 50_000_000)]),
    ("elf_host_ha_status", "PHYSICAL_HOST", "主机 HA 状态异常。", [("CRITICAL", 1)]),
    ("elf_vm_cpu_overall_usage_percent", "VM", "虚拟机 CPU 使用率超过 { .threshold }%。",
     [("NOTICE", 95)]),
    ("elf_vm_memory_usage_percent", "VM", "虚拟机内存使用率超过 { .threshold }%。", [("NOTICE", 95)]),
    ("elf_cluster_cpu_model_not_recommended", "CLUSTER", "集群 CPU 型号不是推荐型号。", [("INFO", 1)]),
    ("scvm_cpu_overall_usage_percent", "SCVM", "SCVM CPU 使用率超过 { .threshold }%。",
     [("NOTICE", 90)]),
    ("vsphere_esxi_host_connection_state", "PHYSICAL_HOST", "ESXi 主机连接状态异常。", [("CRITICAL", 1)]),
    ("witness_connect_status", "WITNESS", "仲裁节点连接异常。", [("CRITICAL", 1)]),
    ("zone_connect_status", "ZBS_ZONE", "可用域间连接异常。", [("CRITICAL", 1)]),
    ("metro_cluster_link_latency_ms", "CLUSTER", "双活集群链路延迟超过 { .threshold } ms。",
     [("NOTICE", 5)]),
    ("system.cloudtower_disk_usage_percent", "SYSTEM_SERVICE", "CloudTower 磁盘使用率超过 { .threshold }%。",
     [("NOTICE", 80)]),
    ("sks_cluster_node_not_ready", "SKS_CLUSTER_NODE", "SKS 集群节点未就绪。", [("CRITICAL", 1)]),
    ("sks_pvc_pending", "SKS_PVC", "SKS 持久卷声明等待中。", [("NOTICE", 1)]),
]

# Rules that never get a per-cluster rule on an SMTX OS (ELF) cluster.
_NOT_FOR_SMTX = ("scvm_", "vsphere_", "witness_", "zone", "metro_", "system.")
_SKS_OBJECTS = {"SKS_SERVICE", "SKS_REGISTRY", "SKS_CLUSTER", "SKS_CLUSTER_NODE", "SKS_PV", "SKS_PVC"}


def notice_threshold(hosts: int) -> int:
    """The walkthrough's storage NOTICE threshold: floor(((n-1)/n - 5%) * 100)."""
    return int((((hosts - 1) / hosts) - 0.05) * 100 + 1e-9)


class AlertRules:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.rules: list[dict[str, Any]] = []

    def _ensure(self) -> None:
        if self.rules:
            return
        for name, obj, message, thresholds in CATALOGUE:
            self.rules.append({
                "id": cuid(), "name": name, "object": obj, "message": message, "disabled": False,
                "thresholds": [{"severity": s, "value": v, "quantile": 0} for s, v in thresholds],
                "alert_rules": [],
            })

    @staticmethod
    def applies_to_cluster(rule: dict[str, Any]) -> bool:
        return not rule["name"].startswith(_NOT_FOR_SMTX) and rule["object"] not in _SKS_OBJECTS

    def cluster_connected(self, cluster: dict[str, Any]) -> None:
        self._ensure()
        for rule in self.rules:
            if self.applies_to_cluster(rule) and not any(
                    a["cluster_id"] == cluster["id"] for a in rule["alert_rules"]):
                rule["alert_rules"].append({
                    "id": cuid(), "cluster_id": cluster["id"], "customized": False, "disabled": False,
                    "thresholds": copy.deepcopy(rule["thresholds"]),
                })

    def all(self) -> list[dict[str, Any]]:
        self._ensure()
        return self.rules

    def get(self, rule_id: Any) -> Optional[dict[str, Any]]:
        return next((r for r in self.all() if r["id"] == rule_id), None)

    def update(self, where: Any, data: Any) -> dict[str, Any]:
        """``updateGlobalAlertRule(where: {id}, data: {thresholds, disabled,
        alert_rules: {update: [{where: {id}, data: {...}}]}})``."""
        if not isinstance(where, dict) or not isinstance(data, dict):
            raise TowerError('Variables "$where" and "$data" are required objects.', code="BAD_USER_INPUT")
        rule = self.get(where.get("id"))
        if rule is None:
            raise TowerError(f"No GlobalAlertRule found for where: {{ id: {where.get('id')!r} }}",
                             code="NOT_FOUND")
        unknown = set(data) - {"thresholds", "disabled", "alert_rules"}
        if unknown:
            raise TowerError(f'Field "{sorted(unknown)[0]}" is not defined by type "GlobalAlertRuleUpdateInput".',
                             code="BAD_USER_INPUT")
        new_rule = copy.deepcopy(rule)
        if "thresholds" in data:
            new_rule["thresholds"] = _thresholds(data["thresholds"], "data.thresholds")
        if "disabled" in data:
            new_rule["disabled"] = _bool(data["disabled"], "data.disabled")
        updates: Any = []
        if "alert_rules" in data:
            if not isinstance(data["alert_rules"], dict):
                _fail("data.alert_rules must be an object like {update: [...]}")
            updates = data["alert_rules"].get("update", [])
        if not isinstance(updates, list):
            _fail("data.alert_rules.update must be a list")
        for i, upd in enumerate(updates):
            if not (isinstance(upd, dict) and isinstance(upd.get("where"), dict)
                    and isinstance(upd.get("data"), dict)):
                _fail(f"data.alert_rules.update[{i}] must be {{where: {{id}}, data: {{...}}}}")
            target = next((a for a in new_rule["alert_rules"] if a["id"] == upd["where"].get("id")), None)
            if target is None:
                raise TowerError(f"No AlertRule found for where: {{ id: {upd['where'].get('id')!r} }} "
                                 f"in GlobalAlertRule {rule['id']}", code="NOT_FOUND")
            for key, value in upd["data"].items():
                if key == "thresholds":
                    target["thresholds"] = _thresholds(value, f"alert_rules.update[{i}].data.thresholds")
                elif key in ("customized", "disabled"):
                    target[key] = _bool(value, f"alert_rules.update[{i}].data.{key}")
                else:
                    _fail(f'Field "{key}" is not defined by type "AlertRuleUpdateInput".')
        rule.clear()
        rule.update(new_rule)
        self.tower.changed()
        return rule

    def to_state(self) -> dict[str, Any]:
        return {"rules": self.rules}

    def load_state(self, state: dict[str, Any]) -> None:
        self.rules = list(state.get("rules") or [])


def _fail(message: str):
    raise TowerError(message, code="BAD_USER_INPUT")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(f"{where} must be a boolean")
    return value


def _thresholds(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        _fail(f"{where} must be a non-empty list")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            _fail(f"{where} items must be objects")
        severity = item.get("severity")
        number = item.get("value")
        if severity not in SEVERITIES:
            _fail(f'{where}: Value "{severity}" does not exist in "SeverityEnum" enum.')
        if severity in seen:
            _fail(f"{where}: severity {severity} given twice")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            _fail(f"{where}: value must be a number")
        quantile = item.get("quantile", 0)
        if isinstance(quantile, bool) or not isinstance(quantile, (int, float)):
            _fail(f"{where}: quantile must be a number")
        unknown = set(item) - {"severity", "value", "quantile", "__typename"}
        if unknown:
            _fail(f'{where}: field "{sorted(unknown)[0]}" is not defined by type "ThresholdsInput".')
        seen.add(severity)
        out.append({"severity": severity, "value": number, "quantile": item.get("quantile", 0)})
    return out
