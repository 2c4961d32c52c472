"""voyager.clients.ssh against a paramiko server on 127.0.0.1: commands, stdin,
per-run known hosts (first contact recorded, mismatch refused, strict mode),
passwords only on stdin, evidence redacted."""
import socket
import threading
import time

import paramiko
import pytest

from net_support import dead_port
from voyager.clients import ClientError, CommandError, Endpoints, HostKeyError, SSHClient, TransportError
from voyager.clients.ssh import key_fingerprint
from voyager.evidence import RECORDER
from voyager.plan.demo import build_demo_plan
from voyager.plan.model import MASK, Secret
from voyager.redact import REDACTOR
from voyager.waiters import wait_installer_log

IP = "127.10.20.11"
LOGIN = "Ssh#Login-1"


class _Interface(paramiko.ServerInterface):
    def __init__(self, server):
        self.server = server

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        ok = self.server.users.get(username) == password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self.server.execute, args=(channel, command.decode()), daemon=True).start()
        return True


class SSHServer:
    """A tiny SSH server understanding the few commands the tests send."""

    def __init__(self, *, sudo_nopass=False):
        self.key = paramiko.ECDSAKey.generate()
        self.users = {"smartx": LOGIN}
        self.sudo_nopass = sudo_nopass
        self.commands, self.stdins, self.changed = [], [], {}
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.key)
            self.transports.append(t)
            try:
                t.start_server(server=_Interface(self))
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def execute(self, channel, command):
        self.commands.append(command)
        stdin = b""
        if command == "ignore-stdin":  # never reads its stdin: a writer blocks once the window is full
            time.sleep(3)
            channel.send_exit_status(0)
            channel.close()
            return
        while True:
            chunk = channel.recv(4096)
            if not chunk:
                break
            stdin += chunk
        self.stdins.append(stdin)
        code, out, err = self.answer(command, stdin.decode())
        if out:
            channel.sendall(out.encode())
        if err:
            channel.sendall_stderr(err.encode())
        channel.send_exit_status(code)
        channel.close()

    def answer(self, command, stdin):
        if command.startswith("echo "):
            return 0, command[5:] + "\n", ""
        if command == "cat":
            return 0, stdin, ""
        if command == "fail":
            return 3, "", "boom: disk full\n"
        if command == "sleep":
            time.sleep(2)
            return 0, "", ""
        if command == "big":
            return 0, "x" * 300000, "y" * 300000
        if command == "sudo -n true":
            return (0, "", "") if self.sudo_nopass else (1, "", "sudo: a password is required\n")
        if command in ("sudo -S -p '' chpasswd", "sudo -n chpasswd"):
            lines = stdin.splitlines()
            if command.startswith("sudo -S"):
                if not lines or lines.pop(0) != self.users["smartx"]:
                    return 1, "", "Sorry, try again.\n"
            for line in lines:
                user, _, pw = line.partition(":")
                self.changed[user] = pw
                self.users[user] = pw
            return 0, "", ""
        if command.startswith("tail -n 200 "):
            return 0, "installing...\nInstall Operation Center Successfully\n", ""
        return 127, "", f"{command.split()[0]}: command not found\n"

    def stop(self):
        self.sock.close()
        for t in self.transports:
            t.close()


@pytest.fixture
def server():
    srv = SSHServer()
    yield srv
    srv.stop()


def endpoints(srv):
    return Endpoints.simulated({"ssh": {IP: srv.port}}, build_demo_plan())


def client(srv, tmp_path, **kw):
    return SSHClient(endpoints(srv), IP, "smartx", Secret(LOGIN), known_hosts=tmp_path / "known_hosts", **kw)


def test_run_returns_status_output_and_records_evidence(server, tmp_path):
    with client(server, tmp_path) as ssh, RECORDER.step("ssh-run"):
        r = ssh.run("echo hello")
        assert (r.exit_status, r.stdout, r.stderr, r.ok) == (0, "hello\n", "", True)
        r = ssh.run("fail")
        assert (r.exit_status, r.stderr) == (3, "boom: disk full\n")
        with pytest.raises(CommandError, match="退出码 3") as exc:
            r.check("写入配置")
        assert "写入配置" in str(exc.value) and "disk full" in str(exc.value)
    records = RECORDER.exchanges("ssh-run")
    assert [(e.method, e.url, e.status) for e in records] == [
        ("SSH", f"ssh://smartx@{IP}", 0), ("SSH", f"ssh://smartx@{IP}", 3)]
    assert "echo hello" in records[0].request_body and "hello" in records[0].response_body


def test_stdin_is_sent_and_never_recorded(server, tmp_path):
    with client(server, tmp_path) as ssh, RECORDER.step("ssh-stdin"):
        assert ssh.run("cat", stdin="line 1\nline 2\n").stdout == "line 1\nline 2\n"
        assert ssh.run("cat", stdin=Secret("Stdin#Secret9")).stdout == "Stdin#Secret9"
    text = RECORDER.to_text("ssh-stdin")
    assert "line 1" not in text.split("[stdout]")[0] and "标准输入 14 字节" in text
    assert "Stdin#Secret9" not in text


def test_large_output_on_both_streams(server, tmp_path):
    with client(server, tmp_path) as ssh:
        r = ssh.run("big")
    assert len(r.stdout) == 300000 and len(r.stderr) == 300000


