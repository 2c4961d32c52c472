"""The simulator's SSH front-end: one paramiko server per planned machine.

``SSHFrontend(world).start(ips) -> {ip: port}`` listens on 127.0.0.1 with an
ephemeral port per planned address (the published ``ssh`` map);
``bind(ip, 22)`` additionally listens on the planned address itself
(``--bind-plan-ips``). A connection to a machine that is not up (the
CloudTower VM before its IP is configured) is closed at once, as a refused
connection would be. Authentication is by password
(``world.check_login``, see :mod:`voyager.sim.ssh.machines` for who may log
in when); each ``exec`` request runs through :class:`voyager.sim.ssh.shell.Shell`
and answers its output and exit status; an interactive ``shell`` request gets
a minimal line-by-line prompt.

Standard input is that of a real sshd: the data a client sends is the
command's stdin, read as the program reads it. When a command ends the server
sends its output, exit status and EOF, then keeps the channel open until the
client's EOF (at most ``STDIN_LINGER`` seconds) before closing it, so the
stdin a client writes right after ``exec`` is accepted even when the program
exits without reading it (as a pipe would hold it) instead of racing the
channel's close. An ``ssh-drop`` fault (:mod:`voyager.sim.backend.faults`) cuts the
whole connection when its command starts: no output, no exit status.

Host keys (ECDSA P-256, one per machine) are generated at start; with a state
file they are kept beside it (``<state file>.ssh-host-keys``, mode 0600) so a
rerun presents the same keys to clients that recorded them.
"""
from __future__ import annotations

import io
import json
import logging
import selectors
import socket
import threading
from pathlib import Path
from typing import Optional

import paramiko

from voyager.sim.ssh.commands import PROGRAMS
from voyager.sim.ssh.machines import Session
from voyager.sim.ssh.shell import ConnectionDropped, Shell, Stdin
from voyager.fsutil import atomic_write

log = logging.getLogger("voyager.sim")

LOOPBACK = "127.0.0.1"
STDIN_TIMEOUT = 60.0  # a command reading stdin waits this long for the client's EOF
STDIN_LINGER = 2.0  # after a command ended, the channel waits this long for the client's EOF
SERVER_VERSION = "SSH-2.0-OpenSSH_8.2"
TRANSPORT_LOG = "voyager.sim.ssh.transport"
logging.getLogger(TRANSPORT_LOG).setLevel(logging.CRITICAL)


def _load_keys(path: Optional[Path]) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("模拟器 SSH 主机密钥文件 %s 无法读取，将重新生成 (unreadable host key file)", path)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_keys(path: Optional[Path], keys: dict[str, str]) -> None:
    if path is not None:
        atomic_write(path, json.dumps(keys))  # a private file (0600)


