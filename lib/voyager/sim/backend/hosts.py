"""Simulated SMTX OS hosts: hardware and scan data derived from the plan.

Everything here is deterministic from the plan (a host's uuid, MACs, link-local
addresses, disk serials), so a rerun against a fresh simulator scans the same
hosts. The scan is shaped like ``api-samples/scan-host-response.json``:

* every NIC the plan names (management, storage, business, extra management,
  backup) is up with the plan's speed in bit/s and a link-local IPv6 derived
  from its MAC (EUI-64);
* virtual interfaces as an installed SMTX OS has them: ``ovsbr-*`` bridges,
  ``ovsbr-internal``/``port-internal`` (169.254.169.254), ``port-mgt`` carrying
  the management IPv4 and ``port-storage`` carrying the storage IPv4;
* disks by storage architecture: 混闪-分层 = 2 NVMe cache disks (type SSD) + 4
  HDD data disks; 全闪-不分层 = 4 SSD data disks; plus a boot SSD.

``host_overrides[<mgmt ip>]`` may say ``missing_nics`` (absent from the scan),
``down_nics`` (present, link down: not running, no speed, no IPv6), ``deployed``
(already part of some cluster: status ``enabled``, refuses to be deployed) and
``version`` (e.g. ``"6.1.0"``; a ``P<n>`` suffix becomes ``patch_version``) and
``powered_off`` (deployed but off: the inspection's host items fail; not a
``--sim-host`` key, set through ``Simulator(host_overrides=...)``).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from typing import Any, Optional

from voyager.plan.model import Host, Plan

DEFAULT_VERSION = "6.2.0"
DEFAULT_PATCH = "P4"
DEFAULT_HOST_PASSWORD = "P@ssw0rd!123"
HOST_USERS = ("root", "smartx")
MEMORY_TOTAL = 134654275584
CPU = {
    "arch": "x86_64",
    "brand": "AMD EPYC 7K62 48-Core Processor",
    "cores_per_socket": 24,
    "hz_advertised": "2.4790 GHz",
    "hz_advertised_raw": [2479000000, 0],
    "logical_cores": 24,
    "num_cores": 24,
    "physical_cores": 24,
    "sockets": 1,
    "threads_per_core": 1,
    "vendor": "AuthenticAMD",
    "flags": "fpu, vme, de, pse, tsc, msr, pae, mce, cx8, apic, sep, mtrr, pge, mca, cmov, pat, "
             "sse, sse2, ht, syscall, nx, lm, pni, ssse3, fma, cx16, sse4_1, sse4_2, x2apic, "
             "popcnt, aes, xsave, avx, f16c, rdrand, hypervisor, svm, avx2, bmi1, bmi2, sha_ni",
}
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([GM])", re.I)
_VERSION = re.compile(r"(\d+\.\d+\.\d+)\s*(P\d+)?", re.I)


def speed_bits(text: Optional[str]) -> Optional[int]:
    """``"10G"`` -> 10_000_000_000 (bit/s); None when unknown."""
    m = _SPEED.match(text or "")
    if not m:
        return None
    factor = 1_000_000_000 if m.group(2).upper() == "G" else 1_000_000
    return int(float(m.group(1)) * factor)


def plan_version(plan: Plan) -> tuple[str, str]:
    m = _VERSION.search(plan.cluster.version_note or "")
    if not m:
        return DEFAULT_VERSION, DEFAULT_PATCH
    return m.group(1), (m.group(2) or "").upper()


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(bytes=_digest(*parts)[:16], version=4))


def _mac(prefix: str, *parts: str) -> str:
    d = _digest(*parts)
    return prefix + ":" + ":".join(f"{b:02x}" for b in d[:3])


def _random_mac(*parts: str) -> str:
    d = bytearray(_digest(*parts)[:6])
    d[0] = (d[0] & 0xFC) | 0x02  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in d)


def link_local(mac: str) -> str:
    """The EUI-64 link-local IPv6 address of a MAC, compressed like Linux shows it."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    eui = b[:3] + [0xFF, 0xFE] + b[3:]
    words = [(eui[i] << 8) | eui[i + 1] for i in range(0, 8, 2)]
    addr = ipaddress.IPv6Address((0xFE80 << 112) | (words[0] << 48) | (words[1] << 32) | (words[2] << 16) | words[3])
    return str(addr)


