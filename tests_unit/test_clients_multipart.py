"""FilePartBody: a one-file multipart body whose content is sent without a copy."""
from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time

import requests
from werkzeug.formparser import parse_form_data

from voyager.clients.adapter import STREAM_BLOCKSIZE
from voyager.clients.http import is_stream
from voyager.clients.multipart import FilePartBody


def test_body_parses_as_one_file_field_with_the_content():
    """多段正文：服务器解析出唯一的 file 字段，文件名与内容不变。"""
    content = bytes(range(256)) * 1000 + b"\r\n--not-a-boundary\r\n"
    body = FilePartBody("file", "cloudtower-4.7.iso", content)
    wire = b"".join(bytes(piece) for piece in body)
    assert len(wire) == len(body) == body.len
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": body.content_type,
               "CONTENT_LENGTH": str(len(wire)), "wsgi.input": io.BytesIO(wire)}
    _, form, files = parse_form_data(environ)
    assert not form
    assert list(files) == ["file"]
    assert files["file"].filename == "cloudtower-4.7.iso"
    assert files["file"].read() == content


def test_content_is_sent_from_the_callers_buffer():
    """块内容不复制：正文的中间各段都是调用方字节的 memoryview 切片；没有 read（不被分块读取复制）；
    可以再次迭代（重发时从头开始）。"""
    content = b"x" * (1 << 20)
    body = FilePartBody("file", "a.iso", content)
    pieces = list(body)
    assert len(pieces) == 2 + (1 << 20) // STREAM_BLOCKSIZE
    assert all(isinstance(piece, memoryview) and piece.obj is content for piece in pieces[1:-1])
    assert not hasattr(body, "read")
    assert [bytes(p) for p in body] == [bytes(p) for p in pieces]


def test_http_client_treats_it_as_a_stream():
    """HTTP 客户端把它当作流式正文：证据只记大小，不记内容。"""
    assert is_stream(FilePartBody("file", "a.iso", b"abc"))
    assert not is_stream(b"abc")


class _SlowReader(threading.Thread):
    """A loopback HTTP server that reads one request's body at ``rate`` bytes/s, then answers 200."""

    def __init__(self, rate: int) -> None:
        super().__init__(daemon=True)
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.head = b""
        self.body = b""

    def run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?im)^content-length: *(\d+)", self.head).group(1))
            step = 64 * 1024
            while len(body) < length:
                body += conn.recv(min(step, length - len(body)))
                time.sleep(step / self.rate)
            self.body = body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


def test_a_chunk_on_a_slow_link_is_sent_in_slices_within_the_connect_timeout():
    """慢速链路：8 MiB 的块在 4 MiB/s 下约需 2 秒，超过连接超时（0.5 秒）也能发完——
    urllib3 在连接超时下发送正文，所以内容按 256 KiB 的切片逐段写出；
    请求带 Content-Length、不用分块编码，服务器收到的字节与正文一致。"""
    content = hashlib.sha256(b"slow").digest() * (8 * 1024 * 1024 // 32)
    body = FilePartBody("file", "cloudtower.iso", content)
    pieces = list(body)
    assert max(len(piece) for piece in pieces) <= STREAM_BLOCKSIZE
    assert all(piece.obj is content for piece in pieces[1:-1])  # views of the chunk, not copies
    server = _SlowReader(rate=4 * 1024 * 1024)
    server.start()
    started = time.monotonic()
    with requests.Session() as session:
        resp = session.post(f"http://127.0.0.1:{server.port}/api/v2/images/upload", data=body,
                            headers={"Content-Type": body.content_type}, timeout=(0.5, 30))
    elapsed = time.monotonic() - started
    server.join(timeout=30)
    assert resp.status_code == 200
    assert elapsed > 1.0  # the link really was slower than the connect timeout allows for one write
    head = server.head.decode("latin-1").lower()
    assert f"content-length: {len(body)}" in head and "transfer-encoding" not in head
    assert server.body == b"".join(bytes(piece) for piece in pieces)
