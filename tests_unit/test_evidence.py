"""voyager.evidence: exchanges recorded per step, redacted and bounded at capture."""
import threading

from voyager.evidence import NO_STEP, EvidenceLog, Recorder, format_body
from voyager.report.carryover import EvidenceLogs
from voyager.plan.model import MASK, Secret
from voyager.redact import Redactor


def _recorder(**kw):
    r = Redactor()
    r.add_secret("EvidencePass#1")
    return Recorder(redactor=r, **kw), r


def test_exchanges_belong_to_the_current_step():
    rec, _ = _recorder()
    rec.record_http(method="get", url="http://127.10.20.11/a", status=200, elapsed=0.1)
    with rec.step("step-a"):
        rec.record_http(method="POST", url="http://127.10.20.11/b", status=201, elapsed=0.2)
        with rec.step("step-b"):
            rec.record_ssh(target="ssh://smartx@127.10.20.11", command="uname -a", exit_status=0, elapsed=0.3,
                           stdout="Linux\n")
        rec.record_http(method="GET", url="http://127.10.20.11/c", status=200, elapsed=0.1)
    assert rec.steps() == [NO_STEP, "step-a", "step-b"]
    assert [e.url[-1] for e in rec.exchanges("step-a")] == ["b", "c"]
    assert rec.exchanges("step-b")[0].kind == "ssh" and rec.exchanges("step-b")[0].status == 0
    assert rec.exchanges(NO_STEP)[0].method == "GET"
    assert len(rec.exchanges()) == 4


def test_step_is_per_thread_context():
    rec, _ = _recorder()
    seen = []
    with rec.step("main"):
        t = threading.Thread(target=lambda: seen.append(rec.current_step()))
        t.start()
        t.join()
        assert rec.current_step() == "main"
    assert seen == [NO_STEP]


def test_redacted_at_capture():
    rec, _ = _recorder()
    with rec.step("s"):
        e = rec.record_http(
            method="POST", url="https://127.10.20.11/api/v3/sessions?token=abc",
            status=200, elapsed=0.05,
            request_headers={"x-smartx-token": "tok", "Content-Type": "application/json"},
            request_body={"username": "root", "password": Secret("EvidencePass#1"), "note": "EvidencePass#1"},
            response_headers={"Set-Cookie": "sid=1"},
            response_body=b'{"token": "0123456789abcdef", "user_id": "root"}',
            response_content_type="application/json",
            error="failed with EvidencePass#1",
        )
        rec.record_ssh(target="ssh://smartx@127.10.20.11", command="echo EvidencePass#1 | x", exit_status=1,
                       elapsed=0.1, stdout="EvidencePass#1", stderr="bad", stdin_bytes=12)
    text = rec.to_text("s")
    assert "EvidencePass#1" not in text and "0123456789abcdef" not in text and "abc" not in e.url
    assert e.request_headers["x-smartx-token"] == MASK and e.response_headers["Set-Cookie"] == MASK
    assert '"username": "root"' in e.request_body and MASK in e.request_body
    assert "标准输入 12 字节" in text and "[stderr]" in text and "→ 1" in text


def test_bodies_are_truncated_and_binary_is_summarised():
    rec, _ = _recorder(max_body=50)
    with rec.step("big"):
        e = rec.record_http(method="POST", url="http://x/upload", status=200, elapsed=1.0,
                            request_body=b"\x00\x01" * 1000, request_content_type="multipart/form-data; b=x",
                            response_body="y" * 500)
    assert e.request_body.startswith("<二进制内容 2000 字节")
    assert e.response_body.startswith("y" * 50) and "已截断" in e.response_body and len(e.response_body) < 100
    assert format_body(b"\xff\xfe\xfd") .startswith("<二进制内容")
    assert format_body(None) == "" and format_body('{"a": [1, 2]}') == '{"a": [1, 2]}'


def test_secret_is_redacted_before_truncation():
    rec, _ = _recorder(max_body=20)
    e = rec.record_http(method="GET", url="http://x", status=200, elapsed=0, response_body="x" * 15 + "EvidencePass#1")
    assert "Evid" not in e.response_body