def test_command_timeout(server, tmp_path):
    with client(server, tmp_path) as ssh:
        with pytest.raises(TransportError, match="秒内没有结束"):
            ssh.run("sleep", timeout=0.3)


def test_stdin_a_command_does_not_read_is_bounded_by_the_timeout(server, tmp_path):
    with client(server, tmp_path) as ssh:
        t0 = time.monotonic()
        with pytest.raises(TransportError, match="秒内没有结束"):
            ssh.run("ignore-stdin", stdin=b"x" * (8 << 20), timeout=0.5)
    assert time.monotonic() - t0 < 2.5


def test_first_contact_recorded_under_the_planned_address(server, tmp_path):
    with client(server, tmp_path) as ssh:
        ssh.run("echo a")
    keys = paramiko.HostKeys(str(tmp_path / "known_hosts"))
    assert keys.lookup(IP)[server.key.get_name()] == server.key
    assert keys.lookup("127.0.0.1") is None and keys.lookup(f"[127.0.0.1]:{server.port}") is None
    with client(server, tmp_path) as again:  # same key: accepted
        assert again.run("echo b").ok


def test_changed_host_key_is_refused(server, tmp_path):
    with client(server, tmp_path) as ssh:
        ssh.run("echo a")
    old = server.key
    server.key = paramiko.ECDSAKey.generate()
    with pytest.raises(HostKeyError) as exc:
        client(server, tmp_path).run("echo b")
    msg = str(exc.value)
    assert IP in msg and "不一致" in msg
    assert key_fingerprint(old) in msg and key_fingerprint(server.key) in msg
    assert "echo b" not in server.commands


def test_strict_mode_refuses_unknown_keys_and_accepts_known(server, tmp_path):
    with pytest.raises(HostKeyError, match="严格模式"):
        client(server, tmp_path, strict=True).run("echo strict")
    assert not (tmp_path / "known_hosts").exists()
    with client(server, tmp_path) as ssh:  # record it (trust on first use)
        ssh.run("echo a")
    with client(server, tmp_path, strict=True) as ssh:
        assert ssh.run("echo strict").ok


def test_change_password_passes_passwords_on_stdin_only(server, tmp_path):
    new = Secret("New Pa$$ \"中文\" 1")
    with client(server, tmp_path) as ssh, RECORDER.step("ssh-chpasswd"):
        ssh.change_password("root", new)
        ssh.change_password("smartx", Secret("Second#Pass2"))
        assert ssh.sudo("chpasswd", stdin="other:Third#Pass3\n").ok  # sudo now uses the new password
    assert server.changed == {"root": new.reveal(), "smartx": "Second#Pass2", "other": "Third#Pass3"}
    assert server.commands == ["sudo -n true", "sudo -S -p '' chpasswd", "sudo -S -p '' chpasswd",
                               "sudo -S -p '' chpasswd"]
    assert server.stdins[1] == f"{LOGIN}\nroot:{new.reveal()}\n".encode()
    assert all(LOGIN not in c and "Pa$$" not in c for c in server.commands)
    text = RECORDER.to_text("ssh-chpasswd")
    for secret in (LOGIN, new.reveal(), "Second#Pass2"):
        assert secret not in text
    # the passwords are secrets, the user names are not (not even as fragments in pytest output)
    assert REDACTOR.redact_fragments("修改 127.10.20.11 上 smartx 的密码（user smartx）") == \
        "修改 127.10.20.11 上 smartx 的密码（user smartx）"
    assert "Second#Pass2" not in REDACTOR.redact_fragments("chpasswd smartx:Second#Pass2")


def test_sudo_without_password_when_allowed(tmp_path):
    srv = SSHServer(sudo_nopass=True)
    try:
        with client(srv, tmp_path) as ssh:
            ssh.change_password("root", Secret("NoPass#Sudo1"))
        assert srv.commands == ["sudo -n true", "sudo -n chpasswd"]
        assert srv.stdins[1] == b"root:NoPass#Sudo1\n"
    finally:
        srv.stop()


def test_change_password_validates_input(server, tmp_path):
    ssh = client(server, tmp_path)
    with pytest.raises(ValueError):
        ssh.change_password("root; rm -rf /", Secret("x" * 8))
    with pytest.raises(ValueError, match="换行"):
        ssh.change_password("root", Secret("a\nb-cdefgh"))
    assert server.commands == []


def test_authentication_failure(server, tmp_path):
    bad = SSHClient(endpoints(server), IP, "smartx", Secret("Wrong#Pass1"), known_hosts=tmp_path / "kh")
    with pytest.raises(ClientError, match="SSH 认证失败") as exc:
        bad.run("echo x")
    assert "Wrong#Pass1" not in str(exc.value)


def test_unreachable_ssh(tmp_path):
    e = Endpoints.simulated({"ssh": {IP: dead_port()}}, build_demo_plan())
    from voyager.clients import UnreachableError

    with pytest.raises(UnreachableError, match="SSH"):
        SSHClient(e, IP, "smartx", Secret(LOGIN)).run("echo x")


def test_installer_log_wait_over_ssh(server, tmp_path):
    with client(server, tmp_path) as ssh:
        tail = wait_installer_log(ssh, "/home/cloudtower/nohup.out", "Install Operation Center Successfully",
                                  timeout=10, interval=0.01)
    assert "Successfully" in tail and server.commands[-1] == "tail -n 200 /home/cloudtower/nohup.out"
    assert MASK not in tail
