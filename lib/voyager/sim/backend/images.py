"""Images and chunked upload volumes (ISO images and SVT/VMTools images).

An upload volume expects ``ceil(size / chunk_size)`` chunks of exactly
``chunk_size`` bytes (the last one: the remainder), numbered from 0, in any
order. The image's md5 is the md5 of the whole file, computed while the bytes
stream in; no chunk is kept in memory:

* a chunk that is the next one expected (every chunk of a sequential upload)
  is hashed as it streams through the multipart parser into a *copy* of the
  running md5, which is committed only when the chunk turns out to have the
  right size (a wrong-sized chunk leaves the hash untouched);
* a chunk that arrives early cannot be hashed yet (md5 is sequential): it is
  parked in a temporary file until the gap before it is filled, then hashed
  from that file and deleted. At most ``MAX_PARKED`` chunks (128 MiB of disk)
  are parked per upload; a further early chunk is refused
  (``UPLOAD_TOO_MANY_PENDING_CHUNKS``) and stays in ``to_upload`` so the client
  can send it again later.

The running md5 is process memory only: after a simulator restart an
unfinished upload is still listed (``uploads_in_progress``) but refuses chunks
with ``UPLOAD_VOLUME_LOST``; the client deletes it and starts again, exactly
what the walkthrough prescribes after a failed upload.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import threading
import uuid
from typing import Any, Optional

from voyager.sim.backend.errors import SimError, form_error, not_found

CHUNK_SIZE = 8 * 1024 * 1024
MAX_PARKED = 16
HASH_READ = 1024 * 1024


class _HashSink:
    """File-like target of the multipart parser that only hashes."""

    def __init__(self, md5) -> None:
        self.md5 = md5
        self.size = 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return len(data)

    def seek(self, *args) -> int:
        return 0

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _ParkSink:
    """File-like target that writes an early chunk to a spool file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fh = open(path, "wb")
        self.size = 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.size += len(data)
        return len(data)

    def seek(self, *args) -> int:
        self.fh.flush()
        return 0

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()