def test_bounded_per_step_and_clear():
    rec, _ = _recorder(max_per_step=3)
    with rec.step("poll"):
        for i in range(5):
            rec.record_http(method="GET", url=f"http://x/{i}", status=200, elapsed=0)
    assert [e.url for e in rec.exchanges("poll")] == ["http://x/2", "http://x/3", "http://x/4"]
    assert rec.dropped("poll") == 2 and "较早的 2 条记录已省略" in rec.to_text("poll")
    rec.clear("poll")
    assert rec.exchanges("poll") == [] and rec.dropped("poll") == 0
    rec.record_http(method="GET", url="http://x", status=200, elapsed=0)
    rec.clear()
    assert rec.exchanges() == [] and rec.steps() == []


def test_to_dict_round_trip():
    rec, _ = _recorder()
    e = rec.record_http(method="GET", url="http://x", status=None, elapsed=0.01, error="连接被拒绝")
    d = e.to_dict()
    assert d["status"] is None and d["error"] == "连接被拒绝" and d["kind"] == "http"
    assert "无响应" in e.summary()


# -- bounded at capture: cost and size do not grow with the body ------------------------------
def test_huge_bodies_cost_little_and_stay_bounded():
    import json
    import time

    rec, _ = _recorder(max_body=4096)
    text = b"x" * (32 << 20)
    listing = json.dumps([{"name": f"vm{i}", "uuid": "u" * 36, "status": "running"} for i in range(20000)])
    t0 = time.perf_counter()
    with rec.step("huge"):
        a = rec.record_http(method="GET", url="http://x/log", status=200, elapsed=0, response_body=text)
        b = rec.record_http(method="GET", url="http://x/vms", status=200, elapsed=0, response_body=listing,
                            response_content_type="application/json")
        c = rec.record_ssh(target="ssh://smartx@x", command="cat big", exit_status=1, elapsed=0,
                           stdout="y" * (8 << 20), stderr="cat: 最后的错误")
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed  # whole-body redaction took ~6 s for these
    assert len(a.response_body) < 4200 and f"共 {32 << 20} 字节" in a.response_body
    assert len(b.response_body) < 4200 and b.response_body.startswith('[{"name": "vm0"')
    assert f"共 {len(listing)} 字符" in b.response_body
    assert "[stderr]\ncat: 最后的错误" in c.response_body and len(c.response_body) < 4300


def test_a_secret_cut_by_the_window_edge_never_shows_in_part():
    secret = "EvidencePass#1"
    for limit in (100, 200):
        for at in range(limit - len(secret), limit + 2):
            rec, _ = _recorder(max_body=limit)
            body = "x" * at + secret + "y" * 5000
            e = rec.record_http(method="GET", url="http://x", status=200, elapsed=0, response_body=body)
            shown = e.response_body.split("…")[0]
            assert not any(secret[:k] in shown[-k:] for k in range(3, len(secret) + 1)), (limit, at, shown[-20:])
    # inside one long JSON string
    rec, _ = _recorder(max_body=100)
    e = rec.record_http(method="GET", url="http://x", status=200, elapsed=0,
                        response_body={"log": "z" * 90 + secret + "z" * 10000})
    assert "Evid" not in e.response_body and "已截断" in e.response_body


def test_an_unknown_sensitive_value_open_at_the_edge_is_masked():
    rec, _ = _recorder(max_body=100)
    for body in ('x' * 60 + '"token": "' + "T" * 8000 + '"',
                 'x' * 60 + "password='" + "T" * 8000 + "'",
                 'x' * 60 + '{\\"password\\": \\"' + "T" * 8000 + '\\"}'):
        e = rec.record_http(method="GET", url="http://x", status=200, elapsed=0, response_body=body,
                            response_content_type="text/plain")
        assert "TTT" not in e.response_body and MASK in e.response_body, e.response_body


