"""The host-password encoding of the deployment API (API-FACTS.md).

``POST /api/v2/deployment/cluster`` carries ``host_passwords[].password`` as
``base64(utf8(plain) XOR keystream)``. Only the first 12 bytes of the keystream
are known (decoded from real captures: ``c+G6KvJYsKyQyY4U`` is ``P@ssw0rd!123``
and ``EpD4aLRZ`` is ``111111``), so longer passwords cannot be encoded; both
directions raise :class:`ValueError` with a message that never contains the
password itself.
"""
from __future__ import annotations

import base64
import binascii

KEYSTREAM = bytes.fromhex("23a1c9598568c2c8b1f8bc27")
MAX_BYTES = len(KEYSTREAM)


def _xor(data: bytes) -> bytes:
    return bytes(b ^ k for b, k in zip(data, KEYSTREAM))


def fits_keystream(plain: str) -> bool:
    """True when ``plain`` (UTF-8) is short enough to be encoded."""
    return len(plain.encode("utf-8")) <= MAX_BYTES


def encode_host_password(plain: str) -> str:
    """Encode a host password for ``host_passwords[].password``."""
    data = plain.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"主机密码过长：UTF-8 编码后 {len(data)} 字节，部署接口的密码编码只支持不超过 "
            f"{MAX_BYTES} 字节（已知密钥流长度）。请在规划表中使用更短的密码。"
            f" (host password of {len(data)} bytes exceeds the {MAX_BYTES}-byte known keystream)"
        )
    return base64.b64encode(_xor(data)).decode("ascii")


def decode_host_password(encoded: str) -> str:
    """Decode a ``host_passwords[].password`` value back to the plain password."""
    try:
        data = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("编码后的主机密码不是有效的 base64 (not valid base64)") from None
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"编码后的主机密码解码为 {len(data)} 字节，超过已知密钥流的 {MAX_BYTES} 字节，无法解码"
            f" (encoded password of {len(data)} bytes exceeds the known keystream)"
        )
    try:
        return _xor(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("解码结果不是有效的 UTF-8 文本 (decoded bytes are not UTF-8)") from None