class ChunkReceiver:
    """One chunk upload in flight: give :meth:`stream_factory` to the multipart
    parser, then call :meth:`finish` (or :meth:`abort`)."""

    def __init__(self, store: "ImageStore", upload: dict[str, Any], chunk_num: int) -> None:
        self.store = store
        self.upload = upload
        self.chunk_num = chunk_num
        self.sink: Optional[_HashSink | _ParkSink] = None
        self.extra_parts = 0
        self.direct = False

    def stream_factory(self, total_content_length=None, content_type=None, filename=None,
                       content_length=None):
        if self.sink is not None:  # a second file part: counted, discarded
            self.extra_parts += 1
            return _HashSink(hashlib.md5())
        runtime = self.store.runtime(self.upload)
        with runtime["lock"]:
            if self.chunk_num == runtime["next"] and not runtime["streaming"]:
                runtime["streaming"] = True
                self.direct = True
                self.sink = _HashSink(runtime["md5"].copy())
                return self.sink
            if len(runtime["parked"]) >= MAX_PARKED:
                raise SimError("UPLOAD_TOO_MANY_PENDING_CHUNKS",
                               f"more than {MAX_PARKED} chunks ahead of chunk {runtime['next']}; send that one first",
                               status=409)
            fd, path = tempfile.mkstemp(prefix=f"chunk{self.chunk_num}-", dir=self.store.spool_dir)
            os.close(fd)
            self.sink = _ParkSink(path)
            return self.sink

    def expected_size(self) -> int:
        up = self.upload
        if self.chunk_num == up["chunks"] - 1:
            return up["size"] - up["chunk_size"] * (up["chunks"] - 1)
        return up["chunk_size"]

    def abort(self) -> None:
        runtime = self.store.runtime(self.upload)
        with runtime["lock"]:
            if self.direct:
                runtime["streaming"] = False
        if isinstance(self.sink, _ParkSink):
            self.sink.close()
            _unlink(self.sink.path)

    def finish(self, file_part_present: bool) -> dict[str, Any]:
        if self.sink is None or not file_part_present or self.extra_parts:
            self.abort()
            raise form_error("file", "exactly one multipart file field named 'file' is required")
        self.sink.close()
        expected = self.expected_size()
        if self.sink.size != expected:
            self.abort()
            raise SimError("UPLOAD_CHUNK_SIZE_MISMATCH",
                           f"chunk {self.chunk_num} has {self.sink.size} bytes, expected {expected}",
                           detail={"file": [f"expected {expected} bytes"]})
        try:
            return self.store.commit_chunk(self)
        except SimError:  # aborted (DELETE) while the chunk streamed in
            self.abort()
            raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class ImageStore:
    def __init__(self, world) -> None:
        self.world = world
        self.images: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self._runtime: dict[str, dict[str, Any]] = {}
        self._lun = 60
        self.spool_dir = tempfile.mkdtemp(prefix="voyager-sim-spool-")

    def close(self) -> None:
        shutil.rmtree(self.spool_dir, ignore_errors=True)

    # -- volumes -------------------------------------------------------------------
    def create_volume(self, name: str, size: int, *, description: str = "", kind: str = "iso") -> dict[str, Any]:
        self.world.require_cluster()
        if not name:
            raise form_error("name", "is required")
        if size <= 0:
            raise form_error("size", "must be a positive integer")
        image_uuid = str(uuid.uuid4())
        self._lun += 1
        datastore = self.world.require_cluster().datastore
        path = (f"iscsi://iqn.2016-02.com.smartx:system:{datastore}/{self._lun}" if kind == "iso"
                else f"/usr/share/smartx/images/vmtools/{image_uuid}")
        chunks = max(1, math.ceil(size / CHUNK_SIZE))
        upload = {
            "image_uuid": image_uuid, "zbs_volume_id": str(uuid.uuid4()), "name": name, "size": size,
            "description": description, "kind": kind, "chunk_size": CHUNK_SIZE, "chunks": chunks,
            "image_path": path, "received": [], "created": self.world.clock.now(),
        }
        self.uploads[image_uuid] = upload
        self._runtime[image_uuid] = self._new_runtime()
        return self.volume_view(upload)

    @staticmethod
    def _new_runtime() -> dict[str, Any]:
        return {"lock": threading.Lock(), "md5": hashlib.md5(), "next": 0, "streaming": False, "parked": {}}

    def runtime(self, upload: dict[str, Any]) -> dict[str, Any]:
        rt = self._runtime.get(upload["image_uuid"])
        if rt is None:
            raise SimError("UPLOAD_VOLUME_LOST",
                           "the upload volume lost its progress (simulator restarted); delete it and upload again",
                           status=410)
        return rt

    def to_upload(self, upload: dict[str, Any]) -> list[int]:
        got = set(upload["received"])
        return [i for i in range(upload["chunks"]) if i not in got]

    def volume_view(self, upload: dict[str, Any]) -> dict[str, Any]:
        return {"chunk_size": upload["chunk_size"], "image_path": upload["image_path"],
                "image_uuid": upload["image_uuid"], "to_upload": self.to_upload(upload),
                "zbs_volume_id": upload["zbs_volume_id"]}

    # -- chunks --------------------------------------------------------------------
    def begin_chunk(self, image_uuid: str, zbs_volume_id: str, chunk_num: int, *, kind: str) -> ChunkReceiver:
        upload = self.uploads.get(image_uuid)
        if upload is None or upload["kind"] != kind:
            if image_uuid in self.images:
                raise SimError("UPLOAD_ALREADY_COMPLETED", f"image {image_uuid} is already complete")
            raise not_found("upload volume", image_uuid)
        if upload["zbs_volume_id"] != zbs_volume_id:
            raise form_error("zbs_volume_id", "does not belong to this image")
        if not 0 <= chunk_num < upload["chunks"]:
            raise form_error("chunk_num", f"must be between 0 and {upload['chunks'] - 1}")
        self.runtime(upload)
        if self.world.faults.take("drop-chunk", upload["name"]):
            raise SimError("REST_UNKNOWN_ERROR", f"failed to write chunk {chunk_num} (drop-chunk fault)", status=500)
        return ChunkReceiver(self, upload, chunk_num)

    def commit_chunk(self, rx: ChunkReceiver) -> dict[str, Any]:
        upload = rx.upload
        runtime = self.runtime(upload)
        with runtime["lock"]:
            if rx.direct:
                runtime["md5"] = rx.sink.md5
                runtime["next"] = rx.chunk_num + 1
                runtime["streaming"] = False
            else:
                old = runtime["parked"].pop(rx.chunk_num, None)
                if old:
                    _unlink(old)
                if rx.chunk_num >= runtime["next"]:
                    runtime["parked"][rx.chunk_num] = rx.sink.path
                else:
                    _unlink(rx.sink.path)
            if not runtime["streaming"]:
                self._drain(runtime)
        with self.world.lock:
            if rx.chunk_num not in upload["received"]:
                upload["received"].append(rx.chunk_num)
            done = runtime["next"] >= upload["chunks"]
            if done and upload["image_uuid"] in self.uploads:
                self._complete(upload, runtime["md5"].hexdigest())
            self.world.changed()
            return {"chunk_num": rx.chunk_num, "to_upload": [] if done else self.to_upload(upload)}

    def _drain(self, runtime: dict[str, Any]) -> None:
        """Hash parked chunks that have become contiguous (called under the lock)."""
        for index in sorted(runtime["parked"]):
            if index < runtime["next"]:
                _unlink(runtime["parked"].pop(index))
        while runtime["next"] in runtime["parked"]:
            path = runtime["parked"].pop(runtime["next"])
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(HASH_READ), b""):
                    runtime["md5"].update(block)
            _unlink(path)
            runtime["next"] += 1

    def _complete(self, upload: dict[str, Any], md5: str) -> None:
        now = int(self.world.clock.now())
        self.images[upload["image_uuid"]] = {
            "description": upload["description"], "file_name": upload["image_uuid"], "md5": md5,
            "name": upload["name"], "os": None, "path": upload["image_path"], "resource_state": "in-use",
            "size": upload["size"], "time": now, "type": "ISO_IMAGE" if upload["kind"] == "iso" else "SVT_IMAGE",
            "uuid": upload["image_uuid"], "vm_snapshots_count": 0, "vm_templates_count": 0, "vms_count": 0,
            "zbs_volume_id": upload["zbs_volume_id"], "kind": upload["kind"],
        }
        self.uploads.pop(upload["image_uuid"], None)
        self._runtime.pop(upload["image_uuid"], None)

    # -- delete / list ---------------------------------------------------------------
    def delete(self, image_uuid: str) -> None:
        if image_uuid in self.uploads:
            self.uploads.pop(image_uuid)
            runtime = self._runtime.pop(image_uuid, None)
            if runtime:
                with runtime["lock"]:
                    for path in runtime["parked"].values():
                        _unlink(path)
                    runtime["parked"].clear()
            return
        image = self.images.get(image_uuid)
        if image is None:
            raise not_found("image", image_uuid)
        if self.world.vms.image_in_use(image["path"]):
            raise SimError("IMAGE_IN_USE", f"image {image['name']} is mounted by a VM")
        self.images.pop(image_uuid)

    def by_path(self, path: str) -> Optional[dict[str, Any]]:
        return next((i for i in self.images.values() if i["path"] == path), None)

    def listing(self, kind: str) -> list[dict[str, Any]]:
        out = []
        for image in self.images.values():
            if image["kind"] == kind:
                view = {k: v for k, v in image.items() if k != "kind"}
                view["vms_count"] = self.world.vms.image_in_use(image["path"])
                out.append(view)
        return out

    # -- state -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"images": self.images, "uploads": self.uploads, "lun": self._lun}

    def load_state(self, state: dict[str, Any]) -> None:
        self.images = dict(state.get("images") or {})
        self.uploads = dict(state.get("uploads") or {})
        self._lun = int(state.get("lun") or self._lun)
        self._runtime = {}  # hashes in flight do not survive a restart (see module docstring)
