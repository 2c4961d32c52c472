"""Cluster deployment: the rules of ``POST /api/v2/deployment/cluster`` and the
stages the deployment runs through.

Semantic rules checked here (the front-end checks JSON types first):

* no deployment is running and no listed host is already deployed;
* every ``host_uuid`` is a scanned host, listed once, the receiving host among them;
* ``host_ip`` is ``<link-local IPv6 of that host>%<NIC of the receiving host>``
  (the zone of a link-local address names the sender's interface, as the UI
  sends it: ``fe80::...%ens192``);
* ``host_passwords`` holds ``root`` and ``smartx``, each decoding per the
  API-FACTS keystream (:mod:`voyager.encoding`); only digests are kept;
* the management interface IP is the host's management address; disks and
  NICs named exist on the host, the NICs have a link;
* vdses/networks are consistent (an ``mgt`` and a ``storage`` network, each on a
  declared VDS that associates every host).

The deployment takes ``sum(STAGES)`` real seconds (about 20 minutes); a
``fail-job:DEPLOY_CLUSTER`` fault makes it fail during ``deploy_zbs``. While it
runs, ``deploy_status`` reports the stage; after a failure it reports
``state: failed`` with the stage it failed in and the reason in ``msg`` (the
documented fields; the walkthrough's client treats any state but ``running`` as
the end and reads ``deploy_verify``, which says ``is_deployed: false``); after
a success, and when no deployment was started, it answers an error
(``DEPLOY_TASK_NOT_FOUND``).
"""
from __future__ import annotations

from typing import Any, Optional

from voyager.encoding import decode_host_password
from voyager.sim.backend.cluster import ClusterState, default_storage_policy, is_ipv4
from voyager.sim.backend.errors import SimError, form_error
from voyager.sim.backend.faults import INJECTED
from voyager.sim.backend.network import BOND_MODES, VLAN_MGT, VLAN_STORAGE, VLAN_VM
from voyager.sim.backend.passwords import hash_password

STAGES: list[tuple[str, float]] = [
    ("prepare_network_and_config_file", 60), ("config_network", 120), ("deploy_zookeeper", 120),
    ("deploy_mongodb", 120), ("deploy_zbs", 300), ("deploy_elf", 240), ("config_cluster", 180),
    ("post_deploy_check", 60),
]
TOTAL = sum(d for _, d in STAGES)
FAIL_AT = sum(d for _, d in STAGES[:4]) + 150  # in the middle of deploy_zbs
SUCCEEDED_MSG = "SUCCEEDED: A new cluster deploying task is on its way now."


