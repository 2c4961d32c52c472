"""What long work shows while it runs: ``阶段 3/7（42%）``, percent, MiB/s, ETA, durations in
Chinese (the delivery engineer reads them on the terminal, in the log and in error messages)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

LOG = logging.getLogger("voyager.wait")


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} 秒" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f} 秒"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} 分 {sec} 秒"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分"


def stage_text(current: Any, total: Any, info: Any = None) -> str:
    """``阶段 3/7（43%） prepare_network`` — deploy stages and the like."""
    try:
        cur, tot = int(current), int(total)
        pct = f"（{cur * 100 // tot}%）" if tot > 0 else ""
        text = f"阶段 {cur}/{tot}{pct}"
    except (TypeError, ValueError):
        text = f"阶段 {current}/{total}"
    return f"{text} {info}" if info else text


MIB = 1024 * 1024


class TransferProgress:
    """Progress of an upload/download, logged at a steady cadence:
    ``上传 X：45%（360.0/800.0 MiB），12.3 MiB/s，预计剩余 36 秒``."""

    def __init__(self, describe: str, total_bytes: int, *, report_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = LOG):
        self.describe = describe
        self.total = max(0, int(total_bytes))
        self.done = 0
        self.report_every = report_every
        self.clock = clock
        self.logger = logger
        self.started = clock()
        self._last_report: Optional[float] = None

    def advance(self, nbytes: int) -> None:
        self.update(self.done + int(nbytes))

    def update(self, done_bytes: int) -> None:
        self.done = max(0, int(done_bytes))
        now = self.clock()
        if self._last_report is None or now - self._last_report >= self.report_every:
            self._last_report = now
            self.logger.info("%s", self.text())

    def rate(self) -> float:
        """Bytes per second since the start."""
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        pct = (self.done * 100 // self.total) if self.total else 100
        rate = self.rate()
        parts = [f"{self.describe}：{pct}%（{self.done / MIB:.1f}/{self.total / MIB:.1f} MiB）",
                 f"{rate / MIB:.1f} MiB/s"]
        remaining = self.total - self.done
        if remaining > 0 and rate > 0:
            parts.append(f"预计剩余 {format_duration(remaining / rate)}")
        return "，".join(parts)

    def finish(self) -> None:
        self.done = max(self.done, self.total)
        elapsed = self.clock() - self.started
        self.logger.info("%s：完成 %.1f MiB，用时 %s，平均 %.1f MiB/s", self.describe, self.done / MIB,
                         format_duration(elapsed), (self.done / elapsed / MIB) if elapsed > 0 else 0.0)


__all__ = ["MIB", "TransferProgress", "format_duration", "stage_text"]
