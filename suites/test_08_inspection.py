"""08-集群巡检：调用 CloudTower 巡检中心巡检本集群，导出 Word 巡检报告并下载，逐项给出巡检结论。

巡检任务按走查文档第 08 步的固定版本与巡检项列表创建（cluster_uuids 为集群的 local_id），跟踪进度；
导出请求后等待 EXPORT_SUCCEEDED，下载的 zip 保存在本次运行的 artifacts 目录并检查其中的 Word 报告。
每个巡检项一行检查（test_inspection_item[巡检项]）：按巡检结论通过 / 警告 / 不通过，给出中文名称、
检查值与巡检建议。逐项结论优先取巡检接口返回的结果，否则读取导出的 Word 报告；两者都读不到时，
报告检查仍然通过，并由 test_inspection_verdicts 一行明确警告“逐项结论不可用”。

重跑：同一次运行只巡检一次；巡检中断后重跑会继续跟踪原任务；上次全部通过时沿用上次的任务；
修正问题后用 --lf 重跑时只重新巡检一次（不是每项一次），并重新判定未通过的项。

Prerequisite (developer note): depends on the stage marker ``tower_config`` (the final
check of suite 06). The downloaded zip goes to the ``artifacts_dir`` fixture
(``<state dir>/artifacts/`` until the report's per-run folders exist).
"""
from __future__ import annotations

import logging
import uuid
import warnings

import pytest

from voyager.clients.inspector import InspectorClient
from voyager.report import facts
from voyager.report.attach import attach_file
from voyager.steps import inspection as insp
from voyager.steps.inspection_items import INSPECTOR_VERSION, JOB_ITEMS, chinese_name

LOG = logging.getLogger("voyager.suite.inspection")


class InspectionWarning(UserWarning):
    """An inspection item judged WARNING, or verdicts that could not be read."""


class SessionInspection:
    """The session's one inspection, run on first use; its error is kept and re-raised."""

    def __init__(self, run):
        self._run = run
        self._result = None
        self._error = None

    def get(self) -> insp.Inspection:
        if self._result is None and self._error is None:
            try:
                self._result = self._run()
            except Exception as exc:  # noqa: BLE001 - reported by every check that needs it
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._result


@pytest.fixture(scope="session")
def cluster_local_id(run_state, tower, cluster_id) -> str:
    """The cluster's ``local_id`` in CloudTower (its SMTX serial): what the inspector takes."""
    cached = run_state.get("cloudtower", "cluster_local_id")
    if cached:
        return cached
    clusters = tower.rest("get-clusters", {"where": {"id": cluster_id}}) or []
    if not clusters or not clusters[0].get("local_id"):
        pytest.fail(f"CloudTower 中集群 {cluster_id} 没有 local_id，请先完成 05-关联 CloudTower")
    run_state.set("cloudtower", "cluster_local_id", clusters[0]["local_id"])
    return clusters[0]["local_id"]


@pytest.fixture(scope="session")
def inspection(tower, cluster_local_id, run_state, artifacts_dir) -> SessionInspection:
    session = uuid.uuid4().hex
    inspector = InspectorClient(tower)
    return SessionInspection(lambda: insp.run_inspection(inspector, cluster_local_id, run_state, session,
                                                         artifacts_dir))


@pytest.mark.dependency(depends=["tower_config"], scope="session")
def test_inspection_job(inspection, cluster_local_id):
    """巡检任务已按走查文档的固定版本与全部巡检项为本集群（local_id）创建或沿用，并已跟踪到完成。"""
    run = inspection.get()
    LOG.info(run.how)
    facts.record("巡检集群（local_id）", [cluster_local_id], run.job.get("cluster_uuids") or [cluster_local_id],
                 ok=cluster_local_id in (run.job.get("cluster_uuids") or [cluster_local_id]))
    facts.record("巡检项数量", len(JOB_ITEMS), len(run.job.get("user_defined_items_names") or JOB_ITEMS))
    facts.record("巡检版本", INSPECTOR_VERSION, run.job.get("version") or INSPECTOR_VERSION)
    facts.note(f"{run.how}；任务状态 {run.job.get('status') or '（巡检接口未提供任务状态，以导出完成为准）'}")


