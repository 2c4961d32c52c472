"""A multipart/form-data body of one file part whose content is sent as it is.

requests-toolbelt's ``MultipartEncoder`` writes the framing (boundary, the part's
``Content-Disposition`` and ``Content-Type``); the content itself, already in
memory (an upload chunk), is not copied into the encoder's buffer: the body is an
iterable of the framing, the content as ``memoryview`` slices of
:data:`~voyager.clients.adapter.STREAM_BLOCKSIZE` (views, not copies) and the
closing boundary, which urllib3 hands to ``socket.sendall`` one by one. The slices
matter on a slow link: urllib3 sends the body under the *connect* timeout, and a
socket's ``sendall`` applies it to the whole call, so an 8 MiB piece would have
to leave within 5 s. It has a length (requests sends ``Content-Length``, never
chunked encoding) and no ``read`` method (a readable body would be read, and
copied, in blocks); unlike a consumed stream it can be sent again (each
iteration starts over).
"""
from __future__ import annotations

from typing import Iterator

from requests_toolbelt import MultipartEncoder

from voyager.clients.adapter import STREAM_BLOCKSIZE


class FilePartBody:
    """``--boundary``, the headers of field ``field`` (file ``filename``), ``content``, the closing boundary."""

    def __init__(self, field: str, filename: str, content: bytes,
                 content_type: str = "application/octet-stream") -> None:
        encoder = MultipartEncoder({field: (filename, b"", content_type)})
        framing = encoder.to_string()
        closing = b"\r\n--" + encoder.boundary_value.encode("ascii") + b"--\r\n"
        if not framing.endswith(closing):  # the encoder's layout is what RFC 7578 prescribes
            raise ValueError("unexpected multipart framing from requests-toolbelt")
        self.content_type = encoder.content_type
        self._head = framing[:-len(closing)]
        self._content = memoryview(content).cast("B")
        self._closing = closing
        self.len = len(self._head) + self._content.nbytes + len(closing)

    def __len__(self) -> int:
        return self.len

    def __iter__(self) -> Iterator[bytes | memoryview]:
        yield self._head
        content = self._content
        for start in range(0, content.nbytes, STREAM_BLOCKSIZE):
            yield content[start:start + STREAM_BLOCKSIZE]
        yield self._closing
