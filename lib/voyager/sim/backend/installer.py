"""The CloudTower installer inside the CloudTower VM.

``sudo sh /usr/share/smartx/tower/preinstall.sh`` prepares the VM; then
``installer deploy`` runs for about 20 real minutes, writing ``nohup.out``
line by line, and ends with ``Install Operation Center Successfully``; only
then does CloudTower answer on 80/443. A ``fail-job:CLOUDTOWER_INSTALL``
fault makes it stop at about 70 % with ``Install Operation Center Failed``.
"""
from __future__ import annotations

from typing import Any, Optional

INSTALL = 1200.0
SUCCESS_LINE = "Install Operation Center Successfully"
FAILURE_LINE = "Install Operation Center Failed"
FAIL_FRACTION = 0.7

PREINSTALL_OUTPUT = (
    "[preinstall] checking system requirements ... ok\n"
    "[preinstall] cpu: 8 cores, memory: 19 GiB, disk: 400 GiB ... ok\n"
    "[preinstall] configuring kernel parameters ... ok\n"
    "[preinstall] preparing container runtime ... ok\n"
    "[preinstall] done\n"
)

_STEPS = [
    "check environment", "load container images", "install k3s", "start k3s", "deploy postgresql",
    "deploy redis", "deploy prometheus", "deploy server", "deploy tower-ui", "deploy inspector",
    "deploy ovm-operator", "initialize database", "configure nginx", "health check",
]


def _log_lines() -> list[tuple[float, str]]:
    lines: list[tuple[float, str]] = [(0.0, "time=\"start\" level=info msg=\"Operation Center installer started\"")]
    n = len(_STEPS)
    for k, step in enumerate(_STEPS):
        begin = 0.02 + 0.95 * k / n
        lines.append((begin, f"level=info msg=\"[{k + 1}/{n}] {step} ...\""))
        for j in range(3):
            lines.append((begin + 0.95 / n * (j + 1) / 4, f"level=info msg=\"{step}: progress {25 * (j + 1)}%\""))
        lines.append((begin + 0.95 / n * 0.95, f"level=info msg=\"[{k + 1}/{n}] {step} done\""))
    return lines


LOG_LINES = _log_lines()


class Installer:
    def __init__(self, world) -> None:
        self.world = world
        self.preinstalled = False
        self.started_at: Optional[float] = None
        self.fail = False
        self.result: Optional[str] = None  # None while running / not started, "ok" | "failed"

    def preinstall(self) -> tuple[int, str]:
        self.preinstalled = True
        return 0, PREINSTALL_OUTPUT

    def start(self) -> bool:
        """Start ``installer deploy``; False when it is already running or done."""
        if self.started_at is not None and self.result != "failed":
            return False
        self.started_at = self.world.clock.now()
        self.result = None
        self.fail = self.world.faults.take("fail-job", "CLOUDTOWER_INSTALL") or not self.preinstalled
        return True

    def _end_fraction(self) -> float:
        return FAIL_FRACTION if self.fail else 1.0

    def tick(self) -> bool:
        if self.started_at is None or self.result is not None:
            return False
        if self.world.clock.reached(self.started_at, INSTALL * self._end_fraction()):
            self.result = "failed" if self.fail else "ok"
            return True
        return False

    def log(self) -> str:
        """``nohup.out`` as far as the installer has written it."""
        if self.started_at is None:
            return ""
        if not self.preinstalled:
            return f"level=fatal msg=\"preinstall.sh has not been run\"\n{FAILURE_LINE}\n"
        progress = self.world.clock.progress(self.started_at, INSTALL)
        end = self._end_fraction()
        out = [line for at, line in LOG_LINES if at <= min(progress, end)]
        if self.result == "failed" or (self.fail and progress >= end):
            out.append("level=error msg=\"deploy tower-ui: timed out waiting for pods\"")
            out.append(FAILURE_LINE)
        elif progress >= 1.0:
            out.append(SUCCESS_LINE)
        return "\n".join(out) + "\n"

    def succeeded(self) -> bool:
        return self.result == "ok"

    def to_state(self) -> dict[str, Any]:
        return {"preinstalled": self.preinstalled, "started_at": self.started_at, "fail": self.fail,
                "result": self.result}

    def load_state(self, state: dict[str, Any]) -> None:
        self.preinstalled = bool(state.get("preinstalled"))
        self.started_at = state.get("started_at")
        self.fail = bool(state.get("fail"))
        self.result = state.get("result")
