"""The simulated machines' shell interpreter and built-in programs (no network)."""
from __future__ import annotations

import dataclasses

import pytest

from voyager.plan.demo import build_demo_plan
from voyager.sim.ssh import machines as ssh_machines
from voyager.sim.backend.clock import Clock
from voyager.sim.backend.faults import Faults
from voyager.sim.ssh.commands import PROGRAMS
from voyager.sim.ssh.machines import Session
from voyager.sim.ssh.shell import ConnectionDropped, Shell, Stdin, parse
from voyager.sim.backend.world import World

HOST = "127.10.20.11"
PW = "P@ssw0rd!123"


@pytest.fixture
def world():
    return World(build_demo_plan(), clock=Clock(0))


def run(world, command, stdin="", user="smartx"):
    """(status, stdout, stderr) of ``command`` typed by ``user`` on the first host."""
    return Shell(Session(world, HOST, "host", user), PROGRAMS).run(command, Stdin(stdin))


# -- grammar ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, expected", [
    ("echo a; echo b", (0, "a\nb\n", "")),
    ("echo a\necho b\n", (0, "a\nb\n", "")),
    ("true && echo yes || echo no", (0, "yes\n", "")),
    ("false && echo yes || echo no", (0, "no\n", "")),
    ("false; true", (0, "", "")),
    ("true; false", (1, "", "")),
    ("echo 'a && b' \"c;d\"", (0, "a && b c;d\n", "")),
    ("echo a#b # a comment", (0, "a#b\n", "")),
    ("echo '# kept'", (0, "# kept\n", "")),
    ("echo one | cat | tail -n 1", (0, "one\n", "")),
    ("false &", (0, "", "")),
    ("echo x; exit 3; echo not-reached", (3, "x\n", "")),
    ("foo --version", (127, "", "bash: foo: command not found\n")),
    ("/opt/nothing/here", (127, "", "bash: /opt/nothing/here: No such file or directory\n")),
    ("/usr/bin/whoami", (0, "smartx\n", "")),
    ("echo a 2>&1 | cat", (0, "a\n", "")),
    ("cat /nope 2>&1 | cat", (0, "cat: /nope: No such file or directory\n", "")),  # status of the last
    ("cat /nope 2>/dev/null", (1, "", "")),
    ("cat /nope 2>&1 >/dev/null", (1, "cat: /nope: No such file or directory\n", "")),
    ("cat /nope >/dev/null 2>&1", (1, "", "")),
    ("echo hi >&2", (0, "", "hi\n")),
    ("cat <<< 'here string'", (0, "here string\n", "")),
    ("echo -n a; echo -e 'b\\tc'", (0, "ab\tc\n", "")),
    ("printf '%s=%d\\n' a 1 b 2", (0, "a=1\nb=2\n", "")),
])
def test_command_lines(world, command, expected):
    assert run(world, command) == expected


@pytest.mark.parametrize("command", ["echo 'unclosed", "&& echo x", "echo a |", "echo a ||| b", "echo >",
                                     "(echo sub)", "echo a ;; echo b |"])
def test_syntax_errors(world, command):
    status, out, err = run(world, command)
    assert status == 2 and out == "" and "bash:" in err


def test_walkthrough_installer_command_parses_as_one_background_list():
    (only,) = parse("sudo sh /usr/share/smartx/tower/preinstall.sh && sudo nohup sudo "
                    "/usr/share/smartx/tower/installer/binary/installer deploy &")
    assert only.background and only.operators == ["&&"] and len(only.pipelines) == 2


# -- here-documents and files -------------------------------------------------------------------------
def test_heredocs_redirections_and_permissions(world):
    resolv = "nameserver 127.10.0.114\nnameserver 127.10.0.1\n"
    status, _, err = run(world, "cat > /etc/resolv.conf <<EOF\nnameserver 1.1.1.1\nEOF\n")
    assert status == 1 and "Permission denied" in err
    assert run(world, f"sudo sh -c 'cat > /etc/resolv.conf <<EOF\n{resolv}EOF'") == (0, "", "")
    assert run(world, "cat /etc/resolv.conf") == (0, resolv, "")
    assert run(world, "cat <<-'END'\n\tindented $HOME\n\tEND\necho after") == (0, "indented $HOME\nafter\n", "")
    assert run(world, "sudo sh -c 'echo nameserver 9.9.9.9 >> /etc/resolv.conf'")[0] == 0
    assert run(world, "tail -n 1 /etc/resolv.conf")[1] == "nameserver 9.9.9.9\n"
    assert run(world, "echo nameserver 127.10.0.1 | sudo tee /etc/resolv.conf")[1] == "nameserver 127.10.0.1\n"
    assert world.files(HOST)["/etc/resolv.conf"] == "nameserver 127.10.0.1\n"
    status, out, err = run(world, "echo x | tee /etc/resolv.conf")
    assert (status, out) == (1, "x\n") and "tee: /etc/resolv.conf: Permission denied" in err
    assert run(world, "echo mine > notes.txt && cat ~/notes.txt /home/smartx/notes.txt") == (0, "mine\nmine\n", "")
    assert run(world, "cat < notes.txt") == (0, "mine\n", "")
    assert run(world, "cat /root/secret")[2] == "cat: /root/secret: Permission denied\n"
    assert run(world, "cat /etc")[2] == "cat: /etc: Is a directory\n"


