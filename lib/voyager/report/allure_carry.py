"""Allure side of the carry-over (``voyager.report.carryover``).

allure-pytest builds its results from the runtest protocol hooks
(``pytest_runtest_setup/call/teardown/makereport``), not from
``pytest_runtest_logreport``, so a synthetic report never reaches it. A carried
test is written instead through allure-commons (``AllureReporter`` ->
``report_result`` -> the plugin's file logger) with the identity allure-pytest
gave it when it ran (:func:`allure_identity`, kept in the ledger): same name,
full name, parameters and history id, so Allure groups it with that earlier
result. It is marked: status details and description start with the Chinese
note, label ``carriedOver=true``, tag ``沿用先前通过`` (or ``沿用先前跳过``), and
an excluded parameter ``沿用 carried over`` (excluded: the history id stays).
The evidence its run recorded is attached when available.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import pytest

CARRIED_LABEL = "carriedOver"
CARRIED_PARAMETER = "沿用 carried over"


def allure_identity(item: pytest.Item) -> Optional[dict[str, Any]]:
    """How allure-pytest names ``item`` (computed with its own helpers)."""
    try:
        from allure_commons.model2 import Parameter
        from allure_commons.utils import represent
        from allure_pytest.utils import (allure_full_name, allure_labels, allure_package,
                                         allure_suite_labels, get_history_id, pytest_markers)
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return None
    from voyager.report.allure_steps import parameter_values, readable_name, voyager_labels

    params = dict(item.callspec.params) if hasattr(item, "callspec") else {}
    shown = parameter_values(item)
    parameters = [Parameter(name=name, value=represent(value)) for name, value in params.items()]
    full_name = allure_full_name(item)
    labels = [[k, str(v)] for k, v in sorted(allure_labels(item))]
    labels += [[k, str(v)] for k, v in allure_suite_labels(item)]
    labels += [["tag", tag] for tag in pytest_markers(item)]
    labels.append(["package", allure_package(item)])
    ours = voyager_labels(item)
    labels = [label for label in labels if label[0] not in dict(ours)] + [list(label) for label in ours]
    return {
        "name": readable_name(item),
        "fullName": full_name,
        "historyId": get_history_id(full_name, parameters, original_values=params),
        "parameters": [[p.name, shown.get(p.name, p.value)] for p in parameters],
        "labels": labels,
    }


def identity_from_nodeid(nodeid: str) -> dict[str, Any]:
    """Fallback for a ledger entry written before identities were kept (its
    history id ignores parameters, so Allure may not group it)."""
    from allure_commons.utils import md5
    from allure_pytest.utils import ParsedPytestNodeId

    parsed = ParsedPytestNodeId(nodeid)
    class_part = ("." + ".".join(parsed.class_names)) if parsed.class_names else ""
    full_name = f"{parsed.package}{class_part}#{parsed.test_function}"
    labels = [["parentSuite", parsed.parent_package], ["suite", parsed.module], ["package", parsed.package]]
    return {"name": nodeid.split("::")[-1], "fullName": full_name, "historyId": md5(nodeid),
            "parameters": [], "labels": [label for label in labels if label[1]]}


def title_path(nodeid: str) -> list[str]:
    from allure_pytest.utils import ParsedPytestNodeId

    parsed = ParsedPytestNodeId(nodeid)
    return [segment for segment in (*parsed.path_segments, *parsed.class_names) if segment]


def write_carried(config: pytest.Config, carried: Iterable[Any]) -> int:
    """Write an Allure result per carried test; returns how many (0 when no
    ``--alluredir`` is in effect)."""
    if config.pluginmanager.getplugin("allure_listener") is None:
        return 0
    from allure_commons.model2 import Label, Parameter, Status, StatusDetails, TestResult
    from allure_commons.reporter import AllureReporter
    from allure_commons.types import AttachmentType, LabelType
    from allure_commons.utils import host_tag, md5, now, platform_label, thread_tag, uuid4

    from voyager.redact import REDACTOR

    reporter = AllureReporter()
    count = 0
    for c in carried:
        ident = c.info.get("allure") or identity_from_nodeid(c.nodeid)
        note = REDACTOR.redact(c.note())
        uuid = uuid4()
        stamp = now()
        doc = c.info.get("doc") or ""
        result = TestResult(
            uuid=uuid, name=ident["name"], fullName=ident["fullName"], historyId=ident["historyId"],
            testCaseId=md5(ident["fullName"]), titlePath=title_path(c.nodeid),
            status=Status.PASSED if c.outcome == "passed" else Status.SKIPPED,
            statusDetails=StatusDetails(message=note),
            description=note + ("\n\n" + REDACTOR.redact(doc) if doc else ""),
            start=stamp, stop=stamp)
        result.parameters = [Parameter(name=n, value=REDACTOR.redact(str(v)))
                             for n, v in ident.get("parameters") or []]
        result.parameters.append(Parameter(name=CARRIED_PARAMETER, value=note, excluded=True))
        result.labels = [Label(name=n, value=v) for n, v in ident.get("labels") or []]
        result.labels += [
            Label(name=CARRIED_LABEL, value="true"),
            Label(name=LabelType.TAG, value=c.category),
            Label(name=LabelType.HOST, value=host_tag()),
            Label(name=LabelType.THREAD, value=thread_tag()),
            Label(name=LabelType.FRAMEWORK, value="pytest"),
            Label(name=LabelType.LANGUAGE, value=platform_label()),
        ]
        reporter.schedule_test(uuid, result)
        reporter.attach_data(uuid4(), REDACTOR.redact(c.note_long()), name="沿用说明 carried over",
                             attachment_type=AttachmentType.TEXT, parent_uuid=uuid)
        if c.evidence:
            reporter.attach_data(uuid4(), REDACTOR.redact(c.evidence),
                                 name=f"原运行的接口与命令记录 evidence（{c.run_started}）",
                                 attachment_type=AttachmentType.TEXT, parent_uuid=uuid)
        reporter.close_test(uuid)
        count += 1
    return count