class Deployer:
    def __init__(self, world) -> None:
        self.world = world
        self.record: Optional[dict[str, Any]] = None

    # -- starting ---------------------------------------------------------------------
    def start(self, master, payload: dict[str, Any]) -> str:
        world = self.world
        if self.running():
            raise SimError("DEPLOYMENT_IN_PROGRESS", "a cluster deployment is already running", status=409)
        hosts = payload["hosts"]
        by_uuid: dict[str, Any] = {}
        for i, entry in enumerate(hosts):
            host = world.host_by_uuid(entry["host_uuid"])
            field = f"hosts[{i}]"
            if host is None:
                raise form_error(f"{field}.host_uuid", f"host {entry['host_uuid']} was not found by the scan")
            if entry["host_uuid"] in by_uuid:
                raise form_error(f"{field}.host_uuid", "host listed twice")
            if host.deployed:
                raise SimError("HOST_ALREADY_DEPLOYED", f"host {host.hostname} ({host.mgmt_ip}) is already deployed")
            by_uuid[host.uuid] = host
        if master.uuid not in by_uuid:
            raise form_error("hosts", "the host receiving the request must be one of the hosts")
        master_nics = {i["name"] for i in master.ifaces if i["running"]}
        planned_hosts = []
        for i, entry in enumerate(hosts):
            host = by_uuid[entry["host_uuid"]]
            planned_hosts.append(self._check_host(i, entry, host, master_nics))
        roles = self._check_networks(payload, by_uuid)
        if payload["ntp"].get("mode") not in ("internal", "external"):
            raise form_error("ntp.mode", "must be internal or external")
        for dns in payload["dns_server"]:
            if not is_ipv4(dns):
                raise form_error("dns_server", f"{dns} is not an IPv4 address")
        for planned in planned_hosts:  # only digests are kept (and only for an accepted payload)
            planned["accounts"] = {user: hash_password(plain) for user, plain in planned["accounts"].items()}
        ntp_servers = payload["ntp"].get("ntp_server") or []
        if isinstance(ntp_servers, str):
            ntp_servers = [s for s in ntp_servers.replace(";", ",").split(",") if s]
        self.record = {
            "started_at": world.clock.now(), "master_ip": master.mgmt_ip, "hosts": planned_hosts,
            "name": payload["cluster_name"], "platform": payload["platform"], "dns": list(payload["dns_server"]),
            "ntp_mode": payload["ntp"]["mode"], "ntp_servers": list(ntp_servers),
            "vhost_enabled": payload["vhost_enabled"], "rdma_enabled": payload["rdma_enabled"],
            "roles": roles, "fail": world.faults.take("fail-job", "DEPLOY_CLUSTER"), "result": None,
        }
        return SUCCEEDED_MSG

    def _check_host(self, i: int, entry: dict[str, Any], host, master_nics: set[str]) -> dict[str, Any]:
        field = f"hosts[{i}]"
        addr, _, zone = entry["host_ip"].partition("%")
        if addr.lower() not in host.link_local_addresses():
            raise form_error(f"{field}.host_ip", f"{addr} is not a link-local address of host {host.hostname}")
        if not zone or zone not in master_nics:
            raise form_error(f"{field}.host_ip", "must end with %<NIC of the deploying host>, e.g. %ens192")
        accounts: dict[str, str] = {}
        for pw in entry["host_passwords"]:
            user = pw.get("user")
            if user not in ("root", "smartx"):
                raise form_error(f"{field}.host_passwords", f"unknown user {user!r}")
            try:
                plain = decode_host_password(str(pw.get("password") or ""))
            except ValueError:
                raise form_error(f"{field}.host_passwords", f"the password of {user} cannot be decoded") from None
            if not plain:
                raise form_error(f"{field}.host_passwords", f"the password of {user} is empty")
            accounts[user] = plain  # hashed once the whole payload is accepted
        if set(accounts) != {"root", "smartx"}:
            raise form_error(f"{field}.host_passwords", "passwords of root and smartx are required")
        storage_ip = None
        for iface in entry["ifaces"]:
            if iface.get("function") == "mgt" and iface.get("ip") != host.mgmt_ip:
                raise form_error(f"{field}.ifaces", f"management IP {iface.get('ip')} is not the host's address {host.mgmt_ip}")
            if iface.get("function") == "storage":
                storage_ip = iface.get("ip")
        disks = {d["drive"]: d for d in host.disks}
        data = 0
        for disk in entry["disks"]:
            known = disks.get(disk.get("drive"))
            if known is None:
                raise form_error(f"{field}.disks", f"disk {disk.get('drive')} not found on host {host.hostname}")
            if disk.get("function") not in ("cache", "data", "boot", "smtx_system"):
                raise form_error(f"{field}.disks", f"unknown function {disk.get('function')!r}")
            data += disk.get("function") == "data"
        if not data:
            raise form_error(f"{field}.disks", "at least one data disk is required")
        return {"ip": host.mgmt_ip, "uuid": host.uuid, "host_ip": entry["host_ip"], "hostname": entry["hostname"],
                "accounts": accounts, "storage_ip": storage_ip or host.storage_ip}

    def _check_networks(self, payload: dict[str, Any], by_uuid: dict[str, Any]) -> dict[str, Any]:
        vdses: dict[str, dict[str, Any]] = {}
        for v in payload["vdses"]:
            if v.get("name") in vdses:
                raise form_error("vdses", f"VDS {v.get('name')} declared twice")
            if v.get("bond_mode") not in BOND_MODES:
                raise form_error("vdses", f"bond_mode must be one of {', '.join(BOND_MODES)}")
            assoc = {}
            for a in v.get("hosts_associated") or []:
                host = by_uuid.get(a.get("host_uuid"))
                if host is None:
                    raise form_error("vdses", f"host {a.get('host_uuid')} of VDS {v['name']} is not being deployed")
                for nic in a.get("nics_associated") or []:
                    iface = host.iface(nic)
                    if iface is None or not iface.get("pci_slot_name"):
                        raise SimError("NETWORK_NIC_NOT_FOUND", f"NIC {nic} not found on host {host.hostname}")
                    if not iface["physical_link_up"]:
                        raise SimError("NETWORK_NIC_LINK_DOWN", f"NIC {nic} on host {host.hostname} has no link")
                assoc[host.uuid] = {"host_uuid": host.uuid, "nics_associated": list(a.get("nics_associated") or [])}
            if set(assoc) != set(by_uuid):
                raise form_error("vdses", f"VDS {v['name']} must associate every host being deployed")
            vdses[v["name"]] = {"name": v["name"], "bond_mode": v["bond_mode"], "hosts_associated": assoc}
        roles: dict[str, Any] = {}
        for net in payload["networks"]:
            ntype = net.get("network_type")
            if ntype not in ("mgt", "storage", "access", "migration"):
                raise form_error("networks", f"unknown network_type {ntype!r}")
            if net.get("attached_vds") not in vdses:
                raise form_error("networks", f"attached_vds {net.get('attached_vds')!r} is not declared in vdses")
            ids = (net.get("mode") or {}).get("network_identities") or [0]
            if not all(isinstance(x, int) and 0 <= x <= 4094 for x in ids):
                raise form_error("networks", "network_identities must be VLAN ids 0..4094")
            for svc in (net.get("network_config") or {}).get("service") or []:
                if svc.get("host_uuid") not in by_uuid or not is_ipv4(svc.get("service_interface_ip")):
                    raise form_error("networks", f"service entry of {net.get('name')} is invalid")
                if ntype == "mgt" and svc["service_interface_ip"] != by_uuid[svc["host_uuid"]].mgmt_ip:
                    raise form_error("networks", "the management service IP must be the host's management address")
            roles[ntype] = {"name": net.get("name"), "vds": vdses[net["attached_vds"]], "vlan_id": ids[0]}
        for needed in ("mgt", "storage"):
            if needed not in roles:
                raise form_error("networks", f"a network of type {needed} is required")
        return roles

    # -- progress ----------------------------------------------------------------------
    def running(self) -> bool:
        return bool(self.record) and self.record["result"] is None

    def tick(self) -> bool:
        rec = self.record
        if not rec or rec["result"] is not None:
            return False
        end = FAIL_AT if rec["fail"] else TOTAL
        if not self.world.clock.reached(rec["started_at"], end):
            return False
        if rec["fail"]:
            rec["result"] = "failed"
            rec["error"] = self._failure_reason(rec)
        else:
            self._finish(rec)
            rec["result"] = "ok"
        return True

    def _failure_reason(self, rec: dict[str, Any]) -> str:
        """What a real deployment failing in ``deploy_zbs`` reports: the host and the disk."""
        planned = rec["hosts"][-1]
        host = self.world.hosts.get(planned["ip"])
        drive = next((d["drive"] for d in (host.disks if host else []) if d.get("function") == "data"), "sdb")
        return (f"deploy_zbs failed on host {planned['hostname']} ({planned['ip']}): zbs-chunkd did not "
                f"become ready within 300s, disk /dev/{drive} reported I/O errors while formatting {INJECTED}")

    @staticmethod
    def _stage_at(elapsed: float) -> int:
        """The 1-based stage running ``elapsed`` real seconds into the deployment."""
        t = 0.0
        for k, (_, duration) in enumerate(STAGES):
            t += duration
            if elapsed < t:
                return k + 1
        return len(STAGES)

    def status(self, query: str) -> dict[str, Any]:
        rec = self.record
        host = None
        if rec:
            host = next((h for h in rec["hosts"] if query in (h["ip"], h["host_ip"], h["host_ip"].split("%")[0])), None)
        if not rec or host is None or rec["result"] == "ok":
            raise SimError("DEPLOY_TASK_NOT_FOUND", "no deploying task for this host", status=200)
        if rec["result"] == "failed":
            stage = self._stage_at(FAIL_AT)
            return {"current_stage": stage, "msg": rec.get("error"), "stage_info": STAGES[stage - 1][0],
                    "state": "failed", "total_stages": len(STAGES)}
        stage = self._stage_at(self.world.clock.elapsed_real(rec["started_at"]))
        return {"current_stage": stage, "msg": None, "stage_info": STAGES[stage - 1][0], "state": "running",
                "total_stages": len(STAGES)}

    def verify(self, host) -> dict[str, Any]:
        return {"is_deployed": bool(host.deployed), "platform": "kvm"}

    # -- the cluster comes to life --------------------------------------------------------------
    def _finish(self, rec: dict[str, Any]) -> None:
        world = self.world
        at = rec["started_at"] + world.clock.wall(TOTAL)
        master = world.hosts[rec["master_ip"]]
        cluster = ClusterState(
            name=rec["name"], host_ips=[h["ip"] for h in rec["hosts"]], master_ip=rec["master_ip"],
            platform=rec["platform"], version=master.version, vhost_enabled=rec["vhost_enabled"],
            rdma_enabled=rec["rdma_enabled"], created=at, dns_servers=rec["dns"], ntp_mode=rec["ntp_mode"],
            ntp_servers=rec["ntp_servers"],
        )
        for h in rec["hosts"]:
            host = world.hosts[h["ip"]]
            host.deployed = True
            host.hostname = h["hostname"]
            host.accounts.update(h["accounts"])
            if h["storage_ip"]:
                host.storage_ip = h["storage_ip"]
            h["accounts"] = {}  # digests now live with the host
        storage_ips = [world.hosts[ip].storage_ip for ip in cluster.host_ips if world.hosts[ip].storage_ip]
        cluster.storage_policies = [default_storage_policy(at, storage_ips, cluster.datastore)]
        net = world.network
        mgt, storage = rec["roles"]["mgt"], rec["roles"]["storage"]
        mgt_vds = net.add_system_vds(mgt["vds"]["name"], mgt["vds"]["bond_mode"], mgt["vds"]["hosts_associated"],
                                     master.bridge_name("mgt"))
        sto_vds = mgt_vds if storage["vds"]["name"] == mgt["vds"]["name"] else net.add_system_vds(
            storage["vds"]["name"], storage["vds"]["bond_mode"], storage["vds"]["hosts_associated"],
            master.bridge_name("storage"))
        net.create_vlan(mgt_vds["uuid"], {"name": mgt["name"] or "mgt-network", "vlan_id": mgt["vlan_id"]}, VLAN_MGT)
        net.create_vlan(sto_vds["uuid"], {"name": storage["name"] or "storage-network", "vlan_id": storage["vlan_id"]},
                        VLAN_STORAGE)
        net.create_vlan(mgt_vds["uuid"], {"name": "default", "vlan_id": mgt["vlan_id"]}, VLAN_VM)
        world.cluster = cluster

    # -- state ---------------------------------------------------------------------------------
    def to_state(self) -> Optional[dict[str, Any]]:
        return self.record

    def load_state(self, state: Optional[dict[str, Any]]) -> None:
        self.record = state
