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
http-500        ``[METHOD ]path``           HTTP 500 in the API's error shape
http-reset      ``[METHOD ]path``           the connection is closed, no answer
slow            ``[METHOD ]path``           answered after ``slow_seconds``
drop-chunk      the image/volume name       that chunk upload fails (500), the
                                             chunk stays in ``to_upload``
ssh-fail        a simple command run over   the command does not run; it exits
                SSH (its words joined by    nonzero with the stderr the real
                one space)                  program prints when it fails
ssh-drop        a simple command run over   the SSH connection is cut before
                SSH                         the command runs (no exit status)
inspect-fail    an inspection item name     the item is judged FAIL by the next
                (``host_disk_is_healthy``)   inspection job (simulated fault)
slow-storage    a host's management IP or   a fio run in a test VM on that host
                name                         measures 1/20 of the storage's
                                             figures (:mod:`voyager.sim.ssh.workload`)
==============  ==========================  ====================================

A failed job (``GET /api/v2/jobs/{id}``) has the shape API-FACTS.md
documents: ``state: failed``, ``error_code``, ``error_msg`` and one
``task_list`` entry ``{name, state: failed, error_code, msg}`` for the step that
failed, with the reason text of :data:`JOB_FAILURES` (what the real step would
report) and :data:`INJECTED` appended so a rehearsal's report shows that the
failure was injected. A failed deployment answers ``deploy_status`` with
``state: failed``, the stage it failed in and the reason in ``msg``
(:mod:`voyager.sim.backend.deployer`).

