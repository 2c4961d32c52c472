"""voyager.encoding: the deployment API's host-password encoding (API-FACTS)."""
import pytest

from voyager.encoding import MAX_BYTES, decode_host_password, encode_host_password, fits_keystream


@pytest.mark.parametrize("plain, encoded", [("P@ssw0rd!123", "c+G6KvJYsKyQyY4U"), ("111111", "EpD4aLRZ")])
def test_known_captures(plain, encoded):
    assert encode_host_password(plain) == encoded
    assert decode_host_password(encoded) == plain


@pytest.mark.parametrize("plain", ["a", "HC!r0cks", "中文密码", "q'\"$\\ x", "x" * MAX_BYTES])
def test_round_trip(plain):
    assert decode_host_password(encode_host_password(plain)) == plain
    assert fits_keystream(plain)


def test_too_long_password_is_refused_without_leaking_it():
    secret = "Sup3r-L0ng-Passw0rd"
    assert not fits_keystream(secret)
    with pytest.raises(ValueError) as exc:
        encode_host_password(secret)
    assert "19 字节" in str(exc.value) and "12" in str(exc.value)
    assert secret not in str(exc.value)
    # 5 Chinese characters are 15 UTF-8 bytes
    with pytest.raises(ValueError):
        encode_host_password("五个中文字")


def test_decode_rejects_garbage():
    with pytest.raises(ValueError, match="base64"):
        decode_host_password("not base64!!")
    with pytest.raises(ValueError, match="超过"):
        decode_host_password("QUFBQUFBQUFBQUFBQUFBQQ==")  # 16 bytes
