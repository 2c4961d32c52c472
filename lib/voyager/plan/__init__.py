"""The planning workbook (规划设计表): reader, validator, writer and template.

See docs/architecture.md for the contract; ``voyager.plan.cells`` for where each field
lives and ``voyager.plan.model`` for the typed model.
"""
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Finding, Plan, Secret
from voyager.plan.reader import PlanError, read_plan
from voyager.plan.rules import validate

__all__ = [
    "Finding",
    "Plan",
    "PlanError",
    "Secret",
    "build_demo_plan",
    "read_plan",
    "validate",
]