class _Server(paramiko.ServerInterface):
    """paramiko's per-connection callbacks for machine ``ip``."""

    def __init__(self, frontend: "SSHFrontend", ip: str):
        self.frontend = frontend
        self.world = frontend.world
        self.ip = ip
        self.user: Optional[str] = None

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        machine = self.world.machine(self.ip, 22)
        if machine is None:
            return paramiko.AUTH_FAILED
        session = Session(self.world, self.ip, machine.kind, username)
        if session.profile.login_allowed(self.world, self.ip) and self.world.check_login(self.ip, username, password):
            self.user = username
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, channel, term, width, height, pixelwidth, pixelheight, modes) -> bool:
        return True

    def check_channel_env_request(self, channel, name, value) -> bool:
        return True

    def check_channel_exec_request(self, channel, command) -> bool:
        text = command.decode("utf-8", "replace") if isinstance(command, bytes) else str(command)
        channel.transport.after_reply(lambda: self.frontend.spawn(self._exec, channel, text))
        return True

    def check_channel_shell_request(self, channel) -> bool:
        channel.transport.after_reply(lambda: self.frontend.spawn(self._interactive, channel))
        return True

    # -- running commands ------------------------------------------------------------------
    def _session(self) -> Optional[Session]:
        machine = self.world.machine(self.ip, 22)
        if machine is None or self.user is None:
            return None
        return Session(self.world, self.ip, machine.kind, self.user)

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        try:
            session = self._session()
            if session is None:
                channel.sendall_stderr(b"Connection to the machine was lost\n")
                channel.send_exit_status(255)
                return
            stdin = Stdin(reader=lambda: _read_to_eof(channel))
            try:
                status, out, err = Shell(session, PROGRAMS).run(command, stdin)
            except ConnectionDropped as exc:
                log.debug("SSH connection to %s dropped at %r (ssh-drop fault)", self.ip, str(exc))
                channel.get_transport().close()
                return
            if out:
                channel.sendall(out.encode("utf-8"))
            if err:
                channel.sendall_stderr(err.encode("utf-8"))
            channel.send_exit_status(status)
            channel.shutdown_write()
            _read_to_eof(channel, STDIN_LINGER)  # stdin the program did not read, as a pipe holds it
        except (OSError, EOFError, paramiko.SSHException):
            log.debug("SSH exec channel to %s failed", self.ip, exc_info=True)
        finally:
            _close(channel)

    def _interactive(self, channel: paramiko.Channel) -> None:
        try:
            session = self._session()
            if session is None:
                return
            shell = Shell(session, PROGRAMS)
            reader = channel.makefile("rb")
            while True:
                prompt = "#" if session.user == "root" else "$"
                channel.sendall(f"[{session.user}@{session.hostname()} ~]{prompt} ".encode())
                line = reader.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if text.strip() in ("exit", "logout"):
                    channel.send_exit_status(0)
                    break
                try:
                    status, out, err = shell.run(text, Stdin(""))
                except ConnectionDropped:
                    channel.get_transport().close()
                    return
                channel.sendall((out + err).replace("\n", "\r\n").encode("utf-8"))
        except (OSError, EOFError, paramiko.SSHException):
            log.debug("SSH shell channel to %s failed", self.ip, exc_info=True)
        finally:
            _close(channel)


def _read_to_eof(channel: paramiko.Channel, timeout: float = STDIN_TIMEOUT) -> str:
    """The client's data until its EOF (or close), waiting at most ``timeout`` seconds per read."""
    channel.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = channel.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        log.debug("SSH stdin: no EOF from the client within %.0f s", timeout)
    return data.decode("utf-8", "replace")


def _close(channel: paramiko.Channel) -> None:
    try:
        channel.shutdown_write()
        channel.close()
    except (OSError, EOFError, paramiko.SSHException):
        pass


class _Transport(paramiko.Transport):
    """A transport that starts a channel's work only once the request's reply is sent.

    paramiko answers an ``exec``/``shell`` request (``CHANNEL_SUCCESS``) right
    after ``check_channel_*_request`` returns, from the transport thread. A
    command started inside the callback could finish and close the channel
    before that reply, and the client would see "Channel closed". The callback
    therefore queues its work with :meth:`after_reply`; it is started when the
    transport thread sends its next message (the reply), or after a short grace
    period when the client asked for no reply.
    """

    def __init__(self, sock) -> None:
        super().__init__(sock)
        self._after: list = []
        self._after_lock = threading.Lock()

    def after_reply(self, fn) -> None:
        with self._after_lock:
            self._after.append(fn)
        timer = threading.Timer(1.0, self._release)
        timer.daemon = True
        timer.start()

    def _release(self) -> None:
        with self._after_lock:
            pending, self._after = self._after, []
        for fn in pending:
            fn()

    def _send_user_message(self, data) -> None:
        super()._send_user_message(data)
        if threading.current_thread() is self:
            self._release()

    def close(self) -> None:
        super().close()
        # paramiko wakes a thread blocked in accept() only when the peer hangs up;
        # wake it when we close too, so stop() does not wait out accept's timeout
        with self.lock:
            self.server_accept_cv.notify_all()