def test_file_utilities(world):
    run(world, "printf 'l1\\nl2\\nl3\\nERROR x\\n' > log.txt")
    assert run(world, "head -n 2 log.txt")[1] == "l1\nl2\n"
    assert run(world, "tail -2 log.txt")[1] == "l3\nERROR x\n"
    assert run(world, "tail log.txt")[1].count("\n") == 4
    assert run(world, "grep -c l log.txt")[1] == "3\n"
    assert run(world, "grep -qi error log.txt") == (0, "", "")
    assert run(world, "grep -v l log.txt")[1] == "ERROR x\n"
    assert run(world, "grep nothing log.txt")[0] == 1
    assert run(world, "grep x /missing")[0] == 2
    status, _, err = run(world, "tail -f log.txt")
    assert status == 1 and "tail -n N FILE" in err and "不受模拟器支持" in err
    assert run(world, "tail --follow=name log.txt")[0] == 1
    assert run(world, "test -f log.txt && [ -s log.txt ] && test ! -d log.txt") == (0, "", "")
    assert run(world, "test -e /etc && test -d /etc && [ a = a ] && [ 3 -gt 2 ] && test -n x")[0] == 0
    assert run(world, "test -f /nope")[0] == 1 and run(world, "[ -f log.txt")[0] == 2
    assert run(world, "ls log.txt")[1] == "log.txt\n" and run(world, "ls /nope")[0] == 2
    assert run(world, "rm log.txt && test -f log.txt")[0] == 1
    assert run(world, "rm log.txt")[0] == 1 and run(world, "rm -f log.txt")[0] == 0
    assert run(world, "cd /etc && pwd && cat hostname") == (0, "/etc\ndemo-node-01\n", "")
    assert run(world, "sh -c 'echo nested; exit 4'; echo $?")[1].startswith("nested\n")


def test_scripts_nohup_and_sudo(world):
    run(world, "printf 'echo from script\\nwhoami\\n' > s.sh")
    assert run(world, "sh s.sh") == (0, "from script\nsmartx\n", "")
    assert run(world, "sudo bash s.sh")[1] == "from script\nroot\n"
    assert run(world, "cat s.sh | sudo sh")[1] == "from script\nroot\n"
    assert run(world, "./s.sh")[0] == 126
    status, _, err = run(world, "nohup echo logged &")
    assert status == 0 and "appending output to 'nohup.out'" in err
    assert world.files(HOST)["/home/smartx/nohup.out"] == "logged\n"
    assert run(world, "sudo -n true") == (0, "", "")
    assert run(world, "sudo -S -p '' whoami", stdin=f"{PW}\n")[1] == "root\n"
    assert run(world, "sudo -u smartx whoami")[1] == "smartx\n"
    assert run(world, "sudo nosuch") == (1, "", "sudo: nosuch: command not found\n")
    assert run(world, "sudo")[0] == 1
    assert run(world, "sudo -u nobody true")[2] == "sudo: unknown user nobody\n"
    assert run(world, "whoami; id -u; id -un; id", user="root")[1] == \
        "root\n0\nroot\nuid=0(root) gid=0(root) groups=0(root)\n"
    assert run(world, "id")[1] == "uid=1000(smartx) gid=1000(smartx) groups=1000(smartx),10(wheel)\n"
    assert run(world, "hostname; hostname -I")[1] == f"demo-node-01\n{HOST} \n"


def test_sudo_with_a_password_when_the_profile_requires_one(world, monkeypatch):
    strict = dataclasses.replace(ssh_machines.PROFILES["host"], sudo_nopasswd=False)
    monkeypatch.setitem(ssh_machines.PROFILES, "host", strict)
    assert run(world, "sudo -n true") == (1, "", "sudo: a password is required\n")
    assert "terminal is required" in run(world, "sudo true")[2]
    assert run(world, "sudo -S -p '' whoami", stdin=f"{PW}\n") == (0, "root\n", "")
    assert run(world, "sudo -S whoami", stdin="wrong\n")[2] == "Sorry, try again.\nsudo: 1 incorrect password attempt\n"
    assert run(world, "echo root:Xy-12345 | sudo -S chpasswd", stdin=f"{PW}\n")[0] == 1  # stdin is the pipe


