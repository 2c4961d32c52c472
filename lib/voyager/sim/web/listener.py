"""Listeners: werkzeug's threaded server with HTTP/1.1 persistent connections.

werkzeug's development server answers every request with ``Connection: close``
(and then waits 10 ms for stray input before closing). Real SMTX OS and
CloudTower (nginx) keep connections alive, and clients are built for that:
without it every HTTPS request pays a new TCP connection, a TLS handshake and
the client's per-connection TLS set-up (urllib3 loads the system CA bundle for
each new connection, ~100 ms where ``SSL_CERT_FILE`` names a large bundle).

:class:`KeepAliveHandler` keeps werkzeug's request parsing and WSGI environ and
only replaces the response step: the request body is bounded by its
``Content-Length`` (whatever the application leaves unread is discarded before
the next request), the response is buffered and sent with a ``Content-Length``,
and the connection stays open unless the client asked to close it. A chunked
request body (rare; no client of these APIs sends one) falls back to werkzeug's
own handling, which closes the connection afterwards.

Idle connections are closed after :data:`IDLE_TIMEOUT` seconds (nginx's
default ``keepalive_timeout``), and :meth:`Listener.stop` closes every open
connection so that a stopped simulator answers nothing, not even on a
connection a client kept. The accept loop waits on the listening socket and a
self-pipe (not socketserver's ``poll_interval``), so :meth:`Listener.stop`
returns at once instead of waiting out a poll.
"""
from __future__ import annotations

import logging
import selectors
import socket
import threading
from http import HTTPStatus
from typing import Any, Optional

from werkzeug.exceptions import InternalServerError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

log = logging.getLogger("voyager.sim")

IDLE_TIMEOUT = 75.0


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stalls
    timeout = IDLE_TIMEOUT

    # -- quiet: the simulator logs through "voyager.sim" at debug level only -------------------
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("werkzeug %s: " + message, type, *args)

    # -- connection bookkeeping (for Listener.stop) -------------------------------------------
    def setup(self) -> None:
        super().setup()
        track = getattr(self.server, "track", None)
        if track is not None:
            track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            track = getattr(self.server, "track", None)
            if track is not None:
                track(self.connection, False)

    # -- one request --------------------------------------------------------------------------
    def _body_length(self) -> Optional[int]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            length = int(raw)
        except ValueError:
            return None
        return length if length >= 0 else None

    def run_wsgi(self) -> None:
        length = self._body_length()
        if length is None:
            self.close_connection = True
            super().run_wsgi()
            return
        environ = self.make_environ()
        environ["wsgi.input"] = LimitedStream(self.rfile, length)
        environ["wsgi.input_terminated"] = True
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            status, headers, body = self._call_app(environ)
        except (ConnectionError, socket.timeout):
            raise  # e.g. the http-reset fault: the connection is gone
        except Exception:  # noqa: BLE001 - a bug in a front-end must not kill the listener
            log.exception("simulator error on %s %s", self.command, self.path)
            self.close_connection = True
            status, headers, body = self._call_app(environ, InternalServerError())
        try:
            environ["wsgi.input"].exhaust()  # keep the connection in step with the next request
        except Exception:  # noqa: BLE001 - the client went away in the middle of its body
            self.close_connection = True
        self._send(status, headers, body)

    def _call_app(self, environ, app=None) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return lambda data: None  # the legacy write() callable; our front-ends never use it

        result = (app or self.server.app)(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started[0], started[1], body

    def _send(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        self.send_response(code, reason or HTTPStatus(code).phrase)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        no_body = self.command == "HEAD" or 100 <= code < 200 or code in (204, 304)
        if self.command == "HEAD":
            length = next((v for k, v in headers if k.lower() == "content-length"), str(len(body)))
            self.send_header("Content-Length", length)
        elif not (100 <= code < 200 or code == 204):
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and not no_body:
            self.wfile.write(body)
        self.wfile.flush()


class Listener:
    """One werkzeug threaded server on its own socket and thread."""

    def __init__(self, host: str, port: int, app, ssl_context=None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.set_inheritable(True)
            self.server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler,
                                      ssl_context=ssl_context, fd=sock.fileno())
        finally:
            sock.close()
        self.server.daemon_threads = True
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.accepted = 0  # connections served so far
        self.server.track = self._track
        self.host = host
        self.port = self.server.socket.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=f"voyager-sim-{host}:{self.port}", daemon=True)

    def _serve(self) -> None:
        """socketserver's accept loop, woken by :meth:`stop` through the self-pipe."""
        server = self.server
        with selectors.DefaultSelector() as selector:
            selector.register(server.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready or self._stopping.is_set():
                    break
                if server.socket in ready:
                    server._handle_request_noblock()  # accept + a handler thread (ThreadingMixIn)
                server.service_actions()

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(conn)
                self.accepted += 1
            else:
                self._connections.discard(conn)

    @property
    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def start(self) -> "Listener":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:  # wake handler threads waiting on kept-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()
        for sock in (self._wake_r, self._wake_w):
            try:
                sock.close()
            except OSError:
                pass


__all__ = ["IDLE_TIMEOUT", "KeepAliveHandler", "Listener"]
