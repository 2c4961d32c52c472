"""The clients end to end against the embedded simulator (speed 0): deployment
through the deployment API, fisheye login, a job wait, a chunked image upload,
reachability, unreachable machines, TLS pinning, SSH and redacted evidence —
with injected faults: 5xx answers to reads and a dropped upload chunk are
retried transparently, a reset POST is never replayed."""
import hashlib
import json
import math

import pytest

from voyager.clients import (Endpoints, FisheyeClient, RetryPolicy, SSHClient, TowerClient, TransportError,
                             UnreachableError)
from voyager.plan import cells
from voyager.plan.model import Secret
from voyager.evidence import RECORDER
from voyager.plan.demo import build_demo_plan
from voyager.redact import REDACTOR
from voyager.progress import TransferProgress
from voyager.waiters import wait_deploy, wait_for, wait_job

sim_module = pytest.importorskip("voyager.sim")
walkthrough = pytest.importorskip("voyager.sim.walkthrough")

DEPLOYED_MSG = "SUCCEEDED: A new cluster deploying task is on its way now."
IMAGE = "voyager-client-test.iso"
FAULTS = f"http-500:/api/v2/hosts:2,http-reset:/api/v2/network/vds:1,drop-chunk:{IMAGE}:1"


def fired(sim, kind, target):
    return next(r["fired"] for r in sim.faults.summary() if r["kind"] == kind and r["target"] == target)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    plan = build_demo_plan()
    REDACTOR.add_plan(plan)
    known = tmp_path_factory.mktemp("state") / "known_certs.json"
    with sim_module.Simulator(plan, speed=0, faults=FAULTS) as sim:
        endpoints = Endpoints.simulated(sim.endpoints, plan, known_certs=known, retry=RetryPolicy(backoff=0.05))
        yield plan, sim, endpoints, known
        endpoints.close()


@pytest.fixture(scope="module")
def deployed(world):
    """Scan, deploy and wait with the clients; then set the admin password and log in."""
    plan, sim, endpoints, _ = world
    master = plan.hosts[0].mgmt_ip
    scans = {h.mgmt_ip: FisheyeClient(endpoints, h.mgmt_ip).deployment("GET", "/api/v2/deployment/host")
             for h in plan.hosts}
    assert {s["host_ip"] for s in scans.values()} == {h.mgmt_ip for h in plan.hosts}
    payload = walkthrough.Walk(sim.endpoints, plan).deploy_payload(scans)
    fisheye = FisheyeClient(endpoints, master)
    with RECORDER.step("sim-deploy"):
        answer = fisheye.deployment("POST", "/api/v2/deployment/cluster", json=payload)
        assert answer["msg"] == DEPLOYED_MSG
        verify = wait_deploy(fisheye, master, timeout=60, interval=0.02, max_interval=0.2)
    assert verify["is_deployed"] is True
    fisheye.setup_root(plan.cluster.admin_password)
    facts = fisheye.login(plan.cluster.admin_user, plan.cluster.admin_password)
    assert facts["user_id"] and "token" not in facts
    return plan, sim, endpoints, fisheye


def test_login_and_authenticated_reads(deployed):
    plan, sim, endpoints, fisheye = deployed
    assert fisheye.logged_in
    hosts = fisheye.get("/api/v2/hosts")  # answered 500 twice: a GET is retried
    assert {h["management_ip"] for h in hosts} == {h.mgmt_ip for h in plan.hosts}
    assert fired(sim, "http-500", "/api/v2/hosts") == 2


def test_vds_creation_job_wait(deployed):
    plan, sim, _, fisheye = deployed
    hosts = {h["management_ip"]: h for h in fisheye.get("/api/v2/hosts")}
    biz = plan.networks.business
    body = {"name": biz.vds, "bond_mode": biz.bond,
            "hosts_associated": [{"host_uuid": hosts[h.mgmt_ip]["host_uuid"], "nics_associated": list(biz.nics),
                                  "data_ip": h.storage_ip} for h in plan.hosts]}
    with RECORDER.step("sim-vds"):
        with pytest.raises(TransportError, match="断开了连接"):  # reset after sending: not replayed
            fisheye.post("/api/v2/network/vds", json=body)
        assert fired(sim, "http-reset", "/api/v2/network/vds") == 1
        assert biz.vds not in {v["name"] for v in fisheye.get("/api/v2/network/vds")}
        job_id = fisheye.post("/api/v2/network/vds", json=body)["job_id"]
        job = wait_job(fisheye, job_id, timeout=60, interval=0.02, max_interval=0.2)
    assert job["state"] == "done"
    (uuid, resource), = [(u, r) for u, r in job["resources"].items() if r["type"] == "NETWORK_VDS"]
    assert fisheye.get(f"/api/v2/network/vds/{uuid}")["name"] == biz.vds
    assert any(e.url.endswith(f"/api/v2/jobs/{job_id}") for e in RECORDER.exchanges("sim-vds"))


