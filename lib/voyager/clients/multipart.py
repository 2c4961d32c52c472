"""A multipart/form-data body of one file part whose content is sent as it is.

requests-toolbelt's ``MultipartEncoder`` writes the framing (boundary, the part's
``Content-Disposition`` and ``Content-Type``); the content itself, already in
memory (an upload chunk), is not copied into the encoder's buffer: the body is an
iterable of three pieces (framing, the content as a ``memoryview``, closing
boundary) that urllib3 hands to ``socket.sendall`` one by one. It has a length
(requests sends ``Content-Length``, never chunked encoding) and no ``read``
method (a readable body would be read, and copied, in blocks).
"""
from __future__ import annotations

from typing import Iterator

from requests_toolbelt import MultipartEncoder


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
        self._pieces = (framing[:-len(closing)], memoryview(content).cast("B"), closing)
        self.len = sum(piece.nbytes if isinstance(piece, memoryview) else len(piece) for piece in self._pieces)

    def __len__(self) -> int:
        return self.len

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return iter(self._pieces)
