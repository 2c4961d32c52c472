"""The planning workbook (规划设计表): reader, validator, writer and template.

See docs/architecture.md for the contract; ``voyager.plan.cells`` for where each field
lives and ``voyager.plan.model`` for the typed model.
"""
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Finding, Plan, Secret
from voyager.plan.reader import PlanError, read_plan
from voyager.plan.rules import validate
from voyager.plan.template import new_template, write_plan
from voyager.plan.writer import PlanWriteError, write_back

__all__ = [
    "Finding",
    "Plan",
    "PlanError",
    "PlanWriteError",
    "Secret",
    "build_demo_plan",
    "new_template",
    "read_plan",
    "validate",
    "write_back",
    "write_plan",
]