HTTP targets are a path glob (starting with ``/`` or a glob character),
optionally preceded by a method and one space: ``http-500:POST
/api/v2/network/vds:1`` fails the first VDS creation and no GET on that path;
without a method every method matches. Every GraphQL operation goes to one path
(CloudTower's ``/api``), so a JSON request that names its ``operationName`` is
also matched as ``<path>#<operationName>``: ``http-500:/api#createRootUser:1``
fails the first ``createRootUser`` and no other operation, while ``/api`` alone
still matches them all. A job's description is matched as it is and, for a job
on a named resource, as ``<description> <resource name>``:
``fail-job:VM_UPDATE voyager-test-*:1`` fails the first NIC change of a test
VM and spares the CloudTower VM's. SSH targets are matched against every
simple command the simulated shell runs, outer ones first: ``sudo -n
chpasswd`` is tried as ``sudo -n chpasswd`` and then, when sudo runs it, as
``chpasswd`` (so ``ssh-fail:chpasswd*:1`` fails one password change whether or
not it is run with sudo; ``sh -c`` and ``nohup`` work alike).

Faults are deterministic: rules are consulted in the order given, the first
matching rule with hits left fires, and a rule is spent after COUNT hits.
``/__sim__/`` paths are never faulted. Faults are configuration, not state: they
are not saved in the state file.
"""
from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass
from typing import Optional

KINDS = ("fail-job", "http-500", "http-reset", "slow", "drop-chunk", "ssh-fail", "ssh-drop", "inspect-fail", "slow-storage")
HTTP_KINDS = ("http-500", "http-reset", "slow")
SSH_KINDS = ("ssh-fail", "ssh-drop")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
GRAMMAR = "KIND:TARGET:COUNT（逗号分隔多条；HTTP 目标可带方法，如 http-500:POST /api/v2/network/vds:1）"
_GLOB_START = ("/", "*", "?", "[")


INJECTED = "(simulated: fail-job fault)"

# job description -> (failing step, error_code, reason template); fields: {name}
# (the job's resource), {host} (a host of the cluster), {vip} (the VIP asked for)
JOB_FAILURES: dict[str, tuple[str, str, str]] = {
    "NETWORK_CREATE_VDS": ("create_ovs_bridge", "ENETWORK_OVS_TIMEOUT",
                           "failed to create OVS bridge for VDS {name} on host {host}: ovs-vsctl: "
                           "timed out waiting for ovsdb-server (unix:/var/run/openvswitch/db.sock)"),
    "UPDATE_VIP": ("assign_management_vip", "EVIP_ADDRESS_IN_USE",
                   "management VIP {vip} could not be assigned on host {host}: "
                   "arping reports the address in use by another MAC address"),
    "UPDATE_DNS": ("apply_dns_config", "ESETTING_APPLY_TIMEOUT",
                   "failed to apply the DNS configuration on host {host}: "
                   "writing /etc/resolv.conf timed out after 60s"),
    "UPDATE_NTP": ("apply_ntp_config", "ENTP_SERVICE_RESTART",
                   "failed to apply the NTP configuration on host {host}: chronyd did not restart within 60s"),
    "VM_CREATE": ("create_vm_domain", "EVM_INSUFFICIENT_RESOURCE",
                  "failed to create VM {name}: no host has enough free memory for the VM"),
    "VM_UPDATE": ("update_vm_nics", "EVM_GUEST_AGENT_TIMEOUT",
                  "failed to update VM {name}: the guest agent did not answer within 120s"),
}
DEFAULT_JOB_FAILURE = ("run_job", "EJOB_TASK_FAILED", "task of job {description} failed on host {host}: "
                       "worker exited with status 1")


def job_failure(description: str, **fields: str) -> tuple[str, str, str]:
    """``(failing step, error_code, reason)`` of a job failed by a ``fail-job`` fault."""
    step, code, template = JOB_FAILURES.get(description, DEFAULT_JOB_FAILURE)
    values = {"name": "-", "host": "-", "vip": "-", "description": description, **fields}
    return step, code, f"{template.format_map(values)} {INJECTED}"


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    kind: str
    target: str  # as written, e.g. "POST /api/v2/network/vds"
    count: int
    fired: int = 0
    method: Optional[str] = None  # HTTP kinds only; None = every method
    pattern: str = ""  # the glob part of the target (the target without its method)

    def __post_init__(self) -> None:
        if not self.pattern:
            self.pattern = self.target

    @property
    def remaining(self) -> int:
        return self.count - self.fired

    def matches(self, value: str, method: Optional[str] = None) -> bool:
        if self.method is not None and method != self.method:
            return False
        return fnmatch.fnmatchcase(value, self.pattern)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": self.target, "method": self.method, "count": self.count,
                "fired": self.fired}


def _bad(item: str, why: str) -> FaultSpecError:
    return FaultSpecError(f"故障规则 {item!r} 无效：{why}。格式：{GRAMMAR}")


def _parse_http_target(item: str, target: str) -> tuple[Optional[str], str]:
    method, sep, path = target.partition(" ")
    if not sep:
        method, path = "", target
    elif method.upper() not in HTTP_METHODS:
        raise _bad(item, f"{method!r} 不是 HTTP 方法（可用：{', '.join(HTTP_METHODS)}），"
                         "方法与路径之间用一个空格分开")
    path = path.strip()
    if not path.startswith(_GLOB_START):
        raise _bad(item, f"HTTP 目标应为以 / 开头的路径（可带通配符 * ?），收到 {path!r}")
    return (method.upper() or None), path


def parse_faults(spec: str | None) -> list[FaultRule]:
    """The rules of ``spec``; raises :class:`FaultSpecError` (Chinese, naming the bad rule)."""
    rules: list[FaultRule] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.count(":") < 2:
            raise _bad(item, "缺少冒号分隔的 TARGET 或 COUNT")
        kind, rest = item.split(":", 1)
        target, count_text = rest.rsplit(":", 1)
        kind, target = kind.strip(), target.strip()
        if kind not in KINDS:
            raise _bad(item, f"未知的故障类型 {kind!r}（可用：{', '.join(KINDS)}）")
        if not target:
            raise _bad(item, "缺少 TARGET")
        if not re.fullmatch(r"\s*[0-9]+\s*", count_text) or int(count_text) < 1:
            raise _bad(item, f"COUNT 必须是正整数，收到 {count_text!r}")
        method, pattern = _parse_http_target(item, target) if kind in HTTP_KINDS else (None, target)
        rules.append(FaultRule(kind, target, int(count_text), method=method, pattern=pattern))
    return rules


class Faults:
    def __init__(self, spec: str | list[FaultRule] | None = ""):
        self.rules = list(spec) if isinstance(spec, list) else parse_faults(spec)
        self._lock = threading.Lock()

    def take(self, kind: str, value: str) -> bool:
        """Consume one hit of the first live rule of ``kind`` matching ``value``."""
        return self._take_first((kind,), (value,), None) is not None

    def take_job(self, description: str, name: Optional[str] = None) -> bool:
        """Consume one ``fail-job`` hit for a job ``description`` on the resource ``name``
        (matched as the description, and as ``"<description> <name>"``)."""
        values = (description, f"{description} {name}") if name else (description,)
        return self._take_first(("fail-job",), values, None) is not None

    @property
    def wants_operation(self) -> bool:
        """True when some HTTP rule names a GraphQL operation (``<path>#<operationName>``):
        only then does the server read a request's operation name."""
        return any(r.kind in HTTP_KINDS and "#" in r.pattern for r in self.rules)

    def take_http(self, path: str, method: Optional[str] = None, operation: Optional[str] = None) -> str | None:
        """The HTTP fault kind to apply to a ``method`` request for ``path`` (consumed), or None;
        ``operation`` is the GraphQL ``operationName`` the request names, if any."""
        if path.startswith("/__sim__/"):
            return None
        values = (path, f"{path}#{operation}") if operation else (path,)
        return self._take_first(HTTP_KINDS, values, method.upper() if method else None)

    def take_ssh(self, command: str) -> str | None:
        """The SSH fault kind (``ssh-fail`` / ``ssh-drop``) to apply to ``command`` (consumed), or None."""
        return self._take_first(SSH_KINDS, (command,), None)

    def _take_first(self, kinds: tuple[str, ...], values: tuple[str, ...], method: Optional[str]) -> str | None:
        with self._lock:
            for rule in self.rules:
                if rule.kind in kinds and rule.remaining > 0 and any(rule.matches(v, method) for v in values):
                    rule.fired += 1
                    return rule.kind
        return None

    def summary(self) -> list[dict]:
        with self._lock:
            return [r.to_dict() for r in self.rules]
