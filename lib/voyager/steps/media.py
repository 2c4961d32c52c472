"""Installation media: the CloudTower ISO (``cloudtower*.iso``, the highest
version wins) and the SVT tools ISO (``SMTX_VMTOOLS-*.iso``, optional).

Media are looked for in ``--media-dir`` (default: the plan's folder). A
rehearsal on the simulator with no media at hand gets small placeholder ISOs
generated in ``<state dir>/media`` (the simulator accepts any bytes); an
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
REHEARSAL_MARK = "sim-rehearsal"
REHEARSAL_SIZE = 9 * 1024 * 1024 + 4321  # two 8 MiB upload chunks


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


def ensure_rehearsal_media(media_dir: Path, cloudtower_version: Optional[str]) -> list[Path]:
    """Create placeholder CloudTower and SVT ISOs in ``media_dir`` when missing
    (simulator rehearsals only). Returns the files created."""
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    created = []
    version = re.sub(r"[^\w.]+", "", cloudtower_version or "") or "4.7.1"
    if not cloudtower_isos(media_dir):
        path = media_dir / f"cloudtower-{version}-{REHEARSAL_MARK}.iso"
        _write_placeholder(path, REHEARSAL_SIZE)
        created.append(path)
    if not svt_isos(media_dir):
        path = media_dir / f"SMTX_VMTOOLS-3.2.0-{REHEARSAL_MARK}.iso"
        _write_placeholder(path, REHEARSAL_SIZE)
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
