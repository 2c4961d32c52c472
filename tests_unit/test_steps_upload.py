"""Chunked uploads (voyager.steps.upload) against the simulator at speed 0:
chunks go out on parallel connections with the right md5; a failed chunk is sent
again twice, then the volume is deleted and the upload started over once
(walkthrough step 03/04), a second failure is reported; an interrupted upload is
resumed from the volume the run state recorded, a create call that timed out is
followed rather than repeated, and no failure leaves an upload volume open."""
from __future__ import annotations

import hashlib
import threading

import pytest

from voyager.clients import Endpoints, FisheyeClient, RetryPolicy, Timeouts
from voyager.plan.demo import build_demo_plan
from voyager.state import open_state
from voyager.steps import upload
from voyager.steps.media import MediaFile

sim_module = pytest.importorskip("voyager.sim")
testing = pytest.importorskip("voyager.sim.testing")
from voyager.sim.backend import images as sim_images  # noqa: E402

CHUNK = 8 * 1024 * 1024
SMALL = 64 * 1024  # the simulator's chunk size in the tests that need many chunks
RETRY = RetryPolicy(backoff=0.01, status=3)
# chunk POSTs are not replayed by the HTTP layer (streamed body): the uploader retries them itself
FAULTS = ("drop-chunk:retried-once.iso:1,drop-chunk:recreated.iso:4,drop-chunk:hopeless.iso:6,"
          "drop-chunk:cloudtower*:3")


def connect(sim, plan, tmp_path_factory, **kwargs):
    known = tmp_path_factory.mktemp("state") / "known_certs.json"
    endpoints = Endpoints.simulated(sim.endpoints, plan, known_certs=known, retry=RETRY, **kwargs)
    fisheye = FisheyeClient(endpoints, plan.cluster.vip)
    fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
    return endpoints, fisheye


@pytest.fixture(scope="module")
def plan():
    return build_demo_plan()


@pytest.fixture(scope="module")
def cluster(plan, tmp_path_factory):
    with sim_module.Simulator(plan, speed=0, faults=FAULTS, ssh=False) as sim:
        testing.deployed(sim, plan, configure=True)
        endpoints, fisheye = connect(sim, plan, tmp_path_factory)
        yield sim, fisheye
        endpoints.close()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sim_images, "CHUNK_SIZE", SMALL)


@pytest.fixture
def run_state(tmp_path, plan):
    return open_state(tmp_path / "state", plan)


def iso(tmp_path, name: str, chunks: float = 1.5, chunk: int = CHUNK):
    path = tmp_path / name
    size = int(chunk * chunks)
    path.write_bytes(hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32))
    return MediaFile(path, path.stat().st_size)


def images(fisheye, name):
    return [i for i in upload.listed_images(fisheye, upload.ISO) if i.get("name") == name]


def fired(sim, target):
    return next(r["fired"] for r in sim.faults.summary() if r["target"] == target)


def test_a_dropped_chunk_is_sent_again(cluster, tmp_path, caplog):
    sim, fisheye = cluster
    media = iso(tmp_path, "retried-once.iso")
    image, how = upload.ensure_image(fisheye, upload.ISO, media, connections=1)
    assert image["md5"] == upload.file_md5(media.path)
    assert fired(sim, "retried-once.iso") == 1
    assert "重新创建并上传" not in caplog.text  # the chunk alone was re-sent
    assert len(images(fisheye, "retried-once.iso")) == 1


def test_a_chunk_that_fails_three_times_recreates_the_volume_once(cluster, tmp_path, caplog):
    sim, fisheye = cluster
    media = iso(tmp_path, "recreated.iso")
    image, _ = upload.ensure_image(fisheye, upload.ISO, media, connections=1)
    assert image["md5"] == upload.file_md5(media.path)
    assert fired(sim, "recreated.iso") == 4  # 3 on the first volume, 1 on the second (sent again)
    assert "重新创建并上传" in caplog.text
    assert len(images(fisheye, "recreated.iso")) == 1  # the first volume was deleted
    assert sim.status()["uploads_in_progress"] == 0


def test_a_second_failure_is_reported_and_leaves_no_volume(cluster, tmp_path, run_state):
    sim, fisheye = cluster
    media = iso(tmp_path, "hopeless.iso")
    with pytest.raises(upload.UploadError, match="hopeless.iso"):
        upload.ensure_image(fisheye, upload.ISO, media, connections=1, run_state=run_state)
    assert fired(sim, "hopeless.iso") == 6
    assert images(fisheye, "hopeless.iso") == []
    assert sim.status()["uploads_in_progress"] == 0
    assert run_state.section(upload.STATE_SECTION) == {}


