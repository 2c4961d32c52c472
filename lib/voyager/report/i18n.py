"""Every user-visible string of the delivery report, in one catalogue.

``t(key, **values)`` returns the string in the report language (Chinese by
default; ``--report-lang en`` switches to English, see
``voyager.report.options``). Keys are grouped by where they appear.
"""
from __future__ import annotations

from typing import Any

LANGUAGES = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}

CATALOGUE: dict[str, tuple[str, str]] = {
    # -- title and page -------------------------------------------------------
    "title": ("SmartX 超融合集群交付验收报告 — {cluster}",
              "SmartX HCI cluster delivery acceptance report — {cluster}"),
    "kind.run": ("本次运行报告：运行 {run}", "Report of run {run}"),
    "kind.cumulative": ("累计报告：套件的当前状态（每项检查的最终结果及其所在运行，含各次重跑）",
                        "Cumulative report: the suite's current state (each check's final result, "
                        "the run it came from, reruns included)"),
    "page.running": ("仍有检查在运行，刷新页面查看最新结果。",
                     "Checks are still running; reload the page for the latest results."),
    "page.no_results": ("没有符合筛选条件的检查。", "No check matches the filter."),
    "page.filter": ("按结果筛选：", "Filter by result:"),
    "page.expand_all": ("全部展开", "Expand all"),
    "page.collapse_all": ("全部折叠", "Collapse all"),
    "page.checks": ("检查明细", "Checks"),
    "page.appendix": ("附录：报告工具信息（供交付工程师）", "Appendix: report tooling (for the delivery engineer)"),
    "page.generated": ("生成时间 {time}", "Generated {time}"),
    # -- summary --------------------------------------------------------------
    "sum.heading": ("交付概要", "Delivery summary"),
    "sum.customer": ("客户", "Customer"),
    "sum.project": ("项目", "Project"),
    "sum.datacenter": ("数据中心", "Datacenter"),
    "sum.cluster": ("集群名称", "Cluster name"),
    "sum.vip": ("集群 VIP", "Cluster VIP"),
    "sum.hosts": ("主机（{n} 台）", "Hosts ({n})"),
    "sum.host.name": ("主机名", "Host"),
    "sum.host.ip": ("管理地址", "Management IP"),
    "sum.host.sn": ("设备序列号", "Device S/N"),
    "sum.host.version": ("SMTX OS 版本", "SMTX OS version"),
    "sum.smtx_version": ("SMTX OS 版本", "SMTX OS version"),
    "sum.serial": ("集群序列号", "Cluster serial"),
    "sum.tower": ("CloudTower", "CloudTower"),
    "sum.tower.value": ("地址 {url} · 版本 {version} · 序列号 {serial}",
                        "URL {url} · version {version} · serial {serial}"),
    "sum.components": ("组件版本", "Component versions"),
    "sum.plan": ("规划表", "Plan"),
    "sum.plan.value": ("{name}（指纹 {fingerprint}）", "{name} (fingerprint {fingerprint})"),
    "sum.plan.demo": ("内置演示规划表", "built-in demo plan"),
    "sum.target": ("验收对象", "Target"),
    "sum.target.live": ("真实集群", "Live cluster"),
    "sum.target.sim": ("模拟器演练（内置模拟器，不是真实集群）",
                       "Simulator rehearsal (embedded simulator, not a real cluster)"),
    "sum.time": ("开始 / 结束 / 耗时", "Start / end / duration"),
    "sum.time.value": ("{start} / {end} / {duration}", "{start} / {end} / {duration}"),
    "sum.runs": ("包含的运行", "Runs included"),
    "sum.stages": ("各阶段结果", "Results per stage"),
    "sum.stage": ("阶段", "Stage"),
    "sum.total": ("合计", "Total"),
    "sum.checks": ("检查数", "Checks"),
    "sum.verdict": ("结论", "Verdict"),
    "verdict.pass": ("验收通过：全部检查通过", "Accepted: every check passed"),
    "verdict.fail": ("未通过：{n} 项检查失败或出错，见下方明细", "Not accepted: {n} check(s) failed, see below"),
    "verdict.incomplete": ("未完成：{n} 项检查未运行或被跳过", "Incomplete: {n} check(s) not run or skipped"),
    "unknown": ("（未取得）", "(not known)"),
    "not_deployed": ("（尚未部署）", "(not deployed yet)"),
    # -- outcomes ---------------------------------------------------------------
    "outcome.passed": ("通过", "Passed"),
    "outcome.failed": ("失败", "Failed"),
    "outcome.skipped": ("跳过", "Skipped"),
    "outcome.error": ("错误", "Error"),
    "outcome.xfailed": ("预期失败", "Expected failure"),
    "outcome.xpassed": ("意外通过", "Unexpected pass"),
    "outcome.rerun": ("重试", "Rerun"),
    "outcome.retried": ("已重试", "Retried"),
    "outcome.notrun": ("未运行", "Not run"),
    # -- results table --------------------------------------------------------------
    "col.result": ("结果", "Result"),
    "col.check": ("检查项（验收标准）", "Check (acceptance criterion)"),
    "col.run": ("所在运行", "Run"),
    "col.duration": ("耗时", "Duration"),
    "run.rerun": ("{run}（第 {n} 次尝试，重跑后）", "{run} (attempt {n}, after rerun)"),
    "run.carried": ("沿用 {run}", "carried from {run}"),
    # -- facts ------------------------------------------------------------------------
    "facts.what": ("核对项", "Item"),
    "facts.expected": ("期望（规划）", "Expected (plan)"),
    "facts.found": ("实际", "Found"),
    "facts.cell": ("规划单元格", "Plan cell"),
    "facts.ok": ("一致", "Match"),
    "facts.note": ("说明", "Note"),
    "facts.skipped": ("检查被跳过，没有可比较的结果。", "The check was skipped: nothing to compare."),
    "facts.none": ("本检查没有记录期望与实际的对照。", "This check recorded no expected/found facts."),
    # -- failures and skips ----------------------------------------------------------------
    "fail.cause": ("失败原因", "Cause"),
    "fail.first": ("首先处理", "What to do first"),
    "fail.fix_cell": ("核对并修正规划表 {cell}，然后加 --lf 重跑。",
                      "Check and correct plan cell {cell}, then rerun with --lf."),
    "fail.fix_generic": ("按上面的原因排除问题（接口与命令记录见下方），然后加 --lf 重跑。",
                         "Remove the cause above (requests and commands below), then rerun with --lf."),
    "fail.more": ("…（完整信息见下方技术细节）", "… (the full message is in the technical details below)"),
    "fail.traceback": ("技术细节（traceback，供开发人员）", "Technical details (traceback, for developers)"),
    "fail.broken": ("工具自身出错（不是验收结论），请把本报告交给 smtx-voyager 维护者。",
                    "The tool itself failed (not an acceptance verdict); hand this report to the smtx-voyager maintainers."),
    "skip.reason": ("跳过原因", "Why skipped"),
    "skip.dependency": ("前置检查 {names} 未通过", "prerequisite {names} did not pass"),
    "log.captured": ("运行日志", "Log"),
    # -- evidence and history ---------------------------------------------------------------
    "evidence.summary": ("接口与命令记录（{n} 条，已脱敏）", "Requests and commands ({n}, redacted)"),
    "evidence.attachment": ("附件：{name}", "Attachment: {name}"),
    "evidence.file": ("文件", "file"),
    "history.summary": ("先前的尝试（{n} 次）", "Earlier attempts ({n})"),
    "history.attempt": ("运行 {run}：{outcome}", "Run {run}: {outcome}"),
    # -- carried over (a --lf run's report, voyager.report.carryover) ------------------------
    "carry.mark": ("〔沿用〕", "[carried over] "),
    "carry.note.passed": ("本次未重跑：已于 {run} 的运行中通过", "Not rerun: passed in the run of {run}"),
    "carry.note.skipped": ("本次未重跑：已于 {run} 的运行中跳过", "Not rerun: skipped in the run of {run}"),
    "carry.finished": ("完成于 {time}", "finished {time}"),
    "carry.took": ("当时耗时 {seconds} 秒", "took {seconds} s"),
    "carry.reason": ("原因：{message}", "reason: {message}"),
    "carry.details": ("（{details}）", " ({details})"),
    "carry.sep": ("，", ", "),
    "carry.evidence": ("原运行的接口与命令记录 evidence（{run}）", "Requests and commands of the earlier run ({run})"),
    "carry.counts.passed": ("通过 {n}", "passed {n}"),
    "carry.counts.skipped": ("，跳过 {n}", ", skipped {n}"),
    "carry.summary": ("本次为 --lf 重跑：重跑 {rerun} 项；另有 {carried} 项本次未重跑，沿用结果台账中先前运行的结果"
                      "（{counts}），在“所在运行”列标注“沿用”。",
                      "This is a --lf rerun: {rerun} check(s) rerun; {carried} more were not rerun and show their "
                      "earlier result from the ledger ({counts}), marked “carried from” in the Run column."),
    "evidence.dropped": ("（较早的 {n} 条记录已省略）", "({n} older records dropped)"),
    # -- appendix ------------------------------------------------------------------------------
    "app.tool": ("生成工具", "Generated by"),
    "app.node": ("节点编号（node id）", "Node id"),
    # -- stages -------------------------------------------------------------------------------------
    "stage.01": ("准备阶段", "Preparation"),
    "stage.02": ("初始化集群", "Cluster initialisation"),
    "stage.03": ("配置集群", "Cluster configuration"),
    "stage.04": ("部署 CloudTower 并配置", "CloudTower deployment"),
    "stage.05": ("关联 CloudTower 并配置集群", "CloudTower association"),
    "stage.06": ("通过 CloudTower 配置集群", "Configuration through CloudTower"),
    "stage.07": ("部署其他管理组件（可选）", "Other management components (optional)"),
    "stage.08": ("集群巡检", "Cluster inspection"),
    "stage.09": ("创建测试负载", "Test workloads"),
    "stage.10": ("性能与可靠性测试", "Performance and reliability"),
    "stage.11": ("收尾清理", "Clean-up"),
    "stage.other": ("其他", "Other"),
    # -- terminal -------------------------------------------------------------------------------------
    "term.run": ("本次运行报告：{path}", "Report of this run: {path}"),
    "term.cumulative": ("累计报告（交付用）：{path}", "Cumulative report (for delivery): {path}"),
    # -- allure --------------------------------------------------------------------------------------
    "allure.evidence": ("接口与命令记录", "Requests and commands"),
}

_language = {"value": "zh"}


def set_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}")
    _language["value"] = lang


def language() -> str:
    return _language["value"]


def html_lang() -> str:
    return HTML_LANG[language()]


def t(key: str, **values: Any) -> str:
    zh, en = CATALOGUE[key]
    text = en if language() == "en" else zh
    return text.format(**values) if values else text


def stage_name(stage: str) -> str:
    key = f"stage.{stage}"
    return t(key) if key in CATALOGUE else t("stage.other")
