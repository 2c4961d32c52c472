"""FilePartBody: a one-file multipart body whose content is sent without a copy."""
from __future__ import annotations

import io

from werkzeug.formparser import parse_form_data

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
    """块内容不复制：正文的第二段就是调用方的字节（memoryview），没有 read（不被分块读取复制）。"""
    content = b"x" * (1 << 20)
    pieces = list(FilePartBody("file", "a.iso", content))
    assert len(pieces) == 3
    assert isinstance(pieces[1], memoryview) and pieces[1].obj is content
    assert not hasattr(FilePartBody("file", "a.iso", content), "read")


def test_http_client_treats_it_as_a_stream():
    """HTTP 客户端把它当作流式正文：证据只记大小，不记内容。"""
    assert is_stream(FilePartBody("file", "a.iso", b"abc"))
    assert not is_stream(b"abc")