@pytest.mark.dependency(depends=["test_inspection_job"])
def test_inspection_report(inspection, request):
    """Word 巡检报告已导出（EXPORT_SUCCEEDED）并下载到 artifacts 目录：是有效的 zip，其中的 Word 文档可以用
    python-docx 打开。"""
    run = inspection.get()
    facts.record("导出状态", "EXPORT_SUCCEEDED", "EXPORT_SUCCEEDED")
    facts.record("报告文件", run.filename, run.zip_path.name)
    facts.record("报告中的 Word 文档", "*.docx", run.document_name, ok=run.document_name.lower().endswith(".docx"))
    attach_file(request, "巡检报告（Word，压缩包）", run.zip_path,
                f"{run.zip_path.name}（{run.zip_path.stat().st_size} 字节，内含 {run.document_name}）")
    LOG.info("巡检报告已下载：%s", run.zip_path)


@pytest.mark.dependency(depends=["test_inspection_report"])
def test_inspection_verdicts(inspection):
    """可以读到每个巡检项的结论（来自巡检接口，或导出的 Word 报告）；读不到时本行给出明确警告，不会假装通过。"""
    run = inspection.get()
    if run.results is None:
        text = f"巡检逐项结论不可用：{run.unavailable}；请打开 {run.zip_path} 人工查看"
        facts.record("逐项结论", "可读取", "不可用", ok=False)
        facts.note(text)
        LOG.warning(text)
        warnings.warn(InspectionWarning(text))
        return
    missing = [i for i in JOB_ITEMS if i not in run.results]
    facts.record("有结论的巡检项", len(JOB_ITEMS), len(JOB_ITEMS) - len(missing), ok=not missing)
    facts.note(f"逐项结论来源：{run.results_source}")


@pytest.mark.dependency(depends=["test_inspection_report"])
@pytest.mark.parametrize("item", JOB_ITEMS)
def test_inspection_item(item, inspection, run_state):
    """该巡检项的巡检结论为通过（警告时本行通过并给出警告；不通过时本行失败，给出中文名称、检查值与巡检建议）。"""
    run = inspection.get()
    if run.results is None:
        pytest.skip(f"巡检逐项结论不可用（见 test_inspection_verdicts）：{chinese_name(item)}（{item}）")
    result = run.results.get(item)
    if result is None:
        text = (f"巡检项 {chinese_name(item)}（{item}）在{run.results_source}中没有结论"
                f"（导出报告只含走查文档导出列表中的项）；请在 CloudTower 巡检中心查看")
        facts.record("巡检结论", "通过", "无结论", ok=False)
        facts.note(text)
        warnings.warn(InspectionWarning(text))
        return
    insp.record_open(run_state, item, result.verdict)
    facts.record(f"{result.name}（{item}）", "通过", result.verdict_text, ok=result.verdict == insp.PASS)
    facts.note(f"检查值：{result.value or '-'}；建议：{result.advice or '-'}（来源：{run.results_source}）")
    if result.verdict == insp.WARNING:
        text = f"巡检项 {result.name}（{item}）警告：{result.value}。建议：{result.advice or '-'}"
        LOG.warning(text)
        warnings.warn(InspectionWarning(text))
    if result.verdict == insp.FAIL:
        pytest.fail(f"巡检项 {result.name}（{item}）不通过：{result.value or '-'}。建议：{result.advice or '-'}",
                    pytrace=False)


@pytest.mark.dependency(name="inspection", depends=["test_inspection_job", "test_inspection_report"])
def test_inspection_done(inspection, run_state):
    """集群巡检完成：巡检任务与下载的报告都已记入运行状态。"""
    run = inspection.get()
    recorded = run_state.section(insp.STATE)
    facts.record("运行状态中的巡检任务", run.job_id, recorded.get("job_id"))
    facts.record("运行状态中的报告文件", run.filename, recorded.get("filename"))
    assert recorded.get("finished") is True, "运行状态中巡检任务没有标记为已完成"
