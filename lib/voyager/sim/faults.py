"""Injected faults: ``--sim-faults`` / ``Simulator(faults=...)``.

Grammar: a comma list of ``KIND:TARGET:COUNT``. The kind is everything before
the first colon, the count everything after the last one, so a target may
contain colons (``http-500:/api/v3/users:setupRoot:1``). COUNT >= 1; ``*``
and ``?`` in targets are shell globs (:mod:`fnmatch`, case-sensitive).

==============  ==========================  ====================================
kind            target matched against      effect (each of the first COUNT hits)
==============  ==========================  ====================================
fail-job        a job description           the job ends ``failed`` (also
                (``NETWORK_CREATE_VDS``,     ``DEPLOY_CLUSTER`` for the deployment
                ``VM_CREATE`` ...)           and ``CLOUDTOWER_INSTALL`` for the
                                             CloudTower installer)
http-500        the request path            HTTP 500 in the API's error shape
http-reset      the request path            the connection is closed, no answer
slow            the request path            answered after ``slow_seconds``
drop-chunk      the image/volume name       that chunk upload fails (500), the
                                             chunk stays in ``to_upload``
slow-storage    a host's management IP or   a fio run in a test VM on that host
                name                         measures 1/20 of the storage's
                                             figures (:mod:`voyager.sim.workload`)
==============  ==========================  ====================================

Faults are deterministic: rules are consulted in the order given, the first
matching rule with hits left fires, and a rule is spent after COUNT hits.
``/__sim__/`` paths are never faulted. Faults are configuration, not state: they
are not saved in the state file.
"""
from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass

KINDS = ("fail-job", "http-500", "http-reset", "slow", "drop-chunk", "slow-storage")
HTTP_KINDS = ("http-500", "http-reset", "slow")


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    kind: str
    target: str
    count: int
    fired: int = 0

    @property
    def remaining(self) -> int:
        return self.count - self.fired

    def matches(self, value: str) -> bool:
        return fnmatch.fnmatchcase(value, self.target)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "count": self.count, "fired": self.fired}


def parse_faults(spec: str | None) -> list[FaultRule]:
    rules: list[FaultRule] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.count(":") < 2:
            raise FaultSpecError(f"故障规则格式应为 KIND:TARGET:COUNT，收到 {item!r}")
        kind, rest = item.split(":", 1)
        target, count_text = rest.rsplit(":", 1)
        kind = kind.strip()
        if kind not in KINDS:
            raise FaultSpecError(f"未知的故障类型 {kind!r}（可用：{', '.join(KINDS)}）")
        if not target:
            raise FaultSpecError(f"故障规则 {item!r} 缺少 TARGET")
        try:
            count = int(count_text)
        except ValueError:
            raise FaultSpecError(f"故障规则 {item!r} 的 COUNT 必须是正整数") from None
        if count < 1:
            raise FaultSpecError(f"故障规则 {item!r} 的 COUNT 必须是正整数")
        rules.append(FaultRule(kind, target, count))
    return rules


class Faults:
    def __init__(self, spec: str | list[FaultRule] | None = ""):
        self.rules = list(spec) if isinstance(spec, list) else parse_faults(spec)
        self._lock = threading.Lock()

    def take(self, kind: str, value: str) -> bool:
        """Consume one hit of the first live rule of ``kind`` matching ``value``."""
        with self._lock:
            for rule in self.rules:
                if rule.kind == kind and rule.remaining > 0 and rule.matches(value):
                    rule.fired += 1
                    return True
        return False

    def take_http(self, path: str) -> str | None:
        """The HTTP fault kind to apply to a request for ``path`` (consumed), or None."""
        if path.startswith("/__sim__/"):
            return None
        with self._lock:
            for rule in self.rules:
                if rule.kind in HTTP_KINDS and rule.remaining > 0 and rule.matches(path):
                    rule.fired += 1
                    return rule.kind
        return None

    def summary(self) -> list[dict]:
        with self._lock:
            return [r.to_dict() for r in self.rules]
