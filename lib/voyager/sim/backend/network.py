"""Virtual distributed switches (VDS) and their VLANs (networks).

The deployment creates the management VDS (with its system network
``mgt-network`` and the VM network ``default``) and the storage VDS (system
network ``storage-network``). ``POST /api/v2/network/vds`` creates more through a
``NETWORK_CREATE_VDS`` job; VLANs (VM networks, ``type: 3``) are created
synchronously. VLAN types: 1 = management, 2 = storage, 3 = VM network.
"""
from __future__ import annotations

import hashlib
import uuid
from typing import Any, Optional

from voyager.sim.backend.errors import SimError, form_error, not_found

BOND_MODES = ("active-backup", "balance-tcp", "balance-slb")
VLAN_MGT, VLAN_STORAGE, VLAN_VM = 1, 2, 3


def ovsbr_name(seed: str) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    d = hashlib.sha256(seed.encode()).digest()
    return "ovsbr-" + "".join(alphabet[b % len(alphabet)] for b in d[:9])


class Network:
    def __init__(self, world) -> None:
        self.world = world
        self.vdses: dict[str, dict[str, Any]] = {}
        self.vlans: dict[str, dict[str, Any]] = {}
        world.jobs.register("create_vds", self._effect_create_vds)

    # -- VDS -----------------------------------------------------------------------
    def validate_vds(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a VDS creation request against the cluster; returns the new VDS."""
        cluster = self.world.require_cluster()
        name = body.get("name")
        if any(v["name"] == name for v in self.vdses.values()):
            raise SimError("NETWORK_VDS_NAME_DUPLICATE", f"VDS name {name} already exists")
        if body.get("bond_mode") not in BOND_MODES:
            raise form_error("bond_mode", f"must be one of {', '.join(BOND_MODES)}")
        used = self.used_nics()
        associated: dict[str, dict[str, Any]] = {}
        for entry in body.get("hosts_associated") or []:
            host = self.world.host_by_uuid(entry.get("host_uuid"))
            if host is None or host.mgmt_ip not in cluster.host_ips:
                raise form_error("hosts_associated", f"host {entry.get('host_uuid')} is not in the cluster")
            nics = entry.get("nics_associated") or []
            if not nics:
                raise form_error("hosts_associated", "nics_associated must not be empty")
            for nic in nics:
                iface = host.iface(nic)
                if iface is None or not iface.get("pci_slot_name"):
                    raise SimError("NETWORK_NIC_NOT_FOUND", f"NIC {nic} not found on host {host.hostname}")
                if (host.uuid, nic) in used:
                    raise SimError("NETWORK_NIC_IN_USE", f"NIC {nic} on host {host.hostname} is already used by another VDS")
            associated[host.uuid] = {"host_uuid": host.uuid, "nics_associated": list(nics),
                                     **({"data_ip": entry["data_ip"]} if entry.get("data_ip") else {})}
        if not associated:
            raise form_error("hosts_associated", "at least one host is required")
        vds_uuid = str(uuid.uuid4())
        return {
            "uuid": vds_uuid, "name": name, "bond_mode": body["bond_mode"],
            "bond_name": f"bond-m-{vds_uuid[:8]}", "bond_type": "ovs_bond", "description": body.get("description") or "",
            "ovsbr_name": ovsbr_name(vds_uuid), "qos_enable": False, "rb_interval": "", "type": 1,
            "work_mode": "single", "hosts_associated": associated, "status": "created",
        }

    def create_vds_job(self, body: dict[str, Any]) -> str:
        vds = self.validate_vds(body)
        host_lines = "\n".join(
            f"    {self.world.host_by_uuid(h).hostname}: {', '.join(a['nics_associated'])}"
            for h, a in vds["hosts_associated"].items())
        event = {
            "event_name": "CREATE_VDS", "user_name": "root", "user_role": "ROOT",
            "resources": {vds["uuid"]: "NETWORK_VDS"},
            "message": {"zh_CN": f"创建虚拟分布式交换机 {vds['name']}。\n",
                        "en_US": f"Created virtual distributed switch {vds['name']}.\n"},
            "detail": {"zh_CN": f"创建: \n虚拟分布式交换机名: {vds['name']}\n网口绑定模式: {vds['bond_mode']}\n关联网口: \n{host_lines}\n",
                       "en_US": f"Created: \nVDS name: {vds['name']}\nbonding: {vds['bond_mode']}\nAssociated NICs: \n{host_lines}\n"},
            "data": {"name": vds["name"], "uuid": vds["uuid"]}, "user_type": "USER", "batch": None,
        }
        resource = {**{k: v for k, v in vds.items() if k != "type"}, "type": "NETWORK_VDS"}
        return self.world.jobs.create("NETWORK_CREATE_VDS", resources={vds["uuid"]: resource},
                                      effect="create_vds", args={"vds": vds}, event=event)

    def _effect_create_vds(self, args: dict[str, Any]) -> None:
        vds = dict(args["vds"])
        if any(v["name"] == vds["name"] for v in self.vdses.values()):
            raise SimError("NETWORK_VDS_NAME_DUPLICATE", f"VDS name {vds['name']} already exists")
        self.vdses[vds["uuid"]] = vds

    def add_system_vds(self, name: str, bond_mode: str, hosts_associated: dict, bridge: str) -> dict[str, Any]:
        vds_uuid = str(uuid.uuid4())
        vds = {
            "uuid": vds_uuid, "name": name, "bond_mode": bond_mode, "bond_name": f"bond-m-{vds_uuid[:8]}",
            "bond_type": "ovs_bond", "description": "", "ovsbr_name": bridge, "qos_enable": False,
            "rb_interval": "", "type": 1, "work_mode": "single", "hosts_associated": hosts_associated,
            "status": "created",
        }
        self.vdses[vds_uuid] = vds
        return vds

    def used_nics(self) -> set[tuple[str, str]]:
        return {(h, nic) for v in self.vdses.values() for h, a in v["hosts_associated"].items()
                for nic in a["nics_associated"]}

    def get_vds(self, vds_uuid: str) -> dict[str, Any]:
        vds = self.vdses.get(vds_uuid)
        if vds is None:
            raise not_found("VDS", vds_uuid)
        return vds

    def render_vds(self, vds: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in vds.items() if k not in ("hosts_associated", "status")}
        out["hosts_associated"] = list(vds["hosts_associated"].values())
        out["vlans_count"] = sum(1 for v in self.vlans.values()
                                 if v["vds_uuid"] == vds["uuid"] and v["type"] == VLAN_VM)
        return out

    # -- VLANs -----------------------------------------------------------------------
    def create_vlan(self, vds_uuid: str, body: dict[str, Any], vlan_type: int = VLAN_VM) -> dict[str, Any]:
        self.get_vds(vds_uuid)
        if body.get("vds_uuid") not in (None, vds_uuid):
            raise form_error("vds_uuid", "does not match the VDS in the path")
        name, vlan_id = body.get("name"), body.get("vlan_id")
        if not isinstance(vlan_id, int) or isinstance(vlan_id, bool) or not 0 <= vlan_id <= 4094:
            raise form_error("vlan_id", "must be an integer between 0 and 4094")
        for vlan in self.vlans.values():
            if vlan["vds_uuid"] == vds_uuid and vlan["name"] == name:
                raise SimError("NETWORK_VLAN_NAME_DUPLICATE", f"network {name} already exists on this VDS")
        vlan = {
            "uuid": str(uuid.uuid4()), "name": name, "vds_uuid": vds_uuid, "vlan_id": vlan_id,
            "type": vlan_type, "enable_dhcp": False, "vms_count": 0, "vm_snapshots_count": 0,
            "vm_templates_count": 0, "dhcp_config": None,
        }
        self.vlans[vlan["uuid"]] = vlan
        return vlan

    def vlans_of(self, vds_uuid: str) -> list[dict[str, Any]]:
        self.get_vds(vds_uuid)
        return [dict(v) for v in self.vlans.values() if v["vds_uuid"] == vds_uuid]

    def vlan(self, vlan_uuid: str) -> Optional[dict[str, Any]]:
        return self.vlans.get(vlan_uuid)

    def render_vlan(self, vlan: dict[str, Any]) -> dict[str, Any]:
        out = dict(vlan)
        out["vms_count"] = sum(1 for vm in self.world.vms.vms.values()
                               for nic in vm["nics"] if nic.get("vlan_uuid") == vlan["uuid"])
        return out

    def vm_network_count(self) -> int:
        return sum(1 for v in self.vlans.values() if v["type"] == VLAN_VM)

    # -- state -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"vdses": self.vdses, "vlans": self.vlans}

    def load_state(self, state: dict[str, Any]) -> None:
        self.vdses = dict(state.get("vdses") or {})
        self.vlans = dict(state.get("vlans") or {})
