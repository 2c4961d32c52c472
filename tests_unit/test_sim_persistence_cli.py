"""State file persistence (no secrets in it, a second simulator meets the same
cluster) and the ``voyager sim`` command line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voyager.encoding import encode_host_password
from voyager.plan.demo import build_demo_plan
from voyager.sim import Simulator
from voyager.sim.backend.persistence import StateFileError, load_state, status_from_file
from voyager.sim.testing import SimHttp, deployed

VIP = "127.10.20.10"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def plan():
    return build_demo_plan()


def test_a_second_simulator_meets_the_same_cluster(plan, tmp_path):
    state = tmp_path / "state" / "sim.json"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http, walk = deployed(sim, plan)
        first = sim.status()
        serial = http.get(VIP, "/api/v2/tools/license").json()["data"]["serial"]
        vdses = http.get(VIP, "/api/v2/network/vds").json()["data"]
        token = http.token
        host_uuid = walk.scan()["127.10.20.11"]["host_uuid"]
        sim.world.set_password("127.10.20.11", "smartx", "N3w-pass!")
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert first == {"deployed": True, "hosts": 3, "vds": 3, "vlans": 4, "images": 0, "vms": 0,
                     "organizations": 0, "datacenters": 0, "connected_clusters": 0,
                     "views": 0, "graphs": 0, "racks": 0, "bricks": 0, "uploads_in_progress": 0}
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        assert sim.status() == first
        http = SimHttp(sim.endpoints)
        http.token = token
        assert http.get(VIP, "/api/v2/tools/license").json()["data"]["serial"] == serial
        assert http.get(VIP, "/api/v2/network/vds").json()["data"] == vdses
        scan = http.deploy_api("GET", "127.10.20.11", "/api/v2/deployment/host").json()["data"]
        assert scan["status"] == "enabled" and scan["host_uuid"] == host_uuid
        assert sim.world.check_login("127.10.20.11", "smartx", "N3w-pass!")
        assert sim.world.check_login("127.10.20.12", "smartx", "P@ssw0rd!123")
        assert http.post("127.10.20.11", "/api/v3/sessions", token=None,
                         json={"username": "root", "password": plan.cluster.admin_password.reveal()}).status_code == 200


def test_restore_puts_the_world_back_as_a_restart_would(plan, tmp_path):
    with Simulator(plan, speed=0, ssh=False, state_file=tmp_path / "sim.json") as sim:
        fresh = sim.world.snapshot()
        http, walk = deployed(sim, plan)
        configured = sim.world.snapshot()
        serial = sim.world.cluster.serial
        vol = http.post(VIP, "/api/v2/images/upload/volume", params={"name": "x.iso", "size": 10}).json()["data"]
        sim.world.set_password("127.10.20.11", "smartx", "N3w-pass!")
        assert sim.status()["uploads_in_progress"] == 1
        sim.world.restore(configured)
        assert sim.world.snapshot() == configured
        assert sim.status() == configured["status"] and sim.status()["uploads_in_progress"] == 0
        assert http.get(VIP, "/api/v2/tools/license").json()["data"]["serial"] == serial  # same session token
        assert sim.world.check_login("127.10.20.11", "smartx", "P@ssw0rd!123")
        assert http.delete(VIP, f"/api/v2/images/{vol['image_uuid']}").status_code == 404
        assert json.loads((tmp_path / "sim.json").read_text())["status"] == configured["status"]  # persisted
        sim.world.restore(fresh)
        assert sim.status()["deployed"] is False
        assert http.get(VIP, "/api/v2/tools/license").status_code == 502  # no VIP on an undeployed world
        scan = http.deploy_api("GET", "127.10.20.11", "/api/v2/deployment/host").json()["data"]
        assert scan["status"] == "disabled"


def test_host_uuids_are_deterministic_from_the_plan(plan):
    with Simulator(plan, speed=0, ssh=False) as a, Simulator(build_demo_plan(), speed=0, ssh=False) as b:
        assert [h.uuid for h in a.world.hosts.values()] == [h.uuid for h in b.world.hosts.values()]
    other = build_demo_plan()
    other.cluster.name = "OTHER"
    with Simulator(other, speed=0, ssh=False) as c:
        assert [h.uuid for h in c.world.hosts.values()] != [h.uuid for h in a.world.hosts.values()]


def test_the_state_file_holds_no_secret(plan, tmp_path):
    secret = "S3cret-Pw!"
    plan.cluster.admin_password = type(plan.cluster.admin_password)(secret)
    for host in plan.hosts:  # a BMC password of its own for this test (the demo's is a vendor default)
        host.bmc_password = type(host.bmc_password)("Bmc-Pw-0!")
    state = tmp_path / "sim.json"
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        http, walk = deployed(sim, plan)
        token = http.token
        body = walk.deploy_payload(walk.scan())
        sim.world.set_password("127.10.20.12", "root", "An0ther-pw")
        sim.world.add_account("127.10.20.231", "fio", "Fi0-pw!")
    text = state.read_text()
    for needle in (secret, token, "P@ssw0rd!123", encode_host_password("P@ssw0rd!123"), "An0ther-pw", "Fi0-pw!",
                   plan.hosts[0].bmc_password.reveal(), body["hosts"][0]["host_passwords"][0]["password"]):
        assert needle not in text, needle
    assert "pbkdf2-sha256$" in text
    with Simulator(plan, speed=0, ssh=False, state_file=state) as sim:
        assert sim.world.verify_fisheye_login("root", secret)
        assert sim.world.check_login("127.10.20.231", "fio", "Fi0-pw!")


def test_unreadable_state_files_are_reported(plan, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(StateFileError, match="状态文件"):
        Simulator(plan, speed=0, ssh=False, state_file=bad)
    bad.write_text(json.dumps({"format": 99}))
    with pytest.raises(StateFileError):
        load_state(bad)
    with pytest.raises(StateFileError):
        status_from_file(tmp_path / "missing.json")


def _voyager(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    return subprocess.Popen([sys.executable, "-m", "voyager", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_voyager_sim_prints_its_endpoints_and_serves_until_terminated(tmp_path):
    state = tmp_path / "cli.json"
    proc = _voyager("sim", "--plan", "demo", "--speed", "0", "--state", str(state))
    try:
        line = proc.stdout.readline()
        endpoints = json.loads(line)
        assert set(endpoints) == {"http", "https", "ssh"}
        assert endpoints["http"].startswith("http://127.0.0.1:") and endpoints["https"].startswith("https://127.0.0.1:")
        http = SimHttp(endpoints)
        assert http.deploy_api("GET", "127.10.20.11", "/api/v2/deployment/host").status_code == 200
        assert http.sim("/__sim__/state")["hosts"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    counts = {"deployed": False, "hosts": 3, "vds": 0, "vlans": 0, "images": 0, "vms": 0, "organizations": 0,
              "datacenters": 0, "connected_clusters": 0, "views": 0, "graphs": 0, "racks": 0,
              "bricks": 0, "uploads_in_progress": 0}
    # both orders of the shared option: voyager sim status --state F / voyager sim --state F status
    for argv in (["sim", "status", "--state", str(state)], ["sim", "--state", str(state), "status"]):
        status = subprocess.run([sys.executable, "-m", "voyager", *argv], cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO / "lib")), capture_output=True, text=True,
                                timeout=60)
        assert (status.returncode, status.stderr) == (0, ""), argv
        assert json.loads(status.stdout) == counts, argv


@pytest.mark.parametrize("args,message", [
    (["sim"], "--plan"),
    (["sim", "--plan", "demo", "--faults", "boom:x:1"], "未知的故障类型"),
    (["sim", "--plan", "demo:99"], "主机数量"),
    (["sim", "--plan", "/nonexistent/plan.xlsx"], "不存在"),
    (["sim", "--plan", "demo", "--speed", "-1"], "--speed"),
    (["sim", "--plan", "demo", "--host-overrides", "{"], "JSON"),
    (["sim", "status", "--state", "/nonexistent/state.json"], "不存在"),
    (["sim", "--state", "/nonexistent/state.json", "status"], "不存在"),
    (["sim", "status"], "请用 --state 指定模拟器状态文件"),
])
def test_cli_usage_errors(args, message, capsys):
    """In-process (the entry point itself is run as a process above): exit 2, one Chinese line, no traceback."""
    from voyager.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
