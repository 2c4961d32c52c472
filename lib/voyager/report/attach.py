"""Attach a document (e.g. the deploy payload) to the running check: shown
inline (collapsible) in the delivery report, written as a file to the run
folder's ``artifacts/`` (linked relatively, never a ``data:`` URL) and attached
to Allure — redacted before it is stored anywhere.

``attach_json(request, name, obj)`` / ``attach_text(request, name, text)``
redact with the process-wide redactor (``voyager.redact.REDACTOR``: plan
secrets, their encoded forms, tokens, sensitive keys) and keep the attachment
on the test item; ``voyager.report.html`` renders ``pending(item)`` with the
check.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pytest

from voyager.redact import REDACTOR  # required: never attach unredacted data

ATTACH_KEY = pytest.StashKey[list]()


@dataclass(frozen=True)
class Attachment:
    name: str
    text: str  # redacted
    link: Optional[str] = None  # artifact placeholder (voyager.report.layout)
    image: bool = False  # a PNG shown as an image (``text`` empty)


def _node(request_or_item: Any) -> pytest.Item:
    return getattr(request_or_item, "node", request_or_item)


def redacted(obj: Any) -> Any:
    return REDACTOR.redact_obj(obj)


def _keep(item: pytest.Item, name: str, text: str, filename: Optional[str]) -> None:
    from voyager.report.layout import get_layout

    layout = get_layout(item.config)
    link = layout.artifact(filename, text) if (layout is not None and filename) else None
    item.stash.setdefault(ATTACH_KEY, []).append(Attachment(name, text, link))


def _allure(text: str, name: str, kind: str) -> None:
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    allure.attach(text, name=name, attachment_type=getattr(allure.attachment_type, kind))


def attach_json(request_or_item: Any, name: str, obj: Any, *, filename: Optional[str] = None) -> Any:
    """Attach ``obj`` (redacted) under ``name``; returns the redacted object.
    ``filename`` (default: the name's last word when it ends in ``.json``) is
    the file written to the run folder."""
    clean = redacted(obj)
    text = json.dumps(clean, ensure_ascii=False, indent=2)
    if filename is None:
        last = name.split()[-1] if name.split() else ""
        filename = last if last.endswith(".json") else None
    _keep(_node(request_or_item), name, text, filename)
    _allure(text, name, "JSON")
    return clean


def attach_text(request_or_item: Any, name: str, text: str, *, filename: Optional[str] = None) -> str:
    clean = REDACTOR.redact(text)
    _keep(_node(request_or_item), name, clean, filename)
    _allure(clean, name, "TEXT")
    return clean


def pending(item: pytest.Item) -> list[Attachment]:
    """The item's attachments, once (they are rendered with its report)."""
    found = item.stash.get(ATTACH_KEY, [])
    item.stash[ATTACH_KEY] = []
    return list(found)


def attach_image(request_or_item: Any, name: str, path: Any) -> None:
    """Attach an image file (a chart, ``.svg`` or ``.png``: no secret in it): copied to
    the run folder's ``artifacts/``, shown as an image in the report (relative link)
    and attached to Allure."""
    from pathlib import Path

    from voyager.report.layout import get_layout

    item = _node(request_or_item)
    data = Path(path).read_bytes()
    layout = get_layout(item.config)
    link = layout.artifact_file(Path(path).name, data) if layout is not None else None
    item.stash.setdefault(ATTACH_KEY, []).append(Attachment(name, "", link, image=True))
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    kind = allure.attachment_type.SVG if Path(path).suffix.lower() == ".svg" else allure.attachment_type.PNG
    allure.attach(data, name=name, attachment_type=kind)


def attach_file(request_or_item: Any, name: str, path: Any, text: str = "") -> None:
    """Attach a file the check produced (e.g. the downloaded inspection report):
    kept in the run folder's ``artifacts/`` (copied there when it is elsewhere) and
    linked relatively from the report, ``text`` shown beside the link; attached to Allure."""
    from pathlib import Path

    from voyager.report.layout import ARTIFACT_SCHEME, ARTIFACTS, get_layout

    item = _node(request_or_item)
    path = Path(path)
    layout = get_layout(item.config)
    link = None
    if layout is not None:
        if path.parent.resolve() == layout.artifacts_dir.resolve():
            link = f"{ARTIFACT_SCHEME}{layout.run_id}/{ARTIFACTS}/{path.name}"
        else:
            link = layout.artifact_file(path.name, path.read_bytes())
    item.stash.setdefault(ATTACH_KEY, []).append(Attachment(name, REDACTOR.redact(text), link))
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    allure.attach.file(str(path), name=name)
