"""voyager.redact: one redactor for evidence, logs, exceptions and pytest reports."""
import base64
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import responses

from voyager.clients import ApiError, Endpoints, FisheyeClient, RetryPolicy
from voyager.encoding import encode_host_password, fits_keystream
from voyager.evidence import RECORDER
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import MASK, Secret
from voyager.redact import (
    REDACTOR,
    RedactedError,
    Redactor,
    install_logging,
    is_sensitive_key,
    redact_report,
    secret_forms,
)
from voyager.waiters import WaitTimeout, wait_for

LIB = Path(__file__).resolve().parents[1] / "lib"

# Unusual passwords: quotes, $, backslash, spaces, Chinese; 8 and 64 characters.
P8 = "a'b\"$\\ c"
PCN = "密码a'b\\"
P64 = ('Long "pass" $PATH \\ 中文 空格 ' + "x'y" * 20)[:64]
HOST_PASSWORDS = [P8, PCN, "Pa$$ w0rd\\9"]


def _unusual_plan():
    plan = build_demo_plan()
    for host, pw in zip(plan.hosts, HOST_PASSWORDS):
        host.ssh_password = Secret(pw)
        host.admin_password = Secret(pw)
    plan.cluster.admin_password = Secret(P64)
    plan.cloudtower.web_password = Secret(P64[::-1])
    plan.cloudtower.ssh_password = Secret(P8 + "!")
    return plan


def _forms(pw):
    """The forms a leak could take (computed independently of voyager.redact)."""
    out = {pw, json.dumps(pw)[1:-1], json.dumps(pw, ensure_ascii=False)[1:-1],
           base64.b64encode(pw.encode()).decode(), quote(pw, safe="")}
    if fits_keystream(pw):
        out.add(encode_host_password(pw))
    return out


def _printed_forms(pw):
    """How a password shows up printed by Python/pytest (str and bytes reprs of it
    and of its JSON escaping)."""
    out = set()
    for form in (pw, json.dumps(pw)[1:-1], json.dumps(pw, ensure_ascii=False)[1:-1]):
        out |= {form, repr(form)[1:-1], repr(form.encode())[2:-1]}
    return out


def _assert_no_fragments(text, passwords, n=8):
    """No run of n characters of any printed form of a password: pytest splits and
    truncates long reprs, which must not leave recognisable pieces behind."""
    for pw in passwords:
        for form in _printed_forms(pw):
            pieces = {form[i:i + n] for i in range(len(form) - n + 1)}
            found = [p for p in pieces if p in text]
            assert not found, f"{len(found)} fragment(s) of a password leaked"


def _all_forms(plan):
    return {f for s in plan.secrets() if len(s) >= 6 for f in _forms(s.reveal())}


def _assert_clean(text, plan):
    leaked = sorted(f for f in _all_forms(plan) if f in text)
    assert not leaked, f"{len(leaked)} secret form(s) leaked"


def test_assumptions_about_the_unusual_passwords():
    assert len(P8) == 8 and len(P64) == 64
    assert fits_keystream(P8) and fits_keystream(PCN)
    for ch in ("'", '"', "$", "\\", " "):
        assert ch in P64
    assert "中文" in P64


# -- forms and keys -----------------------------------------------------------------------
def test_every_form_of_a_secret_is_redacted():
    r = Redactor()
    r.add_secret(P8)
    for form in _forms(P8) | {repr(P8), repr(P8.encode()), json.dumps(json.dumps(P8))}:
        assert P8 not in r.redact(f"before {form} after")
        assert form not in r.redact(f"before {form} after")
    assert r.redact("nothing secret here") == "nothing secret here"


def test_secret_forms_cover_the_host_password_encoding():
    forms = secret_forms("P@ssw0rd!123")
    assert "c+G6KvJYsKyQyY4U" in forms
    assert "UEBzc3cwcmQhMTIz" in forms  # base64


@pytest.mark.parametrize("text, hidden", [
    ('{"password": "hunter22", "user": "root"}', "hunter22"),
    ("{'root_password': 'hunter22'}", "hunter22"),
    ('{"repeat":"hunter22"}', "hunter22"),
    ("Authorization: eyJhbGciOi.abc.def", "eyJhbGciOi.abc.def"),
    ("x-smartx-token: df91526d34a94dc9", "df91526d34a94dc9"),
    ("GET /api?token=abc123&x=1", "abc123"),
    ("Set-Cookie: sid=abc123; Path=/", "sid=abc123"),
    ("login password=hunter22 done", "hunter22"),
    ("Config(ssh_password='hunter22')", "hunter22"),
    ('{\\"password\\":\\"hunter22\\"}', "hunter22"),
])
def test_sensitive_keys_are_masked_whatever_the_value(text, hidden):
    out = Redactor().redact(text)
    assert hidden not in out and MASK in out


def test_url_query_after_a_scheme_is_masked():
    out = Redactor().redact("GET https://127.10.20.11/api/v3/sessions?token=abc&x=1 -> 200")
    assert out == "GET https://127.10.20.11/api/v3/sessions?token=******&x=1 -> 200"


def test_redaction_is_linear_on_hostile_input():
    import time

    r = Redactor()
    r.add_secret("Linear#Secret1")
    start = time.monotonic()
    for text in (".".join("1" * 200_000), "a='" * 100_000, "password" * 100_000, "x" * 1_000_000):
        r.redact(text)
    assert time.monotonic() - start < 5


def test_redact_obj_masks_keys_and_secrets():
    r = Redactor()
    r.add_secret("topsecret!")
    obj = {"Authorization": "tok", "X-SmartX-Token": "t", "data": [{"password": "x", "name": "topsecret!"}],
           "host_passwords": [{"hostname": "n1", "password": "abc"}], "secret": Secret("s"), "n": 3}
    out = r.redact_obj(obj)
    assert out["Authorization"] == MASK and out["X-SmartX-Token"] == MASK
    assert out["data"] == [{"password": MASK, "name": MASK}]
    assert out["host_passwords"] == [{"hostname": "n1", "password": MASK}]
    assert out["secret"] == MASK and out["n"] == 3
    assert obj["Authorization"] == "tok"  # a copy, not in place
    assert is_sensitive_key("ssh_password") and is_sensitive_key("access_token")
    assert not is_sensitive_key("password_updated_at") and not is_sensitive_key("task_id")


def test_short_password_is_not_redacted_by_value_but_in_secret_fields():
    plan = build_demo_plan()
    plan.hosts[0].ssh_password = Secret("ab12")
    r = Redactor()
    r.add_plan(plan)
    assert r.knows("ab12")
    assert r.redact("table ab12 cell") == "table ab12 cell"  # no by-value redaction
    assert r.redact("ADMIN user") == "ADMIN user"  # the BMC user name is no secret
    assert "ab12" not in r.redact('{"password": "ab12"}')
    assert "ab12" not in r.redact("password=ab12")
    assert r.redact_obj({"ssh_password": "ab12"}) == {"ssh_password": MASK}
    # its encoded forms are long and distinctive: they are redacted by value
    assert encode_host_password("ab12") not in r.redact("x " + encode_host_password("ab12"))


def test_redacted_error_and_exception_helper():
    REDACTOR.add_secret("ErrPass#77")
    err = RedactedError("登录失败 ErrPass#77")
    assert "ErrPass#77" not in str(err)
    assert "ErrPass#77" not in REDACTOR.redact_exception(ValueError("bad ErrPass#77"))


# -- logging -----------------------------------------------------------------------------------
def test_logging_filter_redacts_message_args_and_traceback():
    install_logging()
    REDACTOR.add_secret("LogPass#123")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after install: the record factory covers it
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("voyager.test.redact")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("password is %s", "LogPass#123")
        log.info("body %s", {"password": "short"})
        try:
            raise RuntimeError("boom LogPass#123")
        except RuntimeError:
            log.exception("failed with %s", "LogPass#123")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "LogPass#123" not in out and "short" not in out
    assert out.count(MASK) >= 3 and "RuntimeError" in out


def test_install_logging_is_idempotent():
    install_logging()
    factory = logging.getLogRecordFactory()
    install_logging()
    assert logging.getLogRecordFactory() is factory


# -- pytest report objects ----------------------------------------------------------------------
def test_fragments_of_a_secret_are_masked_in_report_text():
    r = Redactor()
    secret = "Fragment-Secret-Value-0123456789"
    r.add_secret(secret)
    split = """(b'{"pw": "Fragment-Secret-Val'\n b'ue-0123456789"}')"""
    out = r.redact_fragments(split)
    assert "Fragment-Secret" not in out and "0123456789" not in out and MASK in out
    assert r.redact_fragments("ordinary text") == "ordinary text"


def test_assertion_explanation_hides_secrets():
    from voyager.redact import assertrepr_compare

    r = Redactor()
    r.add_secret("Compare-Secret-1")
    lines = assertrepr_compare("==", {"body": b"x Compare-Secret-1 y" * 30}, {}, r)
    assert lines and all("Compare-Secret" not in line for line in lines)
    assert assertrepr_compare("==", 1, 2, r) is None  # no secret: pytest's own explanation


def test_redact_report_handles_every_longrepr_shape():
    REDACTOR.add_secret("RepPass#42")

    class Crash:
        path, lineno, message = "t.py", 3, "AssertionError: RepPass#42"

    class Repr:
        reprcrash = Crash()

        def toterminal(self, tw):
            tw.line("E   assert 'RepPass#42' == 'x'")

        def __str__(self):
            return "E   assert 'RepPass#42' == 'x'"

    class Report:
        longrepr = Repr()
        sections = [("Captured stdout call", "RepPass#42\n")]

    rep = redact_report(Report())
    assert "RepPass#42" not in str(rep.longrepr)
    assert "RepPass#42" not in rep.longrepr.reprcrash.message
    assert "RepPass#42" not in rep.sections[0][1]
    rep2 = Report()
    rep2.longrepr = ("f.py", 1, "skip RepPass#42")
    assert "RepPass#42" not in redact_report(rep2).longrepr[2]


# -- acceptance: a plan with unusual passwords through every output -----------------------------
def _endpoints(plan):
    return Endpoints.live(plan, retry=RetryPolicy(backoff=0), ca_bundle=_ca_bundle())


def _ca_bundle():
    import certifi

    return certifi.where()


@responses.activate
def test_acceptance_recorded_exchange_log_and_exception(caplog):
    plan = _unusual_plan()
    REDACTOR.add_plan(plan)
    install_logging()
    host = plan.hosts[0].mgmt_ip
    step = "acceptance-redaction"
    RECORDER.clear(step)
    # the server echoes what it got: the worst case for evidence
    responses.post(f"https://{host}/api/v3/users:setupRoot",
                   json={"id": "root", "password": P64, "repeat": P64})
    responses.post(f"https://{host}/api/v3/sessions", json={"token": "tok-" + "f" * 28, "user_id": "root"})
    responses.post(f"http://{host}/api/v2/deployment/cluster",
                   json={"ec": "REST_FORM_ERROR", "error": {"msg": f"bad password {P8}",
                                                            "detail": {"host_passwords": [PCN, P64]}}},
                   status=400)
    client = FisheyeClient(_endpoints(plan), host)
    body = {"cluster_name": "c", "host_passwords": [
        {"hostname": h.name, "password": encode_host_password(h.ssh_password.reveal())} for h in plan.hosts]}
    with RECORDER.step(step), caplog.at_level(logging.INFO):
        client.setup_root(plan.cluster.admin_password)
        client.login("root", plan.cluster.admin_password)
        with pytest.raises(ApiError) as exc:
            client.deployment("POST", "/api/v2/deployment/cluster", json=body)
        logging.getLogger("voyager.test").info("passwords %s %s %s", P8, PCN, P64)
        logging.getLogger("voyager.test").info("encoded %s", encode_host_password(PCN))
        with pytest.raises(WaitTimeout) as waited:
            wait_for("something", lambda: {"password": P64, "note": P8}, lambda s: False, 0, interval=0,
                     sleep=lambda s: None)
    evidence = RECORDER.to_text(step)
    assert len(RECORDER.exchanges(step)) == 3
    assert "REST_FORM_ERROR" in evidence and MASK in evidence
    for text in (evidence, caplog.text, str(exc.value), repr(exc.value.detail), str(waited.value),
                 json.dumps([e.to_dict() for e in RECORDER.exchanges(step)], ensure_ascii=False)):
        _assert_clean(text, plan)
    assert "REST_FORM_ERROR" in str(exc.value) and exc.value.status == 400
    # and the wire did carry the real values (redaction is on output, not on the request)
    sent = responses.calls[0].request.body.decode("utf-8")
    assert json.loads(sent)["password"] == P64


CONFTEST = '''
import json, os
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import Secret
from voyager.redact import REDACTOR, install_logging, report_redaction_plugin

PW = json.loads(open(os.environ["VOYAGER_TEST_PASSWORDS"], encoding="utf-8").read())

def make_plan():
    plan = build_demo_plan()
    for host, pw in zip(plan.hosts, PW["hosts"]):
        host.ssh_password = Secret(pw)
        host.admin_password = Secret(pw)
    plan.cluster.admin_password = Secret(PW["p64"])
    return plan

def pytest_configure(config):
    REDACTOR.add_plan(make_plan())
    install_logging()
    config.pluginmanager.register(report_redaction_plugin(), "voyager-redact")
'''

FAILING_TESTS = '''
import json, logging
import responses
from conftest import make_plan, PW
from voyager.clients import Endpoints, FisheyeClient, RetryPolicy

@responses.activate
def test_request_body_assertion():
    plan = make_plan()
    ip = plan.hosts[0].mgmt_ip
    responses.post(f"http://{ip}/api/v2/deployment/cluster", json={"ec": "EOK", "data": {}})
    client = FisheyeClient(Endpoints.live(plan, retry=RetryPolicy(backoff=0)), ip)
    client.deployment("POST", "/api/v2/deployment/cluster",
                      json={"root_password": plan.cluster.admin_password, "again": PW["p64"],
                            "hosts": [h.ssh_password for h in plan.hosts]})
    body = responses.calls[0].request.body
    assert body == b"{}"

@responses.activate
def test_api_error_carrying_the_password():
    plan = make_plan()
    ip = plan.hosts[1].mgmt_ip
    responses.get(f"http://{ip}/api/v2/deployment/host",
                  json={"ec": "EBAD", "error": {"msg": "wrong " + PW["hosts"][1]}}, status=400)
    client = FisheyeClient(Endpoints.live(plan, retry=RetryPolicy(backoff=0)), ip)
    client.deployment("GET", "/api/v2/deployment/host")

def test_printed_and_logged():
    print("stdout", PW["hosts"][0], PW["p64"])
    logging.getLogger("t").warning("log %s", PW["hosts"][2])
    assert PW["hosts"][0] == "something else"
'''


def test_acceptance_pytest_failure_output_and_junit(tmp_path):
    plan = _unusual_plan()
    pw_file = tmp_path / "passwords.json"
    pw_file.write_text(json.dumps({"hosts": HOST_PASSWORDS, "p64": P64}), encoding="utf-8")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (proj / "test_leak.py").write_text(FAILING_TESTS, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    env = dict(os.environ, VOYAGER_TEST_PASSWORDS=str(pw_file), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(LIB), str(proj)]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-l", "-vv", "-rA",
         f"--junitxml={junit}", "test_leak.py"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert "3 failed" in output
    assert "EBAD" in output and MASK in output
    xml = junit.read_text(encoding="utf-8")
    assert "test_request_body_assertion" in xml and "EBAD" in xml
    # the only place the passwords exist is the input file itself
    hosts_plan = build_demo_plan()
    for host, pw in zip(hosts_plan.hosts, HOST_PASSWORDS):
        host.ssh_password = Secret(pw)
    hosts_plan.cluster.admin_password = Secret(P64)
    _assert_clean(output, hosts_plan)
    _assert_clean(xml, hosts_plan)
    _assert_no_fragments(output, HOST_PASSWORDS + [P64])
    _assert_no_fragments(xml, HOST_PASSWORDS + [P64])


CLIENT_FAILURES = '''
import socket
import responses
from voyager.clients import Endpoints, FisheyeClient, RetryPolicy, TowerClient
from voyager.plan.model import Secret

PW = open("PW.txt", encoding="utf-8").read()


def dead():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unreachable():
    return Endpoints.simulated({"http": f"http://127.0.0.1:{dead()}", "https": f"https://127.0.0.1:{dead()}"},
                               retry=RetryPolicy(backoff=0, connect=0))


def test_post_to_an_unreachable_host():
    FisheyeClient(unreachable(), "127.10.20.11").deployment(
        "POST", "/api/v2/deployment/cluster", json={"host_passwords": [{"password": Secret(PW)}]})


def test_login_over_unreachable_tls():
    FisheyeClient(unreachable(), "127.10.20.11").login("root", Secret(PW))


@responses.activate
def test_tower_login_refused():
    responses.post("http://127.10.20.2/v2/api/login", json={"message": "bad credentials"}, status=400)
    TowerClient(Endpoints.live(allowed=["127.10.20.2"]), "127.10.20.2", service="tower_http").login(
        "root", Secret(PW))
'''


def test_client_frames_hold_no_bare_secret(tmp_path):
    """Even without the report plugin, with --tb=long and --showlocals, a failing
    client call shows no password: the clients keep it in Secret objects and the
    frames holding the wire body are hidden from tracebacks."""
    (tmp_path / "PW.txt").write_text(P64, encoding="utf-8")
    (tmp_path / "test_client_failures.py").write_text(CLIENT_FAILURES, encoding="utf-8")
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONPATH=str(LIB))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=long", "-l", "-vv",
                          "test_client_failures.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    output = run.stdout + run.stderr
    assert "3 failed" in output, output[-2000:]
    assert "UnreachableError" in output and "bad credentials" in output
    _assert_no_fragments(output, [P64])


