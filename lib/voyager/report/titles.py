"""A check's human title: the acceptance criterion, i.e. the first paragraph of
its docstring on one line (the docstrings of suite tests are the criteria)."""
from __future__ import annotations

import inspect

import pytest


def criterion(doc: str) -> str:
    """The acceptance criterion: a docstring's first paragraph, on one line."""
    first = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return "".join(line.strip() for line in first.splitlines())


def item_doc(item: pytest.Item) -> str:
    return inspect.cleandoc(getattr(getattr(item, "function", None), "__doc__", None) or "")


def describe_title(item: pytest.Item) -> str:
    return criterion(item_doc(item))
