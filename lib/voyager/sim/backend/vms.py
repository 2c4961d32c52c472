"""Virtual machines, including the CloudTower VM's life.

Profiles decide what a booted VM does:

* ``cloudtower`` — created with a CD-ROM holding an image whose name contains
  "cloudtower": the first boot installs its OS from the ISO (kickstart,
  ``OS_INSTALL`` real seconds), then the guest agent (VMTools) reports
  ``ga_state: Running`` with an openEuler ``os_version``; ``guest_os_type``
  stays ``unknown`` as on the real system. Later boots take ``BOOT`` seconds.
* ``linux`` — a VM with an installed guest (the test workloads imported
  through CloudTower, :mod:`voyager.sim.tower.vms`): guest agent up ``BOOT``
  seconds after each start; its accounts come from its disk image
  (``guest_accounts``) and answer SSH once its NIC has an IP.
* ``plain`` — anything else (empty disks): the guest agent never runs.

A NIC's IP (``PUT /api/v2/vms/{uuid}`` with ``ip_address``) is configured by
the guest agent, so that job fails when the agent is not running.
A creation body's ``node_ip`` (a host's storage or management IP) places the
VM on that host; otherwise hosts take turns.
"""
from __future__ import annotations

import hashlib
import ipaddress
import uuid
from typing import Any, Optional

from voyager.sim.backend.cluster import is_ipv4
from voyager.sim.backend.errors import SimError, form_error, not_found

OS_INSTALL = 600.0
BOOT = 90.0
OS_VERSION = "openEuler 20.03 (LTS-SP3)"
KERNEL = "4.19.90-2307.3.0.oe1.smartx.37.x86_64"
RUNNING, STOPPED = "running", "stopped"


def _is_netmask(text: str) -> bool:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{text}")
        return True
    except ValueError:
        return False


def _mac(seed: str) -> str:
    d = hashlib.sha256(seed.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in d[:3])


