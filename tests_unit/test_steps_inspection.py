"""Step 08 logic (voyager.steps.inspection) against a simulator whose CloudTower has
the cluster connected: one job per session, the export downloaded and opened,
per-item verdicts from the job or from the Word report, reruns."""
from __future__ import annotations

import io
import zipfile

import docx
import pytest

from sim_support import plan  # noqa: F401 (fixture)
from sim_tower_support import connected_tower
from voyager.clients.inspector import InspectorClient
from voyager.state import open_state
from voyager.steps import inspection as insp
from voyager.steps.config import StepError
from voyager.steps.inspection_items import EXPORT_ITEMS, JOB_ITEMS, NAMES

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def test_item_lists_are_the_walkthroughs(shared_dir):
    import json
    import re

    text = (shared_dir / "spec" / "000_6329e4e73b7c4111.txt").read_text(encoding="utf-8")
    job = json.loads(re.search(r'"user_defined_items_names":(\[[^\]]*\])', text).group(1))
    export = json.loads(re.search(r'"items_names":(\[[^\]]*\])', text).group(1))
    assert list(JOB_ITEMS) == job and list(EXPORT_ITEMS) == export
    assert len(JOB_ITEMS) == 82 and set(NAMES) == set(JOB_ITEMS)


def test_a_clean_cluster_inspected_once_and_reused_by_the_next_session(plan, tmp_path):
    state = open_state(tmp_path / "state", plan)
    with connected_tower(plan) as (sim, tower, cluster):
        inspector = InspectorClient(tower)
        with sim.world.lock:
            sim.world.cluster.cpu_model = "x86_broadwell"  # suite 03 sets the CPU compatibility
        run = insp.run_inspection(inspector, cluster["local_id"], state, "session-1", tmp_path / "artifacts")
        assert run.how.startswith("已创建巡检任务") and run.job["status"] == "SUCCEEDED"
        assert run.zip_path.parent == tmp_path / "artifacts" and run.zip_path.name == run.filename
        assert run.document_name == f"InspectorReport-{plan.cluster.name}.docx"
        assert run.results_source.startswith("巡检接口") and set(run.results) == set(JOB_ITEMS)
        assert {r.verdict for r in run.results.values()} == {"pass"}
        assert run.results["ipmi_account_is_valid"].name == "IPMI 账号有效"
        for item, result in run.results.items():
            insp.record_open(state, item, result.verdict)
        same = insp.run_inspection(inspector, cluster["local_id"], state, "session-1", tmp_path / "artifacts")
        later = insp.run_inspection(inspector, cluster["local_id"], state, "session-2", tmp_path / "run2")
        assert same.job_id == later.job_id == run.job_id and later.how.endswith("全部通过，沿用其结果")
        assert len(sim.world.tower.inspector.jobs) == 1 and len(sim.world.tower.inspector.exports) == 1
        assert later.zip_path.parent == tmp_path / "run2"  # downloaded again into this run's folder


def test_an_open_item_makes_the_next_session_inspect_once_more(plan, tmp_path):
    state = open_state(tmp_path / "state", plan)
    with connected_tower(plan, faults="inspect-fail:host_disk_is_healthy:1") as (sim, tower, cluster):
        inspector = InspectorClient(tower)
        run = insp.run_inspection(inspector, cluster["local_id"], state, "s1", tmp_path / "a1")
        bad = run.results["host_disk_is_healthy"]
        assert bad.verdict == "fail" and bad.name == "主机磁盘健康状态" and "inspect-fail" in bad.value and bad.advice
        for item, result in run.results.items():
            insp.record_open(state, item, result.verdict)
        assert state.get("inspection", "open") == ["host_disk_is_healthy"]
        rerun = insp.run_inspection(inspector, cluster["local_id"], state, "s2", tmp_path / "a2")
        assert rerun.job_id != run.job_id and "上次有 1 项未通过" in rerun.how
        assert rerun.results["host_disk_is_healthy"].verdict == "pass"
        assert len(sim.world.tower.inspector.jobs) == 2


def test_a_job_in_flight_is_followed_not_started_again(plan, tmp_path):
    state = open_state(tmp_path / "state", plan)
    with connected_tower(plan) as (sim, tower, cluster):
        inspector = InspectorClient(tower)
        job_id, how = insp.ensure_job(inspector, cluster["local_id"], state, "crashed-session")
        again, how = insp.ensure_job(inspector, cluster["local_id"], state, "next-session")
        assert again == job_id and how == f"继续跟踪未完成的巡检任务 {job_id}"
        assert len(sim.world.tower.inspector.jobs) == 1


def _report_only(job):
    return {k: v for k, v in job.items() if k != "results"}


def test_verdicts_from_the_word_report_when_the_job_gives_none(plan, tmp_path):
    state = open_state(tmp_path / "state", plan)
    with connected_tower(plan, faults="inspect-fail:fan_check:1") as (_sim, tower, cluster):
        run = insp.run_inspection(InspectorClient(tower), cluster["local_id"], state, "s", tmp_path)
    _name, document = insp.open_report(run.zip_path)
    results, source = insp.item_results(_report_only(run.job), cluster["local_id"], document)
    assert source.startswith("导出的 Word 报告") and set(results) == set(EXPORT_ITEMS)
    assert results["fan_check"].verdict == "fail" and results["fan_check"].source == "report"
    assert results["fan_check"].name == "风扇状态" and "inspect-fail" in results["fan_check"].value
    assert results["fan_check"].advice == run.results["fan_check"].advice
    assert results["host_power_is_on"].verdict == "pass"


def test_no_verdicts_at_all_is_said_not_faked(tmp_path):
    document = docx.Document()
    document.add_paragraph("巡检报告（没有表格）")
    results, why = insp.item_results({"status": "SUCCEEDED"}, "serial", document)
    assert results is None and "没有返回逐项结果" in why


def test_the_report_zip_is_checked(tmp_path):
    not_zip = tmp_path / "a.zip"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(StepError, match="不是有效的 zip"):
        insp.open_report(not_zip)
    empty = tmp_path / "b.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(StepError, match="没有 Word 文档"):
        insp.open_report(empty)
    broken = tmp_path / "c.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("report.docx", b"not a docx")
    with pytest.raises(StepError, match="python-docx"):
        insp.open_report(broken)
    good = tmp_path / "d.zip"
    buf = io.BytesIO()
    docx.Document().save(buf)
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("InspectorReport-X.docx", buf.getvalue())
    assert insp.open_report(good)[0] == "InspectorReport-X.docx"
