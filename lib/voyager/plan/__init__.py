"""The planning workbook (规划设计表): reader, validator, writer and template.

See docs/architecture.md for the contract; ``voyager.plan.cells`` for where each field
lives and ``voyager.plan.model`` for the typed model. Everything is imported on first
use (PEP 562): ``from voyager.plan.model import Secret`` or registering the ``voyager
plan`` commands does not load openpyxl, and ``voyager plan check`` does not load the
writer or the template generator.
"""
from importlib import import_module

_LAZY = {
    "Finding": "voyager.plan.model",
    "Plan": "voyager.plan.model",
    "Secret": "voyager.plan.model",
    "build_demo_plan": "voyager.plan.demo",
    "PlanError": "voyager.plan.reader",
    "read_plan": "voyager.plan.reader",
    "validate": "voyager.plan.rules",
    "write_back": "voyager.plan.writer",
    "PlanWriteError": "voyager.plan.writer",
    "write_plan": "voyager.plan.template",
    "new_template": "voyager.plan.template",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'voyager.plan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