def test_three_dropped_cloudtower_chunks_on_parallel_connections_still_complete(cluster, tmp_path, small_chunks):
    """issue 11: ``--sim-faults drop-chunk:cloudtower*:3`` → the CloudTower ISO upload still completes."""
    sim, fisheye = cluster
    media = iso(tmp_path, "cloudtower-4.7.1-e2e.iso", chunks=12, chunk=SMALL)
    image, how = upload.ensure_image(fisheye, upload.ISO, media)
    assert fired(sim, "cloudtower*") == 3
    assert image["md5"] == upload.file_md5(media.path) and image["size"] == media.size
    assert len(images(fisheye, media.name)) == 1 and sim.status()["uploads_in_progress"] == 0


def test_an_image_already_on_the_cluster_is_not_uploaded_again(cluster, tmp_path):
    # self-contained (xdist may run this module's tests on different workers)
    sim, fisheye = cluster
    media = iso(tmp_path, "uploaded-once.iso")
    upload.ensure_image(fisheye, upload.ISO, media)
    before = sim.status()["images"]
    image, how = upload.ensure_image(fisheye, upload.ISO, media)
    assert "已有" in how
    assert sim.status()["images"] == before


def test_parallel_connections_upload_every_chunk_with_the_right_md5(cluster, tmp_path, small_chunks, monkeypatch,
                                                                     caplog):
    sim, fisheye = cluster
    caplog.set_level("INFO", logger="voyager.wait")
    media = iso(tmp_path, "parallel.iso", chunks=40.5, chunk=SMALL)
    senders, active, peak = set(), [0], [0]
    lock = threading.Lock()
    real = upload.Uploader.send_chunk

    def watched(self, volume, n, data):
        with lock:
            senders.add(threading.current_thread().name)
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real(self, volume, n, data)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(upload.Uploader, "send_chunk", watched)
    accepted = sim.world.images.chunks_accepted
    image, how = upload.ensure_image(fisheye, upload.ISO, media, connections=4)
    assert image["md5"] == upload.file_md5(media.path) and image["size"] == media.size
    assert sim.world.images.chunks_accepted - accepted == 41  # every chunk once
    assert len(senders) >= 2 and peak[0] >= 2, (senders, peak)
    progress = [r.getMessage() for r in caplog.records if r.name == "voyager.wait"]
    assert any("%（" in line and "MiB/s" in line and "预计剩余" in line for line in progress), progress
    assert any("完成" in line and "平均" in line for line in progress), progress
    assert sim.status()["uploads_in_progress"] == 0


def test_an_interrupted_upload_resumes_from_the_recorded_volume(cluster, tmp_path, small_chunks, run_state):
    sim, fisheye = cluster
    media = iso(tmp_path, "resumed.iso", chunks=20, chunk=SMALL)
    first = upload.Uploader(fisheye, upload.ISO, media.path, run_state=run_state)
    volume = first._create()  # recorded before any chunk is sent
    rec = run_state.get(upload.STATE_SECTION, "iso/resumed.iso")
    assert rec["image_uuid"] == volume.image_uuid and rec["zbs_volume_id"] == volume.zbs_volume_id
    data = media.path.read_bytes()
    for n in range(12):  # the run is killed after 12 chunks
        first.send_chunk(volume, n, data[n * SMALL:(n + 1) * SMALL])
    accepted = sim.world.images.chunks_accepted
    image, how = upload.ensure_image(fisheye, upload.ISO, media, run_state=run_state)
    assert sim.world.images.chunks_accepted - accepted == 8  # only the 8 missing chunks
    assert image["uuid"] == volume.image_uuid and image["md5"] == upload.file_md5(media.path)
    assert len(images(fisheye, "resumed.iso")) == 1 and sim.status()["uploads_in_progress"] == 0
    assert run_state.section(upload.STATE_SECTION) == {}


def test_a_recorded_volume_the_cluster_no_longer_lists_is_started_over(cluster, tmp_path, small_chunks, run_state):
    sim, fisheye = cluster
    media = iso(tmp_path, "gone.iso", chunks=3, chunk=SMALL)
    first = upload.Uploader(fisheye, upload.ISO, media.path, run_state=run_state)
    volume = first._create()
    fisheye.delete(f"/api/v2/images/{volume.image_uuid}")  # gone on the cluster
    image, how = upload.ensure_image(fisheye, upload.ISO, media, run_state=run_state)
    assert image["uuid"] != volume.image_uuid and image["md5"] == upload.file_md5(media.path)
    assert len(images(fisheye, "gone.iso")) == 1 and sim.status()["uploads_in_progress"] == 0


def test_a_recorded_volume_that_lost_its_data_is_deleted_and_started_over(cluster, tmp_path, small_chunks,
                                                                           run_state):
    sim, fisheye = cluster
    media = iso(tmp_path, "lost.iso", chunks=3, chunk=SMALL)
    volume = upload.Uploader(fisheye, upload.ISO, media.path, run_state=run_state)._create()
    store = sim.world.images
    store._volumes.pop(volume.image_uuid).close()  # as after a restart without the data file
    (store._dir / f"{volume.image_uuid}.part").unlink()
    image, how = upload.ensure_image(fisheye, upload.ISO, media, run_state=run_state)
    assert image["uuid"] != volume.image_uuid and image["md5"] == upload.file_md5(media.path)
    assert len(images(fisheye, "lost.iso")) == 1 and sim.status()["uploads_in_progress"] == 0


