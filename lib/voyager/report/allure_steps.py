"""Allure side of the delivery report, on top of allure-pytest's results.

Before allure-pytest writes a suite check's result (its
``pytest_runtest_logfinish`` wrapper), this plugin

* names it with its Chinese criterion (plus the host / VLAN / group it ran for)
  and replaces parameter values such as full ``Host(...)`` reprs by their ids;
* labels it: epic = stage (``01 准备阶段``), feature = the check, story = the
  host / VLAN / group, severity (blocker for a stage gate, minor for an
  optional step, critical otherwise);
* adds one step per API call / SSH command recorded for it
  (``voyager.evidence``, redacted at capture) with the exchange attached
  (``skipped`` when it got no answer: evidence, not a verdict);
* classes a verification failure (an assertion, a failed job or wait, an API
  refusing, a wrong read-back — the ``voyager`` errors) as ``failed``; only an
  error of the tool itself (any other exception) stays ``broken``.
"""
from __future__ import annotations

from typing import Any, Optional

import pytest

from voyager.redact import RedactedError
from voyager.report.titles import describe_title
from voyager.report.check import stage_of
from voyager.report.i18n import stage_name, t

PLUGIN_NAME = "voyager-allure"


def verification_errors() -> tuple[type, ...]:
    from voyager.steps.deploy import PayloadError

    return (AssertionError, pytest.fail.Exception, pytest.skip.Exception, RedactedError, PayloadError)


def is_tool_error(exc: BaseException) -> bool:
    """True when ``exc`` is an error of the tool itself, not a verification result."""
    return not isinstance(exc, verification_errors())


def feature_of(title: str, fallback: str) -> str:
    for sep in ("：", "，", "（", "；"):
        title = title.split(sep, 1)[0]
    return title[:40] or fallback


def severity_of(item: pytest.Item) -> str:
    if item.get_closest_marker("voyager_optional"):
        return "minor"
    marker = item.get_closest_marker("dependency")
    if marker is not None and marker.kwargs.get("name"):
        return "blocker"
    return "critical"


def story_of(item: pytest.Item) -> str:
    return item.callspec.id if hasattr(item, "callspec") else ""


def parameter_values(item: pytest.Item) -> dict[str, str]:
    """Parameter values as their ids (``demo-node-01``, not a ``Host(...)`` repr)
    when the check has one parameter."""
    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    return {name: story_of(item) for name in params} if len(params) == 1 else {}


def readable_name(item: pytest.Item) -> str:
    """The Chinese criterion, with the host / VLAN / group it ran for."""
    title = describe_title(item) or item.name
    story = story_of(item)
    return f"{title}［{story}］" if story else title


def voyager_labels(item: pytest.Item) -> list[tuple[str, str]]:
    """epic = stage, feature = the check, story = host / VLAN / group, severity."""
    stage = stage_of(item.nodeid)
    title = describe_title(item) or item.name
    labels = [("epic", f"{stage} {stage_name(stage)}"),
              ("feature", feature_of(title, getattr(item, "originalname", item.name))),
              ("severity", severity_of(item))]
    if story_of(item):
        labels.append(("story", story_of(item)))
    return labels


class AllureSteps:
    def __init__(self, config: pytest.Config):
        self.config = config
        self._seen: dict[str, tuple[pytest.Item, Optional[BaseException]]] = {}

    def _listener(self):
        return self.config.pluginmanager.getplugin("allure_listener")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        yield
        exc = call.excinfo.value if call.excinfo is not None else None
        _, previous = self._seen.get(item.nodeid, (item, None))
        self._seen[item.nodeid] = (item, previous or exc)

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        item, exc = self._seen.pop(nodeid, (None, None))
        listener = self._listener()
        if item is None or listener is None:
            return
        uuid = listener._cache.get(nodeid)
        result = listener.allure_logger.get_test(uuid) if uuid else None
        if result is None:
            return
        self.describe(item, result)
        self.add_steps(listener, uuid, nodeid)
        from allure_commons.model2 import Status

        if result.status == Status.BROKEN and exc is not None and not is_tool_error(exc):
            result.status = Status.FAILED

    def describe(self, item: pytest.Item, result: Any) -> None:
        from allure_commons.model2 import Label

        result.name = readable_name(item)
        shown = parameter_values(item)
        for p in result.parameters:
            if p.name in shown:
                p.value = shown[p.name]
        ours = voyager_labels(item)
        result.labels = [label for label in result.labels if label.name not in dict(ours)]
        result.labels += [Label(name=name, value=value) for name, value in ours]

    def add_steps(self, listener: Any, uuid: str, nodeid: str) -> None:
        from allure_commons.model2 import Status, StatusDetails, TestStepResult
        from allure_commons.types import AttachmentType
        from allure_commons.utils import uuid4

        from voyager.evidence import RECORDER

        logger = listener.allure_logger
        for e in RECORDER.shown(nodeid):  # a wait's first and last polls, one step for those left out
            step_uuid = uuid4()
            if not hasattr(e, "to_text"):
                logger.start_step(uuid, step_uuid, TestStepResult(name=e.summary(), start=int(e.first * 1000),
                                                                  stop=int(e.last * 1000), status=Status.PASSED))
                logger.stop_step(step_uuid)
                continue
            start = int(e.time * 1000)
            # an exchange is evidence, not a verdict: one without an answer (refused,
            # reset, an SSH login the check expected to fail) is grey, never red
            answered = e.error is None and e.status is not None
            step = TestStepResult(name=e.summary().split("] ", 1)[-1], start=start,
                                  stop=start + int(e.elapsed * 1000),
                                  status=Status.PASSED if answered else Status.SKIPPED,
                                  statusDetails=None if answered else StatusDetails(message=e.error or ""))
            logger.start_step(uuid, step_uuid, step)
            logger.attach_data(uuid4(), e.to_text(), name=t("allure.evidence"),
                               attachment_type=AttachmentType.TEXT, parent_uuid=step_uuid)
            logger.stop_step(step_uuid)


def register(config: pytest.Config) -> Optional[AllureSteps]:
    if config.pluginmanager.getplugin("allure_listener") is None:
        return None
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = AllureSteps(config)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin
