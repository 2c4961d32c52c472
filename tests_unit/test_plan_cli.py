"""``voyager plan check | show | new``: exit codes, JSON shapes, table, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from voyager.cli import main
from voyager.plan import cells as C

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(["plan", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip_new_demo_then_check_sim(tmp_path, capsys):
    out_file = tmp_path / "demo.xlsx"
    code, out, _ = run(capsys, "new", out_file, "--demo")
    assert code == 0 and out_file.exists() and "127.0.0.0/8" in out
    code, out, _ = run(capsys, "check", out_file, "--sim")
    assert code == 0, out
    assert "结论: 通过" in out


def test_check_without_sim_flags_loopback(demo_plan_file, capsys):
    code, out, _ = run(capsys, "check", demo_plan_file, "--json")
    assert code == 2
    data = json.loads(out)
    assert data["ok"] is False
    (loop,) = [f for f in data["findings"] if f["rule"] == "ip.loopback"]
    assert loop["severity"] == "error" and loop["cell"] == "虚拟网络!H3"
    assert len(loop["cells"]) > 10


def test_check_json_shape(demo_plan_file, capsys):
    code, out, _ = run(capsys, "check", demo_plan_file, "--json", "--sim")
    data = json.loads(out)
    assert code == 0 and set(data) == {"ok", "findings"} and data["ok"] is True
    for f in data["findings"]:
        assert {"severity", "rule", "cell", "message"} <= set(f)
        assert f["severity"] in ("error", "warning", "info")


def test_demo_passes_strict(demo_plan_file, capsys):
    """演示规划表通过 plan check --sim --strict（没有任何警告）。"""
    code, out, _ = run(capsys, "check", demo_plan_file, "--sim", "--strict", "--json")
    assert (code, json.loads(out)) == (0, {"ok": True, "findings": []})


def test_strict_fails_on_warnings(demo_plan_file, capsys):
    wb = openpyxl.load_workbook(demo_plan_file)
    wb[C.HOSTS]["G3"] = "ADMIN"  # the template's BMC password: too short to redact by value
    wb.save(demo_plan_file)
    code, out, _ = run(capsys, "check", demo_plan_file, "--sim", "--strict", "--json")
    data = json.loads(out)
    assert code == 2 and data["ok"] is False
    assert {(f["severity"], f["rule"], f["cell"]) for f in data["findings"]} == {
        ("warning", "password.short", "主机规划!G3")}
    code, _, _ = run(capsys, "check", demo_plan_file, "--sim")
    assert code == 0  # a warning fails only --strict


def _break(path: Path) -> Path:
    wb = openpyxl.load_workbook(path)
    wb[C.HOSTS]["I5"] = "127.10.20.300"
    wb[C.NET]["F9"] = "abc"
    wb[C.MGMT]["E23"] = None
    wb.save(path)
    return path


def test_table_is_grouped_by_sheet(demo_plan_file, capsys):
    code, out, _ = run(capsys, "check", _break(demo_plan_file), "--sim")
    assert code == 2
    lines = out.splitlines()
    net, hosts, mgmt = lines.index("【虚拟网络】"), lines.index("【主机规划】"), lines.index("【集群管理信息】")
    assert net < hosts < mgmt
    i5 = next(i for i, line in enumerate(lines) if "127.10.20.300" in line)
    assert hosts < i5 < mgmt
    assert "错误" in lines[i5] and "I5" in lines[i5] and "ip.syntax" in lines[i5]
    assert any("read.vlan" in line for line in lines[net:hosts])
    assert any("ntp.two" in line for line in lines[mgmt:])
    assert "结论: 有" in out


def test_json_findings_point_at_cells(demo_plan_file, capsys):
    code, out, _ = run(capsys, "check", _break(demo_plan_file), "--sim", "--json")
    found = {(f["rule"], f["cell"]) for f in json.loads(out)["findings"]}
    assert {("ip.syntax", "主机规划!I5"), ("read.vlan", "虚拟网络!F9"), ("ntp.two", "集群管理信息!E22")} <= found


def test_show_json_masks_secrets(demo_plan_file, capsys):
    code, out, _ = run(capsys, "show", demo_plan_file, "--json")
    assert code == 0
    assert C.DEFAULT_PASSWORD not in out
    data = json.loads(out)
    assert set(data["cluster"]) >= {"name", "vip", "serial", "network_arch", "storage_arch", "features",
                                    "version_note"}
    assert set(data["hosts"][0]) >= {"index", "name", "mgmt_ip", "storage_ip", "bmc_ip", "bmc_user",
                                     "ssh_user", "rack", "unit"}
    assert data["hosts"][0]["ssh_password"] == "******"
    assert data["hosts"][0]["bmc_password"] == "******"
    assert data["cloudtower"]["web_password"] == "******"
    assert set(data["networks"]) >= {"mgmt", "extra_mgmt", "storage", "backup", "business"}
    assert data["networks"]["backup"] is None
    assert set(data["networks"]["business"]) >= {"vds", "nics", "bond", "vlans"}
    assert set(data["networks"]["business"]["vlans"][0]) >= {"name", "vlan", "subnet", "gateway"}
    assert set(data["cloudtower"]) >= {"vm_name", "ip", "version", "serial", "organization", "datacenter"}
    for key in ("obs", "backup_service", "er", "ntp", "dns", "test_ip_range"):
        assert key in data
    assert set(data["test_ip_range"]) == {"start", "end"}


def test_show_table(demo_plan_file, capsys):
    code, out, _ = run(capsys, "show", demo_plan_file)
    assert code == 0 and "demo-node-03" in out and C.DEFAULT_PASSWORD not in out


def test_show_real_template(real_template, capsys):
    code, out, _ = run(capsys, "show", real_template, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["cluster"]["name"] == "CN-BJ-SMTX-Prod-Cls01" and data["cluster"]["vip"] == "10.0.20.10"
    assert [h["mgmt_ip"] for h in data["hosts"]] == ["10.0.20.11", "10.0.20.12", "10.0.20.13", "10.0.20.14"]
    assert [v["vlan"] for v in data["networks"]["business"]["vlans"]] == list(range(1120, 1131))
    assert data["cloudtower"]["ip"] == "10.0.20.2"
    assert (data["cloudtower"]["organization"], data["cloudtower"]["datacenter"]) == ("八九实验室", "C89-LAB")
    assert data["ntp"] == ["10.0.0.2", "ntp.c89.fun"] and data["dns"] == ["10.0.0.114", "10.0.0.1"]
    for secret in ("HC!r0cks", "P@ssw0rd!123"):
        assert secret not in out


def test_check_real_template(real_template, capsys):
    code, out, _ = run(capsys, "check", real_template, "--json")
    data = json.loads(out)
    assert code == 2
    assert [(f["rule"], f["cell"]) for f in data["findings"]] == [
        ("bmc.subnet", "主机规划!E3"), ("bmc.subnet", "主机规划!E4"), ("bmc.subnet", "主机规划!E5"),
        ("bmc.subnet", "主机规划!E6"), ("ntp.two", "集群管理信息!E22")]


@pytest.mark.parametrize("case", ["missing", "not_xlsx", "missing_sheet", "directory", "xls",
                                  "corrupt_sheet", "empty", "encrypted"])
def test_bad_input_is_one_chinese_line(tmp_path, capsys, case):
    path = tmp_path / "plan.xlsx"
    if case == "corrupt_sheet":
        from voyager.plan import new_template

        demo = new_template(tmp_path / "demo.xlsx", demo=True)
        with zipfile.ZipFile(demo) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "xl/worksheets/sheet9.xml":  # 主机规划, cut in half
                    data = data[: len(data) // 2]
                dst.writestr(info, data)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "encrypted":  # Excel saves a workbook with an opening password as an OLE file
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024)
    elif case == "not_xlsx":
        path.write_text("hello")
    elif case == "missing_sheet":
        wb = openpyxl.Workbook()
        wb.active.title = C.NET
        wb.save(path)
    elif case == "directory":
        path = tmp_path
    elif case == "xls":
        path = tmp_path / "plan.xls"
        path.write_bytes(b"\xd0\xcf\x11\xe0old excel")
    for command in ("check", "show"):
        code, out, err = run(capsys, command, path)
        assert code == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("错误: ") and "Traceback" not in err
        if case == "corrupt_sheet":
            assert "主机规划" in err
        elif case == "missing_sheet":
            assert "集群管理信息" in err
        elif case == "encrypted":
            assert "打开密码" in err


def test_new_refuses_to_overwrite_a_real_plan(tmp_path, capsys):
    path = tmp_path / "plan.xlsx"
    run(capsys, "new", path)
    before = path.read_bytes()
    code, _, err = run(capsys, "new", path, "--demo")
    assert code == 2 and "已存在" in err and path.read_bytes() == before
    code, _, _ = run(capsys, "new", path, "--demo", "--force")
    assert code == 0 and path.read_bytes() != before


def test_new_demo_can_be_rerun(tmp_path, capsys):
    path = tmp_path / "demo.xlsx"
    assert run(capsys, "new", path, "--demo")[0] == 0
    assert run(capsys, "new", path, "--demo", "--hosts", "5")[0] == 0
    code, out, _ = run(capsys, "show", path, "--json")
    assert len(json.loads(out)["hosts"]) == 5


@pytest.mark.parametrize("argv,needle", [
    (["--demo", "--hosts", "2"], "3 到 16"),
    (["--hosts", "4"], "--demo"),
])
def test_new_bad_options(tmp_path, capsys, argv, needle):
    code, _, err = run(capsys, "new", tmp_path / "x.xlsx", *argv)
    assert code == 2 and needle in err and not (tmp_path / "x.xlsx").exists()


def test_new_bad_output_path(tmp_path, capsys):
    assert run(capsys, "new", tmp_path / "x.txt")[0] == 2
    assert run(capsys, "new", tmp_path / "missing" / "x.xlsx")[0] == 2


def test_plan_without_subcommand_prints_usage(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "check" in out


def test_console_entry_point(tmp_path):
    """``python -m voyager plan ...`` end to end in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    demo = tmp_path / "demo.xlsx"
    new = subprocess.run([sys.executable, "-m", "voyager", "plan", "new", str(demo), "--demo"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert new.returncode == 0, new.stderr
    check = subprocess.run([sys.executable, "-m", "voyager", "plan", "check", str(demo), "--sim", "--strict"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr  # voyager plan new --demo && check --sim --strict


@pytest.mark.parametrize("argv, code", [
    (["plan", "show", "{demo}"], 141), (["plan", "check", "{demo}", "--sim"], 141),
    (["plan", "show", "{demo}", "--json"], 141),
    (["--help"], 0),  # argparse itself ignores a failed write of the help text
])
def test_output_to_a_closed_pipe_ends_quietly(demo_plan_file, argv, code):
    """``voyager plan show … | head -1``：读端已关闭时安静结束（退出码 141 = 128 + SIGPIPE），不打印错误。"""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write fails (EPIPE)
    try:
        proc = subprocess.run([sys.executable, "-m", "voyager", *[a.format(demo=demo_plan_file) for a in argv]],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                              env=dict(os.environ, PYTHONPATH=str(REPO / "lib")))
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (code, "")


def test_show_piped_into_head(demo_plan_file):
    """The shell pipeline of the issue: the first line, then a quiet end."""
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m voyager plan show "
                                         f"'{demo_plan_file}' | head -1; echo rc=$?"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "lib")))
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("规划表: ") and lines[-1] in ("rc=0", "rc=141")
    assert proc.stderr == ""


def test_readme_example_is_the_actual_output(real_template, capsys):
    """The README lists the real template's findings: keep it in step with the code."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rel = "../shared/reference/planning-template-elf-v20250820.xlsx"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        code, out, _ = run(capsys, "check", rel)
    finally:
        os.chdir(cwd)
    assert code == 2
    assert f"$ voyager plan check {rel}\n{out}$ echo $?\n2\n" in readme


def _modules_after(code: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    proc = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_command_registration_imports_no_spreadsheet_code():
    """``voyager --help`` / ``voyager sim`` do not pay for openpyxl, the rules or the writer."""
    loaded = _modules_after("from voyager.cli import build_parser; build_parser()")
    heavy = {"openpyxl", "numpy", "voyager.plan.reader", "voyager.plan.rules", "voyager.plan.template",
             "voyager.plan.writer", "voyager.sim.simulator"}
    assert not heavy & loaded
    assert not {"openpyxl", "voyager.plan.reader"} & _modules_after("from voyager.plan.model import Secret")


def test_plan_check_loads_neither_numpy_nor_the_writer(demo_plan_file):
    loaded = _modules_after(
        f"from voyager.cli import main; main(['plan', 'check', {str(demo_plan_file)!r}, '--sim'])")
    assert "openpyxl" in loaded and "voyager.plan.rules" in loaded
    assert not {"numpy", "voyager.plan.writer", "voyager.plan.template"} & loaded


def test_no_plan_password_in_any_output(tmp_path, capsys):
    """Whatever the command and format, no password of the plan is printed."""
    from voyager.plan import Secret, build_demo_plan, write_plan

    plan = build_demo_plan()
    secrets = ["Bmc-Pw-0001", "Ssh-Pw-0002", "Adm-Pw-0003", "Clu-Pw-0004", "Web-Pw-0005", "Tw-Ssh-0006", "q7Z"]
    plan.hosts[0].bmc_password, plan.hosts[0].ssh_password = Secret(secrets[0]), Secret(secrets[1])
    plan.hosts[1].admin_password, plan.cluster.admin_password = Secret(secrets[2]), Secret(secrets[3])
    plan.cloudtower.web_password, plan.cloudtower.ssh_password = Secret(secrets[4]), Secret(secrets[5])
    plan.hosts[2].ssh_password = Secret(secrets[6])  # too short: a password.short finding
    path = write_plan(plan, tmp_path / "secret.xlsx")
    wb = openpyxl.load_workbook(path)
    wb[C.HOSTS]["M5"] = '=CONCATENATE("Formula-", "Pw-0008")'  # a finding on a password cell
    wb.save(path)
    outputs = []
    for argv in (["check", path], ["check", path, "--json"], ["check", path, "--sim", "--strict"],
                 ["show", path], ["show", path, "--json"]):
        outputs.append("".join(run(capsys, *argv)[1:]))
    text = "\n".join(outputs)
    assert "password.short" in text and "read.formula" in text
    for secret in secrets + ["Formula-", "Pw-0008", C.DEFAULT_PASSWORD]:
        assert secret not in text, secret