def _nic_speeds(plan: Plan) -> dict[str, Optional[int]]:
    """NIC name -> speed (bit/s) of every NIC the plan uses, in plan order."""
    nets = plan.networks
    groups = [nets.mgmt, nets.extra_mgmt, nets.storage, nets.backup]
    out: dict[str, Optional[int]] = {}
    for net in groups:
        if net is None:
            continue
        for nic in net.nics:
            out.setdefault(nic, speed_bits(net.speed))
    for nic in nets.business.nics:
        out.setdefault(nic, speed_bits(nets.business.speed))
    return out


class SimHost:
    """One planned host: static hardware plus its mutable state."""

    def __init__(self, plan: Plan, host: Host, overrides: Optional[dict] = None) -> None:
        ov = dict(overrides or {})
        self.plan = plan
        self.plan_host = host
        self.mgmt_ip: str = host.mgmt_ip or ""
        self.storage_ip: Optional[str] = host.storage_ip
        seed = f"{plan.cluster.name}|{host.index}|{host.mgmt_ip}|{host.sn}"
        self.seed = seed
        self.uuid = _uuid("host", seed)
        self.sn = host.sn or f"VMware-{self.uuid[:8]}"
        self.scan_hostname = host.name or f"node-{host.index:02d}"
        version, patch = plan_version(plan)
        if ov.get("version"):
            m = _VERSION.search(str(ov["version"]))
            version, patch = (m.group(1), (m.group(2) or "").upper()) if m else (str(ov["version"]), "")
        self.version = version
        self.patch_version = patch
        self.missing_nics = set(ov.get("missing_nics") or [])
        self.down_nics = set(ov.get("down_nics") or [])
        self.preexisting_deployment = bool(ov.get("deployed"))
        self.powered_off = bool(ov.get("powered_off"))  # judged by the inspection (host_power_is_on)
        self.all_flash = (plan.cluster.storage_arch or "").startswith("全闪")
        self.ifaces = self._build_ifaces()
        self.disks = self._build_disks()
        # -- mutable state (persisted by the world) --
        self.deployed = self.preexisting_deployment
        self.hostname = self.scan_hostname
        self.accounts: dict[str, Optional[str]] = {u: None for u in HOST_USERS}  # None = default password

    # -- hardware ----------------------------------------------------------------
    def _build_ifaces(self) -> list[dict[str, Any]]:
        ifaces: list[dict[str, Any]] = []
        for slot, (name, speed) in enumerate(_nic_speeds(self.plan).items()):
            if name in self.missing_nics:
                continue
            mac = _mac("00:50:56", self.seed, "nic", name)
            down = name in self.down_nics
            ifaces.append({
                "hwaddr": mac, "ibdev": None, "ipv4": None,
                "ipv6": None if down else link_local(mac),
                "mtu": 1500, "name": name, "pci_slot_name": f"0000:{0x04 + 2 * slot:02x}:00",
                "physical_link_up": not down, "rdma": False, "running": not down,
                "speed": None if down else speed, "up": True,
            })
        ifaces.sort(key=lambda i: i["name"])
        mgmt_nics = [n for n in self.plan.networks.mgmt.nics if n not in self.missing_nics]
        storage_nics = [n for n in self.plan.networks.storage.nics if n not in self.missing_nics]

        def virtual(name: str, mac: str, ipv4: Optional[str], ipv6: bool, running: bool, up: bool) -> dict:
            return {"hwaddr": mac, "ibdev": None, "ipv4": ipv4, "ipv6": link_local(mac) if ipv6 else None,
                    "mtu": 1500, "name": name, "pci_slot_name": None, "physical_link_up": True,
                    "rdma": False, "running": running, "speed": None, "up": up}

        by_name = {i["name"]: i for i in ifaces}
        for role, nics in (("mgt", mgmt_nics), ("storage", storage_nics)):
            mac = by_name[nics[0]]["hwaddr"] if nics else _random_mac(self.seed, "br", role)
            ifaces.append(virtual(self.bridge_name(role), mac, None, False, False, False))
        ifaces.append(virtual("ovsbr-internal", _random_mac(self.seed, "ovsbr-internal"), None, False, False, False))
        ifaces.append(virtual("port-internal", _random_mac(self.seed, "port-internal"), "169.254.169.254", True, True, True))
        ifaces.append(virtual("port-mgt", _random_mac(self.seed, "port-mgt"), self.mgmt_ip, True, True, True))
        if self.storage_ip:
            ifaces.append(virtual("port-storage", _random_mac(self.seed, "port-storage"), self.storage_ip, True, True, True))
        return ifaces

    def bridge_name(self, role: str) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        d = _digest(self.plan.cluster.name or "", "bridge", role)
        return "ovsbr-" + "".join(alphabet[b % len(alphabet)] for b in d[:9])

    def _build_disks(self) -> list[dict[str, Any]]:
        n = self.plan_host.index
        disks = [{"drive": "sda", "function": "boot", "model": "Virtual_disk",
                  "serial": _digest(self.seed, "boot").hex()[:32], "size": 515396075520, "type": "SSD"}]
        if self.all_flash:
            for k, drive in enumerate(("sdb", "sdc", "sdd", "sde")):
                disks.append({"drive": drive, "function": "data", "model": "SAMSUNG_MZ7LH3T8",
                              "serial": f"S4{n:03d}NX0R{k:06d}", "size": 3840755982336, "type": "SSD"})
        else:
            for k, drive in enumerate(("nvme0n1", "nvme0n2")):
                disks.append({"drive": drive, "function": "cache", "model": "VMware Virtual NVMe Disk",
                              "serial": f"NVME{n:04d}_{k:04d}", "size": 1759218604032, "type": "SSD"})
            for k, drive in enumerate(("sdb", "sdc", "sdd", "sde")):
                disks.append({"drive": drive, "function": "data", "model": "VMware_Virtual_SATA_Hard_Drive",
                              "serial": f"{k + 1:02d}{n:016d}{k + 1:02d}", "size": 2199023255552, "type": "HDD"})
        disks.sort(key=lambda d: d["drive"])
        return disks

    # -- queries -----------------------------------------------------------------
    def iface(self, name: str) -> Optional[dict[str, Any]]:
        return next((i for i in self.ifaces if i["name"] == name), None)

    def link_local_addresses(self) -> set[str]:
        return {i["ipv6"] for i in self.ifaces if i["ipv6"] and i["ipv6"].startswith("fe80:")}

    def physical_nics(self) -> list[str]:
        return [i["name"] for i in self.ifaces if i["pci_slot_name"]]

    def scan(self) -> dict[str, Any]:
        role = "master"
        return {
            "arch": "x86_64",
            "cgroup_profile_env": {
                "cpu_arch": "x86_64", "cpu_vendor": CPU["vendor"], "deployment_env": None,
                "enable_lsm_io_threads_state": None, "is_hygon_hct": False, "is_metro": False,
                "is_nvme_over_rdma": False, "is_nvme_over_tcp": False,
                "is_rdma": self.plan.cluster.rdma_enabled, "is_vhost": self.plan.cluster.vhost_enabled,
                "is_vmware_by_dmidecode": True, "memory_total": MEMORY_TOTAL, "node_role": role,
                "numa_info": {"numa_nodes": [{"cpus": [[cpu] for cpu in range(CPU["logical_cores"])],
                                              "free_mem_mb": MEMORY_TOTAL // 2**20 - 1047, "id": 0,
                                              "mem_size_mb": MEMORY_TOTAL // 2**20}]},
                "partition_total": 0, "platform": "kvm", "specified_mem_limits": {},
                "vm_min_free_bytes": 46963712, "zbs_spec": "normal",
            },
            "cpu": dict(CPU),
            "disks": [dict(d) for d in self.disks],
            "distribution": "openeuler",
            "host_ip": self.mgmt_ip,
            "host_uuid": self.uuid,
            "hostname": self.hostname,
            "ifaces": [dict(i) for i in self.ifaces],
            "ipmi_ip": None,
            "is_all_flash": self.all_flash,
            "is_os_in_raid1": False,
            "is_os_in_single_disk": True,
            "patch_version": self.patch_version,
            "product": "SMTXOS",
            "sn": self.sn,
            "status": "enabled" if self.deployed else "disabled",
            "version": self.version,
            "zbs_spec": "normal",
            "zbs_spec_valid": True,
        }

    # -- state -------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"deployed": self.deployed, "hostname": self.hostname, "accounts": dict(self.accounts)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.deployed = bool(state.get("deployed", self.deployed))
        self.hostname = state.get("hostname") or self.hostname
        accounts = state.get("accounts") or {}
        for user in set(self.accounts) | set(accounts):
            self.accounts[user] = accounts.get(user)


def build_hosts(plan: Plan, overrides: Optional[dict] = None) -> dict[str, SimHost]:
    overrides = overrides or {}
    unknown = set(overrides) - {h.mgmt_ip for h in plan.hosts}
    if unknown:
        raise ValueError(f"host_overrides 中的地址不在规划中: {', '.join(sorted(unknown))}")
    return {h.mgmt_ip: SimHost(plan, h, overrides.get(h.mgmt_ip)) for h in plan.hosts if h.mgmt_ip}
