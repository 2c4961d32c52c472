"""Chunked uploads (ISO and SVT) of the simulator over HTTP: any order, parallel
connections, wrong sizes, aborts, faults, restarts; the md5 is that of the whole
file and no data file or temporary directory outlives its upload or simulator."""
from __future__ import annotations

import gc
import hashlib
import io
import os
import random
import threading

import pytest

from voyager.sim import Simulator
from voyager.sim.backend import images
from sim_support import http, plan, sim  # noqa: F401 (fixtures)
from voyager.sim.testing import SharedSim, SimHttp, deployed

VIP = "127.10.20.10"
SMALL = 4096


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(images, "CHUNK_SIZE", SMALL)


@pytest.fixture(scope="module")
def shared(plan, tmp_path_factory):
    """With a state file: every chunk's bookkeeping is persisted while bytes stream."""
    state = tmp_path_factory.mktemp("images") / "sim.json"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as s:
        yield SharedSim(s, plan)


def data_of(size, seed=1):
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


def volume(http, name, size, **params):
    return http.post(VIP, "/api/v2/images/upload/volume",
                     params={"name": name, "size": size, "description": "", "device": "nfs", "task_id": 2, **params})


def send(http, vol, n, payload, *, path="/api/v2/images/upload", name="file", extra_file=False):
    files = {name: ("f.iso", io.BytesIO(payload), "application/octet-stream")}
    if extra_file:
        files["other"] = ("g", io.BytesIO(b"x"), "application/octet-stream")
    return http.post(VIP, path, params={"zbs_volume_id": vol["zbs_volume_id"], "chunk_num": n,
                                        "image_uuid": vol["image_uuid"]}, files=files)


def chunk(data, n, size=SMALL):
    return data[n * size:(n + 1) * size]


def listed(http, uuid, path="/api/v2/images"):
    return next((i for i in http.get(VIP, path).json()["data"]["images"] if i["uuid"] == uuid), None)


def data_files(sim):
    """The data files of unfinished uploads the simulator holds on disk."""
    folder = sim.world.images._dir
    return sorted(os.listdir(folder)) if folder is not None and os.path.isdir(folder) else []


def test_volume_uses_8mib_chunks_by_default(http):
    size = 7873968128
    vol = volume(http, "cloudtower-v4.6.2.oe2003.x86_64", size).json()["data"]
    assert vol["chunk_size"] == 8388608
    assert vol["to_upload"] == list(range(939))  # the walkthrough's example: 0 .. 938
    assert vol["image_path"].startswith("iscsi://iqn.2016-02.com.smartx:system:zbs-iscsi-datastore-")
    assert len(vol["image_uuid"]) == 36 and len(vol["zbs_volume_id"]) == 36
    assert listed(http, vol["image_uuid"])["resource_state"] == "uploading"  # not a finished image


def test_in_order_upload(http, sim, small_chunks):
    data = data_of(3 * SMALL + 100)
    vol = volume(http, "cloudtower.iso", len(data)).json()["data"]
    assert vol["to_upload"] == [0, 1, 2, 3]
    assert sim.status()["uploads_in_progress"] == 1
    for n in range(4):
        out = send(http, vol, n, chunk(data, n)).json()
        assert out["ec"] == "EOK" and out["data"]["chunk_num"] == n
        assert out["data"]["to_upload"] == list(range(n + 1, 4))
    image = listed(http, vol["image_uuid"])
    assert image["md5"] == hashlib.md5(data).hexdigest() and image["size"] == len(data)
    assert image["name"] == "cloudtower.iso" and image["type"] == "ISO_IMAGE" and image["path"] == vol["image_path"]
    assert sim.status()["uploads_in_progress"] == 0 and sim.status()["images"] == 1
    again = send(http, vol, 0, chunk(data, 0))
    assert again.json()["ec"] == "UPLOAD_ALREADY_COMPLETED"


@pytest.mark.parametrize("order", [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]])
def test_any_order_gives_the_md5_of_the_whole_file(http, sim, small_chunks, order):
    data = data_of(3 * SMALL + 7, seed=sum(order))
    vol = volume(http, "any.iso", len(data)).json()["data"]
    remaining = set(range(4))
    for n in order:
        remaining.discard(n)
        assert send(http, vol, n, chunk(data, n)).json()["data"]["to_upload"] == sorted(remaining)
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()
    assert data_files(sim) == []  # the finished upload's data file is gone


