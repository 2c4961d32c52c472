"""Chunked image uploads to a cluster: the SVT tools ISO (walkthrough step 03)
and the CloudTower ISO (step 04) share this uploader.

Protocol (API-FACTS): create an upload volume (``name``, ``size``) → ``{image_uuid,
zbs_volume_id, chunk_size, to_upload}``; send each listed chunk as multipart
field ``file`` with ``zbs_volume_id``, ``chunk_num`` (0-based) and
``image_uuid``; each answer's ``to_upload`` lists what is still missing, ``[]``
= complete.

How this module sends it:

* **Parallel, streamed, read once.** Chunks go out on ``connections`` parallel
  connections (default 4). The file is read once, in order, by the calling
  thread; each chunk's bytes are handed both to a hash worker (the file's md5,
  computed while the chunks are on the wire) and to a sender, whose multipart
  body (:class:`voyager.clients.multipart.FilePartBody`: requests-toolbelt's
  framing around the chunk's own bytes) goes to the socket without a copy of
  the chunk. At most ``connections + 2`` chunks are in memory.
* **Retries (the walkthrough's rule).** A failed chunk is sent again twice; if it
  still fails, the volume is deleted and the whole upload started over once; a
  second failure is reported (the volume deleted again).
* **In flight is recorded, followed, never left behind.** Before the create
  call the run state (section ``uploads``) records that a volume is being
  created; once created, its ``image_uuid``/``zbs_volume_id`` are recorded
  before any chunk is sent. A rerun resumes the recorded volume when the
  cluster still lists it (sending only its ``to_upload``), deletes a recorded
  volume it cannot resume, and starts over otherwise. A create call that timed
  out may still complete on the server: the uploader then looks for the volume
  in the listing for a while and adopts it instead of creating a second one.
  Every failure path deletes the volume, so no run ends with one of its own open.
* **Verified.** The last answer's ``to_upload`` is empty, the image is listed
  (finished) with the file's size, and with its md5 when the cluster gives one.

Progress (percent, MiB/s, ETA) is logged through ``voyager.waiters.TransferProgress``.
All traffic goes through :class:`voyager.clients.FisheyeClient`.
"""
from __future__ import annotations

import contextvars
import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from voyager.clients.errors import ApiError, TransportError
from voyager.clients.multipart import FilePartBody
from voyager.progress import TransferProgress
from voyager.waiters import WaitTimeout, wait_for

LOG = logging.getLogger("voyager.upload")

DEFAULT_CONNECTIONS = 4
CHUNK_ATTEMPTS = 3   # walkthrough: a failed chunk is retried twice ...
UPLOAD_ATTEMPTS = 2  # ... then the volume is deleted and the upload started over once
CREATE_WAIT = 180.0  # seconds a timed-out create is looked for in the listing
STATE_SECTION = "uploads"
UPLOADING = "uploading"


@dataclass(frozen=True)
class UploadKind:
    key: str
    label: str
    create_path: str
    chunk_path: str
    list_path: str
    create_params: tuple[tuple[str, str], ...] = ()


SVT = UploadKind("svt", "虚拟机工具（SVT）", "/api/v2/svt_image/create_volume", "/api/v2/svt_image/upload_template",
                 "/api/v2/svt_image")
ISO = UploadKind("iso", "ISO 镜像", "/api/v2/images/upload/volume", "/api/v2/images/upload", "/api/v2/images",
                 (("device", "nfs"),))


class UploadError(AssertionError):
    """The upload did not complete (message in Chinese)."""


class _Retryable(Exception):
    """This attempt failed; the volume is deleted and (once) the upload started over."""