class VmTable:
    def __init__(self, world) -> None:
        self.world = world
        self.vms: dict[str, dict[str, Any]] = {}
        self.ping_sessions: list[dict[str, Any]] = []  # background pings of test VMs (sim/workload.py)
        self.fio_sessions: list[dict[str, Any]] = []  # background fio runs of test VMs (sim/workload.py)
        jobs = world.jobs
        jobs.register("vm_create", self._effect_create)
        jobs.register("vm_update", self._effect_update)
        jobs.register("vm_start", self._effect_start)
        jobs.register("vm_stop", self._effect_stop)
        jobs.register("vm_reboot", self._effect_reboot)
        jobs.register("vm_delete", self._effect_delete)

    # -- creation --------------------------------------------------------------------
    def build(self, body: dict[str, Any], profile: Optional[str] = None) -> dict[str, Any]:
        """Validate a creation request and return the VM record (not yet added)."""
        cluster = self.world.require_cluster()
        vm_uuid = str(uuid.uuid4())
        nics = []
        for k, nic in enumerate(body.get("nics") or []):
            vlan = self.world.network.vlan(nic.get("vlan_uuid") or "")
            if vlan is None:
                raise form_error("nics", f"vlan_uuid {nic.get('vlan_uuid')} does not exist")
            vds = self.world.network.vdses[vlan["vds_uuid"]]
            if nic.get("ovs") and nic["ovs"] != vds["ovsbr_name"]:
                raise form_error("nics", f"ovs {nic['ovs']} is not the bridge of the network's VDS")
            nics.append({
                "gateway": "", "interface_id": str(uuid.uuid4()), "link": nic.get("link") or "up",
                "mac_address": nic.get("mac_address") or _mac(vm_uuid + str(k)), "mirror": bool(nic.get("mirror")),
                "model": nic.get("model") or "virtio", "ovs": vds["ovsbr_name"], "ovs_health_status": "healthy",
                "pci_address": f"0000:00:{4 + k:02x}.0", "queues": 8, "type": "VLAN", "vlan_uuid": vlan["uuid"],
                "ip_address": None, "subnet_mask": None,
            })
        disks, cdrom_images = [], []
        policies = {p["uuid"] for p in cluster.storage_policies}
        for k, disk in enumerate(body.get("disks") or []):
            dtype = disk.get("type")
            if dtype == "disk":
                size = disk.get("size_in_byte", disk.get("size"))
                if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                    raise form_error("disks", "size_in_byte must be a positive integer")
                if disk.get("storage_policy_uuid") and disk["storage_policy_uuid"] not in policies:
                    raise form_error("disks", f"storage_policy_uuid {disk['storage_policy_uuid']} does not exist")
                disks.append({
                    "boot": k + 1, "bus": disk.get("bus") or "virtio", "encryption_algorithm": "PLAINTEXT",
                    "name": disk.get("name") or f"{body.get('diskNamePrefix') or 'disk'}-{k}",
                    "path": f"iscsi://iqn.2016-02.com.smartx:system:{cluster.datastore}/{200 + len(self.vms) * 4 + k}",
                    "quota_policy": None, "resident_in_cache": False, "resident_in_cache_percentage": 0,
                    "serial": str(uuid.uuid4()), "size": size,
                    "storage_policy_uuid": disk.get("storage_policy_uuid") or cluster.storage_policies[0]["uuid"],
                    "type": "disk", "volume_is_sharing": False, "volume_uuid": str(uuid.uuid4()),
                })
            elif dtype == "cdrom":
                path = disk.get("path") or ""
                image = self.world.images.by_path(path) if path else None
                if path and image is None:
                    raise form_error("disks", f"cdrom path {path} is not an existing image")
                if image:
                    cdrom_images.append(image)
                disks.append({"boot": k + 1, "bus": disk.get("bus") or "ide", "disabled": bool(disk.get("disabled")),
                              "key": 100 + k, "path": path, "quota_policy": None, "storage_policy_uuid": None,
                              "type": "cdrom"})
            else:
                raise form_error("disks", f"unknown disk type {dtype!r}")
        if profile is None:
            profile = "cloudtower" if any("cloudtower" in (i["name"] or "").lower() for i in cdrom_images) else "plain"
        status = body.get("status") or STOPPED
        if status not in (RUNNING, STOPPED):
            raise form_error("status", "must be running or stopped")
        hosts = cluster.host_ips
        host = self.world.hosts[hosts[len(self.vms) % len(hosts)]]
        wanted = body.get("node_ip")
        if wanted:
            host = next((self.world.hosts[ip] for ip in hosts
                         if wanted in (self.world.hosts[ip].storage_ip, ip)), None)
            if host is None:
                raise form_error("node_ip", f"{wanted} is not a host of the cluster")
        return {
            "uuid": vm_uuid, "vm_name": body["vm_name"], "description": body.get("description") or "",
            "vcpu": body["vcpu"], "memory": body["memory"],
            "cpu": body.get("cpu") or {"topology": {"sockets": body["vcpu"], "cores": 1}},
            "nics": nics, "disks": disks, "ha": bool(body.get("ha", True)),
            "nested_virtualization": bool(body.get("nested_virtualization")),
            "cpu_model": body.get("cpu_model") or "cluster_default", "firmware": body.get("firmware") or "BIOS",
            "status": STOPPED, "wanted_status": status, "node_ip": host.storage_ip or host.mgmt_ip,
            "profile": profile, "os_installed": profile == "linux", "boot_started": None,
            "create_time": None, "last_start_time": None, "last_shutdown_time": None,
        }

    def create_job(self, body: dict[str, Any], profile: Optional[str] = None) -> str:
        vm = self.build(body, profile)
        resource = {k: v for k, v in vm.items() if k not in ("profile", "os_installed", "boot_started", "wanted_status")}
        resource["type"] = "KVM_VM"
        return self.world.jobs.create("VM_CREATE", resources={vm["uuid"]: resource},
                                      effect="vm_create", args={"vm": vm})

    def _effect_create(self, args: dict[str, Any]) -> None:
        vm = dict(args["vm"])
        vm["create_time"] = int(args["_at"])
        vm["last_shutdown_time"] = vm["create_time"]  # a new VM counts as shut down at its creation (capture)
        self.vms[vm["uuid"]] = vm
        if vm.pop("wanted_status") == RUNNING:
            self._boot(vm, args["_at"])

    # -- power ------------------------------------------------------------------------
    def _boot(self, vm: dict[str, Any], at: float) -> None:
        vm["status"] = RUNNING
        vm["boot_started"] = at
        vm["last_start_time"] = int(at)
        if vm["profile"] != "plain":  # the guest agent comes up after the OS install or the boot
            self.world.timeline.add("VM_BOOT", BOOT if vm["os_installed"] else OS_INSTALL, ident=vm["uuid"],
                                    start=at, name=vm["vm_name"])

    def power_job(self, vm_uuid: str, action: str) -> str:
        vm = self.get(vm_uuid)
        if action == "start" and vm["status"] == RUNNING:
            raise SimError("VM_ALREADY_RUNNING", f"VM {vm['vm_name']} is already running")
        if action in ("stop", "reboot") and vm["status"] != RUNNING:
            raise SimError("VM_NOT_RUNNING", f"VM {vm['vm_name']} is not running")
        desc = {"start": "VM_START", "stop": "VM_STOP", "reboot": "VM_REBOOT", "delete": "VM_DELETE"}[action]
        return self.world.jobs.create(desc, resources={vm_uuid: {"type": "KVM_VM", "uuid": vm_uuid, "vm_name": vm["vm_name"]}},
                                      effect=f"vm_{action}", args={"uuid": vm_uuid})

    def _effect_start(self, args: dict[str, Any]) -> None:
        self._boot(self.get(args["uuid"]), args["_at"])

    def _effect_stop(self, args: dict[str, Any]) -> None:
        vm = self.get(args["uuid"])
        vm["status"] = STOPPED
        vm["boot_started"] = None
        vm["last_shutdown_time"] = int(args["_at"])

    def _effect_reboot(self, args: dict[str, Any]) -> None:
        self._boot(self.get(args["uuid"]), args["_at"])

    def _effect_delete(self, args: dict[str, Any]) -> None:
        self.remove(args["uuid"])

    def remove(self, vm_uuid: str) -> None:
        """Delete the VM with its disks; its address stops answering and its accounts go."""
        vm = self.get(vm_uuid)
        ip = self.ip_of(vm)
        self.vms.pop(vm_uuid)
        if ip and vm.get("imported"):
            self.world.accounts.pop(ip, None)
            self.world.machine_files.pop(ip, None)
            self.ping_sessions = [p for p in self.ping_sessions if p["src"] != ip]
            self.fio_sessions = [f for f in self.fio_sessions if f["src"] != ip]

    def add_imported(self, body: dict[str, Any], guest_accounts: Optional[dict[str, str]], at: float, *,
                     profile: str = "linux") -> dict[str, Any]:
        """A test VM CloudTower made (``/import-vm``, ``/create-vm``): created stopped, profile
        ``linux`` (an installed guest) or ``plain`` (blank disks). A NIC of ``body`` may carry
        ``ip_address``/``subnet_mask``/``gateway``: configured by the guest agent, so the address
        answers once the agent runs (like ``update_job``'s)."""
        vm = self.build(body, profile=profile)
        vm.pop("wanted_status")
        vm.update({"create_time": int(at), "imported": True, "guest_accounts": dict(guest_accounts or {}),
                   "migrations": []})
        for nic, wanted in zip(vm["nics"], body.get("nics") or []):
            if wanted.get("ip_address"):
                nic.update({"ip_address": wanted["ip_address"], "subnet_mask": wanted.get("subnet_mask"),
                            "gateway": wanted.get("gateway") or ""})
        self.vms[vm["uuid"]] = vm
        ip = self.ip_of(vm)
        if ip and vm["guest_accounts"]:
            self.world.accounts[ip] = dict(vm["guest_accounts"])
        return vm

    def start_now(self, vm_uuid: str, at: float) -> None:
        self._boot(self.get(vm_uuid), at)

    def add_ping_session(self, session: dict[str, Any]) -> None:
        self.ping_sessions = (self.ping_sessions + [session])[-64:]
        self.world.changed()

    def add_fio_session(self, session: dict[str, Any]) -> None:
        self.fio_sessions = (self.fio_sessions + [session])[-64:]
        self.world.changed()

    # -- NIC configuration ----------------------------------------------------------------
    def update_job(self, vm_uuid: str, body: dict[str, Any]) -> str:
        vm = self.get(vm_uuid)
        nics = body.get("nics")
        if not isinstance(nics, list) or not nics:
            raise form_error("nics", "must be a non-empty list")
        for nic in nics:
            if not isinstance(nic, dict):
                raise form_error("nics", "each NIC must be an object")
            vlan = self.world.network.vlan(nic.get("vlan_uuid") or "")
            if vlan is None:
                raise form_error("nics", f"vlan_uuid {nic.get('vlan_uuid')} does not exist")
            bridge = self.world.network.vdses[vlan["vds_uuid"]]["ovsbr_name"]
            if nic.get("ovs") and nic["ovs"] != bridge:
                raise form_error("nics", f"ovs {nic['ovs']} is not the bridge of the network's VDS")
            if nic.get("mac_address") and not any(n["mac_address"] == nic["mac_address"] for n in vm["nics"]):
                raise form_error("nics", f"mac_address {nic['mac_address']} is not a NIC of VM {vm['vm_name']}")
            if nic.get("ip_address") and not nic.get("subnet_mask"):
                raise form_error("nics", "subnet_mask is required with ip_address")
            for key in ("ip_address", "subnet_mask", "gateway"):
                if nic.get(key) and not is_ipv4(nic[key]):
                    raise form_error("nics", f"{key} {nic[key]!r} is not an IPv4 address")
            if nic.get("subnet_mask") and not _is_netmask(nic["subnet_mask"]):
                raise form_error("nics", f"subnet_mask {nic['subnet_mask']!r} is not a netmask")
        return self.world.jobs.create("VM_UPDATE", resources={vm_uuid: {"type": "KVM_VM", "uuid": vm_uuid, "vm_name": vm["vm_name"]}},
                                      effect="vm_update", args={"uuid": vm_uuid, "nics": nics})

    def _effect_update(self, args: dict[str, Any]) -> None:
        vm = self.get(args["uuid"])
        wants_ip = any(n.get("ip_address") for n in args["nics"])
        if wants_ip and not self.ga_running(vm, args["_at"]):
            raise SimError("VM_GUEST_AGENT_NOT_RUNNING", f"the guest agent of VM {vm['vm_name']} is not running")
        new_nics = []
        for k, nic in enumerate(args["nics"]):
            old = next((n for n in vm["nics"] if nic.get("mac_address") and n["mac_address"] == nic["mac_address"]),
                       vm["nics"][k] if k < len(vm["nics"]) else None)
            vlan = self.world.network.vlan(nic["vlan_uuid"])
            vds = self.world.network.vdses[vlan["vds_uuid"]]
            merged = dict(old or {"interface_id": str(uuid.uuid4()), "mac_address": _mac(vm["uuid"] + str(k)),
                                  "ovs_health_status": "healthy", "pci_address": f"0000:00:{4 + k:02x}.0",
                                  "queues": 8, "type": "VLAN"})
            merged.update({"vlan_uuid": vlan["uuid"], "ovs": vds["ovsbr_name"], "model": nic.get("model") or "virtio",
                           "mirror": bool(nic.get("mirror")), "link": nic.get("link") or "up",
                           "gateway": nic.get("gateway") or "", "ip_address": nic.get("ip_address"),
                           "subnet_mask": nic.get("subnet_mask")})
            new_nics.append(merged)
        old_ip = self.ip_of(vm)
        vm["nics"] = new_nics
        ip = self.ip_of(vm)
        if vm.get("guest_accounts") and ip:
            if old_ip and old_ip != ip:
                self.world.accounts.pop(old_ip, None)
            self.world.accounts[ip] = dict(vm["guest_accounts"])

    # -- queries ----------------------------------------------------------------------------
    def get(self, vm_uuid: str) -> dict[str, Any]:
        vm = self.vms.get(vm_uuid)
        if vm is None:
            raise not_found("VM", vm_uuid)
        return vm

    def ga_running(self, vm: dict[str, Any], at: Optional[float] = None) -> bool:
        if vm["status"] != RUNNING or vm["boot_started"] is None or vm["profile"] == "plain":
            return False
        clock = self.world.clock
        needed = BOOT if vm["os_installed"] else OS_INSTALL
        if at is not None and clock.speed > 0:
            return (at - vm["boot_started"]) / clock.speed >= needed
        return clock.reached(vm["boot_started"], needed)

    def tick(self) -> bool:
        changed = False
        for vm in self.vms.values():
            if vm["profile"] == "cloudtower" and not vm["os_installed"] and self.ga_running(vm):
                vm["os_installed"] = True
                changed = True
        return changed

    def ip_of(self, vm: dict[str, Any]) -> Optional[str]:
        return next((n["ip_address"] for n in vm["nics"] if n.get("ip_address")), None)

    def vm_by_ip(self, ip: str) -> Optional[dict[str, Any]]:
        return next((vm for vm in self.vms.values() if self.ip_of(vm) == ip), None)

    def reachable(self, vm: dict[str, Any]) -> bool:
        """Is the VM's configured IP answering (booted, agent and network up)?"""
        return self.ip_of(vm) is not None and self.ga_running(vm)

    def image_in_use(self, path: str) -> int:
        return sum(1 for vm in self.vms.values() for d in vm["disks"] if d["type"] == "cdrom" and d["path"] == path)

    @staticmethod
    def _guest_storage(vm: dict[str, Any]) -> dict[str, Any]:
        """What the guest agent reports of the VM's disks (walkthrough step 04): its block
        devices and an installed system's /boot and / on the first one."""
        disks = [d for d in vm["disks"] if d["type"] == "disk"]
        size = sum(d["size"] for d in disks)
        boot = 466569216
        mounts = [{"path": "/boot", "size": boot, "type": "ext4", "used": 128922624},
                  {"path": "/", "size": max(disks[0]["size"] * 93 // 100 - boot, 0), "type": "ext4",
                   "used": 8683937792}] if disks else []
        return {"disks": [{"name": f"/dev/vd{chr(97 + i)}", "serial": d["serial"][:20], "size": d["size"], "used": None}
                          for i, d in enumerate(disks)],
                "mount_points": mounts, "size": size, "storage_pools": [], "used": None}

    def render(self, vm: dict[str, Any]) -> dict[str, Any]:
        ga = self.ga_running(vm)
        now = self.world.clock.now()
        guest_nics = [{"gateway_ip": "", "gateway_ip_v6": "::", "hardware_address": "00:00:00:00:00:00",
                       "ip_addresses": [{"ip_address": "127.0.0.1", "ip_address_type": "ipv4", "netmask": "255.0.0.0", "prefix": "8"}],
                       "ip_type": "unknown", "ip_type_v6": "unknown", "name": "lo"}]
        for k, nic in enumerate(vm["nics"]):
            ips = ([{"ip_address": nic["ip_address"], "ip_address_type": "ipv4", "netmask": nic["subnet_mask"] or "",
                     "prefix": ""}] if nic.get("ip_address") else [])
            guest_nics.append({"gateway_ip": nic.get("gateway") or "", "gateway_ip_v6": "", "hardware_address": nic["mac_address"],
                               "ip_addresses": ips, "ip_type": "static" if ips else "dhcp", "ip_type_v6": "dhcp",
                               "name": f"ens{4 + k}"})
        guest_info = {
            "dns_servers": [], "expired": not ga, "ga_state": "Running" if ga else "NotRunning",
            "ga_version": 4000000 if ga else 0, "gateway_ips": ["::"] if ga else [],
            "hostname": "localhost.localdomain" if ga else "", "kernel_info": KERNEL if ga else "",
            "mounted": False, "nics": guest_nics if ga else [], "os_version": OS_VERSION if ga else "",
            "storage": self._guest_storage(vm) if ga else {"disks": [], "mount_points": [], "size": 0,
                                                             "storage_pools": [], "used": None},
            "update_time": int(now), "vip": None,
        }
        nics = [{k: v for k, v in n.items() if k not in ("ip_address", "subnet_mask")} for n in vm["nics"]]
        for n, src in zip(nics, vm["nics"]):
            vlan = self.world.network.vlan(src["vlan_uuid"])
            n["vlans"] = [{"enable_dhcp": None, "mode_type": "vlan_access", "mtu": None, "name": vlan["name"],
                           "type": vlan["type"], "uuid": vlan["uuid"], "vds_uuid": vlan["vds_uuid"],
                           "vlan_id": vlan["vlan_id"]}] if vlan else []
        uptime = int(now - vm["boot_started"]) if vm["status"] == RUNNING and vm["boot_started"] else 0
        return {
            "auto_schedule": True, "bios_uuid": vm["uuid"], "boot_with_host": False, "clock_offset": "utc",
            "cloud_init_supported": False, "cluster_cpu_model": "host_passthrough", "cpu": vm["cpu"],
            "cpu_exclusive": {"actual_enabled": False, "expected_enabled": False}, "cpu_model": vm["cpu_model"],
            "cpu_qos": {"limit_hz": -1, "reservation_hz": 0, "shares": 1000}, "create_time": vm["create_time"],
            "description": vm["description"], "disks": vm["disks"], "firmware": vm["firmware"],
            "guest_cpu_model": "host_passthrough", "guest_info": guest_info, "guest_os_type": "unknown",
            "ha": vm["ha"], "ha_priority": 500, "hostdevs": [], "internal": False,
            "last_shutdown_time": vm["last_shutdown_time"], "last_start_time": vm["last_start_time"],
            "memory": vm["memory"], "nested_virtualization": vm["nested_virtualization"], "nics": nics,
            "node_ip": vm["node_ip"], "placement_groups": [], "quota_policy": None, "resource_state": "in-use",
            "status": vm["status"], "svt_iso": "", "sync_vm_time_on_resume": False, "type": "KVM_VM",
            "update_time": int(now), "uptime": uptime, "uuid": vm["uuid"], "vcpu": vm["vcpu"],
            "video_type": "cirrus", "vm_name": vm["vm_name"], "vm_version": "elf-1.2",
            "vm_version_mode": "vm-version-auto", "win_opt": None,
        }

    # -- state ------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"vms": self.vms, "ping_sessions": self.ping_sessions, "fio_sessions": self.fio_sessions}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vms = dict(state.get("vms") or {})
        self.ping_sessions = list(state.get("ping_sessions") or [])
        self.fio_sessions = list(state.get("fio_sessions") or [])
