"""Installation media: the CloudTower ISO (``cloudtower*.iso``, the highest
version wins), the SVT tools ISO (``SMTX_VMTOOLS-*.iso``, optional) and the
packages of the optional components of step 07: Observability
(``Observability-X86_64-*.tar.gz``, the highest version wins) and backup
(``smtx-backup-dr-*.tar.gz``).

Media are looked for in ``--media-dir`` (default: the plan's folder). A
rehearsal on the simulator with no media at hand gets small placeholder ISOs
and packages generated in ``<state dir>/media`` (the simulator accepts any bytes); an
explicit ``--media-dir`` is never written to.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

CLOUDTOWER_PATTERN = re.compile(r"^cloudtower.*\.iso$", re.I)
SVT_PATTERN = re.compile(r"^SMTX_VMTOOLS-.*\.iso$", re.I)
OBS_PATTERN = re.compile(r"^Observability-X86_64-.*\.tar\.gz$")
BACKUP_PATTERN = re.compile(r"^smtx-backup-dr-.*\.tar\.gz$")
REHEARSAL_MARK = "sim-rehearsal"
REHEARSAL_SIZE = 9 * 1024 * 1024 + 4321  # two 8 MiB upload chunks
PACKAGE_REHEARSAL_SIZE = 9 * 1024 * 1024 + 1234  # three 4 MiB upload chunks


@dataclass(frozen=True)
class MediaFile:
    path: Path
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version(self) -> tuple[int, ...]:
        return version_key(self.path.name)

    @property
    def rehearsal(self) -> bool:
        return REHEARSAL_MARK in self.path.name

    def describe(self) -> str:
        return f"{self.name}（{self.size / 1024 / 1024:.1f} MiB）"


def version_key(name: str) -> tuple[int, ...]:
    """Numbers in a file name, in order: ``cloudtower-4.7.1-2501.iso`` -> (4, 7, 1, 2501)."""
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _find(media_dir: Path, pattern: re.Pattern) -> list[MediaFile]:
    if not media_dir or not Path(media_dir).is_dir():
        return []
    found = [MediaFile(p, p.stat().st_size) for p in Path(media_dir).iterdir()
             if p.is_file() and pattern.match(p.name)]
    return sorted(found, key=lambda m: (m.version, m.name), reverse=True)


def cloudtower_isos(media_dir: Path) -> list[MediaFile]:
    """Every CloudTower ISO in ``media_dir``, highest version first."""
    return _find(media_dir, CLOUDTOWER_PATTERN)


def svt_isos(media_dir: Path) -> list[MediaFile]:
    return _find(media_dir, SVT_PATTERN)


def obs_packages(media_dir: Path) -> list[MediaFile]:
    """Every Observability package in ``media_dir``, highest version first."""
    return _find(media_dir, OBS_PATTERN)


def backup_packages(media_dir: Path) -> list[MediaFile]:
    return _find(media_dir, BACKUP_PATTERN)


def find_obs_package(media_dir: Path) -> Optional[MediaFile]:
    found = obs_packages(media_dir)
    return found[0] if found else None


def find_backup_package(media_dir: Path) -> Optional[MediaFile]:
    found = backup_packages(media_dir)
    return found[0] if found else None


def find_cloudtower_iso(media_dir: Path) -> Optional[MediaFile]:
    found = cloudtower_isos(media_dir)
    return found[0] if found else None


def find_svt_iso(media_dir: Path) -> Optional[MediaFile]:
    found = svt_isos(media_dir)
    return found[0] if found else None


def _write_placeholder(path: Path, size: int) -> None:
    block = hashlib.sha256(path.name.encode()).digest() * 2048  # 64 KiB, deterministic
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        left = size
        while left > 0:
            chunk = block[: min(left, len(block))]
            fh.write(chunk)
            left -= len(chunk)
    tmp.replace(path)


def _version_text(version: Optional[str], default: str) -> str:
    return re.sub(r"[^\w.]+", "", version or "") or default


def ensure_rehearsal_media(media_dir: Path, cloudtower_version: Optional[str], *,
                           obs_version: Optional[str] = None, backup_version: Optional[str] = None) -> list[Path]:
    """Create placeholder CloudTower and SVT ISOs and Observability and backup
    packages in ``media_dir`` when missing (simulator rehearsals only). Returns
    the files created."""
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    wanted = (
        (cloudtower_isos, f"cloudtower-{_version_text(cloudtower_version, '4.7.1')}-{REHEARSAL_MARK}.iso",
         REHEARSAL_SIZE),
        (svt_isos, f"SMTX_VMTOOLS-3.2.0-{REHEARSAL_MARK}.iso", REHEARSAL_SIZE),
        (obs_packages, f"Observability-X86_64-v{_version_text(obs_version, '1.4.2')}-{REHEARSAL_MARK}.tar.gz",
         PACKAGE_REHEARSAL_SIZE),
        (backup_packages, f"smtx-backup-dr-x86_64-{_version_text(backup_version, '2.2.1')}-{REHEARSAL_MARK}.tar.gz",
         PACKAGE_REHEARSAL_SIZE),
    )
    created = []
    for listed, name, size in wanted:
        if not listed(media_dir):
            path = media_dir / name
            _write_placeholder(path, size)
            created.append(path)
    return created


def choose_media_dir(explicit: Optional[Path], plan_path: Optional[Path], state_dir: Path,
                     simulated: bool, plan_is_demo: bool) -> Path:
    """Where the media are read from (see the module docstring)."""
    if explicit:
        return Path(explicit)
    if plan_path is not None and not plan_is_demo:
        folder = Path(plan_path).parent
        if not simulated or find_cloudtower_iso(folder):
            return folder
    return Path(state_dir) / "media"