class _Listener:
    """Accepts connections for machine ``ip``; :meth:`stop` wakes it at once (a self-pipe)."""

    def __init__(self, frontend: "SSHFrontend", ip: str, host: str, port: int):
        self.frontend = frontend
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(32)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)  # accepted only when the selector says a connection waits
        self.port = self.sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, name=f"voyager-sim-ssh-{ip}", daemon=True)

    def start(self) -> "_Listener":
        self.thread.start()
        return self

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not (self.stopped.is_set() or self.frontend.stopping.is_set()):
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    conn, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue  # the client gave up before we accepted
                except OSError:
                    return
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small SSH packets leave at once
        if self.frontend.world.machine(self.ip, 22) is None:
            conn.close()  # nothing listens there yet: a refused connection
            return
        self.frontend.spawn(self.frontend.serve, conn, self.ip)

    def stop(self) -> None:
        self.stopped.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self.thread.join(timeout=2)
        for sock in (self.sock, self._wake_r, self._wake_w):
            try:
                sock.close()
            except OSError:
                pass


class SSHFrontend:
    def __init__(self, world) -> None:
        self.world = world
        self.stopping = threading.Event()
        self._listeners: list[_Listener] = []
        self._keys: dict[str, paramiko.PKey] = {}
        self._transports: list[paramiko.Transport] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        state_file = getattr(world, "state_file", None)
        self.key_file = Path(str(state_file) + ".ssh-host-keys") if state_file else None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, ips: list[str]) -> dict[str, int]:
        self._load_host_keys(ips)
        ports: dict[str, int] = {}
        for ip in ips:
            listener = _Listener(self, ip, LOOPBACK, 0).start()
            self._listeners.append(listener)
            ports[ip] = listener.port
        return ports

    def bind(self, ip: str, port: int) -> int:
        """Also listen on the planned address itself (needs the address and, for 22, privileges)."""
        if ip not in self._keys:
            self._load_host_keys([ip])
        listener = _Listener(self, ip, ip, port).start()
        self._listeners.append(listener)
        return listener.port

    def stop(self) -> None:
        self.stopping.set()
        for listener in self._listeners:
            listener.stop()
        with self._lock:
            transports, threads = list(self._transports), list(self._threads)
        for transport in transports:
            transport.close()
            # a connection still in its handshake waits on this event in 0.1 s steps: wake it now
            event = getattr(transport, "completion_event", None)
            if event is not None:
                event.set()
        for thread in threads:
            thread.join(timeout=2)
        self._listeners.clear()

    # -- host keys -----------------------------------------------------------------------------
    def _load_host_keys(self, ips: list[str]) -> None:
        stored = _load_keys(self.key_file)
        changed = False
        for ip in ips:
            pem = stored.get(ip)
            key = None
            if pem:
                try:
                    key = paramiko.ECDSAKey.from_private_key(io.StringIO(pem))
                except (paramiko.SSHException, ValueError):
                    key = None
            if key is None:
                key = paramiko.ECDSAKey.generate(bits=256)
                buf = io.StringIO()
                key.write_private_key(buf)
                stored[ip] = buf.getvalue()
                changed = True
            self._keys[ip] = key
        if changed:
            _save_keys(self.key_file, stored)

    def host_key(self, ip: str) -> paramiko.PKey:
        return self._keys[ip]

    # -- connections -------------------------------------------------------------------------------
    def spawn(self, fn, *args) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True, name="voyager-sim-ssh-conn")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def serve(self, conn: socket.socket, ip: str) -> None:
        transport = _Transport(conn)
        transport.set_log_channel(TRANSPORT_LOG)  # quiet: a client hanging up is no error here
        transport.local_version = SERVER_VERSION
        transport.add_server_key(self._keys[ip])
        with self._lock:
            self._transports = [t for t in self._transports if t.is_active()]
            self._transports.append(transport)
        try:
            transport.start_server(server=_Server(self, ip))
            channels: list[paramiko.Channel] = []  # referenced: paramiko closes a collected channel
            while transport.is_active() and not self.stopping.is_set():
                channel = transport.accept(timeout=0.5)
                channels = [c for c in channels if not c.closed]
                if channel is not None:
                    channels.append(channel)
        except (paramiko.SSHException, OSError, EOFError):
            log.debug("SSH connection to %s ended", ip, exc_info=True)
        finally:
            transport.close()