# -- code is not a secret (issue 8 item 9) --------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "    if not password:\n        raise StepError(f\"规划表未填写集群管理员密码（{cell}）\")",
    "def login(self, user: str, password: Secret) -> dict[str, Any]:",
    "def __init__(self, endpoints: Endpoints, ip: str, user: str, password: Secret,",
    "    self._token: Optional[Secret] = None",
    "def login(self, username: Any, password: Any, source: Any = \"LOCAL\") -> str:",
    "        token = self._new_token()",
    "    token = token[7:].strip()",
    "    password = require_str(params, \"password\")",
    "    client.connect(self.ip, port=22, username=self.user, password=self._password.reveal(), sock=sock,",
    "    login(user, password=password, token=self.token)",
    "    DEFAULT_HOST_PASSWORD = cells.DEFAULT_HOST_PASSWORD_AFTER_DEPLOY",
    "    user, password = plan.cluster.admin_user or \"root\", plan.cluster.admin_password",
    "    return password == default",
    "    elif token == \"session\":",
    "    self._token = None",
    "mutation createRootUser($root_password: String!, $now: DateTime!) { password: $root_password }",
    "chpasswd: cannot lock /etc/passwd; try again later.",
    '{"username": "root", "password": "", "email": "root@test.com"}',
])
def test_source_code_and_messages_are_not_garbled(line):
    """脱敏只替换密码和令牌的值：回溯中的源码（raise StepError、password: Secret、赋值与调用）原样保留。"""
    r = Redactor()
    r.add_secrets([P8, P64, "Root-Pass#1", "x7$Qm!2zK-Tk"])
    assert r.redact(line) == line
    # pieces of a secret are masked in pytest output; these secrets share no 6 characters with code
    # (P64 does: it contains '"pass" ', so a fragment of it is masked wherever the text shows one)
    r = Redactor()
    r.add_secrets(["Root-Pass#1", "x7$Qm!2zK-Tk"])
    assert r.redact_fragments(line) == line


@pytest.mark.parametrize("text, hidden", [
    ("password: hunter22", "hunter22"),
    ("password = hunter22", "hunter22"),
    ("login ok token=abc123, user=root", "abc123"),
    ("x-smartx-token: Abc123def", "Abc123def"),
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig", "eyJhbGciOi"),
    ("token=eyJhbGciOi.eyJzdWIi.sig&x=1", "eyJhbGciOi"),
    ("    if not password:\n        password = hunter22", "hunter22"),
    ("password: Secret42", "Secret42"),
    ("password=None2", "None2"),
    ("token: self_made-token", "self_made-token"),
])
def test_values_beside_code_shapes_are_still_masked(text, hidden):
    out = Redactor().redact(text)
    assert hidden not in out and MASK in out


def test_a_registered_secret_is_masked_even_where_code_is_kept():
    r = Redactor()
    r.add_secret("Root-Pass#1")
    assert r.redact("    check(password=Root-Pass#1)") == f"    check(password={MASK})"
    assert r.redact("password: Secret  # was Root-Pass#1") == f"password: Secret  # was {MASK}"


CODE_TRACEBACK_TEST = '''
from conftest import PW
from voyager.plan.model import Secret


class StepError(Exception):
    pass


def check(user: str, password: Secret, token=None) -> None:
    expected = PW["p64"]
    if not password:
        raise StepError("no password")
    if password.reveal() != expected:
        raise StepError(f"wrong password {password.reveal()} for {user}")


def test_step_error_traceback():
    check("root", password=Secret(PW["hosts"][0]), token=None)
'''


def test_pytest_traceback_keeps_the_source_and_hides_the_secret(tmp_path):
    """pytest 的失败回溯（--tb=long -l）保留源码行（raise StepError、password: Secret），只隐藏密码本身。"""
    pw_file = tmp_path / "passwords.json"
    pw_file.write_text(json.dumps({"hosts": HOST_PASSWORDS, "p64": P64}), encoding="utf-8")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (proj / "test_code.py").write_text(CODE_TRACEBACK_TEST, encoding="utf-8")
    env = dict(os.environ, VOYAGER_TEST_PASSWORDS=str(pw_file), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(LIB), str(proj)]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=long", "-l",
                          "test_code.py"], cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert "1 failed" in output, output[-3000:]
    for source in ('        raise StepError("no password")',
                   '>           raise StepError(f"wrong password {password.reveal()} for {user}")',
                   "def check(user: str, password: Secret, token=None) -> None:",
                   "    if not password:", "    if password.reveal() != expected:"):
        assert source in output, source
    assert f"StepError: wrong password {MASK} for root" in output
    _assert_no_fragments(output, HOST_PASSWORDS + [P64])
