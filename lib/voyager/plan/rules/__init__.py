"""The plan validator: a registry of small rules, each with a stable id.

``validate(plan, sim=False)`` runs every rule and returns their findings plus the
reader's (``read.*``), sorted by sheet order then cell. ``check(rule_id, plan)`` runs one
rule (for tests and for tools that want a single check).
"""
from __future__ import annotations

from voyager.plan.model import Finding, Plan
from voyager.plan.rules.common import RULES, Context, Rule, finding_sort_key, run

# importing the modules registers their rules
from voyager.plan.rules import addresses, hosts, networks, required, services  # noqa: E402,F401


def validate(plan: Plan, *, sim: bool = False) -> list[Finding]:
    """All findings of ``plan``: the reader's plus every rule's, sorted by sheet order
    (文档描述, 虚拟网络, 主机规划, 集群管理信息), then row and column, errors first.
    ``sim=True`` allows loopback addresses (a plan rehearsed on the simulator)."""
    findings = list(plan.findings)
    findings.extend(run(RULES.values(), Context(plan, sim=sim)))
    return sorted(findings, key=finding_sort_key)


def check(rule_id: str, plan: Plan, *, sim: bool = False) -> list[Finding]:
    """The findings of one rule."""
    return list(run([RULES[rule_id]], Context(plan, sim=sim)))


__all__ = ["RULES", "Rule", "check", "validate"]
