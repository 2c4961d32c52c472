"""The planning workbook (规划设计表): reader, validator, writer and template.

See docs/architecture.md for the contract; ``voyager.plan.cells`` for where each field
lives and ``voyager.plan.model`` for the typed model. The writer and the template
generator are imported on first use (``voyager plan check`` does not need them).
"""
from importlib import import_module

from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Finding, Plan, Secret
from voyager.plan.reader import PlanError, read_plan
from voyager.plan.rules import validate

_LAZY = {
    "write_back": "voyager.plan.writer",
    "PlanWriteError": "voyager.plan.writer",
    "write_plan": "voyager.plan.template",
    "new_template": "voyager.plan.template",
}

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


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'voyager.plan' has no attribute {name!r}")
