"""SSH to planned machines (paramiko), with per-run known hosts.

* The TCP connection comes from the resolver (``Endpoints.ssh_socket``); host keys
  are stored under the *planned* address in the run's known-hosts file: the
  first contact records the key, a later different key is refused
  (:class:`HostKeyError`), ``strict=True`` (``--ssh-strict``) refuses unknown keys.
* Passwords never appear on a command line: :meth:`SSHClient.sudo` feeds the
  login password to ``sudo -S`` on stdin, :meth:`SSHClient.change_password`
  feeds ``user:password`` to ``chpasswd`` on stdin.
* Every command is recorded as evidence (command, exit status, output — redacted;
  stdin only by size).
* A command declared ``idempotent`` (a read: ``cat``, ``tail``) whose channel or
  connection drops before its exit status arrives is run once more on a new
  connection (:data:`IDEMPOTENT_RETRIES`), like an idempotent HTTP call; any other
  command is never resent (the caller decides, from what it observes).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import paramiko

from voyager.clients.endpoints import Endpoints
from voyager.clients.errors import ClientError, CommandError, HostKeyError, TransportError
from voyager.evidence import RECORDER
from voyager.plan.model import Secret
from voyager.redact import REDACTOR

LOG = logging.getLogger(__name__)

MAX_OUTPUT = 32 * 1024 * 1024  # bytes kept per stream
IDEMPOTENT_RETRIES = 1  # an idempotent command is resent this often after a dropped channel
_USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]*$")
_known_hosts_lock = threading.Lock()


class _ChannelDropped(Exception):
    """The channel or connection dropped before the command's exit status (wraps the
    :class:`TransportError` the caller gets when the command is not resent)."""

    def __init__(self, error: TransportError):
        super().__init__(str(error))
        self.error = error


def key_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:<base64>`` fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    command: str = ""  # redacted, for messages

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self, what: str = "") -> "CommandResult":
        """Return self, or raise :class:`CommandError` for a non-zero exit status."""
        if self.ok:
            return self
        stderr = REDACTOR.redact_window(self.stderr.strip(), 800, tail=True)[-800:]
        label = what or self.command
        raise CommandError(
            f"远程命令失败（退出码 {self.exit_status}）：{label}" + (f"；stderr: {stderr}" if stderr else "")
            + f" (remote command failed with exit status {self.exit_status})",
            self,
        )


class _FirstUsePolicy(paramiko.MissingHostKeyPolicy):
    """Unknown host key: record it (trust on first use) or, strict, refuse it."""

    def __init__(self, known_hosts: Optional[Path], strict: bool):
        self.known_hosts = known_hosts
        self.strict = strict

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fp = key_fingerprint(key)
        if self.strict:
            where = f"已知主机文件 {self.known_hosts}" if self.known_hosts else "已知主机文件（未提供）"
            raise HostKeyError(
                f"{hostname} 的 SSH 主机密钥未知（{key.get_name()} {fp}），严格模式（--ssh-strict）拒绝连接。"
                f"请确认密钥后把它加入{where}。 (unknown SSH host key refused in strict mode)"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.known_hosts is not None:
            with _known_hosts_lock:
                keys = paramiko.HostKeys()
                if self.known_hosts.exists():
                    keys.load(str(self.known_hosts))
                keys.add(hostname, key.get_name(), key)
                self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
                keys.save(str(self.known_hosts))
        LOG.info("首次连接 %s，已记录 SSH 主机密钥 %s %s (trust on first use)", hostname, key.get_name(), fp)


class _RegisteredParts(Secret):
    """Stdin made of secrets already registered with the redactor and ordinary words
    (``user:password``): registered whole, its fragments would mask the user name
    wherever pytest output shows it."""

    __slots__ = ()


def _stdin_bytes(stdin: Any) -> bytes:
    __tracebackhide__ = True
    if stdin is None:
        return b""
    if isinstance(stdin, Secret):
        if not isinstance(stdin, _RegisteredParts):
            REDACTOR.add_secret(stdin)  # in case the command echoes it
        stdin = stdin.reveal()
    if isinstance(stdin, str):
        return stdin.encode("utf-8")
    return bytes(stdin)


class _CommandTimeout(Exception):
    pass


class SSHClient:
    """SSH session to planned address ``ip`` as ``user`` (password auth)."""

    def __init__(self, endpoints: Endpoints, ip: str, user: str, password: Secret,
                 known_hosts: Optional[Path | str] = None, strict: bool = False, *,
                 connect_timeout: Optional[float] = None, auth_timeout: float = 30.0):
        self.endpoints = endpoints
        self.ip = endpoints.check_target(ip)
        self.user = user
        self._password = password if isinstance(password, Secret) else Secret(password)
        REDACTOR.add_secret(self._password)
        self.known_hosts = Path(known_hosts) if known_hosts else None
        self.strict = strict
        self.connect_timeout = endpoints.timeouts.connect if connect_timeout is None else connect_timeout
        self.auth_timeout = auth_timeout
        self._client: Optional[paramiko.SSHClient] = None
        self._sudo_nopass: Optional[bool] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SSHClient({self.user}@{self.ip})"

    @property
    def target(self) -> str:
        return f"ssh://{self.user}@{self.ip}"

    # -- connection ----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the session (idempotent); checks the host key."""
        __tracebackhide__ = True
        with self._lock:
            if self._client is not None:
                transport = self._client.get_transport()
                if transport is not None and transport.is_active():
                    return
                self._client.close()
                self._client = None
            sock = self.endpoints.ssh_socket(self.ip, timeout=self.connect_timeout)
            client = paramiko.SSHClient()
            if self.known_hosts is not None and self.known_hosts.exists():
                with _known_hosts_lock:
                    client.get_host_keys().load(str(self.known_hosts))
            client.set_missing_host_key_policy(_FirstUsePolicy(self.known_hosts, self.strict))
            error: Optional[ClientError] = None
            try:
                client.connect(self.ip, port=22, username=self.user, password=self._password.reveal(), sock=sock,
                               timeout=self.connect_timeout, banner_timeout=self.connect_timeout + 10,
                               auth_timeout=self.auth_timeout, look_for_keys=False, allow_agent=False)
            except paramiko.BadHostKeyException as exc:
                error = HostKeyError(
                    f"{self.ip} 的 SSH 主机密钥与首次连接时记录的不一致，已拒绝连接"
                    f"（记录的 {exc.expected_key.get_name()} {key_fingerprint(exc.expected_key)}，"
                    f"当前的 {exc.key.get_name()} {key_fingerprint(exc.key)}，"
                    f"记录文件 {self.known_hosts or '-'}）。如果主机确实重装过，请删除记录文件中该地址的条目。"
                    " (SSH host key changed since first contact)"
                )
            except HostKeyError as exc:
                error = exc
            except paramiko.AuthenticationException:
                error = ClientError(f"SSH 认证失败：{self.user}@{self.ip}，请检查规划表中的用户名和密码"
                                    f" (SSH authentication failed)")
            except (paramiko.SSHException, OSError, EOFError) as exc:
                error = TransportError(f"SSH 连接 {self.user}@{self.ip} 失败：{REDACTOR.redact_exception(exc)}"
                                       f" (SSH connection failed)", target=self.target)
            if error is not None:
                client.close()
                sock.close()
                RECORDER.record_ssh(target=self.target, command="(connect)", exit_status=None, elapsed=0.0,
                                    error=str(error))
                raise error
            self._client = client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> "SSHClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------
    def run(self, cmd: str, stdin: Any = None, timeout: float = 120.0, *, idempotent: bool = False) -> CommandResult:
        """Run ``cmd``; ``stdin`` (str, bytes or Secret) is written then closed.
        Returns the exit status and decoded output; a command running longer than
        ``timeout`` seconds raises :class:`TransportError`. ``idempotent=True`` (a read)
        resends the command on a new connection when the channel drops before its
        exit status (a timeout is never resent)."""
        __tracebackhide__ = True
        for attempt in range(IDEMPOTENT_RETRIES + 1 if idempotent else 1):
            try:
                return self._run_once(cmd, stdin, timeout)
            except _ChannelDropped as exc:
                if attempt >= (IDEMPOTENT_RETRIES if idempotent else 0):
                    raise exc.error from None
                LOG.warning("%s：%s 的 SSH 通道断开，重新连接后再运行一次（只读命令）", self.target, exc.error)
        raise AssertionError("unreachable")

    def _run_once(self, cmd: str, stdin: Any, timeout: float) -> CommandResult:
        __tracebackhide__ = True
        self.connect()
        data = _stdin_bytes(stdin)
        shown = REDACTOR.redact(cmd)
        started, t0 = time.time(), time.monotonic()
        assert self._client is not None
        chan = None
        try:
            transport = self._client.get_transport()
            if transport is None:
                raise paramiko.SSHException("no transport")
            chan = transport.open_session(timeout=self.connect_timeout)
            deadline = time.monotonic() + timeout
            chan.settimeout(timeout)  # a command that never reads its stdin cannot block the write
            chan.exec_command(cmd)
            if data:
                try:
                    chan.sendall(data)
                except socket.timeout:
                    raise _CommandTimeout() from None
                except OSError:
                    if not chan.closed:
                        raise
                    # The program ended without reading all of its stdin and the server closed the
                    # channel (sshd does not wait for our EOF). Like ssh(1), drop the rest: the exit
                    # status and output collected below say what happened.
                    LOG.debug("%s: %s ended before reading its stdin", self.target, shown)
            chan.shutdown_write()
            out, err = self._collect(chan, deadline)
            status = chan.recv_exit_status()
            if status == -1:  # paramiko's "none received": the connection ended before the command did
                raise paramiko.SSHException("connection closed before the command's exit status")
        except _CommandTimeout:
            error = TransportError(f"命令在 {timeout} 秒内没有结束：{shown}（{self.target}）(command timed out)",
                                   target=self.target)
            RECORDER.record_ssh(target=self.target, command=shown, exit_status=None, elapsed=time.monotonic() - t0,
                                stdin_bytes=len(data), error=str(error), started=started)
            raise error from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            why = REDACTOR.redact_exception(exc) if str(exc) else f"连接已断开（{type(exc).__name__}）"
            error = TransportError(f"SSH 命令执行失败（{self.target}）：{why}：{shown}"
                                   f" (SSH channel failed)", target=self.target)
            RECORDER.record_ssh(target=self.target, command=shown, exit_status=None, elapsed=time.monotonic() - t0,
                                stdin_bytes=len(data), error=str(error), started=started)
            raise _ChannelDropped(error) from None
        finally:
            if chan is not None:
                chan.close()
        result = CommandResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), shown)
        RECORDER.record_ssh(target=self.target, command=shown, exit_status=status, elapsed=time.monotonic() - t0,
                            stdout=result.stdout, stderr=result.stderr, stdin_bytes=len(data), started=started)
        return result

    @staticmethod
    def _collect(chan: paramiko.Channel, deadline: float) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        while True:
            progressed = False
            if chan.recv_ready():
                chunk = chan.recv(65536)
                if len(out) < MAX_OUTPUT:
                    out += chunk
                progressed = True
            if chan.recv_stderr_ready():
                chunk = chan.recv_stderr(65536)
                if len(err) < MAX_OUTPUT:
                    err += chunk
                progressed = True
            if progressed:
                continue
            if chan.exit_status_ready() or chan.closed:
                if not chan.recv_ready() and not chan.recv_stderr_ready():
                    return bytes(out), bytes(err)
                continue
            if time.monotonic() > deadline:
                raise _CommandTimeout()
            select.select([chan], [], [], 0.1)

    def sudo(self, cmd: str, stdin: Any = None, timeout: float = 120.0, *, idempotent: bool = False) -> CommandResult:
        """Run ``cmd`` (a single command) as root. ``sudo -S`` reads the login password
        from stdin when sudo needs one (checked once with ``sudo -n true``). ``idempotent``
        as for :meth:`run`."""
        __tracebackhide__ = True
        if self.user == "root":
            return self.run(cmd, stdin=stdin, timeout=timeout, idempotent=idempotent)
        if self._sudo_nopass is None:
            self._sudo_nopass = self.run("sudo -n true", timeout=min(timeout, 30.0), idempotent=True).ok
        if self._sudo_nopass:
            return self.run(f"sudo -n {cmd}", stdin=stdin, timeout=timeout, idempotent=idempotent)
        feed = _RegisteredParts(self._password.reveal() + "\n" + _stdin_bytes(stdin).decode("utf-8", "replace"))
        return self.run(f"sudo -S -p '' {cmd}", stdin=feed, timeout=timeout, idempotent=idempotent)

    def change_password(self, user: str, new: Secret, *, timeout: float = 60.0) -> CommandResult:
        """Set ``user``'s password with ``chpasswd`` (``user:password`` on stdin)."""
        __tracebackhide__ = True
        if not _USER_RE.match(user or ""):
            raise ValueError(f"用户名 {user!r} 不合法 (invalid user name)")
        if not new:
            raise ValueError(f"{user} 的新密码为空 (empty password)")
        if "\n" in new.reveal() or "\r" in new.reveal():
            raise ValueError(f"{user} 的新密码包含换行符，chpasswd 无法设置 (password contains a newline)")
        REDACTOR.add_secret(new)
        line = _RegisteredParts(f"{user}:{new.reveal()}\n")
        result = self.sudo("chpasswd", stdin=line, timeout=timeout)
        result.check(f"修改 {self.ip} 上 {user} 的密码")
        if user == self.user:
            self._password = new
        LOG.info("已修改 %s 上 %s 的密码", self.ip, user)
        return result

