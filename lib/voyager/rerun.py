"""``--lf`` for a suite run, and the end of a suite session: which checks run
again, the ledger's summary, the exit status.

pytest's own ``--lf`` (the cacheprovider's ``lfplugin``) forgets skipped tests,
knows nothing of checks that never ran, and is not kept per plan. For a suite
session the plugin (``voyager.pytest_plugin``) owns the option instead:

* :func:`take_over` (the plugin's ``tryfirst`` ``pytest_configure``, i.e. before
  the cacheprovider's ``trylast`` one builds its ``LFPlugin``): a ``--lf`` of a
  session whose arguments name suite paths is noted on the run and switched off
  in ``config.option``, so pytest's lfplugin deselects nothing (it still keeps
  its own cache up to date);
* :func:`select` (``pytest_collection_modifyitems``, after the collected checks
  are registered in the ledger): keeps every collected suite check the ledger
  shows open — failed, errored, skipped because a prerequisite had not
  succeeded, never run (``pending``: also every check of a module the ledger has
  never seen) — and deselects the others (passed, or skipped for a final
  reason), reported through ``pytest_deselected``. When none of the collected
  checks is open, ``--last-failed-no-failures`` decides as in pytest: ``all``
  (default) runs them all, ``none`` none. Tests outside ``suites/`` collected
  in the same session are not the ledger's: they are all kept;
* :func:`refuse_late_lf`: suites reached through another path (``pytest .``)
  are found only at collection, after pytest's lfplugin selected by its own
  cache: with ``--lf`` that is a Chinese usage error naming the command to use;
* :func:`add_options` / :func:`refuse_lf_without_cache`: ``-p no:cacheprovider``
  removes pytest's ``--lf`` with its plugin; the plugin then registers
  ``--lf``/``--last-failed`` itself, only to stop with a Chinese usage error
  instead of argparse's English "unrecognized arguments".

At the end of a session :func:`exit_status` turns a green session into rc 1
while any check inside its arguments is still open, and :func:`write_summary`
prints the ledger's counts, the checks skipped by design and the open ones.
"""
from __future__ import annotations

from typing import Any

import pytest

LF_WITHOUT_CACHE = (
    "-p no:cacheprovider 关闭了 pytest 的缓存插件，--lf 选项也随之关闭，本次运行不能使用 --lf；"
    "请去掉 -p no:cacheprovider 后重新运行（套件按状态目录中的结果台账选择要重跑的检查，"
    "不依赖 pytest 缓存中的内容）。"
    "(--lf is not available with -p no:cacheprovider: drop -p no:cacheprovider.)")

LATE_LF = (
    "--lf 依据结果台账选择要重跑的验收检查，只在命令行参数直接指向 suites/ 时可用"
    "（本次的参数经由其他路径收集到了 suites/ 下的检查）；请这样运行：\n"
    "  pytest suites/ --plan=规划设计表.xlsx --lf\n"
    "(--lf on the acceptance suites needs suites/ as an argument.)")

OPEN_LABELS = {"failed": "失败", "error": "错误", "dependency_skip": "因前置检查未通过而跳过",
               "pending": "尚未运行"}