def test_a_run_killed_before_the_create_answer_adopts_that_volume(cluster, tmp_path, small_chunks, run_state):
    sim, fisheye = cluster
    media = iso(tmp_path, "adopted.iso", chunks=2, chunk=SMALL)
    run_state.set(upload.STATE_SECTION, "iso/adopted.iso", {"name": "adopted.iso", "size": media.size,
                                                             "state": "creating"})
    created = fisheye.post("/api/v2/images/upload/volume", params={"name": "adopted.iso", "size": media.size,
                                                                   "device": "nfs"})
    image, how = upload.ensure_image(fisheye, upload.ISO, media, run_state=run_state)
    assert image["uuid"] == created["image_uuid"] and image["md5"] == upload.file_md5(media.path)
    assert sim.status()["uploads_in_progress"] == 0


def test_a_failure_outside_the_retry_rule_still_deletes_the_volume(cluster, tmp_path, small_chunks, run_state,
                                                                    monkeypatch):
    sim, fisheye = cluster
    media = iso(tmp_path, "interrupted.iso", chunks=4, chunk=SMALL)

    def interrupted(self, volume, n, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(upload.Uploader, "send_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        upload.ensure_image(fisheye, upload.ISO, media, run_state=run_state)
    assert images(fisheye, "interrupted.iso") == [] and sim.status()["uploads_in_progress"] == 0
    assert run_state.section(upload.STATE_SECTION) == {}


def test_a_create_call_that_timed_out_is_followed_not_repeated(plan, tmp_path, tmp_path_factory, small_chunks):
    with sim_module.Simulator(plan, speed=0, ssh=False, slow_seconds=1.5,
                              faults="slow:/api/v2/svt_image/create_volume:1") as sim:
        testing.deployed(sim, plan, configure=True)
        endpoints, fisheye = connect(sim, plan, tmp_path_factory, timeouts=Timeouts(connect=5, read=0.5))
        try:
            media = iso(tmp_path, "SMTX_VMTOOLS-slow.iso", chunks=3, chunk=SMALL)
            state = open_state(tmp_path / "state", plan)
            text = upload.ensure_svt_image(fisheye, media, run_state=state)
            assert "已上传" in text
            assert fired(sim, "/api/v2/svt_image/create_volume") == 1
            listed = upload.listed_images(fisheye, upload.SVT)
            assert [i["name"] for i in listed] == ["SMTX_VMTOOLS-slow.iso"]  # one volume, adopted
            assert listed[0]["md5"] == upload.file_md5(media.path)
            assert sim.status()["uploads_in_progress"] == 0
        finally:
            endpoints.close()


@pytest.mark.parametrize("kind", ["MultipartEncoder", "FilePartBody"])
def test_a_streamed_chunk_body_is_rebuilt_for_the_replay_after_a_401(kind):
    """FisheyeClient: a body factory is called for each send; the encoder's Content-Type is sent
    and the evidence shows only the body's size."""
    import certifi
    import responses
    from requests_toolbelt import MultipartEncoder

    from voyager.clients.multipart import FilePartBody
    from voyager.evidence import RECORDER

    ip = "127.10.20.10"
    built = []

    def body():
        content = b"0123456789" * 100
        built.append(MultipartEncoder({"file": ("x.iso", content, "application/octet-stream")})
                     if kind == "MultipartEncoder" else FilePartBody("file", "x.iso", content))
        return built[-1]

    session = {"user_id": "root", "token": "stream-token-0001", "create_time": "t", "expire_time": "t"}
    with responses.RequestsMock() as mock:
        mock.post(f"https://{ip}/api/v3/sessions", json=session)
        mock.post(f"https://{ip}/api/v3/sessions", json=dict(session, token="stream-token-0002"))
        mock.post(f"https://{ip}/api/v2/images/upload", status=401, json={"message": "unauthorized"})
        mock.post(f"https://{ip}/api/v2/images/upload", json={"ec": "EOK", "error": {}, "data": {"to_upload": []}})
        plan = build_demo_plan()
        fisheye = FisheyeClient(Endpoints.live(plan, retry=RetryPolicy(backoff=0), ca_bundle=certifi.where()), ip)
        fisheye.login("root", plan.cluster.admin_password)
        with RECORDER.step("stream-test"):
            assert fisheye.post("/api/v2/images/upload", data=body) == {"to_upload": []}
        uploads = [c for c in mock.calls if c.request.path_url.startswith("/api/v2/images/upload")]
        assert len(built) == 2 and len(uploads) == 2
        for call, enc in zip(uploads, built):
            assert call.request.headers["Content-Type"] == enc.content_type
            assert int(call.request.headers["Content-Length"]) == enc.len
    text = RECORDER.to_text("stream-test")
    assert f"流式正文，{built[0].len} 字节" in text and "0123456789" not in text
