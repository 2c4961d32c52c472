"""Network helpers shared by the unit tests (not a test module)."""
from __future__ import annotations

import socket


def dead_port() -> int:
    """A loopback TCP port nothing listens on (bound once to pick it, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
