"""The test workload's inputs (steps 09-11): the VM template and its config file.

Media dir (``--media-dir``, default the plan's folder)
------------------------------------------------------
* ``voyager-workload*.ova`` — the test VM template: an OVA (a tar holding one
  ``.ovf`` descriptor and the disk files it references) of a small Linux
  with ``fio`` and ``ping`` installed, sshd enabled, and the SVT/VMTools guest
  agent (it configures the NIC address). The highest version wins.
* ``voyager-workload.json`` (or ``--workload-config PATH``) — the guest
  account and optional settings::

      {
        "guest": {"user": "voyager", "password": "..."},        # required
        "fio": {"runtime": 60, "ramp_time": 10, "size": "2G",   # optional, see voyager.steps.perf
                "4k-randread": {"iodepth": 32}},
        "thresholds": {"4k-randread": {"iops": 8000}},          # optional, see voyager.steps.perf
        "ping": {"count": 10, "interval": 0.2, "max_loss_percent": 0},
        "migration": {"interval": 0.2, "seconds": 120, "max_loss_percent": 5,
                      "max_gap_seconds": 10},
        "vm": {"vcpu": 2, "memory_mib": 2048}                   # optional, default: the OVF's
      }

  The password is a secret: registered with the redactor as soon as it is read,
  never logged, never stored in the run state.

A rehearsal on the simulator without media (``--sim`` and no ``--media-dir``)
gets both generated in ``<state dir>/media``: a placeholder OVA whose disk
image carries the guest account (as a salted digest, the way the simulator
reads it: :mod:`voyager.sim.ssh.workload`) and a config holding a generated
password.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from voyager.plan.model import Secret
from voyager.redact import REDACTOR
from voyager.steps.media import MediaFile, REHEARSAL_MARK, _find

OVA_PATTERN = re.compile(r"^voyager-workload.*\.ova$", re.I)
CONFIG_NAME = "voyager-workload.json"
DEFAULT_PING = {"count": 10, "interval": 0.2, "max_loss_percent": 0.0}
DEFAULT_MIGRATION = {"interval": 0.2, "seconds": 120.0, "max_loss_percent": 5.0, "max_gap_seconds": 10.0}
REHEARSAL_USER = "voyager"
REHEARSAL_DISK_SIZE = 4 * 1024 * 1024 + 777  # two upload chunks
SECTIONS = ("guest", "fio", "thresholds", "ping", "migration", "vm")


class WorkloadConfigError(ValueError):
    """A problem with the workload config or template (Chinese, names the file and key)."""


@dataclass
class WorkloadConfig:
    source: Optional[Path]
    guest_user: str
    guest_password: Secret
    fio: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    ping: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PING))
    migration: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIGRATION))
    vm: dict[str, Any] = field(default_factory=dict)


def find_template(media_dir: Path) -> Optional[MediaFile]:
    found = _find(media_dir, OVA_PATTERN)
    return found[0] if found else None


def _numbers(section: dict[str, Any], defaults: dict[str, float], where: str) -> dict[str, float]:
    out = dict(defaults)
    for key, value in section.items():
        if key not in defaults:
            raise WorkloadConfigError(f"{where}：不认识的设置 {key!r}（可用：{', '.join(defaults)}）")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise WorkloadConfigError(f"{where}.{key} 应为非负数字，而不是 {value!r}")
        out[key] = float(value)
    return out


def load_config(path: Path) -> WorkloadConfig:
    path = Path(path)
    if not path.is_file():
        raise WorkloadConfigError(
            f"没有找到测试虚拟机配置文件 {path}：请在介质目录放置 {CONFIG_NAME}（或用 --workload-config 指定），"
            f"至少写明 {{\"guest\": {{\"user\": ..., \"password\": ...}}}}（测试虚拟机模板中的账号）")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkloadConfigError(f"无法读取测试虚拟机配置文件 {path}：{exc}") from None
    if not isinstance(doc, dict):
        raise WorkloadConfigError(f"{path} 的内容应为 JSON 对象")
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise WorkloadConfigError(f"{path}：不认识的配置段 {unknown[0]!r}（可用：{', '.join(SECTIONS)}）")
    guest = doc.get("guest") or {}
    user, password = guest.get("user"), guest.get("password")
    if isinstance(password, str) and password:
        REDACTOR.add_secret(password)
    if not isinstance(user, str) or not user.strip() or not isinstance(password, str) or not password:
        raise WorkloadConfigError(f"{path}：guest.user 与 guest.password 必须填写（测试虚拟机模板中可以 SSH 登录的账号）")
    for key in ("fio", "thresholds", "ping", "migration", "vm"):
        if not isinstance(doc.get(key) or {}, dict):
            raise WorkloadConfigError(f"{path}：{key} 应为 JSON 对象")
    return WorkloadConfig(
        source=path, guest_user=user.strip(), guest_password=Secret(password),
        fio=dict(doc.get("fio") or {}), thresholds=dict(doc.get("thresholds") or {}),
        ping=_numbers(doc.get("ping") or {}, DEFAULT_PING, f"{path}：ping"),
        migration=_numbers(doc.get("migration") or {}, DEFAULT_MIGRATION, f"{path}：migration"),
        vm=dict(doc.get("vm") or {}))


def ensure_rehearsal_workload(media_dir: Path) -> list[Path]:
    """Generate the placeholder template and config in ``media_dir`` when missing
    (simulator rehearsals only); returns the files created."""
    from voyager.ovf import descriptor_xml, write_ova
    from voyager.sim.backend.passwords import hash_password
    from voyager.sim.ssh.workload import guest_image_header

    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    created = []
    config = media_dir / CONFIG_NAME
    if not config.exists():
        password = secrets.token_urlsafe(12)
        REDACTOR.add_secret(password)
        config.write_text(json.dumps({"guest": {"user": REHEARSAL_USER, "password": password}}, indent=2) + "\n",
                          encoding="utf-8")
        created.append(config)
        for old in media_dir.glob("voyager-workload*.ova"):
            old.unlink()  # its disk carries another password
    if find_template(media_dir) is None:
        cfg = load_config(config)
        header = guest_image_header(cfg.guest_user, hash_password(cfg.guest_password.reveal()))
        disk = (header + b"\0" * REHEARSAL_DISK_SIZE)[:REHEARSAL_DISK_SIZE]
        name = "voyager-workload-disk1.vmdk"
        ovf = descriptor_xml("voyager-workload", vcpu=2, memory_mib=2048, disk_gib=20, disk_file=name,
                             disk_file_size=len(disk), mac="00:50:56:00:00:01",
                             description=f"voyager test workload ({REHEARSAL_MARK} placeholder)")
        created.append(write_ova(media_dir / f"voyager-workload-1.0-{REHEARSAL_MARK}.ova", "voyager-workload.ovf",
                                 ovf, {name: disk}))
    return created
