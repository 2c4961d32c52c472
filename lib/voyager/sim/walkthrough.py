"""A scripted walk through the walkthrough's requests (``../shared/spec``), in
its order and with its payloads adapted to a loopback plan, against a running
simulator. It is the simulator's own acceptance script (developer tool, plain
``requests``, no suite code): if it succeeds, the simulator speaks every step.

    python -m voyager.sim.walkthrough --plan demo            # starts a simulator
    python -m voyager.sim.walkthrough --endpoints '{"http": ...}' --plan demo

Steps 01-05 run over HTTP(S) with the Host header selecting the machine;
step 04's installer runs over SSH (paramiko) when the simulator publishes an
SSH port for the CloudTower address. ``Walk.log`` records what was done
(never a password or token).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import math
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import requests
import urllib3

from voyager.encoding import encode_host_password
from voyager.plan.model import Plan

DEPLOY_TOKEN = "e79b85fc18b7402fbcc0391fe8d7d24c"
CHUNK = 8 * 1024 * 1024
TOWER_SSH_PASSWORD = "HC!r0cks"


class WalkError(AssertionError):
    pass


def _pattern_bytes(size: int, seed: int = 7) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class Walk:
    def __init__(self, endpoints: dict[str, Any], plan: Plan, *, timeout: float = 120.0,
                 poll: float = 0.05, tls: bool = True) -> None:
        self.endpoints = endpoints
        self.plan = plan
        self.timeout = timeout
        self.poll = poll
        self.tls = tls
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy or CA-bundle settings from the environment
        self.http.verify = False
        self.token: Optional[str] = None
        self.tower_token: Optional[str] = None
        self.log: list[str] = []
        self.facts: dict[str, Any] = {}
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    # -- transport ------------------------------------------------------------------------
    def call(self, ip: str, method: str, path: str, *, tls: Optional[bool] = None, token: Optional[str] = None,
             expect: int = 200, **kwargs) -> Any:
        base = self.endpoints["https" if (self.tls if tls is None else tls) else "http"]
        headers = {"Host": ip, **kwargs.pop("headers", {})}
        if token:
            headers["x-smartx-token"] = token
        resp = self.http.request(method, base + path, headers=headers, timeout=30, verify=False, **kwargs)
        self.log.append(f"{method} {ip}{path} -> {resp.status_code}")
        if resp.status_code != expect:
            raise WalkError(f"{method} {path} on {ip}: HTTP {resp.status_code} {resp.text[:300]}")
        body = resp.json() if resp.content else None
        if isinstance(body, dict) and "ec" in body and body["ec"] != "EOK" and expect < 400:
            raise WalkError(f"{method} {path} on {ip}: ec={body['ec']} {body.get('error')}")
        return body

    def v2(self, ip: str, method: str, path: str, **kwargs) -> Any:
        return self.call(ip, method, path, token=self.token, **kwargs)["data"]

    def wait(self, what: str, probe: Callable[[], Any], until: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            value = probe()
            if until(value):
                return value
            if time.monotonic() > deadline:
                raise WalkError(f"timed out waiting for {what}; last seen {str(value)[:300]}")
            time.sleep(self.poll)

    def wait_job(self, ip: str, job_id: str) -> dict[str, Any]:
        job = self.wait(f"job {job_id}", lambda: self.v2(ip, "GET", f"/api/v2/jobs/{job_id}")["job"],
                        lambda j: j["state"] in ("done", "failed"))
        if job["state"] != "done":
            raise WalkError(f"job {job['description']} failed: {job.get('error_msg')}")
        return job

    # -- 01 prepare ---------------------------------------------------------------------------
    def scan(self) -> dict[str, dict[str, Any]]:
        scans = {}
        for host in self.plan.hosts:
            scans[host.mgmt_ip] = self.call(host.mgmt_ip, "GET", "/api/v2/deployment/host", tls=False,
                                            headers={"x-smartx-token": DEPLOY_TOKEN})["data"]
        self.call(self.plan.hosts[0].mgmt_ip, "GET", "/api/v2/deployment/cluster", tls=False,
                  headers={"x-smartx-token": DEPLOY_TOKEN})
        return scans

    # -- 02 deploy ----------------------------------------------------------------------------
    def deploy_payload(self, scans: dict[str, dict[str, Any]]) -> dict[str, Any]:
        plan, nets = self.plan, self.plan.networks
        uuids = [scans[h.mgmt_ip]["host_uuid"] for h in plan.hosts]
        zone = nets.mgmt.nics[0]
        encoded = encode_host_password("P@ssw0rd!123")

        def mask(subnet: str) -> str:
            return str(ipaddress.IPv4Network(subnet, strict=False).netmask)

        def vds(net) -> dict[str, Any]:
            return {"name": net.vds, "bond_mode": net.bond,
                    "hosts_associated": [{"host_uuid": u, "nics_associated": list(net.nics)} for u in uuids]}

        def service(port: str, attr: str, subnet: str) -> list[dict[str, Any]]:
            return [{"host_uuid": scans[h.mgmt_ip]["host_uuid"], "service_interface_name": port,
                     "service_interface_ip": getattr(h, attr), "netmask": mask(subnet)} for h in plan.hosts]

        hosts = []
        for h in plan.hosts:
            scan = scans[h.mgmt_ip]
            port_mgt = next(i for i in scan["ifaces"] if i["name"] == "port-mgt")
            hosts.append({
                "host_ip": f"{port_mgt['ipv6']}%{zone}", "host_uuid": scan["host_uuid"], "hostname": h.name,
                "disk_data_with_cache": False,
                "host_passwords": [{"user": "root", "password": encoded}, {"user": "smartx", "password": encoded}],
                "tags": [], "ifaces": [{"ip": h.mgmt_ip, "function": "mgt"}, {"ip": h.storage_ip, "function": "storage"}],
                "disks": [dict(d, function="cache" if d["type"] == "SSD" and not scan["is_all_flash"] else "data")
                          for d in scan["disks"] if d["function"] != "boot"],
                "is_master": True, "with_faster_ssd_as_cache": not scan["is_all_flash"],
            })
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {
            "platform": "kvm", "cluster_name": plan.cluster.name, "dns_server": list(plan.dns),
            "vdses": [vds(nets.mgmt), vds(nets.storage)],
            "networks": [
                {"name": "mgt-network", "attached_vds": nets.mgmt.vds, "network_type": "mgt",
                 "network_config": {"service": service("port-mgt", "mgmt_ip", nets.mgmt.subnet),
                                    "route": [{"gateway": nets.mgmt.gateway}]},
                 "mode": {"type": "vlan_access", "network_identities": [nets.mgmt.vlan or 0]}},
                {"name": "storage-network", "attached_vds": nets.storage.vds, "network_type": "storage",
                 "network_config": {"service": service("port-storage", "storage_ip", nets.storage.subnet)},
                 "mode": {"type": "vlan_access", "network_identities": [nets.storage.vlan or 0]}},
            ],
            "hosts": hosts,
            "ntp": {"mode": "internal", "ntp_server": None, "current_time": now},
            "vhost_enabled": plan.cluster.vhost_enabled, "rdma_enabled": plan.cluster.rdma_enabled,
        }

    def deploy(self, scans: dict[str, dict[str, Any]]) -> None:
        master = self.plan.hosts[0].mgmt_ip
        hdr = {"x-smartx-token": DEPLOY_TOKEN}
        data = self.call(master, "POST", "/api/v2/deployment/cluster", tls=False, headers=hdr,
                         json=self.deploy_payload(scans))["data"]
        if data["msg"] != "SUCCEEDED: A new cluster deploying task is on its way now.":
            raise WalkError(f"deployment refused: {data}")

        def status() -> dict[str, Any]:
            resp = self.http.get(self.endpoints["http"] + "/api/v2/deployment/host/deploy_status",
                                 params={"host_ip": master}, headers={"Host": master, **hdr}, timeout=30)
            return resp.json()

        self.wait("deployment", status, lambda b: (b.get("data") or {}).get("state") != "running")
        verify = self.call(master, "GET", "/api/v2/deployment/deploy_verify", headers=hdr)["data"]
        if not verify["is_deployed"]:
            raise WalkError("deploy_verify says the cluster is not deployed")

    # -- 03 configure the cluster ------------------------------------------------------------------
    def login_root(self) -> str:
        """Set up root with the planned admin password on the first host and log in;
        returns the session token (also kept in ``token``)."""
        host = self.plan.hosts[0].mgmt_ip
        password = self.plan.cluster.admin_password.reveal()
        self.call(host, "POST", "/api/v3/users:setupRoot",
                  json={"password": password, "repeat": password, "encrypted": False})
        self.token = self.call(host, "POST", "/api/v3/sessions",
                               json={"username": "root", "password": password, "encrypted": False})["token"]
        return self.token

    def configure(self) -> str:
        plan = self.plan
        host = plan.hosts[0].mgmt_ip
        self.login_root()
        vip = plan.cluster.vip
        self.wait_job(host, self.v2(host, "PUT", "/api/v2/settings/vip",
                                    json={"iscsi_vip": None, "management_vip": vip})["job_id"])
        self.facts["serial"] = self.v2(vip, "GET", "/api/v2/tools/license")["serial"]
        dns = [d for d in plan.dns if _is_ip(d)]
        self.wait_job(vip, self.v2(vip, "PUT", "/api/v2/settings/dns", json={"dns_servers": dns})["job_id"])
        self.wait_job(vip, self.v2(vip, "PUT", "/api/v2/settings/ntp",
                                   json={"ntp_mode": "external", "ntp_servers": list(plan.ntp)})["job_id"])
        hosts = {h["management_ip"]: h for h in self.v2(vip, "GET", "/api/v2/hosts")}
        accounts = [{"node_name": h.name, "host": h.bmc_ip, "user": h.bmc_user,
                     "node_uuid": hosts[h.mgmt_ip]["host_uuid"], "password": h.bmc_password.reveal()}
                    for h in plan.hosts]
        ipmi = self.v2(vip, "POST", "/api/v2/ipmi/upsert_accounts", json={"accounts": accounts})
        self.facts["ipmi_valid"] = len(ipmi["success"])
        self.business_network(vip, hosts)
        return vip

    def business_network(self, vip: str, hosts: dict[str, Any]) -> None:
        biz = self.plan.networks.business
        body = {"name": biz.vds, "bond_mode": biz.bond,
                "hosts_associated": [{"host_uuid": hosts[h.mgmt_ip]["host_uuid"], "nics_associated": list(biz.nics),
                                      "data_ip": h.storage_ip} for h in self.plan.hosts]}
        job = self.wait_job(vip, self.v2(vip, "POST", "/api/v2/network/vds", json=body)["job_id"])
        vds_uuid = next(iter(job["resources"]))
        for vlan in biz.vlans:
            self.v2(vip, "POST", f"/api/v2/network/vds/{vds_uuid}/vlans",
                    json={"name": vlan.name, "vlan_id": vlan.vlan, "vds_uuid": vds_uuid})
        if self.v2(vip, "GET", f"/api/v2/network/vds/{vds_uuid}")["vlans_count"] != len(biz.vlans):
            raise WalkError("vlans_count does not match the planned business VLANs")

    # -- 04 CloudTower ---------------------------------------------------------------------------
    def upload(self, vip: str, name: str, size: int, *, svt: bool = False) -> dict[str, Any]:
        data = _pattern_bytes(size)
        if svt:
            vol = self.v2(vip, "POST", "/api/v2/svt_image/create_volume", params={"name": name, "size": size})
            path = "/api/v2/svt_image/upload_template"
        else:
            vol = self.v2(vip, "POST", "/api/v2/images/upload/volume",
                          params={"description": "", "name": name, "device": "nfs", "task_id": 2, "size": size})
            path = "/api/v2/images/upload"
        if len(vol["to_upload"]) != math.ceil(size / vol["chunk_size"]):
            raise WalkError("to_upload does not cover the file")
        for n in vol["to_upload"]:
            chunk = data[n * vol["chunk_size"]:(n + 1) * vol["chunk_size"]]
            self.v2(vip, "POST", path, params={"zbs_volume_id": vol["zbs_volume_id"], "chunk_num": n,
                                               "image_uuid": vol["image_uuid"]},
                    files={"file": (name, io.BytesIO(chunk), "application/octet-stream")})
        listing = self.v2(vip, "GET", "/api/v2/svt_image" if svt else "/api/v2/images")["images"]
        image = next(i for i in listing if i["uuid"] == vol["image_uuid"])
        if image["md5"] != hashlib.md5(data).hexdigest():
            raise WalkError("uploaded image md5 differs from the file's")
        return {**vol, "md5": image["md5"]}

    def cloudtower_vm(self, vip: str, iso_path: str) -> str:
        vdses = self.v2(vip, "GET", "/api/v2/network/vds")
        mgmt = next(v for v in vdses if v["name"] == self.plan.networks.mgmt.vds)
        vlans = self.v2(vip, "GET", f"/api/v2/network/vds/{mgmt['uuid']}/vlans")["entities"]
        vlan = next(v for v in vlans if v["name"] == "default")
        policy = self.v2(vip, "GET", "/api/v2/storage_policies")[0]["uuid"]
        ct = self.plan.cloudtower
        body = {
            "vm_name": ct.vm_name, "description": "CloudTower VM auto created by CXVoyager", "vcpu": 8,
            "memory": 20401094656, "cpu": {"topology": {"sockets": 8, "cores": 1}},
            "nics": [{"ovs": mgmt["ovsbr_name"], "model": "virtio", "mirror": False, "vlan_uuid": vlan["uuid"],
                      "link": "up"}],
            "disks": [{"type": "disk", "bus": "virtio", "storage_policy_uuid": policy, "name": "cloudtower-os",
                       "quota_policy": None, "size_in_byte": 429496729600},
                      {"type": "cdrom", "bus": "ide", "path": iso_path, "disabled": False}],
            "ha": True, "nested_virtualization": False, "hasNormalVol": False, "hasSharedVol": False,
            "hasVolume": False, "cpu_model": "cluster_default", "firmware": "BIOS", "diskNamePrefix": "cloudtower",
            "folder_uuid": None, "node_ip": None, "auto_schedule": True, "existDisks": [], "quota_policy": None,
            "status": "running",
        }
        job = self.wait_job(vip, self.v2(vip, "POST", "/api/v2/vms", json=body)["job_id"])
        vm_uuid = next(u for u, r in job["resources"].items() if r["type"] == "KVM_VM")
        vm = self.wait("guest agent", lambda: self.v2(vip, "GET", f"/api/v2/vms/{vm_uuid}"),
                       lambda v: v["guest_info"]["ga_state"] == "Running")
        net = ipaddress.IPv4Network(self.plan.networks.mgmt.subnet, strict=False)
        nic = vm["nics"][0]
        self.wait_job(vip, self.v2(vip, "PUT", f"/api/v2/vms/{vm_uuid}", json={"nics": [{
            "vlan_uuid": nic["vlan_uuid"], "ovs": nic["ovs"], "model": "virtio", "mac_address": nic["mac_address"],
            "mirror": False, "gateway": self.plan.networks.mgmt.gateway, "subnet_mask": str(net.netmask),
            "ip_address": ct.ip, "link": "up"}]})["job_id"])
        return vm_uuid

    def install_tower(self) -> None:
        import paramiko

        ip = self.plan.cloudtower.ip
        port = self.endpoints["ssh"].get(ip)
        if port is None:
            raise WalkError(f"the simulator publishes no SSH port for {ip}")
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(urlsplit(self.endpoints["http"]).hostname, port=port, username="cloudtower",
                       password=TOWER_SSH_PASSWORD, look_for_keys=False, allow_agent=False, timeout=30)
        try:
            _, out, _ = client.exec_command("sudo sh /usr/share/smartx/tower/preinstall.sh && sudo nohup sudo "
                                            "/usr/share/smartx/tower/installer/binary/installer deploy &")
            out.channel.recv_exit_status()

            def tail() -> str:
                _, o, _ = client.exec_command("sudo tail -n 5 nohup.out")
                return o.read().decode()

            log = self.wait("CloudTower installer", tail,
                            lambda t: "Install Operation Center Successfully" in t or "Failed" in t)
            if "Successfully" not in log:
                raise WalkError("CloudTower installer failed")
        finally:
            client.close()
        self.wait("CloudTower 443", lambda: self.http.get(self.endpoints["http"] + "/__sim__/reachable",
                                                           params={"ip": ip, "port": 443}).json(),
                  lambda r: r["open"])

    # -- 04/05 CloudTower setup and cluster connection ------------------------------------------------------
    def graphql(self, operation: str, query: str, variables: dict[str, Any], auth: bool = True) -> dict[str, Any]:
        headers = {"Authorization": self.tower_token} if auth and self.tower_token else {}
        body = self.call(self.plan.cloudtower.ip, "POST", "/api", headers=headers,
                         json={"operationName": operation, "variables": variables, "query": query})
        if body.get("errors"):
            raise WalkError(f"GraphQL {operation}: {body['errors']}")
        return body["data"]

    def rest(self, operation: str, body: Any) -> Any:
        return self.call(self.plan.cloudtower.ip, "POST", f"/v2/api/{operation}",
                         headers={"Authorization": self.tower_token or ""}, json=body)

    def setup_tower(self, vip: str) -> None:
        ct = self.plan.cloudtower
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.graphql("createRootUser", "mutation createRootUser($root_password: String!, $now: DateTime!) {\n"
                     "  createUser(data: {name: \"root\", source: LOCAL, role: ROOT, username: \"root\", "
                     "display_username: \"root\", password: $root_password, password_recover_qa: {enabled: false, "
                     "items: []}, password_updated_at: $now}, effect: {encoded: true}) {\n    id\n    __typename\n  }\n}\n",
                     {"root_password": "NzllNTE3NTgxYWY5NDY3ODM4ZTczMTg1MDc4YmM3YzQ6eVpSSTlodUNxNDBNL3J4ZTViZ1dqZz09",
                      "now": now}, auth=False)
        self.graphql("createOrganization", "mutation createOrganization($data: OrganizationCreateInput!) {\n"
                     "  createOrganization(data: $data) {\n    id\n    __typename\n  }\n}\n",
                     {"data": {"name": ct.organization}}, auth=False)
        setup = self.graphql("checkTowerIsSetup", "query checkTowerIsSetup {\n  organizations(first: 1) {\n    id\n"
                             "    name\n    __typename\n  }\n  userCreated {\n    created\n    __typename\n  }\n}\n",
                             {}, auth=False)
        if not setup["userCreated"]["created"]:
            raise WalkError("CloudTower root user was not created")
        self.tower_token = self.call(ct.ip, "POST", "/v2/api/login", tls=False,
                                     json={"username": "root", "source": "LOCAL", "password": TOWER_SSH_PASSWORD})["data"]["token"]
        org = self.rest("get-organizations", {})[0]
        dc = self.rest("create-datacenter", {"organization_id": org["id"], "name": ct.datacenter})
        dc_id = (dc[0] if isinstance(dc, list) else dc)["data"]["id"]
        conn = self.rest("connect-cluster", {"datacenter_id": dc_id, "password": self.plan.cluster.admin_password.reveal(),
                                             "username": "root", "ip": vip})
        cluster_id = (conn[0] if isinstance(conn, list) else conn)["data"]["id"]
        self.wait("cluster connection", lambda: self.rest("get-clusters", {"where": {"id": cluster_id}}),
                  lambda cs: cs and cs[0]["connect_state"] == "CONNECTED")
        self.facts["tower_cluster_id"] = cluster_id

    # -- everything ------------------------------------------------------------------------------------------
    def run(self, *, iso_size: int = 3 * CHUNK + 12345, svt_size: int = CHUNK + 99, tower: bool = True) -> dict[str, Any]:
        scans = self.scan()
        self.deploy(scans)
        vip = self.configure()
        ct = self.plan.cloudtower
        iso = self.upload(vip, f"cloudtower-v{ct.version or '4.7.1'}.oe2003.x86_64.iso", iso_size)
        self.upload(vip, "SMTX_VMTOOLS-3.2.0-2501210639.iso", svt_size, svt=True)
        self.facts["tower_vm"] = self.cloudtower_vm(vip, iso["image_path"])
        if tower:
            self.install_tower()
            self.setup_tower(vip)
        return self.http.get(self.endpoints["http"] + "/__sim__/state", timeout=30).json()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voyager.sim.walkthrough", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default="demo")
    parser.add_argument("--endpoints", help="the JSON line printed by `voyager sim` (default: start one)")
    parser.add_argument("--speed", type=float, default=0.0)
    args = parser.parse_args(argv)
    from voyager.sim.cli import load_plan
    plan = load_plan(args.plan)
    if args.endpoints:
        print(json.dumps(Walk(json.loads(args.endpoints), plan, timeout=600, poll=1.0).run()))
        return 0
    from voyager.sim.simulator import Simulator
    with Simulator(plan, speed=args.speed) as sim:
        print(json.dumps(Walk(sim.endpoints, plan, timeout=600, poll=0.5).run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
