"""VDS/VLAN and VM endpoints of the simulator, incl. the job and CloudTower-VM state machines."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from voyager.sim import Simulator
from voyager.sim.backend.clock import ManualClock
from voyager.sim.backend.deployer import TOTAL
from voyager.sim.backend.installer import INSTALL, SUCCESS_LINE
from sim_support import http, plan, shared, sim  # noqa: F401 (fixtures)
from voyager.sim.backend.vms import BOOT, OS_INSTALL
from voyager.sim.testing import SimHttp, deployed
from voyager.sim.walkthrough import Walk

VIP = "127.10.20.10"
H1 = "127.10.20.11"  # the first planned host, which receives the deployment
TOWER = "127.10.20.2"



@contextmanager
def manual_clock_cluster(plan):
    """A simulator on a manual clock whose cluster is deployed (the clock moved
    past the deployment) and whose root session is open: (sim, clock, walk, http)."""
    clock = ManualClock(speed=1.0)
    with Simulator(plan, clock=clock, ssh=False) as sim:
        walk = Walk(sim.endpoints, plan, tls=False)
        http = SimHttp(sim.endpoints)
        http.deploy_api("POST", H1, "/api/v2/deployment/cluster", json=walk.deploy_payload(walk.scan()))
        clock.advance_real(TOTAL)
        http.token = walk.login_root()
        yield sim, clock, walk, http


def job(http, job_id):
    return http.get(VIP, f"/api/v2/jobs/{job_id}").json()["data"]["job"]


def host_uuids(http, ip=VIP):
    return [h["host_uuid"] for h in http.get(ip, "/api/v2/hosts").json()["data"]]


def vds_body(http, name="vDS-Test", nics=("ens225",), bond="active-backup"):
    return {"name": name, "bond_mode": bond,
            "hosts_associated": [{"host_uuid": u, "nics_associated": list(nics)} for u in host_uuids(http)]}


def mgmt_network(http, plan, ip=VIP):
    vdses = http.get(ip, "/api/v2/network/vds").json()["data"]
    mgmt = next(v for v in vdses if v["name"] == plan.networks.mgmt.vds)
    vlans = http.get(ip, f"/api/v2/network/vds/{mgmt['uuid']}/vlans").json()["data"]["entities"]
    return mgmt, next(v for v in vlans if v["name"] == "default")


# -- VDS / VLAN ------------------------------------------------------------------------------------
def test_deployment_created_management_and_storage_vds(http, plan):
    vdses = {v["name"]: v for v in http.get(VIP, "/api/v2/network/vds").json()["data"]}
    assert set(vdses) == {plan.networks.mgmt.vds, plan.networks.storage.vds, plan.networks.business.vds}
    mgmt = vdses[plan.networks.mgmt.vds]
    assert mgmt["bond_mode"] == "active-backup" and mgmt["ovsbr_name"].startswith("ovsbr-")
    assert mgmt["vlans_count"] == 1  # the VM network "default"
    assert vdses[plan.networks.business.vds]["vlans_count"] == 3


def test_vds_job_lifecycle_with_resources_filled_while_pending(plan):
    with manual_clock_cluster(plan) as (sim, clock, walk, http):
        ip = H1
        uuids = host_uuids(http, ip)
        body = {"name": "vDS-Prod-Network", "bond_mode": "balance-slb",
                "hosts_associated": [{"host_uuid": u, "nics_associated": ["ens225", "ens257"], "data_ip": "127.10.21.11"}
                                     for u in uuids]}
        job_id = http.post(ip, "/api/v2/network/vds", json=body).json()["data"]["job_id"]
        j = http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]
        assert j["state"] == "pending" and j["description"] == "NETWORK_CREATE_VDS"
        (vds_uuid, resource), = j["resources"].items()
        assert resource["type"] == "NETWORK_VDS" and resource["name"] == "vDS-Prod-Network"
        assert resource["bond_name"] == f"bond-m-{vds_uuid[:8]}" and resource["ovsbr_name"].startswith("ovsbr-")
        assert set(resource["hosts_associated"]) == set(uuids)
        assert j["event"]["event_name"] == "CREATE_VDS"
        assert http.get(ip, f"/api/v2/network/vds/{vds_uuid}").status_code == 404
        clock.advance_real(2)
        assert http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "processing"
        clock.advance_real(10)
        assert http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "done"
        vds = http.get(ip, f"/api/v2/network/vds/{vds_uuid}").json()["data"]
        assert vds["name"] == "vDS-Prod-Network" and vds["bond_mode"] == "balance-slb" and vds["vlans_count"] == 0
        assert vds["hosts_associated"][0]["data_ip"] == "127.10.21.11"


@pytest.mark.parametrize("change,ec", [
    ({"bond_mode": "lacp"}, "REST_FORM_ERROR"),
    ({"name": "vDS-MgMt-Network"}, "NETWORK_VDS_NAME_DUPLICATE"),
    ({"nics": ("ens192",)}, "NETWORK_NIC_IN_USE"),
    ({"nics": ("ens999",)}, "NETWORK_NIC_NOT_FOUND"),
    ({"nics": ()}, "REST_FORM_ERROR"),
])
def test_vds_validation(http, change, ec):
    body = vds_body(http, name=change.get("name", "vDS-Test"), nics=change.get("nics", ("ens225",)),
                    bond=change.get("bond_mode", "active-backup"))
    r = http.post(VIP, "/api/v2/network/vds", json=body)
    assert r.status_code == 400 and r.json()["ec"] == ec, r.json()


def test_vds_missing_fields_and_unknown_host(http):
    assert http.post(VIP, "/api/v2/network/vds", json={"name": "x"}).json()["error"]["detail"] == {
        "bond_mode": ["this field is required"]}
    body = vds_body(http)
    body["hosts_associated"][0]["host_uuid"] = "nope"
    assert "hosts_associated" in http.post(VIP, "/api/v2/network/vds", json=body).json()["error"]["detail"]


def test_fail_job_fault_fails_the_vds_job(plan):
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:NETWORK_CREATE_*:1") as sim:
        http, walk = deployed(sim, plan, configure=False)
        # configure() would create the business VDS and trip the fault; log in by hand
        http.token = walk.login_root()
        ip = "127.10.20.11"
        uuids = host_uuids(http, ip)
        body = {"name": "vDS-X", "bond_mode": "active-backup",
                "hosts_associated": [{"host_uuid": u, "nics_associated": ["ens225"]} for u in uuids]}
        first = http.get(ip, f"/api/v2/jobs/{http.post(ip, '/api/v2/network/vds', json=body).json()['data']['job_id']}").json()
        assert first["data"]["job"]["state"] == "failed" and "fail-job" in first["data"]["job"]["error_msg"]
        assert sim.status()["vds"] == 2
        second = http.get(ip, f"/api/v2/jobs/{http.post(ip, '/api/v2/network/vds', json=body).json()['data']['job_id']}").json()
        assert second["data"]["job"]["state"] == "done" and sim.status()["vds"] == 3


def test_vlans_create_list_and_errors(http, plan):
    vdses = {v["name"]: v for v in http.get(VIP, "/api/v2/network/vds").json()["data"]}
    biz = vdses[plan.networks.business.vds]["uuid"]
    listing = http.get(VIP, f"/api/v2/network/vds/{biz}/vlans").json()["data"]
    assert listing["total"] == 3 and {v["vlan_id"] for v in listing["entities"]} == {1120, 1121, 1122}
    created = http.post(VIP, f"/api/v2/network/vds/{biz}/vlans", json={"name": "VLAN-9", "vlan_id": 9,
                                                                       "vds_uuid": biz}).json()["data"]
    assert created["type"] == 3 and created["vds_uuid"] == biz and created["vms_count"] == 0
    assert created["enable_dhcp"] is False and created["dhcp_config"] is None
    assert http.get(VIP, f"/api/v2/network/vds/{biz}").json()["data"]["vlans_count"] == 4
    dup = http.post(VIP, f"/api/v2/network/vds/{biz}/vlans", json={"name": "VLAN-9", "vlan_id": 10})
    assert dup.json()["ec"] == "NETWORK_VLAN_NAME_DUPLICATE"
    for bad in ({"name": "v", "vlan_id": 5000}, {"name": "v", "vlan_id": "7"}, {"vlan_id": 7},
                {"name": "v", "vlan_id": 7, "vds_uuid": "other"}):
        assert http.post(VIP, f"/api/v2/network/vds/{biz}/vlans", json=bad).status_code == 400, bad
    assert http.get(VIP, "/api/v2/network/vds/nope/vlans").status_code == 404
    assert http.post(VIP, "/api/v2/network/vds/nope/vlans", json={"name": "v", "vlan_id": 1}).status_code == 404


# -- VMs -------------------------------------------------------------------------------------------------
def vm_body(http, plan, *, cdrom=None, status="running", ip=VIP):
    mgmt, vlan = mgmt_network(http, plan, ip)
    policy = http.get(ip, "/api/v2/storage_policies").json()["data"][0]["uuid"]
    disks = [{"type": "disk", "bus": "virtio", "storage_policy_uuid": policy, "name": "os", "size_in_byte": 1 << 30}]
    if cdrom is not None:
        disks.append({"type": "cdrom", "bus": "ide", "path": cdrom, "disabled": False})
    return {"vm_name": "vm-1", "vcpu": 2, "memory": 1 << 30, "cpu": {"topology": {"sockets": 2, "cores": 1}},
            "nics": [{"ovs": mgmt["ovsbr_name"], "model": "virtio", "mirror": False, "vlan_uuid": vlan["uuid"],
                      "link": "up"}],
            "disks": disks, "ha": True, "status": status}


def create_vm(http, body):
    j = job(http, http.post(VIP, "/api/v2/vms", json=body).json()["data"]["job_id"])
    assert j["state"] == "done" and j["description"] == "VM_CREATE"
    (vm_uuid, res), = j["resources"].items()
    assert res["type"] == "KVM_VM" and res["vm_name"] == body["vm_name"]
    return vm_uuid


def test_vm_create_power_and_delete(http, plan, sim):
    vm_uuid = create_vm(http, vm_body(http, plan, status="stopped"))
    vm = http.get(VIP, f"/api/v2/vms/{vm_uuid}").json()["data"]
    assert vm["status"] == "stopped" and vm["type"] == "KVM_VM" and vm["guest_os_type"] == "unknown"
    assert vm["nics"][0]["mac_address"].startswith("52:54:00:") and vm["nics"][0]["vlans"][0]["name"] == "default"
    assert vm["node_ip"] in [h.storage_ip for h in plan.hosts]
    assert [v["uuid"] for v in http.get(VIP, "/api/v2/vms").json()["data"]] == [vm_uuid]
    assert http.post(VIP, f"/api/v2/vms/{vm_uuid}/stop").json()["ec"] == "VM_NOT_RUNNING"
    assert job(http, http.post(VIP, f"/api/v2/vms/{vm_uuid}/start").json()["data"]["job_id"])["state"] == "done"
    vm = http.get(VIP, f"/api/v2/vms/{vm_uuid}").json()["data"]
    assert vm["status"] == "running" and vm["guest_info"]["ga_state"] == "NotRunning"  # empty disk: no guest
    assert http.post(VIP, f"/api/v2/vms/{vm_uuid}/start").json()["ec"] == "VM_ALREADY_RUNNING"
    assert job(http, http.post(VIP, f"/api/v2/vms/{vm_uuid}/reboot").json()["data"]["job_id"])["description"] == "VM_REBOOT"
    assert job(http, http.post(VIP, f"/api/v2/vms/{vm_uuid}/stop").json()["data"]["job_id"])["state"] == "done"
    assert http.get(VIP, f"/api/v2/vms/{vm_uuid}").json()["data"]["status"] == "stopped"
    assert job(http, http.delete(VIP, f"/api/v2/vms/{vm_uuid}").json()["data"]["job_id"])["state"] == "done"
    assert http.get(VIP, f"/api/v2/vms/{vm_uuid}").status_code == 404
    assert http.post(VIP, f"/api/v2/vms/{vm_uuid}/start").status_code == 404
    assert sim.status()["vms"] == 0


def test_vm_create_validation(http, plan):
    good = vm_body(http, plan)
    for field in ("vm_name", "vcpu", "memory", "nics", "disks"):
        body = dict(good)
        body.pop(field)
        assert http.post(VIP, "/api/v2/vms", json=body).json()["error"]["detail"] == {field: ["this field is required"]}
    for change, field in [({"vcpu": 0}, "vcpu"), ({"memory": "1G"}, "memory"), ({"status": "paused"}, "status"),
                          ({"nics": [{"vlan_uuid": "nope"}]}, "nics"),
                          ({"nics": [dict(good["nics"][0], ovs="ovsbr-wrong")]}, "nics"),
                          ({"disks": [{"type": "cdrom", "path": "iscsi://nowhere/1"}]}, "disks"),
                          ({"disks": [{"type": "disk", "size_in_byte": -1}]}, "disks"),
                          ({"disks": [{"type": "disk", "size_in_byte": 1, "storage_policy_uuid": "x"}]}, "disks"),
                          ({"disks": [{"type": "floppy"}]}, "disks")]:
        r = http.post(VIP, "/api/v2/vms", json=dict(good, **change))
        assert r.status_code == 400 and field in r.json()["error"]["detail"], change


def test_update_nics_needs_the_guest_agent(http, plan):
    vm_uuid = create_vm(http, vm_body(http, plan))
    vm = http.get(VIP, f"/api/v2/vms/{vm_uuid}").json()["data"]
    nic = dict(vm["nics"][0], ip_address="127.10.20.231", subnet_mask="255.255.255.0", gateway="127.10.20.1")
    j = job(http, http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": [nic]}).json()["data"]["job_id"])
    assert j["state"] == "failed" and "guest agent" in j["error_msg"]
    assert http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": []}).status_code == 400
    assert http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": [dict(nic, subnet_mask=None)]}).status_code == 400
    assert http.put(VIP, "/api/v2/vms/nope", json={"nics": [nic]}).status_code == 404
    for bad in ({"ip_address": "127.10.20.300"}, {"gateway": "gw"}, {"subnet_mask": "255.0.255.0"},
                {"ovs": "ovsbr-other"}, {"mac_address": "52:54:00:00:00:01"}, {"vlan_uuid": "nope"}):
        r = http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": [dict(nic, **bad)]})
        assert r.status_code == 400 and r.json()["ec"] == "REST_FORM_ERROR" and "nics" in r.json()["error"]["detail"], bad
    assert http.put(VIP, f"/api/v2/vms/{vm_uuid}", json={"nics": ["x"]}).status_code == 400


def test_cloudtower_vm_lifecycle_and_installer(plan):
    """The CloudTower VM boots from its ISO, installs its OS, the agent comes up,
    the IP is configured, SSH (22) opens, the installer runs, then 80/443 open."""
    with manual_clock_cluster(plan) as (sim, clock, walk, http):
        world = sim.world
        ip = H1
        walk.wait_job = lambda host, job_id: None  # the manual clock moves only when we say so
        iso = walk.upload(ip, "cloudtower-v4.7.1.iso", 3 * 1024 * 1024)
        body = vm_body(http, plan, cdrom=iso["image_path"], ip=ip)
        job_id = http.post(ip, "/api/v2/vms", json=dict(body, vm_name="cloudtower")).json()["data"]["job_id"]
        j = http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]
        assert j["state"] == "pending"
        vm_uuid = next(iter(j["resources"]))
        clock.advance_real(14)
        vm = http.get(ip, f"/api/v2/vms/{vm_uuid}").json()["data"]
        assert vm["status"] == "running" and vm["guest_info"]["ga_state"] == "NotRunning"
        assert http.sim("/__sim__/reachable", ip=TOWER, port=22) == {"open": False}
        clock.advance_real(OS_INSTALL)
        vm = http.get(ip, f"/api/v2/vms/{vm_uuid}").json()["data"]
        assert vm["guest_info"]["ga_state"] == "Running" and vm["guest_info"]["os_version"].startswith("openEuler")
        assert vm["guest_os_type"] == "unknown"
        guest = vm["guest_info"]  # as captured in step 04: numbers, and the guest's view of its disks
        assert isinstance(guest["ga_version"], int) and isinstance(guest["update_time"], int)
        assert [d["size"] for d in guest["storage"]["disks"]] == [d["size"] for d in vm["disks"] if d["type"] == "disk"]
        assert {m["path"] for m in guest["storage"]["mount_points"]} == {"/boot", "/"}
        assert vm["last_shutdown_time"] == vm["create_time"]
        nic = vm["nics"][0]
        put = {"nics": [{"vlan_uuid": nic["vlan_uuid"], "ovs": nic["ovs"], "model": "virtio", "mac_address": nic["mac_address"],
                         "mirror": False, "gateway": "127.10.20.1", "subnet_mask": "255.255.255.0", "ip_address": TOWER,
                         "link": "up"}]}
        job_id = http.put(ip, f"/api/v2/vms/{vm_uuid}", json=put).json()["data"]["job_id"]
        assert http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["description"] == "VM_UPDATE"
        assert http.get(TOWER, "/v2/api/get-clusters").status_code == 502
        clock.advance_real(22)
        assert http.get(ip, f"/api/v2/jobs/{job_id}").json()["data"]["job"]["state"] == "done"
        vm = http.get(ip, f"/api/v2/vms/{vm_uuid}").json()["data"]
        assert vm["guest_info"]["nics"][1]["ip_addresses"][0]["ip_address"] == TOWER
        assert http.sim("/__sim__/reachable", ip=TOWER, port=22) == {"open": True}
        assert http.sim("/__sim__/reachable", ip=TOWER, port=443) == {"open": False}
        # the installer (started over SSH by the walkthrough; here through the world API the SSH server uses)
        assert world.check_login(TOWER, "cloudtower", "HC!r0cks")
        assert not world.check_login(TOWER, "cloudtower", "wrong")
        assert world.tower_install_log() == ""
        assert world.tower_preinstall()[0] == 0
        assert world.tower_start_installer() is True
        assert world.tower_start_installer() is False
        clock.advance_real(INSTALL / 2)
        half = world.tower_install_log()
        assert half and SUCCESS_LINE not in half
        assert not world.tower_ready()
        clock.advance_real(INSTALL / 2)
        assert world.tower_install_log().rstrip().endswith(SUCCESS_LINE)
        assert world.tower_ready()
        assert http.sim("/__sim__/reachable", ip=TOWER, port=443) == {"open": True}
        # stopping the VM takes CloudTower down; starting it brings it back after a boot
        http.post(ip, f"/api/v2/vms/{vm_uuid}/stop")
        clock.advance_real(10)
        assert http.sim("/__sim__/reachable", ip=TOWER, port=443) == {"open": False}
        http.post(ip, f"/api/v2/vms/{vm_uuid}/start")
        clock.advance_real(9 + BOOT)
        assert http.sim("/__sim__/reachable", ip=TOWER, port=443) == {"open": True}
        # the ISO is mounted: it cannot be deleted while the VM uses it
        assert http.delete(ip, f"/api/v2/images/{iso['image_uuid']}").json()["ec"] == "IMAGE_IN_USE"


def test_installer_fault_and_missing_preinstall(plan):
    with Simulator(plan, speed=0, ssh=False, faults="fail-job:CLOUDTOWER_INSTALL:1") as sim:
        world = sim.world
        world.tower_preinstall()
        world.tower_start_installer()
        assert "Install Operation Center Failed" in world.tower_install_log()
        assert world.installer.result == "failed"
        assert world.tower_start_installer() is True  # a failed installer may be run again
        assert world.tower_install_log().rstrip().endswith(SUCCESS_LINE)
    with Simulator(plan, speed=0, ssh=False) as sim:
        sim.world.tower_start_installer()
        assert "preinstall.sh has not been run" in sim.world.tower_install_log()
