"""Every CloudTower REST request the suites send, checked against the official OpenAPI spec.

Suites 01-11 run once against the simulator (speed 0, ``--destructive`` so that the maintenance
round trip sends its requests too; a subprocess like the other end-to-end tests); the run's evidence log (every exchange, redacted at capture) is read back, and the body
of each ``POST /v2/api/<operation>`` is validated with jsonschema against the operation's request
schema taken straight from ``../shared/reference/cloudtower-api-4.6.0-openapi.json`` — not
through the simulator's generated tables, so a fault there cannot hide one in the clients. A
multipart form is checked as its fields (the evidence lists them, and each file by name and
size); the operations the spec lacks ([INF]) against ``tower_openapi.INFERRED``. Request bodies
the steps build only under non-default settings (the workload config's VM size) are checked on
their own. The module skips without ``../shared``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tower_openapi import MULTIPART, deref, load_spec, request_content, request_schema, validator

SPEC = load_spec()
if SPEC is None:
    pytest.skip("../shared/reference 中没有 CloudTower OpenAPI 规范：跳过套件请求的规范检查", allow_module_level=True)

from e2e_support import run_suites  # noqa: E402

from voyager.plan.demo import build_demo_plan  # noqa: E402
from voyager.steps import workload  # noqa: E402

pytestmark = pytest.mark.e2e

SUMMARY = re.compile(r"^\[[^\]]+\] POST https://[^/\s]+/v2/api/(?P<op>[\w-]+) → (?P<status>\d+|无响应)")
REQUEST = "  请求 (request): "
TRUNCATED = ("…（已截断", "（省略 ")  # evidence.format_body's marks of a cut body


def tower_requests(log: str) -> list[tuple[str, int, Any]]:
    """``(operation, status, request body)`` of every CloudTower REST exchange of an evidence log;
    the body is the parsed JSON, or the text when the evidence cut it (see ``TRUNCATED``)."""
    out: list[tuple[str, int, Any]] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = SUMMARY.match(line)
        if not m:
            continue
        body: Any = {}
        for follow in lines[i + 1:]:
            if not follow.startswith("  "):
                break
            if follow.startswith(REQUEST):
                text = follow[len(REQUEST):]
                try:
                    body = text if any(mark in text for mark in TRUNCATED) else json.loads(text)
                except ValueError:
                    body = text
        out.append((m["op"], int(m["status"]) if m["status"].isdigit() else 0, body))
    return out


def request_problems(op: str, body: Any) -> list[str]:
    """What in ``body`` the spec's request schema of ``op`` does not allow (empty: it conforms)."""
    schema = request_schema(SPEC, op)
    if schema is None:
        return [] if body in ({}, None) else [f"{op}: the spec gives no request body, the suite sent {body!r}"]
    if isinstance(body, str):
        return [f"{op}: the evidence cut the request, it cannot be checked: {body[:120]}"]
    if request_content(SPEC, op) == MULTIPART:
        body = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in body.items()}
    elif isinstance(body, dict) and deref(SPEC, schema).get("type") == "array":
        schema = deref(SPEC, schema)["items"]  # the captured clients' bare-object form is one item
    return [f"{op}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator(SPEC, schema).iter_errors(body)]


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("tower-requests") / "state"
    run = run_suites(state, "--destructive", suites=["suites/"])
    logs = sorted((state / "evidence").glob("*.log"))
    return run, [r for log in logs for r in tower_requests(log.read_text(encoding="utf-8"))]


def test_the_suites_pass_against_the_validating_simulator(suite_run):
    """01-11 在模拟器上全部通过（模拟器按官方请求模式校验每个 CloudTower REST 请求）。"""
    run, requests = suite_run
    assert run.returncode == 0, run.explain()
    refused = [(op, status) for op, status, _ in requests if status >= 400 or status == 0]
    assert refused == [], f"CloudTower 拒绝了这些请求：{refused}\n{run.explain()}"


def test_every_tower_request_of_the_suites_matches_the_spec(suite_run, capsys):
    """套件（04-11 步）发出的每个 CloudTower REST 请求都符合官方 OpenAPI 规范的请求模式
    （multipart 表单按字段检查；规范外的 [INF] 操作按推断的模式检查）。"""
    _, requests = suite_run
    ops = {op for op, _, _ in requests}
    assert {"login", "connect-cluster", "create-graph", "deploy-cloudtower-application", "upload-elf-file",
            "parse-ovf", "import-vm", "migrate-vm", "delete-vm", "cancel-upload-task",
            "enter-maintenance-mode-precheck", "enter-maintenance-mode", "exit-maintenance-mode"} <= ops, sorted(ops)
    problems = [p for op, _, body in requests for p in request_problems(op, body)]
    with capsys.disabled():
        print(f"\n套件的 CloudTower REST 请求：{len(requests)} 个，{len(ops)} 种操作，不符合规范 {len(problems)} 处")
    assert problems == []


def test_a_vm_size_from_the_workload_config_is_sent_as_the_spec_types_it():
    """工作负载配置指定虚拟机规格（vcpu、memory_mib）时，/import-vm 的 VmImportParams 仍符合规范
    （memory_unit 取 ByteUnit 的 B，数值为整数）。"""
    plan = build_demo_plan()
    spec = workload.plan_test_vms(plan)[0]
    parsed = {"name": "w", "vcpu": 2, "cpu": {"sockets": 2, "cores": 1}, "memory": 2 ** 31, "firmware": "BIOS",
              "disks": [{"name": "disk0", "size": 2 ** 34, "type": "DISK", "bus": "VIRTIO"}], "nics": []}
    params = workload.import_params(spec, "c1", "h1", "v1", parsed, ["u1"], {"vcpu": 4, "memory_mib": 4096})
    assert request_problems("import-vm", [params]) == []
    assert (params["vcpu"], params["memory"], params["memory_unit"]) == (4, 4096 * 2 ** 20, "B")


def test_the_parser_reads_the_evidence_format():
    """证据日志解析：操作名、状态码、请求 JSON；被截断的请求体保留为文本（检查时报告，而不是静默跳过）。"""
    log = ("## suites/test_09_workload.py::test_vm_created[voyager-test-01]\n\n"
           "[2026-12-01 22:49:27.397] POST https://127.10.20.2/v2/api/import-vm → 200 (0.013 s)\n"
           '  请求头 (request headers): {"Authorization": "******"}\n'
           '  请求 (request): [{"name": "voyager-test-01"}]\n'
           '  响应 (response): [{"task_id": "t"}]\n\n'
           "[2026-12-01 22:49:27.417] POST https://127.10.20.2/v2/api/get-tasks → 400 (0.003 s)\n"
           '  请求 (request): {"where": {"id": "x"}, "…": "（省略 4 项 / 4 more keys）"}\n\n'
           "[2026-12-01 22:49:28.000] GET https://127.10.20.10/api/v2/vms → 200 (0.002 s)\n")
    assert tower_requests(log) == [("import-vm", 200, [{"name": "voyager-test-01"}]),
                                   ("get-tasks", 400, '{"where": {"id": "x"}, "…": "（省略 4 项 / 4 more keys）"}')]
    assert request_problems("get-tasks", tower_requests(log)[1][2])[0].startswith("get-tasks: the evidence cut")
    assert request_problems("import-vm", [{"name": "x"}])  # cluster_id, upload_tasks, parsed_ovf missing