def test_the_report_shows_a_wait_s_first_and_last_polls_the_log_keeps_every_one():
    """一次等待轮询 10 次：报告（shown）只显示前 2 次和后 3 次（最后一次是结束等待的答案），中间 5 次合并为一行说明；
    等待之外的记录全部保留；证据日志（to_text）保留全部记录。"""
    rec, _ = _recorder()
    with rec.step("s"):
        rec.record_http(method="POST", url="http://127.10.20.11/start", status=200, elapsed=0.1)
        for attempt in range(1, 11):
            with rec.poll(7, attempt):
                rec.record_http(method="GET", url=f"http://127.10.20.11/job?n={attempt}", status=200, elapsed=0.01,
                                started=1000.0 + attempt)
        rec.record_http(method="GET", url="http://127.10.20.11/after", status=200, elapsed=0.1)
        with rec.poll(8, 1):  # a short wait: nothing left out
            rec.record_http(method="GET", url="http://127.10.20.11/quick", status=200, elapsed=0.1)
    shown = rec.shown("s")
    urls = [getattr(e, "url", None) for e in shown]
    assert urls == ["http://127.10.20.11/start", "http://127.10.20.11/job?n=1", "http://127.10.20.11/job?n=2", None,
                    "http://127.10.20.11/job?n=8", "http://127.10.20.11/job?n=9", "http://127.10.20.11/job?n=10",
                    "http://127.10.20.11/after", "http://127.10.20.11/quick"]
    gap = shown[3]
    assert (gap.polls, gap.exchanges, gap.first, gap.last) == (5, 5, 1003.0, 1007.01)
    assert "省略了等待中间的 5 次轮询" in gap.summary() and "evidence/*.log" in gap.summary()
    assert all(f"job?n={n}" in rec.to_text("s") for n in range(1, 11))
    assert rec.exchanges("s")[1].poll == (7, 1) and rec.exchanges("s")[0].poll is None


def test_a_wait_marks_its_probes_exchanges_as_its_polls():
    """wait_for 的每次查询所产生的记录都标明属于哪次等待的第几次轮询。"""
    from voyager.evidence import RECORDER
    from voyager.waiters import wait_for

    states = iter(["a", "b", "c"])

    def probe():
        RECORDER.record_http(method="GET", url="http://127.10.20.11/poll", status=200, elapsed=0.0)
        return next(states)

    with RECORDER.step("evidence-test-wait"):
        wait_for("x", probe, lambda s: s == "c", 10, sleep=lambda s: None)
    marks = [e.poll for e in RECORDER.exchanges("evidence-test-wait")]
    RECORDER.clear("evidence-test-wait")
    assert [m[1] for m in marks] == [1, 2, 3] and len({m[0] for m in marks}) == 1


def test_the_evidence_log_is_written_step_by_step_and_the_rest_at_the_end(tmp_path):
    rec, _ = _recorder(max_per_step=3)
    log = EvidenceLog(tmp_path / "evidence" / "run.log", rec)
    with rec.step("suites/t.py::test_a"):
        rec.record_http(method="GET", url="http://127.10.20.11/a1", status=200, elapsed=0.1)
    log.write_step("suites/t.py::test_a")
    written = (tmp_path / "evidence" / "run.log").read_text(encoding="utf-8")
    assert written.startswith("## suites/t.py::test_a\n\n") and "/a1" in written  # on disk before the next step
    log.write_step("suites/t.py::test_a")
    assert (tmp_path / "evidence" / "run.log").read_text(encoding="utf-8") == written  # nothing twice
    with rec.step("suites/t.py::test_a"):  # e.g. a worker thread finishing after its check
        for i in range(5):
            rec.record_http(method="GET", url=f"http://127.10.20.11/late{i}", status=200, elapsed=0.1)
    rec.record_ssh(target="ssh://smartx@127.10.20.11", command="uptime", exit_status=0, elapsed=0.1)
    assert log.finish() == tmp_path / "evidence" / "run.log"
    sections = EvidenceLogs._parse(log.path)
    test_a = sections["suites/t.py::test_a"]
    assert "/a1" in test_a and "/late4" in test_a and "/late1" not in test_a  # bounded: 3 kept
    assert "较早的 2 条记录已省略" in test_a
    assert "uptime" in sections[NO_STEP]


def test_an_evidence_log_of_a_session_without_exchanges_is_not_written(tmp_path):
    rec, _ = _recorder()
    assert EvidenceLog(tmp_path / "evidence" / "run.log", rec).finish() is None
    assert not (tmp_path / "evidence").exists()

