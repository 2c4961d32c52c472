"""Chunked uploads (voyager.steps.upload) against the simulator at speed 0:
a dropped chunk is re-sent by the HTTP layer, a chunk that keeps failing makes
the step delete the volume and upload once more (walkthrough step 04), a second
failure is reported, and an image already on the cluster is not uploaded again."""
from __future__ import annotations

import hashlib

import pytest

from voyager.clients import Endpoints, FisheyeClient, RetryPolicy
from voyager.plan.demo import build_demo_plan
from voyager.steps import upload
from voyager.steps.media import MediaFile

sim_module = pytest.importorskip("voyager.sim")
testing = pytest.importorskip("voyager.sim.testing")

CHUNK = 8 * 1024 * 1024
# status retries of the policy below: 3 -> a chunk POST reaches the server 4 times per attempt
RETRY = RetryPolicy(backoff=0.01, status=3)
FAULTS = "drop-chunk:retried-once.iso:1,drop-chunk:recreated.iso:4,drop-chunk:hopeless.iso:8"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    plan = build_demo_plan()
    known = tmp_path_factory.mktemp("state") / "known_certs.json"
    with sim_module.Simulator(plan, speed=0, faults=FAULTS, ssh=False) as sim:
        testing.deployed(sim, plan, configure=True)
        endpoints = Endpoints.simulated(sim.endpoints, plan, known_certs=known, retry=RETRY)
        fisheye = FisheyeClient(endpoints, plan.cluster.vip)
        fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
        yield sim, fisheye
        endpoints.close()


def iso(tmp_path, name: str, chunks: float = 1.5):
    path = tmp_path / name
    size = int(CHUNK * chunks)
    path.write_bytes(hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32))
    return MediaFile(path, path.stat().st_size)


def images(fisheye, name):
    return [i for i in upload.listed_images(fisheye, upload.ISO) if i.get("name") == name]


def fired(sim, target):
    return next(r["fired"] for r in sim.faults.summary() if r["target"] == target)


def test_a_dropped_chunk_is_resent_by_the_http_layer(cluster, tmp_path, caplog):
    sim, fisheye = cluster
    media = iso(tmp_path, "retried-once.iso")
    image, how = upload.ensure_image(fisheye, upload.ISO, media)
    assert image["md5"] == upload.file_md5(media.path)
    assert fired(sim, "retried-once.iso") == 1
    assert "重新创建并上传" not in caplog.text  # the chunk alone was re-sent
    assert len(images(fisheye, "retried-once.iso")) == 1


def test_a_chunk_that_keeps_failing_recreates_the_volume_once(cluster, tmp_path, caplog):
    sim, fisheye = cluster
    media = iso(tmp_path, "recreated.iso")
    image, _ = upload.ensure_image(fisheye, upload.ISO, media)
    assert image["md5"] == upload.file_md5(media.path)
    assert fired(sim, "recreated.iso") == 4
    assert "重新创建并上传" in caplog.text
    assert len(images(fisheye, "recreated.iso")) == 1  # the first volume was deleted
    assert sim.status()["uploads_in_progress"] == 0


def test_a_second_failure_is_reported_and_leaves_no_volume(cluster, tmp_path):
    sim, fisheye = cluster
    media = iso(tmp_path, "hopeless.iso")
    with pytest.raises(upload.UploadError, match="hopeless.iso"):
        upload.ensure_image(fisheye, upload.ISO, media)
    assert fired(sim, "hopeless.iso") == 8
    assert images(fisheye, "hopeless.iso") == []
    assert sim.status()["uploads_in_progress"] == 0


def test_an_image_already_on_the_cluster_is_not_uploaded_again(cluster, tmp_path):
    sim, fisheye = cluster
    media = iso(tmp_path, "retried-once.iso")
    before = sim.status()["images"]
    image, how = upload.ensure_image(fisheye, upload.ISO, media)
    assert "已有" in how
    assert sim.status()["images"] == before
