"""Chunked image uploads to a cluster (walkthrough step 03 SVT tools; the same
protocol serves ISO images, e.g. the CloudTower ISO of step 04).

Protocol (API-FACTS): create an upload volume (``name``, ``size``) → ``{image_uuid,
zbs_volume_id, chunk_size, to_upload}``; send each listed chunk as multipart
field ``file`` with ``zbs_volume_id``, ``chunk_num`` (0-based) and
``image_uuid``; each answer's ``to_upload`` lists what is still missing, ``[]``
= complete. Only one chunk is in memory at a time; the file's md5 is computed
while reading and compared with the image the cluster lists. A failed upload is
aborted (``DELETE /api/v2/images/{uuid}``) so no half volume is left behind.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from voyager.waiters import TransferProgress

LOG = logging.getLogger("voyager.upload")


@dataclass(frozen=True)
class UploadKind:
    label: str
    create_path: str
    chunk_path: str
    list_path: str
    create_params: tuple[tuple[str, str], ...] = ()


SVT = UploadKind("虚拟机工具（SVT）", "/api/v2/svt_image/create_volume", "/api/v2/svt_image/upload_template",
                 "/api/v2/svt_image")
ISO = UploadKind("ISO 镜像", "/api/v2/images/upload/volume", "/api/v2/images/upload", "/api/v2/images",
                 (("device", "nfs"),))


class UploadError(AssertionError):
    """The upload did not complete (message in Chinese)."""


def file_md5(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for data in iter(lambda: fh.read(block), b""):
            digest.update(data)
    return digest.hexdigest()


def listed_images(fisheye, kind: UploadKind) -> list[dict[str, Any]]:
    data = fisheye.get(kind.list_path) or {}
    if isinstance(data, dict):
        return list(data.get("images") or data.get("entities") or [])
    return list(data)


def find_image(fisheye, kind: UploadKind, name: str) -> Optional[dict[str, Any]]:
    return next((i for i in listed_images(fisheye, kind) if i.get("name") == name), None)


UPLOAD_ATTEMPTS = 2  # walkthrough: after a failed chunk, delete the volume and upload once more


def upload_file(fisheye, kind: UploadKind, path: Path, *, name: Optional[str] = None,
                description: str = "") -> dict[str, Any]:
    """Upload ``path``; returns the image as the cluster lists it afterwards.

    A chunk is re-sent by the HTTP layer's retries (a chunk POST is idempotent:
    the server keys it by ``chunk_num``). If a chunk still fails, the upload
    volume is deleted and the whole upload is started once more, as the
    walkthrough prescribes; a second failure is reported."""
    path = Path(path)
    name = name or path.name
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            md5 = _upload_once(fisheye, kind, path, name, description)
            break
        except UploadError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport/API failure of this attempt
            if attempt == UPLOAD_ATTEMPTS:
                raise UploadError(f"上传{kind.label} {name} 失败（已删除上传卷并重新上传 "
                                  f"{UPLOAD_ATTEMPTS - 1} 次）：{exc}") from exc
            LOG.warning("上传 %s 失败（%s），已删除上传卷，重新创建并上传（第 %d/%d 次）",
                        name, exc, attempt + 1, UPLOAD_ATTEMPTS)
    image = find_image(fisheye, kind, name)
    if image is None:
        raise UploadError(f"上传完成后集群中没有看到镜像 {name}")
    if image.get("md5") and image["md5"] != md5:
        raise UploadError(f"镜像 {name} 的 md5 为 {image['md5']}，与本地文件的 {md5} 不一致")
    return image


def _upload_once(fisheye, kind: UploadKind, path: Path, name: str, description: str) -> str:
    """One upload: create the volume, send every chunk; returns the local md5.
    On any failure the volume is deleted before the error propagates."""
    size = path.stat().st_size
    params: dict[str, Any] = {"name": name, "size": size, **dict(kind.create_params)}
    if description:
        params["description"] = description
    volume = fisheye.post(kind.create_path, params=params) or {}
    image_uuid, volume_id = volume.get("image_uuid"), volume.get("zbs_volume_id")
    chunk_size = int(volume.get("chunk_size") or 0)
    if not image_uuid or not volume_id or chunk_size <= 0:
        raise UploadError(f"创建上传卷没有返回 image_uuid/zbs_volume_id/chunk_size：{volume!r}")
    todo = sorted(int(n) for n in volume.get("to_upload") or [])
    progress = TransferProgress(f"上传{kind.label} {name}", size)
    md5 = hashlib.md5()
    try:
        with open(path, "rb") as fh:
            for n in todo:
                fh.seek(n * chunk_size)
                data = fh.read(chunk_size)
                md5.update(data)
                answer = fisheye.post(kind.chunk_path,
                                      params={"zbs_volume_id": volume_id, "chunk_num": n, "image_uuid": image_uuid},
                                      files={"file": (name, data, "application/octet-stream")},
                                      idempotent=True) or {}
                progress.advance(len(data))
                remaining = answer.get("to_upload")
                if remaining is not None and n in remaining:
                    raise UploadError(f"第 {n} 块上传后仍在待上传列表中")
        progress.finish()
    except BaseException:
        _abort(fisheye, image_uuid, name)
        raise
    return md5.hexdigest()


def _abort(fisheye, image_uuid: str, name: str) -> None:
    try:
        fisheye.delete(f"/api/v2/images/{image_uuid}")
        LOG.info("上传 %s 失败，已删除未完成的上传卷 %s", name, image_uuid)
    except Exception as exc:  # noqa: BLE001 - the original failure matters more
        LOG.warning("上传 %s 失败后删除上传卷 %s 也失败：%s", name, image_uuid, exc)


def ensure_image(fisheye, kind: UploadKind, media, *, run_state=None) -> tuple[dict[str, Any], str]:
    """The image of ``media`` (``voyager.steps.media.MediaFile``) on the cluster:
    found by name and size, else uploaded; the md5 is checked when listed.
    ``run_state`` (``voyager.state.RunState``) is where the uploader records work
    in flight (accepted, not used yet)."""
    existing = find_image(fisheye, kind, media.name)
    if existing is not None and existing.get("size") in (None, media.size):
        if existing.get("md5") and existing["md5"] != file_md5(media.path):
            raise UploadError(f"集群中已有同名镜像 {media.name}，但 md5 与本地文件不一致；请确认后删除旧镜像再重跑")
        return existing, f"集群中已有{kind.label} {media.name}"
    image = upload_file(fisheye, kind, media.path)
    return image, f"已上传{kind.label} {media.describe()}"


def ensure_svt_image(fisheye, media) -> str:
    image, how = ensure_image(fisheye, SVT, media)
    return f"{how}（md5 {image.get('md5') or '-'}）"