# --------------------------------------------------------------------------- the option
def add_options(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """``--lf`` when the cacheprovider plugin (which defines it) is disabled: only to
    refuse it in Chinese (:func:`refuse_lf_without_cache`)."""
    if pluginmanager.has_plugin("cacheprovider"):
        return
    parser.getgroup("voyager").addoption(
        "--lf", "--last-failed", dest="voyager_lf_without_cache", action="store_true", default=False,
        help="（-p no:cacheprovider 时不可用）只重跑尚未通过的检查。")


def refuse_lf_without_cache(config: pytest.Config) -> None:
    if config.getoption("voyager_lf_without_cache", default=False):
        raise pytest.UsageError(LF_WITHOUT_CACHE)


def take_over(config: pytest.Config) -> bool:
    """A suite session's ``--lf`` is the ledger's: switched off for pytest's lfplugin.
    Returns whether ``--lf`` was given."""
    if not config.getoption("lf", default=False):
        return False
    config.option.lf = False
    return True


def refuse_late_lf(config: pytest.Config, run: Any) -> None:
    """Suite checks collected in a session whose ``--lf`` pytest's lfplugin kept."""
    if not run.lf_applied and config.getoption("lf", default=False):
        raise pytest.UsageError(LATE_LF)


# --------------------------------------------------------------------------- the selection
class Selection:
    """What :func:`select` kept and deselected (the collection line reports it)."""

    def __init__(self, rerun: int = 0, deselected: int = 0, none_open: bool = False, run_none: bool = False):
        self.rerun = rerun
        self.deselected = deselected
        self.none_open = none_open
        self.run_none = run_none

    def line(self) -> str:
        if self.none_open:
            if self.run_none:
                return ("voyager: --lf 本次范围内结果台账中没有尚未通过的检查，按 --last-failed-no-failures none "
                        "不运行任何检查（no previously failed tests, deselecting all items）")
            return (f"voyager: --lf 本次范围内结果台账中没有尚未通过的检查，运行全部 {self.rerun} 项"
                    "（no previously failed tests, not deselecting items）")
        return (f"voyager: --lf 依据结果台账重跑 {self.rerun} 项（所有尚未通过的检查：失败、因前置失败跳过、尚未运行）；"
                f"已通过或按设计跳过的 {self.deselected} 项不重跑")


def select(config: pytest.Config, items: list[pytest.Item], suite_items: list[pytest.Item], ledger) -> Selection:
    """Keep the open suite checks of ``items`` (in place), deselect the others."""
    open_ids = set(ledger.rerun_nodeids())
    suite = {id(i) for i in suite_items}
    rerun = [i for i in suite_items if i.nodeid in open_ids]
    if not rerun:
        run_none = config.getoption("last_failed_no_failures", default="all") == "none"
        if run_none:
            config.hook.pytest_deselected(items=list(suite_items))
            items[:] = [i for i in items if id(i) not in suite]
        return Selection(rerun=0 if run_none else len(suite_items),
                         deselected=len(suite_items) if run_none else 0, none_open=True, run_none=run_none)
    keep = {id(i) for i in rerun}
    deselected = [i for i in suite_items if id(i) not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if id(i) not in suite or id(i) in keep]
    return Selection(rerun=len(rerun), deselected=len(deselected))


# --------------------------------------------------------------------------- the end of the session
def exit_status(session: pytest.Session, run: Any) -> None:
    """Every check that ran passed, but the suite is not done: a green summary
    must mean the cluster is as planned (rc 1 while a check in scope is open)."""
    if (session.exitstatus == pytest.ExitCode.OK and not session.config.option.collectonly
            and run.ledger.open_nodeids(run.in_scope)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def write_summary(terminalreporter, run: Any) -> None:
    """The ledger's counts within the session's arguments, the checks skipped by
    design with their reasons, the evidence log, the open checks (at most ten) and
    what to run next."""
    ledger = run.ledger
    counts = ledger.summary(run.in_scope)
    total = sum(counts.values())
    open_ids = ledger.open_nodeids(run.in_scope)
    terminalreporter.write_sep("-", "voyager 结果台账")
    line = (f"本次范围内共 {total} 项检查：已通过 {counts.get('passed', 0)} 项，"
            f"按设计跳过 {counts.get('skipped', 0)} 项，仍未完成 {len(open_ids)} 项")
    details = "，".join(f"{label} {counts[k]}" for k, label in OPEN_LABELS.items() if counts.get(k))
    terminalreporter.write_line(line + (f"（{details}）" if details else "") + f" — {ledger.path}")
    for nodeid, entry in ledger.entries.items():
        if entry["outcome"] == "skipped" and not entry.get("dependency_skip") and run.in_scope(nodeid):
            terminalreporter.write_line(f"  按设计跳过 {nodeid}：{entry.get('message') or '（未说明原因）'}")
    if run.evidence_file is not None:
        terminalreporter.write_line(f"接口与命令记录：{run.evidence_file}")
    if open_ids:
        shown = open_ids[:10]
        for nodeid in shown:
            entry = ledger.entries[nodeid]
            label = OPEN_LABELS["dependency_skip" if entry.get("dependency_skip") else entry["outcome"]]
            terminalreporter.write_line(f"  未完成（{label}） {nodeid}")
        if len(open_ids) > len(shown):
            terminalreporter.write_line(f"  …… 另有 {len(open_ids) - len(shown)} 项")
        terminalreporter.write_line(
            "修正问题后重新运行同一命令并加上 --lf：只重跑所有尚未通过的检查（失败、因前置失败跳过、尚未运行的）。")
    else:
        terminalreporter.write_line("全部检查均已通过（或按设计跳过）。")
