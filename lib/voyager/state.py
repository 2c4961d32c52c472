"""Run state: the ids and facts a deployment learns, kept between runs.

A deployment is a long sequence of steps; when one fails the engineer fixes the
cause and reruns. The rerun must meet the cluster where the last run left it:
which host has which uuid and link-local address, the cluster serial, the
business VDS uuid, the CloudTower ids... These facts are kept in
``<state dir>/run-state.json``, written atomically (temp file + rename) after
every change, and keyed by the plan's fingerprint (``Plan.fingerprint()``).

The state file never holds a secret or a token. :meth:`RunState.set` refuses
keys that name one (``password``, ``token``...) and any value containing one of
the plan's secrets; the plan's secret fields are stored only as the list of
their names (not even a digest: a short hash of a weak password is as good as
the password).

When the plan's content changed since the state was written, :func:`open_state`
names the fields that changed and refuses to resume (``PlanChangedError``)
unless the caller accepts the change (``--plan-changed=accept``); the facts are
then kept (the cluster is the same one) and re-keyed to the new fingerprint.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

from voyager.fsutil import atomic_write, read_json
from voyager.plan.model import Plan, _secret_paths  # the model's walker: the same secret paths
from voyager.redact import REDACTOR, Redactor

STATE_FILE = "run-state.json"
FORMAT = 1

# keys that can only hold a secret
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|authorization|cookie|repeat)", re.I)
_SECRET_PREFIX = "sha256:"  # how Plan.content_fields() marks a secret field


class PlanChangedError(Exception):
    """The plan changed since the run state was written (message in Chinese)."""

    def __init__(self, state_file: Path, changes: list[str], secret_changed: bool):
        self.state_file = state_file
        self.changes = changes
        self.secret_changed = secret_changed
        lines = [f"规划表内容自上次运行以来发生了变化（运行状态文件 {state_file}）："]
        lines += [f"  - {c}" for c in changes]
        if secret_changed:
            lines.append("  - 一个或多个密码字段发生了变化（出于安全考虑，运行状态不保存密码或其摘要）")
        lines.append(
            "为避免在已部分部署的集群上按不同的规划继续执行，本次运行已停止。"
            "确认这些修改无误后，加上 --plan-changed=accept 重新运行；"
            "如果这是另一个集群，请使用另一个 --state-dir。"
        )
        super().__init__("\n".join(lines))


class SecretInStateError(ValueError):
    """Something tried to store a secret or a token in the run state."""


def plan_fields(plan: Plan) -> tuple[dict[str, Any], list[str]]:
    """The plan's content fields without secrets: ``(fields, secret_paths)``."""
    fields: dict[str, Any] = {}
    secret_paths: list[str] = []
    for key, value in plan.content_fields().items():
        if isinstance(value, str) and value.startswith(_SECRET_PREFIX) and _is_secret_path(plan, key):
            secret_paths.append(key)
        else:
            fields[key] = value
    return fields, sorted(secret_paths)


def _is_secret_path(plan: Plan, key: str) -> bool:
    # content_fields() replaces every Secret by "sha256:<hex>"; a plain field could
    # in theory start the same way, so double-check with the model's own listing.
    return any(path == key for path, _ in _secret_paths(plan))


def diff_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Readable lines naming every field whose value differs."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"{key}: 新增 {new[key]!r}")
        elif key not in new:
            lines.append(f"{key}: 已删除（原为 {old[key]!r}）")
        elif old[key] != new[key]:
            lines.append(f"{key}: {old[key]!r} → {new[key]!r}")
    return lines