def test_wrong_chunk_sizes_are_rejected_and_leave_the_hash_intact(http, small_chunks):
    data = data_of(2 * SMALL + 10)
    vol = volume(http, "sizes.iso", len(data)).json()["data"]
    short = send(http, vol, 0, chunk(data, 0)[:-1])
    assert short.status_code == 400 and short.json()["ec"] == "UPLOAD_CHUNK_SIZE_MISMATCH"
    assert "file" in short.json()["error"]["detail"]
    long_last = send(http, vol, 2, chunk(data, 2) + b"x")
    assert long_last.json()["ec"] == "UPLOAD_CHUNK_SIZE_MISMATCH"
    early_short = send(http, vol, 1, chunk(data, 1)[:10])  # an early chunk, too short
    assert early_short.json()["ec"] == "UPLOAD_CHUNK_SIZE_MISMATCH"
    for n in range(3):
        assert send(http, vol, n, chunk(data, n)).status_code == 200
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_a_resent_chunk_is_accepted_once(http, small_chunks):
    data = data_of(3 * SMALL)
    vol = volume(http, "dup.iso", len(data)).json()["data"]
    send(http, vol, 0, chunk(data, 0))
    assert send(http, vol, 0, chunk(data, 0)).json()["data"]["to_upload"] == [1, 2]
    send(http, vol, 2, chunk(data, 2))
    assert send(http, vol, 2, chunk(data, 2)).json()["data"]["to_upload"] == [1]
    assert send(http, vol, 1, chunk(data, 1)).json()["data"]["to_upload"] == []
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_chunks_far_ahead_are_accepted_and_written_in_place(http, sim, small_chunks):
    data = data_of(40 * SMALL + 3)
    vol = volume(http, "far.iso", len(data)).json()["data"]
    for n in range(40, 0, -1):  # every chunk before chunk 0: nothing is parked or refused
        assert send(http, vol, n, chunk(data, n)).status_code == 200
    assert send(http, vol, 0, chunk(data, 0)).json()["data"]["to_upload"] == []
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_a_volume_is_a_sparse_file_of_the_image_size(http, sim):
    vol = volume(http, "sparse.iso", 512 * 1024 * 1024).json()["data"]
    [name] = data_files(sim)
    st = os.stat(os.path.join(sim.world.images._dir, name))
    assert st.st_size == 512 * 1024 * 1024 and st.st_blocks * 512 < 1024 * 1024  # nothing allocated yet
    assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 200