def file_md5(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for data in iter(lambda: fh.read(block), b""):
            digest.update(data)
    return digest.hexdigest()


# -- listing ---------------------------------------------------------------------------------
def listed_images(fisheye, kind: UploadKind) -> list[dict[str, Any]]:
    """Every entry of the kind's listing (finished images and, where the cluster
    lists them, upload volumes in progress)."""
    data = fisheye.get(kind.list_path) or {}
    if isinstance(data, dict):
        return list(data.get("images") or data.get("entities") or [])
    return list(data)


def is_uploading(entry: dict[str, Any]) -> bool:
    return entry.get("resource_state") == UPLOADING or bool(entry.get("to_upload"))


def find_image(fisheye, kind: UploadKind, name: str) -> Optional[dict[str, Any]]:
    """The finished image called ``name``, if the cluster lists one."""
    return next((i for i in listed_images(fisheye, kind) if i.get("name") == name and not is_uploading(i)), None)


@dataclass
class Volume:
    image_uuid: str
    zbs_volume_id: str
    chunk_size: int
    to_upload: list[int]

    @classmethod
    def from_answer(cls, data: dict[str, Any]) -> "Volume":
        image_uuid, volume_id = data.get("image_uuid") or data.get("uuid"), data.get("zbs_volume_id")
        chunk_size = int(data.get("chunk_size") or 0)
        if not image_uuid or not volume_id or chunk_size <= 0:
            raise UploadError(f"创建上传卷没有返回 image_uuid/zbs_volume_id/chunk_size：{data!r}")
        return cls(image_uuid, volume_id, chunk_size, sorted(int(n) for n in data.get("to_upload") or []))


# -- the uploader ------------------------------------------------------------------------------
class Uploader:
    """One file to one cluster (see the module docstring)."""

    def __init__(self, fisheye, kind: UploadKind, path: Path, *, name: Optional[str] = None,
                 run_state=None, connections: int = DEFAULT_CONNECTIONS, description: str = "",
                 create_wait: float = CREATE_WAIT, progress_every: float = 5.0) -> None:
        self.fisheye = fisheye
        self.kind = kind
        self.path = Path(path)
        self.name = name or self.path.name
        self.size = self.path.stat().st_size
        self.run_state = run_state
        self.connections = max(1, int(connections))
        self.description = description
        self.create_wait = create_wait
        self.progress_every = progress_every
        self.chunks_sent = 0  # chunks the cluster accepted from this uploader
        self._count_lock = threading.Lock()

    def count_sent(self) -> None:
        with self._count_lock:
            self.chunks_sent += 1

    # -- run state -------------------------------------------------------------------------
    @property
    def _key(self) -> str:
        return f"{self.kind.key}/{self.name}"

    def recorded(self) -> dict[str, Any]:
        if self.run_state is None:
            return {}
        return self.run_state.get(STATE_SECTION, self._key) or {}

    def _record(self, **values: Any) -> None:
        if self.run_state is not None:
            self.run_state.set(STATE_SECTION, self._key, {"name": self.name, "size": self.size, **values})

    def _forget(self) -> None:
        if self.run_state is not None and self.recorded():
            self.run_state.delete(STATE_SECTION, self._key)

    # -- entry point ---------------------------------------------------------------------------
    def ensure(self) -> tuple[dict[str, Any], bool]:
        """``(image, uploaded)``: the finished image on the cluster, found (name and
        size) or uploaded now."""
        entries = listed_images(self.fisheye, self.kind)
        done = next((e for e in entries if e.get("name") == self.name and not is_uploading(e)), None)
        if done is not None:
            if done.get("size") not in (None, self.size):
                raise UploadError(f"集群中已有同名镜像 {self.name}，但大小为 {done.get('size')} 字节，与本地文件的 "
                                  f"{self.size} 字节不一致；请确认后删除旧镜像再重跑")
            if done.get("md5") and done["md5"] != file_md5(self.path):
                raise UploadError(f"集群中已有同名镜像 {self.name}，但 md5 与本地文件不一致；请确认后删除旧镜像再重跑")
            self._clean_recorded(keep=done.get("uuid"))
            return done, False
        return self.upload(self._resumable(entries)), True

    def _mine(self, entry: dict[str, Any]) -> bool:
        return entry.get("name") == self.name and entry.get("size") in (None, self.size) and is_uploading(entry)

    def _resumable(self, entries: list[dict[str, Any]]) -> Optional[Volume]:
        """The recorded volume when the cluster still lists it unfinished; a
        recorded volume that cannot be resumed is deleted."""
        rec = self.recorded()
        if not rec:
            return None
        if rec.get("image_uuid"):
            entry = next((e for e in entries if e.get("uuid") == rec["image_uuid"]), None)
            if entry is not None and self._mine(entry) and entry.get("zbs_volume_id") == rec.get("zbs_volume_id"):
                volume = Volume.from_answer({"chunk_size": rec.get("chunk_size"), **entry})
                LOG.info("继续上传 %s：上次运行的上传卷 %s 仍在，还差 %d 块", self.name, volume.image_uuid,
                         len(volume.to_upload))
                return volume
            self._delete(rec["image_uuid"], "上次运行记录的上传卷无法继续")
            return None
        # killed between the create call and its answer: adopt what that call created
        entry = next((e for e in entries if self._mine(e)), None)
        if entry is not None and entry.get("chunk_size"):
            volume = Volume.from_answer(entry)
            self._record(state="uploading", image_uuid=volume.image_uuid, zbs_volume_id=volume.zbs_volume_id,
                         chunk_size=volume.chunk_size)
            LOG.info("继续上传 %s：沿用上次运行创建的上传卷 %s", self.name, volume.image_uuid)
            return volume
        self._forget()
        return None

    def _clean_recorded(self, keep: Any) -> None:
        """The image is there: a different volume recorded by an earlier run is deleted."""
        rec = self.recorded()
        if rec.get("image_uuid") and rec["image_uuid"] != keep:
            self._delete(rec["image_uuid"], "镜像已存在，清理上次运行留下的上传卷")
        self._forget()

    # -- upload with the walkthrough's retry rule ----------------------------------------------
    def upload(self, volume: Optional[Volume] = None) -> dict[str, Any]:
        """Upload (or resume ``volume``); returns the finished image as listed."""
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                if volume is None:
                    volume = self._create()
                md5 = self._send(volume)
                image = self._verify(volume, md5)
                self._forget()
                return image
            except BaseException as exc:
                if volume is not None:
                    self._delete(volume.image_uuid, "上传失败")
                    volume = None
                self._forget()
                if not isinstance(exc, _Retryable):
                    raise
                if attempt == UPLOAD_ATTEMPTS:
                    raise UploadError(f"上传{self.kind.label} {self.name} 失败（已删除上传卷并重新上传 "
                                      f"{UPLOAD_ATTEMPTS - 1} 次）：{exc}") from exc
                LOG.warning("上传 %s 失败（%s），已删除上传卷，重新创建并上传（第 %d/%d 次）",
                            self.name, exc, attempt + 1, UPLOAD_ATTEMPTS)
        raise AssertionError("unreachable")

    def _create(self) -> Volume:
        params: dict[str, Any] = {"name": self.name, "size": self.size, **dict(self.kind.create_params)}
        if self.description:
            params["description"] = self.description
        before = {e.get("uuid") for e in listed_images(self.fisheye, self.kind)}
        self._record(state="creating")
        try:
            volume = Volume.from_answer(self.fisheye.post(self.kind.create_path, params=params) or {})
        except TransportError as exc:  # no answer: the server may still create it
            volume = self._await_created(before, exc)
        except ApiError as exc:
            raise _Retryable(f"创建上传卷失败：{exc}") from exc
        self._record(state="uploading", image_uuid=volume.image_uuid, zbs_volume_id=volume.zbs_volume_id,
                     chunk_size=volume.chunk_size)
        return volume

    def _await_created(self, before: set, cause: Exception) -> Volume:
        LOG.warning("创建上传卷 %s 没有得到响应（%s），在镜像列表中查找它是否已创建", self.name, cause)

        def probe() -> Optional[dict[str, Any]]:
            return next((e for e in listed_images(self.fisheye, self.kind)
                         if self._mine(e) and e.get("uuid") not in before), None)

        try:
            entry = wait_for(f"上传卷 {self.name} 出现在 {self.kind.list_path}", probe, lambda e: e is not None,
                             self.create_wait, interval=1.0, max_interval=5.0,
                             retry_on=lambda e: isinstance(e, TransportError) or (
                                 isinstance(e, ApiError) and (e.status or 0) >= 500))
        except WaitTimeout as exc:
            raise _Retryable(f"创建上传卷没有响应，{self.create_wait:.0f} 秒内也没有出现在列表中") from exc
        return Volume.from_answer({"chunk_size": entry.get("chunk_size"), **entry})

    def _delete(self, image_uuid: str, why: str) -> None:
        try:
            self.fisheye.delete(f"/api/v2/images/{image_uuid}")
            LOG.info("%s：已删除上传卷 %s（%s）", self.name, image_uuid, why)
        except ApiError as exc:
            if exc.status == 404:
                return
            LOG.warning("%s：删除上传卷 %s 失败（%s）：%s", self.name, image_uuid, why, exc)
        except Exception as exc:  # noqa: BLE001 - the original failure matters more
            LOG.warning("%s：删除上传卷 %s 失败（%s）：%s", self.name, image_uuid, why, exc)

    # -- sending ----------------------------------------------------------------------------------
    def _send(self, volume: Volume) -> str:
        """Send ``volume.to_upload``; returns the md5 of the whole file."""
        chunk_size = volume.chunk_size
        chunks = max(1, -(-self.size // chunk_size))
        todo = set(volume.to_upload)
        if any(n < 0 or n >= chunks for n in todo):
            raise _Retryable(f"服务器要求的块号超出文件范围：{sorted(todo)[:5]}…")
        to_send = sum(min(chunk_size, self.size - n * chunk_size) for n in todo)
        progress = _Progress(f"上传{self.kind.label} {self.name}", to_send, self.progress_every)
        pipeline = _Pipeline(self, volume, progress)
        return pipeline.run(chunks, todo)

    def send_chunk(self, volume: Volume, n: int, data: bytes) -> Optional[list[int]]:
        """POST one chunk (sent again twice when it fails); returns the answer's ``to_upload``."""
        params = {"zbs_volume_id": volume.zbs_volume_id, "chunk_num": n, "image_uuid": volume.image_uuid}

        def body() -> FilePartBody:  # a fresh body for every send (FisheyeClient replays on 401)
            return FilePartBody("file", self.name, data)

        last: Optional[Exception] = None
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                answer = self.fisheye.post(self.kind.chunk_path, params=params, data=body) or {}
            except (TransportError, ApiError) as exc:
                last = exc
                if isinstance(exc, ApiError) and exc.status is not None and exc.status < 500:
                    break  # the server refused the chunk (gone, lost, wrong size): not worth resending
                LOG.info("%s 第 %d 块上传失败（第 %d/%d 次）：%s", self.name, n, attempt, CHUNK_ATTEMPTS, exc)
                continue
            remaining = answer.get("to_upload") if isinstance(answer, dict) else None
            if remaining is not None and n in remaining:
                last = UploadError(f"第 {n} 块上传后仍在待上传列表中")
                continue
            return remaining
        raise _Retryable(f"第 {n} 块上传失败：{last}")

    def _verify(self, volume: Volume, md5: str) -> dict[str, Any]:
        entries = listed_images(self.fisheye, self.kind)
        image = next((e for e in entries if e.get("uuid") == volume.image_uuid), None) or next(
            (e for e in entries if e.get("name") == self.name and not is_uploading(e)), None)
        if image is None:
            raise UploadError(f"上传完成后集群中没有看到镜像 {self.name}")
        if is_uploading(image):
            raise _Retryable(f"全部块已发送，但集群仍缺少 {len(image.get('to_upload') or [])} 块")
        if image.get("size") not in (None, self.size):
            raise _Retryable(f"镜像 {self.name} 在集群中的大小为 {image.get('size')} 字节，本地文件为 {self.size} 字节")
        if image.get("md5") and image["md5"] != md5:
            raise _Retryable(f"镜像 {self.name} 的 md5 为 {image['md5']}，与本地文件的 {md5} 不一致")
        LOG.info("%s 上传完成并已核对：大小 %d 字节，md5 %s（本次发送 %d 块）", self.name, self.size,
                 image.get("md5") or md5, self.chunks_sent)
        return image


class _Progress:
    """Thread-safe :class:`TransferProgress` of the bytes sent."""

    def __init__(self, describe: str, total: int, every: float) -> None:
        self._lock = threading.Lock()
        self.meter = TransferProgress(describe, total, report_every=every)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.meter.advance(nbytes)

    def finish(self) -> None:
        with self._lock:
            self.meter.finish()


class _Pipeline:
    """Reader (calling thread) → hash worker (in order) + senders (parallel)."""

    def __init__(self, uploader: Uploader, volume: Volume, progress: _Progress) -> None:
        self.up = uploader
        self.volume = volume
        self.progress = progress
        self.slots = threading.Semaphore(uploader.connections + 2)  # chunks in memory
        self.failed = threading.Event()
        self.errors: list[BaseException] = []
        self.saw_complete = False
        self.md5 = hashlib.md5()
        self.hash_queue: "queue.Queue[Optional[_Chunk]]" = queue.Queue()

    def run(self, chunks: int, todo: set[int]) -> str:
        hasher = threading.Thread(target=self._hash_loop, name="upload-md5", daemon=True)
        hasher.start()
        pool = ThreadPoolExecutor(self.up.connections, thread_name_prefix="upload")
        try:
            with open(self.up.path, "rb") as fh:
                for n in range(chunks):
                    while not self.slots.acquire(timeout=0.5):
                        if self.failed.is_set():
                            break
                    if self.failed.is_set():
                        break
                    data = fh.read(self.volume.chunk_size)
                    chunk = _Chunk(data, 2 if n in todo else 1, self.slots)
                    self.hash_queue.put(chunk)
                    if n in todo:
                        ctx = contextvars.copy_context()  # the check's evidence step follows the chunk
                        pool.submit(ctx.run, self._send, n, chunk)
        except BaseException:
            self.failed.set()
            raise
        finally:
            self.hash_queue.put(None)
            pool.shutdown(wait=True, cancel_futures=self.failed.is_set())
            hasher.join()
        if self.errors:
            raise self.errors[0]
        if todo and not self.saw_complete:
            raise _Retryable("全部块已发送，但服务器的 to_upload 仍不为空")
        self.progress.finish()
        return self.md5.hexdigest()

    def _hash_loop(self) -> None:
        while True:
            chunk = self.hash_queue.get()
            if chunk is None:
                return
            if not self.failed.is_set():
                self.md5.update(chunk.data)
            chunk.release()

    def _send(self, n: int, chunk: "_Chunk") -> None:
        try:
            if self.failed.is_set():
                return
            remaining = self.up.send_chunk(self.volume, n, chunk.data)
            if remaining == []:
                self.saw_complete = True
            self.progress.advance(len(chunk.data))
            self.up.count_sent()
        except BaseException as exc:
            if not self.failed.is_set():
                self.errors.append(exc)
            self.failed.set()
        finally:
            chunk.release()


class _Chunk:
    """A chunk's bytes, freed once hashed and (when it is to be sent) sent."""

    def __init__(self, data: bytes, users: int, slots: threading.Semaphore) -> None:
        self.data = data
        self._users = users
        self._lock = threading.Lock()
        self._slots = slots

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            self.data = b""
        self._slots.release()


# -- the step's entry points -------------------------------------------------------------------------
def upload_file(fisheye, kind: UploadKind, path: Path, *, name: Optional[str] = None, description: str = "",
                run_state=None, **opts: Any) -> dict[str, Any]:
    """Upload ``path`` (no existence check); returns the image as the cluster lists it."""
    return Uploader(fisheye, kind, path, name=name, description=description, run_state=run_state,
                    **opts).upload()


def ensure_image(fisheye, kind: UploadKind, media, *, run_state=None, **opts: Any) -> tuple[dict[str, Any], str]:
    """The image of ``media`` (``voyager.steps.media.MediaFile``) on the cluster:
    found by name and size (md5 checked when listed), resumed from the volume the
    run state records, or uploaded. ``opts``: ``connections`` (default 4),
    ``description``, ``create_wait``, ``progress_every``. Returns ``(image, how)``."""
    image, uploaded = Uploader(fisheye, kind, media.path, run_state=run_state, **opts).ensure()
    return image, (f"已上传{kind.label} {media.describe()}" if uploaded else f"集群中已有{kind.label} {media.name}")


def ensure_svt_image(fisheye, media, *, run_state=None, **opts: Any) -> str:
    image, how = ensure_image(fisheye, SVT, media, run_state=run_state, **opts)
    return f"{how}（md5 {image.get('md5') or '-'}）"
