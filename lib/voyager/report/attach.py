"""Attach evidence (e.g. the deploy payload) to the pytest-html report and to
Allure, redacted before it is stored anywhere.

``attach_json(request, name, obj)`` redacts ``obj`` with the process-wide
redactor (``voyager.redact.REDACTOR``: plan secrets, their encoded forms,
tokens, sensitive keys), hands it to Allure at once and keeps it on the test
item; the plugin's makereport hook adds it to the report's ``extras`` for
pytest-html (``collect_extras``).
"""
from __future__ import annotations

import json
from typing import Any

import pytest

EXTRAS_KEY = pytest.StashKey[list]()


def _node(request_or_item: Any) -> pytest.Item:
    return getattr(request_or_item, "node", request_or_item)


def redacted(obj: Any) -> Any:
    from voyager.redact import REDACTOR  # required: never attach unredacted data

    return REDACTOR.redact_obj(obj)


def attach_json(request_or_item: Any, name: str, obj: Any) -> Any:
    """Attach ``obj`` (redacted) under ``name``; returns the redacted object."""
    clean = redacted(obj)
    item = _node(request_or_item)
    item.stash.setdefault(EXTRAS_KEY, []).append(("json", name, clean))
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return clean
    allure.attach(json.dumps(clean, ensure_ascii=False, indent=2), name=name,
                  attachment_type=allure.attachment_type.JSON)
    return clean


def attach_text(request_or_item: Any, name: str, text: str) -> str:
    from voyager.redact import REDACTOR

    clean = REDACTOR.redact(text)
    item = _node(request_or_item)
    item.stash.setdefault(EXTRAS_KEY, []).append(("text", name, clean))
    try:
        import allure
    except ImportError:  # pragma: no cover
        return clean
    allure.attach(clean, name=name, attachment_type=allure.attachment_type.TEXT)
    return clean


def attach_png(request_or_item: Any, name: str, path: Any) -> None:
    """Attach a PNG file (a chart: no secret in it) to the report and to Allure."""
    import base64
    from pathlib import Path

    data = Path(path).read_bytes()
    item = _node(request_or_item)
    item.stash.setdefault(EXTRAS_KEY, []).append(("png", name, base64.b64encode(data).decode("ascii")))
    try:
        import allure
    except ImportError:  # pragma: no cover
        return
    allure.attach(data, name=name, attachment_type=allure.attachment_type.PNG)


def attach_evidence(item: pytest.Item) -> None:
    """Attach what the test sent and received (``voyager.evidence.RECORDER``,
    redacted at capture) to its report."""
    from voyager.evidence import RECORDER

    text = RECORDER.to_text(item.nodeid)
    if text:
        attach_text(item, "接口与命令记录 evidence", text)


def collect_extras(item: pytest.Item, report: pytest.TestReport) -> None:
    """Move the item's attachments onto the call report for pytest-html."""
    if report.when != "call":
        return
    pending = item.stash.get(EXTRAS_KEY, [])
    if not pending:
        return
    try:
        from pytest_html import extras
    except ImportError:  # pragma: no cover - pytest-html is a dependency
        return
    report_extras = list(getattr(report, "extras", []))
    for kind, name, content in pending:
        if kind == "png":
            report_extras.append(extras.png(content, name=name))
            continue
        report_extras.append(extras.json(content, name=name) if kind == "json"
                             else extras.text(content, name=name))
    report.extras = report_extras
    item.stash[EXTRAS_KEY] = []