# -- accounts ----------------------------------------------------------------------------------------------
def test_chpasswd(world):
    status, _, err = run(world, "chpasswd", stdin="root:New-Root-1\n")
    assert status == 1 and "cannot lock /etc/passwd" in err
    assert run(world, "sudo chpasswd", stdin="root:New-Root-1\nsmartx:New-Smartx-1\n") == (0, "", "")
    assert world.check_login(HOST, "root", "New-Root-1") and not world.check_login(HOST, "root", PW)
    assert world.check_login(HOST, "smartx", "New-Smartx-1")
    status, _, err = run(world, "sudo chpasswd", stdin="root:Third-1\nghost:x\nsmartx\n", user="root")
    assert status == 1 and "user 'ghost' does not exist" in err and "line 3: missing new password" in err
    assert "changes ignored" in err and world.check_login(HOST, "root", "New-Root-1")
    assert run(world, "chpasswd -e", stdin="root:$6$x", user="root")[0] == 1


def test_passwd(world):
    assert run(world, "passwd root", stdin="a\na\n")[2] == "passwd: Only root can specify a user name.\n"
    assert run(world, "passwd --stdin smartx", stdin="x\n")[2] == "passwd: Only root can do that.\n"
    status, out, err = run(world, "passwd", stdin=f"{PW}\nSelf-Pass-1\nSelf-Pass-1\n")
    assert status == 0 and "all authentication tokens updated successfully" in out and "Current password" in err
    assert world.check_login(HOST, "smartx", "Self-Pass-1")
    assert run(world, "passwd", stdin="wrong\nX-1\nX-1\n")[2].endswith("Authentication token manipulation error\n")
    status, _, err = run(world, "passwd smartx", stdin="Aa-1\nBb-2\n", user="root")
    assert status == 1 and "Sorry, passwords do not match." in err
    assert run(world, "sudo passwd smartx", stdin="Root-Set-1\nRoot-Set-1\n")[0] == 0
    assert world.check_login(HOST, "smartx", "Root-Set-1") and not world.check_login(HOST, "smartx", "Self-Pass-1")
    assert run(world, "passwd --stdin root", stdin="Stdin-Pass-1\n", user="root")[0] == 0
    assert world.check_login(HOST, "root", "Stdin-Pass-1")
    assert run(world, "passwd nobody", user="root")[2] == "passwd: Unknown user name 'nobody'.\n"
    assert run(world, "passwd --stdin root", stdin="\n", user="root")[0] == 1
    assert "Stdin-Pass-1" not in str(world.to_state())


# -- SSH faults ----------------------------------------------------------------------------------------------
def test_ssh_fail_fault_prints_what_the_real_program_prints_and_changes_nothing(world):
    """ssh-fail 让匹配的命令失败：非零退出码、真实程序的报错（chpasswd / passwd 的 PAM 错误），账户不变。"""
    world.faults = Faults("ssh-fail:chpasswd:1,ssh-fail:passwd*:1,ssh-fail:/usr/bin/whoami:1")
    status, out, err = run(world, "sudo chpasswd", stdin="root:New-Root-1\nsmartx:New-Smartx-1\n")
    assert (status, out) == (1, "")
    assert err == ("chpasswd: (user root) pam_chauthtok() failed, error:\nAuthentication token manipulation error\n"
                   "chpasswd: (line 1, user root) password not changed\n"
                   "chpasswd: (user smartx) pam_chauthtok() failed, error:\nAuthentication token manipulation error\n"
                   "chpasswd: (line 2, user smartx) password not changed\n")
    assert world.check_login(HOST, "root", PW) and world.check_login(HOST, "smartx", PW)
    status, out, err = run(world, "echo Stdin-Pass-1 | passwd --stdin root", user="root")
    assert (status, out, err) == (1, "Changing password for user root.\n",
                                  "passwd: Authentication token manipulation error\n")
    assert world.check_login(HOST, "root", PW)
    assert run(world, "/usr/bin/whoami") == (1, "", "whoami: Input/output error\n")
    assert run(world, "sudo chpasswd", stdin="root:New-Root-1\n") == (0, "", "")  # every rule is spent
    assert [r["fired"] for r in world.faults.summary()] == [1, 1, 1]


def test_ssh_drop_fault_stops_the_command_line(world):
    """ssh-drop：连接在匹配的命令开始时中断（也在 sh -c 和 sudo 里），该命令及其后的命令都不执行。"""
    world.faults = Faults("ssh-drop:missing-tool*:1,ssh-drop:chpasswd:1")
    assert run(world, "missing-tool -x") == (127, "", "bash: missing-tool: command not found\n")  # never runs
    with pytest.raises(ConnectionDropped, match="chpasswd"):
        run(world, "sudo sh -c 'chpasswd; echo after'", stdin="root:New-Root-1\n")
    assert world.check_login(HOST, "root", PW)
    assert [r["fired"] for r in world.faults.summary()] == [0, 1]