def test_parallel_connections_in_any_order_give_the_right_md5(plan, small_chunks):
    data = data_of(64 * SMALL + 77, seed=5)
    with Simulator(plan, speed=0, ssh=False) as sim:
        http, walk = deployed(sim, plan)
        vol = volume(http, "parallel.iso", len(data)).json()["data"]
        order = list(range(65))
        random.Random(3).shuffle(order)
        errors = []

        def sender(mine):
            client = SimHttp(sim.endpoints)  # its own session: its own connection
            client.token = http.token
            for n in mine:
                r = send(client, vol, n, chunk(data, n))
                if r.status_code != 200:
                    errors.append((n, r.text))

        threads = [threading.Thread(target=sender, args=(order[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        image = listed(http, vol["image_uuid"])
        assert image["md5"] == hashlib.md5(data).hexdigest() and image["resource_state"] == "in-use"
        assert sim.status()["uploads_in_progress"] == 0 and data_files(sim) == []


def test_an_unfinished_upload_is_listed_with_its_to_upload(http, sim, small_chunks):
    data = data_of(3 * SMALL)
    vol = volume(http, "listed.iso", len(data)).json()["data"]
    send(http, vol, 1, chunk(data, 1))
    entry = listed(http, vol["image_uuid"])
    assert entry["resource_state"] == "uploading" and entry["md5"] is None
    assert entry["to_upload"] == [0, 2] and entry["size"] == len(data) and entry["name"] == "listed.iso"
    assert entry["zbs_volume_id"] == vol["zbs_volume_id"] and entry["path"] == vol["image_path"]
    assert listed(http, vol["image_uuid"], "/api/v2/svt_image") is None


def test_delete_aborts_an_upload_and_removes_its_data(http, sim, small_chunks):
    data = data_of(4 * SMALL)
    vol = volume(http, "abort.iso", len(data)).json()["data"]
    send(http, vol, 2, chunk(data, 2))
    send(http, vol, 3, chunk(data, 3))
    assert data_files(sim) == [f"{vol['image_uuid']}.part"]
    assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").json() == {"ec": "EOK", "error": {}, "data": {}}
    assert data_files(sim) == []
    assert sim.status()["uploads_in_progress"] == 0
    r = send(http, vol, 0, chunk(data, 0))
    assert r.status_code == 404 and r.json()["ec"] == "REST_NOT_FOUND"
    assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 404


def test_delete_a_finished_image(http, sim, small_chunks):
    data = data_of(10)
    vol = volume(http, "tiny.iso", len(data)).json()["data"]
    send(http, vol, 0, data)
    assert sim.status()["images"] == 1
    assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 200
    assert sim.status()["images"] == 0


def test_upload_request_errors(http, small_chunks):
    data = data_of(2 * SMALL)
    vol = volume(http, "err.iso", len(data)).json()["data"]
    params = {"zbs_volume_id": vol["zbs_volume_id"], "chunk_num": 0, "image_uuid": vol["image_uuid"]}
    for missing in params:
        r = http.post(VIP, "/api/v2/images/upload", params={k: v for k, v in params.items() if k != missing},
                      files={"file": ("f", io.BytesIO(chunk(data, 0)))})
        assert r.status_code == 400 and missing in r.json()["error"]["detail"], missing
    assert http.post(VIP, "/api/v2/images/upload", params=dict(params, chunk_num="x"),
                     files={"file": ("f", io.BytesIO(b""))}).json()["error"]["detail"] == {"chunk_num": ["must be an integer"]}
    assert http.post(VIP, "/api/v2/images/upload", params=dict(params, chunk_num=2),
                     files={"file": ("f", io.BytesIO(b""))}).json()["ec"] == "REST_FORM_ERROR"
    assert http.post(VIP, "/api/v2/images/upload", params=dict(params, zbs_volume_id="other"),
                     files={"file": ("f", io.BytesIO(b""))}).json()["error"]["detail"] == {
        "zbs_volume_id": ["does not belong to this image"]}
    assert http.post(VIP, "/api/v2/images/upload", params=params, data=chunk(data, 0)).json()["ec"] == "REST_FORM_ERROR"
    assert send(http, vol, 0, chunk(data, 0), name="blob").json()["ec"] == "REST_FORM_ERROR"
    assert send(http, vol, 0, chunk(data, 0), extra_file=True).json()["ec"] == "REST_FORM_ERROR"
    # none of this counted: the upload still completes with the right md5
    send(http, vol, 0, chunk(data, 0))
    send(http, vol, 1, chunk(data, 1))
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("params,field", [({"name": ""}, "name"), ({"size": 0}, "size"), ({"size": "big"}, "size"),
                                          ({"device": "iscsi"}, "device")])
def test_volume_validation(http, params, field):
    r = volume(http, params.pop("name", "x.iso"), params.pop("size", 100), **params)
    assert r.status_code == 400 and field in r.json()["error"]["detail"]


def test_drop_chunk_fault(plan, small_chunks):
    with Simulator(plan, speed=0, ssh=False, faults="drop-chunk:cloudtower*:2") as sim:
        http, _ = deployed(sim, plan)
        data = data_of(2 * SMALL)
        other = volume(http, "svt.iso", 1).json()["data"]
        assert send(http, other, 0, b"x").status_code == 200  # name does not match
        vol = volume(http, "cloudtower-4.7.1.iso", len(data)).json()["data"]
        for _ in range(2):
            r = send(http, vol, 0, chunk(data, 0))
            assert r.status_code == 500 and r.json()["ec"] == "REST_UNKNOWN_ERROR"
        assert send(http, vol, 0, chunk(data, 0)).json()["data"]["to_upload"] == [1]
        send(http, vol, 1, chunk(data, 1))
        assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_svt_upload(http, sim, small_chunks):
    data = data_of(SMALL + 5)
    vol = http.post(VIP, "/api/v2/svt_image/create_volume",
                    params={"name": "SMTX_VMTOOLS-3.2.0-2501210639.iso", "size": len(data)}).json()["data"]
    assert vol["image_path"] == f"/usr/share/smartx/images/vmtools/{vol['image_uuid']}"
    assert send(http, vol, 1, chunk(data, 1), path="/api/v2/svt_image/upload_template").status_code == 200
    # an SVT volume is not an ISO upload
    assert send(http, vol, 0, chunk(data, 0)).status_code == 404
    assert send(http, vol, 0, chunk(data, 0), path="/api/v2/svt_image/upload_template").json()["data"]["to_upload"] == []
    image = listed(http, vol["image_uuid"], "/api/v2/svt_image")
    assert image["md5"] == hashlib.md5(data).hexdigest() and image["type"] == "SVT_IMAGE"
    assert listed(http, vol["image_uuid"]) is None  # not in the ISO listing


def test_an_unfinished_upload_resumes_after_a_restart(plan, tmp_path, small_chunks):
    state = tmp_path / "restart.json"
    data = data_of(3 * SMALL + 1)
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http, walk = deployed(sim, plan)
        token = http.token
        vol = volume(http, "restart.iso", len(data)).json()["data"]
        send(http, vol, 0, chunk(data, 0))
        send(http, vol, 2, chunk(data, 2))
    assert os.listdir(tmp_path / "restart.json.uploads") == [f"{vol['image_uuid']}.part"]
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http = SimHttp(sim.endpoints)
        http.token = token  # sessions survive a restart
        assert sim.status()["uploads_in_progress"] == 1
        assert listed(http, vol["image_uuid"])["to_upload"] == [1, 3]
        assert send(http, vol, 1, chunk(data, 1)).json()["data"]["to_upload"] == [3]
        assert send(http, vol, 3, chunk(data, 3)).json()["data"]["to_upload"] == []
        assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()
        assert sim.status()["uploads_in_progress"] == 0
        assert sim.world.images.chunks_accepted == 4
    assert not (tmp_path / "restart.json.uploads").exists()


def test_an_upload_whose_data_is_gone_is_lost_on_restart(plan, tmp_path, small_chunks):
    state = tmp_path / "lost.json"
    data = data_of(2 * SMALL)
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http, walk = deployed(sim, plan)
        token = http.token
        vol = volume(http, "lost.iso", len(data)).json()["data"]
        send(http, vol, 0, chunk(data, 0))
    for path in (tmp_path / "lost.json.uploads").iterdir():
        path.unlink()
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http = SimHttp(sim.endpoints)
        http.token = token
        r = send(http, vol, 1, chunk(data, 1))
        assert r.status_code == 410 and r.json()["ec"] == "UPLOAD_VOLUME_LOST"
        assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 200
        assert sim.status()["uploads_in_progress"] == 0


def test_no_temporary_directory_outlives_its_simulator(plan, small_chunks):
    with Simulator(plan, speed=0, ssh=False) as sim:
        http, walk = deployed(sim, plan)
        assert sim.world.images._dir is None  # nothing until an upload needs it
        volume(http, "open.iso", 3 * SMALL).json()
        folder = sim.world.images._dir
        assert folder.is_dir() and folder.name.startswith(f"{images.TEMP_PREFIX}{os.getpid()}-")
    assert not folder.exists()  # stop() removed it, an upload still open in it
    unstarted = Simulator(plan, speed=0, ssh=False)  # never started nor stopped
    unstarted.world.cluster = sim.world.cluster
    unstarted.world.images.create_volume("gc.iso", 10)
    folder = unstarted.world.images._dir
    assert folder.is_dir()
    del unstarted
    gc.collect()
    assert not folder.exists()  # removed when the store was collected


def test_a_finished_upload_removes_the_temporary_directory(plan):
    with Simulator(plan, speed=0, ssh=False) as sim:
        http, walk = deployed(sim, plan)
        vol = volume(http, "done.iso", 10).json()["data"]
        folder = sim.world.images._dir
        assert send(http, vol, 0, b"0123456789").json()["data"]["to_upload"] == []
        assert not folder.exists() and sim.world.images._dir is None


def _stream(store, vol, n, payload):
    """One chunk through the receiver interface, as the multipart parser drives it."""
    rx = store.begin_chunk(vol["image_uuid"], vol["zbs_volume_id"], n, kind="iso")
    sink = rx.stream_factory()
    return rx, sink


@pytest.fixture
def memory_sim(plan, small_chunks):
    """A simulator without a state file (its uploads may hold chunks in memory), deployed, logged in."""
    with Simulator(plan, speed=0, ssh=False) as s:
        http, _ = deployed(s, plan)
        yield s, http


def test_chunks_near_the_hash_position_are_hashed_from_memory_never_written(memory_sim):
    """无状态文件时：接近哈希位置的分片在内存中接收并计算 md5，不写入数据文件；md5 仍正确。"""
    sim, http = memory_sim
    data = data_of(8 * SMALL)
    vol = volume(http, "window.iso", len(data)).json()["data"]
    for n in range(1, images.MEMORY_WINDOW):  # chunk 0 last: the rest wait in their buffers
        assert send(http, vol, n, chunk(data, n)).status_code == 200
    [name] = data_files(sim)
    assert os.stat(os.path.join(sim.world.images._dir, name)).st_blocks == 0  # nothing written to disk
    for n in [images.MEMORY_WINDOW + 1, 0, images.MEMORY_WINDOW] + list(range(images.MEMORY_WINDOW + 2, 8)):
        assert send(http, vol, n, chunk(data, n)).status_code == 200
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_a_duplicate_in_flight_never_lends_its_half_filled_buffer_to_the_hash(memory_sim):
    """同一分片并发发送两次：先到内存缓冲区的那份尚未收完时，另一份（写入文件）先被接受，
    哈希使用被接受的那份；未完成的那份被拒绝并归还缓冲区。"""
    sim, http = memory_sim
    data = data_of(2 * SMALL)
    vol = volume(http, "dup-flight.iso", len(data)).json()["data"]
    store = sim.world.images
    rx1, sink1 = _stream(store, vol, 1, chunk(data, 1))
    assert sink1.buffer is not None  # in the window: a memory buffer
    sink1.write(b"\0" * (SMALL // 2))  # half of it so far
    rx2, sink2 = _stream(store, vol, 1, chunk(data, 1))
    assert sink2.buffer is None and sink2.fh is not None  # the buffer is taken: to the file
    sink2.write(chunk(data, 1))
    assert rx2.finish(True)["to_upload"] == [0]
    with pytest.raises(Exception):
        rx1.finish(True)  # short: refused, its buffer given back
    volume_ = store._volumes[vol["image_uuid"]]
    assert 1 not in volume_.in_memory
    assert send(http, vol, 0, chunk(data, 0)).json()["data"]["to_upload"] == []
    assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()


def test_with_a_state_file_every_chunk_goes_to_disk(shared, small_chunks):
    """有状态文件时，每个分片都写入数据文件（模拟器重启后上传可续传），不占用内存缓冲区。"""
    http = shared.restore("configured")
    data = data_of(3 * SMALL)
    vol = volume(http, "durable.iso", len(data)).json()["data"]
    assert send(http, vol, 1, chunk(data, 1)).status_code == 200
    volume_ = shared.sim.world.images._volumes[vol["image_uuid"]]
    assert volume_.memory_window == 0 and volume_.in_memory == {}
    path = shared.sim.world.images._data_path(vol["image_uuid"])
    with open(path, "rb") as fh:
        fh.seek(SMALL)
        assert fh.read(SMALL) == chunk(data, 1)
    assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 200


def test_uploads_one_after_another_reuse_the_same_few_buffers(memory_sim):
    """多次上传依次进行时复用同一组缓冲区（最多 MEMORY_WINDOW 个），内存不随上传次数增长。"""
    sim, http = memory_sim
    pool = sim.world.images._pool
    seen: set[int] = set()
    for k in range(3):
        data = data_of(8 * SMALL, seed=k)
        vol = volume(http, f"again-{k}.iso", len(data)).json()["data"]
        for n in range(7, -1, -1):  # out of order: several chunks wait in buffers
            assert send(http, vol, n, chunk(data, n)).status_code == 200
        assert listed(http, vol["image_uuid"])["md5"] == hashlib.md5(data).hexdigest()
        assert pool.lent == 0
        seen |= {id(b) for b in pool.free}
    assert 0 < len(pool.free) <= images.MEMORY_WINDOW and len(seen) <= images.MEMORY_WINDOW
