"""Images and chunked upload volumes (ISO images and SVT/VMTools images).

An upload volume expects ``ceil(size / chunk_size)`` chunks of exactly
``chunk_size`` bytes (the last one: the remainder), numbered from 0, in any
order and on as many parallel connections as the client likes. As a real
server does, each chunk is written where it belongs:

* creating a volume creates a sparse data file of the image's size; a chunk
  streams from the multipart parser straight to its offset in that file
  (``chunk_num * chunk_size``), each request through its own file handle, so
  parallel chunks never wait for each other and no chunk is kept in memory;
* a chunk that is not exactly the expected size is refused
  (``UPLOAD_CHUNK_SIZE_MISMATCH``) and stays in ``to_upload``; a chunk sent
  again after it was accepted is read and discarded (accepted once);
* the image's md5 is the md5 of the whole file: a hash worker per upload reads
  the accepted chunks back in order (1 MiB at a time) while later chunks are
  still arriving, so only the tail is left to hash when the last chunk lands.
* without a state file nothing has to outlive the process, and nothing reads an
  image's bytes after its md5 (images are referenced by path): a chunk within
  :data:`MEMORY_WINDOW` chunks of the hash worker's position is then received
  into one of a few reused buffers and hashed from there, never written to
  the data file. Parallel streams sending chunks roughly in order (as clients
  do) are absorbed by the window; a chunk far ahead of the hash position, or
  arriving while every buffer is taken, goes to its offset in the data file
  as above. This saves the page-cache write and read-back of every such
  chunk (on this project's VMs, first-touch page-cache writes cost more CPU
  than the md5), and bounds memory to ``MEMORY_WINDOW × chunk_size``.

The data files live next to the state file (``<state file>.uploads/``) when
the simulator has one, so an unfinished upload survives a restart (a killed
suite run) and can be resumed: its accepted chunks are still listed as done.
Without a state file they live in a temporary directory created with the first
volume and removed when the last upload ends, in :meth:`ImageStore.close` and,
at the latest, when the store is garbage-collected or the process exits. A
restored or restarted world whose data file is gone answers chunks with
``UPLOAD_VOLUME_LOST`` (410): the client deletes the volume and starts again.

[INF] The image listings (``GET /api/v2/images``, ``GET /api/v2/svt_image``)
also show unfinished upload volumes, with ``resource_state: "uploading"``,
``md5: null`` and their ``to_upload``: that is how a client finds the volume a
timed-out or interrupted run created (the walkthrough shows only finished
images; whether a real cluster lists volumes being uploaded is not documented).

``chunks_accepted`` (state file only, not in ``status``) counts every chunk
request that was accepted, resends included: a test tells a resumed upload
from a restarted one with it.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from pathlib import Path
from typing import Any, Optional

from voyager.sim.backend.errors import SimError, form_error, not_found

CHUNK_SIZE = 8 * 1024 * 1024
HASH_READ = 1024 * 1024
TEMP_PREFIX = "voyager-sim-uploads-"  # + "<pid>-": a test session finds its own leftovers
DIGEST_TIMEOUT = 600.0  # seconds the last chunk waits for the hash worker
MEMORY_WINDOW = 6  # chunks an upload without a state file may hold in memory (6 × 8 MiB)


class _BufferPool:
    """The chunk buffers of a store, allocated once and lent to its uploads: at most
    ``limit`` exist at a time. (Buffers allocated per upload and freed after it stay
    in the allocator's per-thread arenas: the resident set grew with every upload.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.free: list[bytearray] = []
        self.lent = 0

    def take(self, size: int) -> Optional[bytearray]:
        with self.lock:
            for i, buffer in enumerate(self.free):
                if len(buffer) == size:
                    self.lent += 1
                    return self.free.pop(i)
            if self.lent + len(self.free) >= self.limit:
                if not self.free:
                    return None
                self.free.pop()  # a buffer of another chunk size: make room
            self.lent += 1
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        with self.lock:
            self.lent -= 1
            self.free.append(buffer)


class _Volume:
    """The data file and hash worker of one upload in progress."""

    def __init__(self, upload: dict[str, Any], path: Path, *, create: bool, memory_window: int = 0,
                 pool: Optional[_BufferPool] = None) -> None:
        self.path = path
        self.size = upload["size"]
        self.chunk_size = upload["chunk_size"]
        self.chunks = upload["chunks"]
        if create:
            with open(path, "wb") as fh:
                fh.truncate(self.size)  # sparse: no block is allocated before a chunk lands
        self.ready = set(upload["received"])
        self.cond = threading.Condition()
        self.memory_window = memory_window if pool is not None else 0
        self.pool = pool
        self.in_memory: dict[int, bytearray] = {}  # chunks streaming into, or accepted in, a buffer
        self.accepted_in_memory: set[int] = set()  # ready chunks whose accepted copy is their buffer
        self.hashed = 0  # chunks hashed, in order
        self.md5 = hashlib.md5()
        self.closed = False
        self.error: Optional[str] = None
        self.thread = threading.Thread(target=self._hash_loop, daemon=True,
                                       name=f"sim-hash-{upload['image_uuid'][:8]}")
        self.thread.start()

    def offset(self, chunk_num: int) -> int:
        return chunk_num * self.chunk_size

    def mark_ready(self, chunk_num: int, *, in_memory: bool = False) -> None:
        with self.cond:
            self.ready.add(chunk_num)
            if in_memory:
                self.accepted_in_memory.add(chunk_num)
            self.cond.notify_all()

    def _hash_loop(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                while True:
                    with self.cond:
                        while not self.closed and self.hashed < self.chunks and self.hashed not in self.ready:
                            self.cond.wait()
                        if self.closed or self.hashed >= self.chunks:
                            return
                        index = self.hashed
                        buffer = self.in_memory.get(index) if index in self.accepted_in_memory else None
                    start = self.offset(index)
                    left = min(self.chunk_size, self.size - start)
                    if buffer is not None:
                        self.md5.update(memoryview(buffer)[:left])  # hashlib releases the GIL
                    else:
                        fh.seek(start)
                        while left > 0:
                            block = fh.read(min(HASH_READ, left))
                            if not block:
                                raise OSError(f"data file ended at chunk {index}")
                            self.md5.update(block)
                            left -= len(block)
                    with self.cond:
                        self.hashed = index + 1
                        if buffer is not None:
                            self.accepted_in_memory.discard(index)
                            self._release(index)
                        self.cond.notify_all()
        except OSError as exc:
            with self.cond:
                self.error = str(exc)
                self.cond.notify_all()

    def digest(self, timeout: float = DIGEST_TIMEOUT) -> str:
        """The md5 of the whole file once every chunk is hashed."""
        with self.cond:
            self.cond.wait_for(lambda: self.hashed >= self.chunks or self.closed or self.error, timeout)
            if self.hashed < self.chunks:
                raise SimError("UPLOAD_HASH_FAILED", f"could not hash the upload: {self.error or 'aborted'}",
                               status=500)
            return self.md5.hexdigest()

    def take_buffer(self, chunk_num: int) -> Optional[bytearray]:
        """A buffer for a chunk about to stream in, when it is in the memory window
        and one is free (call with ``cond`` held); ``None``: write it to the file."""
        if (self.closed or not self.hashed <= chunk_num < self.hashed + self.memory_window
                or chunk_num in self.in_memory):
            return None
        buffer = self.pool.take(self.chunk_size)
        if buffer is None:
            return None
        self.in_memory[chunk_num] = buffer
        return buffer

    def _release(self, chunk_num: int) -> None:
        """Give a chunk's buffer back (``cond`` held): hashed, or the chunk was refused."""
        buffer = self.in_memory.pop(chunk_num, None)
        if buffer is not None:
            self.pool.give(buffer)

    def release(self, chunk_num: int) -> None:
        with self.cond:
            if chunk_num not in self.accepted_in_memory:  # an accepted buffer is kept until hashed
                self._release(chunk_num)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            for chunk_num in list(self.in_memory):
                if chunk_num in self.accepted_in_memory:  # a streaming chunk's receiver gives its own back
                    self._release(chunk_num)
            self.accepted_in_memory.clear()
            self.cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=10)


class _ChunkSink:
    """File-like target of the multipart parser: writes the chunk at its offset
    (or into its memory buffer; never past the chunk's end) or, for a chunk
    already accepted, only counts."""

    def __init__(self, volume: _Volume, chunk_num: int, expected: int, *, discard: bool,
                 buffer: Optional[bytearray] = None) -> None:
        self.size = 0
        self.expected = expected
        self.buffer = memoryview(buffer) if buffer is not None else None
        self.fh = None if discard or buffer is not None else open(volume.path, "r+b", buffering=0)
        if self.fh is not None:
            self.fh.seek(volume.offset(chunk_num))

    def write(self, data: bytes) -> int:
        room = self.expected - self.size
        if room > 0:
            piece = data if len(data) <= room else memoryview(data)[:room]
            if self.buffer is not None:
                self.buffer[self.size:self.size + len(piece)] = piece
            elif self.fh is not None:
                self.fh.write(piece)
        self.size += len(data)
        return len(data)

    def seek(self, *args) -> int:
        return 0

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        if self.fh is not None and not self.fh.closed:
            self.fh.close()


class _Discard(_ChunkSink):
    def __init__(self) -> None:  # a second file part: counted, discarded
        self.size, self.expected, self.fh = 0, 0, None


class ChunkReceiver:
    """One chunk upload in flight: give :meth:`stream_factory` to the multipart
    parser, then call :meth:`finish` (or :meth:`abort`)."""

    def __init__(self, store: "ImageStore", upload: dict[str, Any], volume: _Volume, chunk_num: int) -> None:
        self.store = store
        self.upload = upload
        self.volume = volume
        self.chunk_num = chunk_num
        self.sink: Optional[_ChunkSink] = None
        self.extra_parts = 0

    def stream_factory(self, total_content_length=None, content_type=None, filename=None,
                       content_length=None):
        if self.sink is not None:
            self.extra_parts += 1
            return _Discard()
        with self.volume.cond:
            discard = self.chunk_num in self.volume.ready
            buffer = None if discard else self.volume.take_buffer(self.chunk_num)
        self.sink = _ChunkSink(self.volume, self.chunk_num, self.expected_size(), discard=discard, buffer=buffer)
        return self.sink

    def expected_size(self) -> int:
        up = self.upload
        if self.chunk_num == up["chunks"] - 1:
            return up["size"] - up["chunk_size"] * (up["chunks"] - 1)
        return up["chunk_size"]

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.close()
            if self.sink.buffer is not None:
                self.volume.release(self.chunk_num)

    def finish(self, file_part_present: bool) -> dict[str, Any]:
        if self.sink is not None:
            self.sink.close()
        try:
            if self.sink is None or not file_part_present or self.extra_parts:
                raise form_error("file", "exactly one multipart file field named 'file' is required")
            expected = self.expected_size()
            if self.sink.size != expected:
                raise SimError("UPLOAD_CHUNK_SIZE_MISMATCH",
                               f"chunk {self.chunk_num} has {self.sink.size} bytes, expected {expected}",
                               detail={"file": [f"expected {expected} bytes"]})
            return self.store.commit_chunk(self)
        finally:
            self.abort()  # a refused chunk gives its buffer back; an accepted one keeps it until hashed


class ImageStore:
    def __init__(self, world) -> None:
        self.world = world
        self.images: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.chunks_accepted = 0
        self._volumes: dict[str, _Volume] = {}
        self._lun = 60
        self._dir: Optional[Path] = None
        self._cleanup: Optional[weakref.finalize] = None
        self._pool = _BufferPool(MEMORY_WINDOW)

    # -- data files ----------------------------------------------------------------
    def _persistent_dir(self) -> Optional[Path]:
        state_file = self.world.state_file
        return state_file.with_name(state_file.name + ".uploads") if state_file else None

    def data_dir(self) -> Path:
        """Where the data files of unfinished uploads are (created on first use)."""
        if self._dir is None:
            persistent = self._persistent_dir()
            if persistent is not None:
                persistent.mkdir(parents=True, exist_ok=True)
                self._dir = persistent
            else:
                self._dir = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
                self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        return self._dir

    def _memory_window(self) -> int:
        """Chunks an upload may hold in memory: none when a state file must be able
        to resume the upload after a restart (its chunks must all be on disk)."""
        return 0 if self._persistent_dir() is not None else MEMORY_WINDOW

    def _data_path(self, image_uuid: str) -> Path:
        return self.data_dir() / f"{image_uuid}.part"

    def _drop_volume(self, image_uuid: str) -> None:
        volume = self._volumes.pop(image_uuid, None)
        if volume is not None:
            volume.close()
        if self._dir is not None:
            _unlink(self._dir / f"{image_uuid}.part")
            if not self.uploads:
                self._release_dir()

    def _release_dir(self) -> None:
        if self._dir is None:
            return
        if self._cleanup is not None:
            self._cleanup()  # a temporary directory: removed with whatever it holds
        else:
            try:
                self._dir.rmdir()  # the persistent one only when empty
            except OSError:
                pass
        self._dir, self._cleanup = None, None

    def close(self) -> None:
        """Stop the hash workers; remove a temporary data directory (a persistent
        one keeps the data of unfinished uploads for the next start)."""
        for volume in list(self._volumes.values()):
            volume.close()
        self._volumes.clear()
        if self._cleanup is not None or not self.uploads:
            self._release_dir()

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
        self._volumes[image_uuid] = _Volume(upload, self._data_path(image_uuid), create=True,
                                            memory_window=self._memory_window(), pool=self._pool)
        self.uploads[image_uuid] = upload
        return self.volume_view(upload)

    def volume(self, upload: dict[str, Any]) -> _Volume:
        """The data file of an upload; reopened after a restart when it is still there."""
        image_uuid = upload["image_uuid"]
        volume = self._volumes.get(image_uuid)
        if volume is None:
            base = self._dir or self._persistent_dir()  # never create a directory just to look
            path = base / f"{image_uuid}.part" if base is not None else None
            if path is None or not path.is_file() or path.stat().st_size != upload["size"]:
                raise SimError("UPLOAD_VOLUME_LOST",
                               "the upload volume lost its data (simulator restarted without it); "
                               "delete it and upload again", status=410)
            self.data_dir()
            volume = self._volumes[image_uuid] = _Volume(upload, path, create=False)
        return volume

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
        volume = self.volume(upload)
        if self.world.faults.take("drop-chunk", upload["name"]):
            raise SimError("REST_UNKNOWN_ERROR", f"failed to write chunk {chunk_num} (drop-chunk fault)", status=500)
        return ChunkReceiver(self, upload, volume, chunk_num)

    def commit_chunk(self, rx: ChunkReceiver) -> dict[str, Any]:
        image_uuid = rx.upload["image_uuid"]
        with self.world.lock:
            upload = self.uploads.get(image_uuid)
            if upload is None or self._volumes.get(image_uuid) is not rx.volume:
                raise not_found("upload volume", image_uuid)  # deleted while the chunk streamed in
            self.chunks_accepted += 1
            if rx.chunk_num not in upload["received"]:
                upload["received"].append(rx.chunk_num)
                rx.volume.mark_ready(rx.chunk_num, in_memory=rx.sink.buffer is not None)
            done = len(upload["received"]) >= upload["chunks"]
            if not done:
                self.world.changed()
                return {"chunk_num": rx.chunk_num, "to_upload": self.to_upload(upload)}
        md5 = rx.volume.digest()  # the hash worker is at most a few chunks behind
        with self.world.lock:
            if image_uuid in self.uploads:
                self._complete(self.uploads[image_uuid], md5)
            self.world.changed()
        return {"chunk_num": rx.chunk_num, "to_upload": []}

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
        self._drop_volume(upload["image_uuid"])

    # -- delete / list ---------------------------------------------------------------
    def delete(self, image_uuid: str) -> None:
        if image_uuid in self.uploads:
            self.uploads.pop(image_uuid)
            self._drop_volume(image_uuid)
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
        for upload in self.uploads.values():
            if upload["kind"] == kind:
                out.append({
                    "description": upload["description"], "file_name": upload["image_uuid"], "md5": None,
                    "name": upload["name"], "os": None, "path": upload["image_path"],
                    "resource_state": "uploading", "size": upload["size"], "time": int(upload["created"]),
                    "type": "ISO_IMAGE" if kind == "iso" else "SVT_IMAGE", "uuid": upload["image_uuid"],
                    "vm_snapshots_count": 0, "vm_templates_count": 0, "vms_count": 0,
                    "zbs_volume_id": upload["zbs_volume_id"], "chunk_size": upload["chunk_size"],
                    "to_upload": self.to_upload(upload),
                })
        return out

    # -- state -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"images": self.images, "uploads": self.uploads, "lun": self._lun,
                "chunks_accepted": self.chunks_accepted}

    def load_state(self, state: dict[str, Any]) -> None:
        self.images = dict(state.get("images") or {})
        self.uploads = dict(state.get("uploads") or {})
        self._lun = int(state.get("lun") or self._lun)
        self.chunks_accepted = int(state.get("chunks_accepted") or 0)
        persistent = self._persistent_dir()
        if persistent is not None and persistent.is_dir():  # data of uploads the state no longer has
            for path in persistent.glob("*.part"):
                if path.stem not in self.uploads:
                    _unlink(path)
            if not self.uploads:
                try:
                    persistent.rmdir()
                except OSError:
                    pass


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
