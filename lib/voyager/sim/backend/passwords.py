"""Salted password/token digests for the simulator's state.

The simulator must check SSH, fisheye and CloudTower logins across restarts,
yet no plan password or token may appear in its state file. It keeps
``pbkdf2-sha256$<iterations>$<salt hex>$<digest hex>`` strings instead.
Tokens are random and long, so a plain SHA-256 is enough to index them.
"""
from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 20_000


def hash_password(plain: str, *, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", plain.encode("utf-8"), salt, ITERATIONS)
    return f"pbkdf2-sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(plain: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, iterations, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2-sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", plain.encode("utf-8"), bytes.fromhex(salt_hex), int(iterations))
    return hmac.compare_digest(digest.hex(), digest_hex)


def token_digest(token: str) -> str:
    """The key under which a session token is stored (never the token itself)."""
    return hashlib.sha256(("voyager-sim-token:" + token).encode("utf-8")).hexdigest()