class RunState:
    """Facts of one run, grouped in sections: ``state.set("hosts", ip, {...})``.

    Every mutation is saved atomically at once (one that changes nothing writes
    nothing); ``save()`` may also be called after each step. Thread-safe (the host
    scan runs in parallel)."""

    def __init__(self, path: Path, fingerprint: str, fields: dict[str, Any],
                 secret_paths: list[str], facts: Optional[dict[str, Any]] = None,
                 secrets: Iterable[str] = ()):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.fields = fields
        self.secret_paths = secret_paths
        self.facts: dict[str, Any] = facts or {}
        self._redactor = Redactor()
        self._redactor.add_secrets(secrets)
        self._lock = threading.RLock()

    # -- reading -----------------------------------------------------------
    def get(self, section: str, key: Optional[str] = None, default: Any = None) -> Any:
        with self._lock:
            sec = self.facts.get(section)
            if key is None:
                return copy.deepcopy(sec) if sec is not None else default
            if not isinstance(sec, dict) or key not in sec:
                return default
            return copy.deepcopy(sec[key])

    def section(self, section: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.facts.get(section) or {})

    # -- writing -----------------------------------------------------------
    def set(self, section: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable, no secret) under ``section.key`` and save
        (no write when the value is already there)."""
        self._check(f"{section}.{key}", value)
        with self._lock:
            sec = self.facts.setdefault(section, {})
            if key in sec and _same(sec[key], value):
                return
            sec[key] = copy.deepcopy(value)
            self.save()

    def update(self, section: str, values: dict[str, Any]) -> None:
        for k, v in values.items():
            self._check(f"{section}.{k}", v)
        with self._lock:
            sec = self.facts.setdefault(section, {})
            if all(k in sec and _same(sec[k], v) for k, v in values.items()):
                return
            sec.update(copy.deepcopy(values))
            self.save()

    def merge(self, section: str, key: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into the dict at ``section.key`` (created if missing)."""
        for k, v in values.items():
            self._check(f"{section}.{key}.{k}", v)
        with self._lock:
            target = self.facts.setdefault(section, {}).setdefault(key, {})
            if all(k in target and _same(target[k], v) for k, v in values.items()):
                return
            target.update(copy.deepcopy(values))
            self.save()

    def delete(self, section: str, key: Optional[str] = None) -> None:
        with self._lock:
            if key is None:
                if section not in self.facts:
                    return
                self.facts.pop(section, None)
            elif isinstance(self.facts.get(section), dict) and key in self.facts[section]:
                self.facts[section].pop(key, None)
            else:
                return
            self.save()

    def save(self) -> None:
        with self._lock:
            doc = {
                "format": FORMAT,
                "fingerprint": self.fingerprint,
                "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "plan_fields": self.fields,
                "plan_secret_fields": self.secret_paths,
                "facts": self.facts,
            }
            text = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True)
            self._check_text(text)
            atomic_write(self.path, text)

    # -- guards ------------------------------------------------------------
    def _check(self, where: str, value: Any) -> None:
        for path, key, leaf in _walk(where, value):
            if _SECRET_KEY.search(key):
                raise SecretInStateError(f"运行状态不保存密码或令牌：{path}")
            if isinstance(leaf, str):
                self._check_text(leaf, path)
        try:
            json.dumps(value)
        except TypeError as exc:
            raise TypeError(f"运行状态只保存 JSON 数据：{where}: {exc}") from None

    def _check_text(self, text: str, where: str = "") -> None:
        # The plan's secrets in every form they may take (the redactor's rules:
        # secrets shorter than MIN_VALUE_LEN only by their encoded forms), and
        # whatever the process-wide redactor knows (tokens issued in the run).
        for redactor in (self._redactor, REDACTOR):
            if redactor.redact(text) != text:
                raise SecretInStateError(f"运行状态不保存密码或令牌{('：' + where) if where else ''}")


def _same(stored: Any, value: Any) -> bool:
    """The same JSON value (``1`` is not ``True``, ``1`` is not ``1.0``)."""
    return json.dumps(stored, sort_keys=True) == json.dumps(value, sort_keys=True)


def _walk(path: str, value: Any):
    """Yield (path, last key, leaf) for every leaf and every dict key."""
    key = path.rsplit(".", 1)[-1]
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", str(k), None
            yield from _walk(f"{path}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(f"{path}[{i}]", v)
    else:
        yield path, key, value


def open_state(state_dir: Path, plan: Plan, *, accept_changes: bool = False) -> RunState:
    """Load (or start) the run state for ``plan`` in ``state_dir``.

    Raises :class:`PlanChangedError` when the stored state was written for a plan
    with other content, unless ``accept_changes``."""
    path = Path(state_dir) / STATE_FILE
    fingerprint = plan.fingerprint()
    fields, secret_paths = plan_fields(plan)
    secrets = [s.reveal() for s in plan.secrets()]
    facts: dict[str, Any] = {}
    doc = read_json(path, "运行状态文件", "请修复或删除该文件后重试")
    if doc is not None:
        facts = doc.get("facts") or {}
        if doc.get("fingerprint") != fingerprint:
            changes = diff_fields(doc.get("plan_fields") or {}, fields)
            old_secret_paths = doc.get("plan_secret_fields") or []
            changes += [f"{p}: 密码字段{'新增' if p not in old_secret_paths else '已删除'}"
                        for p in sorted(set(secret_paths) ^ set(old_secret_paths))]
            secret_changed = not changes
            if not accept_changes:
                raise PlanChangedError(path, changes, secret_changed)
            facts.setdefault("history", {})["plan_changes_accepted"] = (
                changes or ["一个或多个密码字段发生了变化"])
    state = RunState(path, fingerprint, fields, secret_paths, facts, secrets)
    state.save()
    return state
