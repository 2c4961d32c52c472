"""Options of the delivery report (``--report-lang``, ``--reports-dir``) and its installation
over pytest-html once every plugin is configured. Loaded with the suite
plugin (its ``pytest_plugins``); inert unless a suite run is active."""
from __future__ import annotations

import pytest

from voyager.report.i18n import LANGUAGES, set_language


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voyager")
    group.addoption("--report-lang", dest="voyager_report_lang", default="zh", choices=LANGUAGES,
                    help="交付报告的语言：zh（默认，中文）或 en。Language of the delivery report.")
    group.addoption("--reports-dir", dest="voyager_reports_dir", metavar="DIR", default=None,
                    help="交付物目录（默认：项目根目录下的 reports/）；其中每个集群一个文件夹。"
                         "Where the deliverables go (default <rootdir>/reports).")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    set_language(config.getoption("voyager_report_lang") or "zh")
    from voyager.pytest_plugin import RUN_KEY

    run = config.stash.get(RUN_KEY, None)
    if run is None or not run.active:
        return
    if config.option.tbstyle == "auto":
        config.option.tbstyle = "short"  # the report's traceback is short unless asked otherwise
    from voyager.report.allure_steps import register as register_allure
    from voyager.report.html import install

    install(config)  # after pytest-html created its report object
    register_allure(config)