def test_chunked_image_upload_end_to_end(deployed, caplog):
    _, sim, _, fisheye = deployed
    name = IMAGE
    data = hashlib.sha256(b"voyager").digest() * (2 * 8 * 1024 * 1024 // 32 + 1000)
    with RECORDER.step("sim-upload"):
        vol = fisheye.post("/api/v2/images/upload/volume",
                           params={"name": name, "size": len(data), "description": "", "device": "nfs", "task_id": 1})
        chunk = vol["chunk_size"]
        assert vol["to_upload"] == list(range(math.ceil(len(data) / chunk)))
        progress = TransferProgress(f"上传 {name}", len(data), report_every=0)
        remaining = None
        for n in vol["to_upload"]:
            piece = data[n * chunk:(n + 1) * chunk]
            answer = fisheye.post("/api/v2/images/upload", idempotent=True,
                                  params={"zbs_volume_id": vol["zbs_volume_id"], "chunk_num": n,
                                          "image_uuid": vol["image_uuid"]},
                                  files={"file": (name, piece, "application/octet-stream")})
            remaining = answer["to_upload"]
            progress.advance(len(piece))
        progress.finish()
    assert remaining == []
    assert fired(sim, "drop-chunk", IMAGE) == 1  # the failed chunk POST was declared idempotent: retried
    image = wait_for("镜像出现在列表中", lambda: {i["uuid"]: i for i in fisheye.get("/api/v2/images")["images"]},
                     lambda images: vol["image_uuid"] in images, 30, interval=0.02)[vol["image_uuid"]]
    assert image["md5"] == hashlib.md5(data).hexdigest() and image["size"] == len(data)
    uploads = [e for e in RECORDER.exchanges("sim-upload") if e.url.startswith("https://") and "chunk_num" in e.url]
    assert len(uploads) == len(vol["to_upload"])
    assert all("二进制内容" in e.request_body or "<文件" in e.request_body for e in uploads)  # 8 MiB not stored


def test_reachability_and_unreachable_machines(deployed):
    plan, _, endpoints, _ = deployed
    assert endpoints.tcp_open(plan.hosts[0].mgmt_ip, 443) is True
    assert endpoints.tcp_open(plan.cloudtower.ip, 443) is False  # CloudTower is not installed
    with pytest.raises(UnreachableError, match=plan.cloudtower.ip):
        TowerClient(endpoints, plan.cloudtower.ip).rest("get-organizations")


def test_ssh_password_change_on_a_deployed_host(deployed, tmp_path):
    plan, _, endpoints, _ = deployed
    host = plan.hosts[0]
    known = tmp_path / "known_hosts"
    default = Secret(cells.DEFAULT_HOST_PASSWORD_AFTER_DEPLOY)
    with SSHClient(endpoints, host.mgmt_ip, host.ssh_user, default, known_hosts=known) as ssh, \
            RECORDER.step("sim-ssh"):
        assert ssh.run("whoami").stdout.strip() == host.ssh_user
        ssh.change_password(host.admin_user, host.admin_password)
        ssh.change_password(host.ssh_user, host.ssh_password)
    with SSHClient(endpoints, host.mgmt_ip, host.ssh_user, host.ssh_password, known_hosts=known,
                   strict=True) as again:
        assert again.run("whoami").ok
    commands = [e.request_body for e in RECORDER.exchanges("sim-ssh")]
    assert any("chpasswd" in c for c in commands)
    text = RECORDER.to_text("sim-ssh")
    for secret in (default, host.admin_password, host.ssh_password):
        assert secret.reveal() not in text


def test_tls_pins_recorded_per_planned_address(world, deployed):
    plan, _, _, known = world
    certs = json.loads(known.read_text())["certs"]
    assert f"{plan.hosts[0].mgmt_ip}:443" in certs


def test_evidence_of_the_run_holds_no_secret(deployed):
    plan = deployed[0]
    text = "\n".join(RECORDER.to_text(step) for step in ("sim-deploy", "sim-vds", "sim-upload", "sim-ssh"))
    assert "deploy_status" in text and "/api/v2/deployment/cluster" in text
    for secret in plan.secrets():
        if len(secret) >= 6:
            assert secret.reveal() not in text
