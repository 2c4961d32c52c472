"""Rendering of CloudTower entities in the shapes of the official OpenAPI spec
(CloudTower 4.6.0 ``components/schemas``: Organization, Datacenter, Cluster,
Task, Host, Vds, Vlan, Vm, View, Graph, ZoneTopo, RackTopo, BrickTopo, NodeTopo).

Cluster-side objects (hosts, VDSes, VLANs, VMs) are derived from the world's
deployed cluster (``world.cluster_info()``) every time, so CloudTower always
shows what the cluster has; their tower ids are stable (``tower.tower_id``),
their ``local_id`` is the fisheye uuid. A cluster still ``INITIALIZING`` shows
only what the connect call returns (no hosts, no capacity), as the real one
does before its first sync.

:class:`TowerView` binds one tower backend and one snapshot of the cluster
info, so rendering a list asks the world once.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Optional

from voyager.sim.backend.hosts import CPU, MEMORY_TOTAL
from voyager.sim.tower.common import CONNECTED, iso

if TYPE_CHECKING:  # the backend imports the views' users; the views only read it
    from voyager.sim.tower.models import TowerBackend

CPU_HZ = CPU["hz_advertised_raw"][0]
CPU_CORES = CPU["logical_cores"]
VLAN_TYPES = {1: "MANAGEMENT", 2: "STORAGE", 3: "VM"}
VM_STATUS = {"running": "RUNNING", "stopped": "STOPPED", "suspended": "SUSPENDED"}


def _netmask(subnet: Optional[str]) -> Optional[str]:
    try:
        return str(ipaddress.IPv4Network(subnet, strict=False).netmask) if subnet else None
    except ValueError:
        return None


class TowerView:
    def __init__(self, tower: TowerBackend) -> None:
        self.tower = tower
        self.info: dict[str, Any] = tower.cluster_info() or {}

    # -- helpers ---------------------------------------------------------------------------
    def nested_cluster(self, cluster_id: Optional[str]) -> Optional[dict[str, str]]:
        cluster = self.tower.cluster(cluster_id) if cluster_id else None
        return {"id": cluster["id"], "name": self.cluster_name(cluster)} if cluster else None

    def cluster_name(self, cluster: dict[str, Any]) -> str:
        return self.info.get("name") or cluster["ip"]

    def _connected(self) -> list[dict[str, Any]]:
        """Connected clusters that are the world's deployed cluster."""
        serial = self.info.get("license_serial")
        return [c for c in self.tower.clusters if c["connect_state"] == CONNECTED and c["local_id"] == serial]

    def _hid(self, host: dict[str, Any]) -> str:
        return self.tower.tower_id("host", host["uuid"])

    def nested_host(self, host: dict[str, Any]) -> dict[str, str]:
        return {"id": self._hid(host), "management_ip": host["management_ip"], "name": host["name"]}

    def _host_of_vm(self, vm: dict[str, Any]) -> Optional[dict[str, Any]]:
        record = self.tower.world.vms.vms.get(vm["uuid"]) if self.tower.world.vms else None
        node_ip = record.get("node_ip") if record else None
        return next((h for h in self.info.get("hosts", []) if node_ip in (h["data_ip"], h["management_ip"])), None)

    def _vds_type(self, vds: dict[str, Any]) -> str:
        types = {v["type"] for v in self.info.get("vlans", []) if v["vds_uuid"] == vds["uuid"]}
        return "MANAGEMENT" if 1 in types else "STORAGE" if 2 in types else "VM"

    @staticmethod
    def _disk_sum(host: dict[str, Any], function: str, dtype: Optional[str] = None) -> int:
        return sum(d["size"] for d in host["disks"]
                   if d["function"] == function and (dtype is None or d["type"] == dtype))

    # -- organizations, datacenters, tasks ---------------------------------------------------
    def organization(self, org: dict[str, Any]) -> dict[str, Any]:
        return {"id": org["id"], "name": org["name"],
                "datacenters": [{"id": d["id"], "name": d["name"]} for d in self.tower.datacenters
                                if d["organization_id"] == org["id"]]}

    def datacenter(self, dc: dict[str, Any]) -> dict[str, Any]:
        org = self.tower.organization(dc["organization_id"]) or {"id": dc["organization_id"], "name": ""}
        clusters = [c for c in self.tower.clusters if c["datacenter_id"] == dc["id"]]
        synced = [c for c in clusters if c in self._connected()]
        hosts = self.info.get("hosts", []) if synced else []
        return {
            "id": dc["id"], "name": dc["name"], "cluster_num": len(clusters), "host_num": len(hosts),
            "vm_num": len(self.info.get("vms", [])) if synced else 0,
            "total_data_capacity": sum(self._disk_sum(h, "data") for h in hosts) if synced else None,
            "used_data_space": 0 if synced else None, "failure_data_space": 0 if synced else None,
            "total_cpu_hz": CPU_HZ * CPU_CORES * len(hosts) if synced else None,
            "used_cpu_hz": None, "total_memory_bytes": MEMORY_TOTAL * len(hosts) if synced else None,
            "used_memory_bytes": None,
            "organization": {"id": org["id"], "name": org["name"]},
            "clusters": [{"id": c["id"], "name": self.cluster_name(c)} for c in clusters],
            "labels": [],
        }

    def task(self, task: dict[str, Any]) -> dict[str, Any]:
        root = self.tower.root
        return {
            "args": task["args"], "cluster": self.nested_cluster(task["cluster_id"]),
            "description": task["description"], "error_code": task["error_code"],
            "error_message": task["error_message"],
            "finished_at": iso(task["finished_at"]) if task["finished_at"] else None,
            "id": task["id"], "internal": False, "key": task["key"],
            "local_created_at": iso(task["created_at"]), "progress": self.tower.task_progress(task),
            "resource_id": task["resource_id"], "resource_mutation": task["resource_mutation"],
            "resource_rollback_error": None, "resource_rollback_retry_count": None,
            "resource_rollbacked": None, "resource_type": task["resource_type"], "snapshot": "{}",
            "started_at": iso(task["started_at"]) if task["started_at"] else None,
            "status": task["status"], "steps": [], "type": None,
            "user": {"id": root["id"], "name": "root"} if root else None,
        }

    # -- clusters ----------------------------------------------------------------------------
    def cluster(self, cluster: dict[str, Any]) -> dict[str, Any]:
        info = self.info
        dc = self.tower.datacenter(cluster["datacenter_id"])
        base = {
            "id": cluster["id"], "name": self.cluster_name(cluster), "ip": cluster["ip"],
            "local_id": cluster["local_id"], "connect_state": cluster["connect_state"],
            "hypervisor": "ELF", "type": "SMTX_OS", "architecture": "X86_64",
            "version": info.get("version", ""), "dns": [], "ntp_servers": [],
            "recommended_cpu_models": [], "total_cpu_models": [], "labels": [],
            "datacenters": [{"id": dc["id"], "name": dc["name"]}] if dc else [],
            "settings": {"id": cluster["settings"]["id"]}, "disconnected_date": None,
            "disconnected_reason": None, "entityAsyncStatus": None,
        }
        if cluster not in self._connected():
            return base
        from voyager.sim.backend.cluster import CPU_MODELS, RECOMMENDED_CPU_MODELS

        hosts = info.get("hosts", [])
        vms = info.get("vms", [])
        n = len(hosts)
        data_capacity = sum(self._disk_sum(h, "data") for h in hosts)
        running = [v for v in vms if v["status"] == "running"]
        memory = sum(v["memory"] for v in vms)
        sign = info.get("license_sign_date") or 0
        period = info.get("license_period") or 0
        base.update({
            "application_highest_version": info.get("version"), "applications": [], "auto_converge": True,
            "consistency_groups": [], "current_cpu_model": info.get("current_cpu_model"),
            "dns": list(info.get("dns", [])), "everoute_cluster": None, "failure_data_space": 0,
            "has_metrox": True, "host_num": n, "hosts": [self.nested_host(h) for h in hosts],
            "is_all_flash": bool(info.get("is_all_flash")), "iscsi_vip": info.get("iscsi_vip"),
            "license_expire_date": iso(sign + period), "license_serial": info.get("license_serial"),
            "license_sign_date": iso(sign), "license_type": info.get("license_type", "TRIAL"),
            "maintenance_end_date": iso(0), "maintenance_start_date": iso(0),
            "management_vip": info.get("management_vip"), "max_chunk_num": 255,
            "max_physical_data_capacity": 0, "max_physical_data_capacity_per_node": 140737488355328,
            "metro_availability_checklist": None, "mgt_gateway": info.get("mgt_gateway"),
            "mgt_netmask": _netmask(info.get("mgt_subnet")), "migration_data_size": None,
            "migration_speed": None, "ntp_mode": (info.get("ntp_mode") or "internal").upper(),
            "ntp_servers": list(info.get("ntp_servers", [])), "nvme_over_rdma_enabled": False,
            "nvme_over_tcp_enabled": False, "nvmf_enabled": False, "pmem_enabled": False,
            "provisioned_cpu_cores": sum(v["vcpu"] for v in vms),
            "provisioned_cpu_cores_for_active_vm": sum(v["vcpu"] for v in running),
            "provisioned_for_active_vm_ratio": round(sum(v["vcpu"] for v in running) / (CPU_CORES * n), 6) if n else 0,
            "provisioned_memory_bytes": memory,
            "provisioned_ratio": round(sum(v["vcpu"] for v in vms) / (CPU_CORES * n), 6) if n else 0,
            "rdma_enabled": bool(info.get("rdma_enabled")),
            "recommended_cpu_models": list(RECOMMENDED_CPU_MODELS), "recover_data_size": 0, "recover_speed": 0,
            "reserved_cpu_cores_for_system_service": 12 * n, "running_vm_num": len(running),
            "software_edition": info.get("software_edition", "ENTERPRISE"),
            "stopped_vm_num": sum(1 for v in vms if v["status"] == "stopped"), "stretch": False,
            "suspended_vm_num": sum(1 for v in vms if v["status"] == "suspended"),
            "total_cache_capacity": sum(self._disk_sum(h, "cache") for h in hosts),
            "total_cpu_cores": CPU_CORES * n, "total_cpu_hz": CPU_HZ * CPU_CORES * n,
            "total_cpu_models": list(CPU_MODELS), "total_cpu_sockets": CPU.get("sockets", 1) * n,
            "total_data_capacity": data_capacity, "total_memory_bytes": MEMORY_TOTAL * n,
            "upgrade_tool_version": f"{info.get('version', '')}-rc61", "used_cpu_hz": 0.1 * CPU_HZ * CPU_CORES * n,
            "used_data_space": 0, "used_memory_bytes": memory, "valid_data_space": data_capacity,
            "vcenterAccount": None, "vdses": [{"id": v["id"], "name": v["name"]} for v in self.vdses()],
            "vhost_enabled": bool(info.get("vhost_enabled")), "vm_folders": [], "vm_num": len(vms),
            "vm_templates": [], "vms": [{"id": self.tower.tower_id("vm", v["uuid"]), "name": v["name"]} for v in vms],
            "witness": None, "zones": [],
        })
        return base

    def cluster_settings(self, cluster: dict[str, Any]) -> dict[str, Any]:
        """``ClusterSettings`` of the OpenAPI spec (``/get-cluster-settingses``)."""
        settings = cluster["settings"]
        return {"id": settings["id"], "cluster": self.nested_cluster(cluster["id"]),
                "default_ha": settings.get("default_ha"),
                "default_storage_policy": settings.get("default_storage_policy"),
                "enabled_iscsi": settings.get("enabled_iscsi"), "vm_recycle_bin": None}

    # -- cluster-side objects ------------------------------------------------------------------
    def hosts(self) -> list[dict[str, Any]]:
        out = []
        for cluster in self._connected():
            for h in self.info.get("hosts", []):
                vms = [v for v in self.info.get("vms", []) if self._host_of_vm(v) is h]
                data = [d for d in h["disks"] if d["function"] == "data"]
                node = next((n for n in self.tower.topo.nodes if n["host_local_id"] == h["uuid"]
                             and n["cluster_id"] == cluster["id"]), None)
                out.append({
                    "id": self._hid(h), "local_id": h["uuid"], "name": h["name"],
                    "management_ip": h["management_ip"], "data_ip": h["data_ip"], "access_ip": h["management_ip"],
                    "cluster": self.nested_cluster(cluster["id"]), "serial": h.get("sn"),
                    "chunk_id": str(1 + self.info["hosts"].index(h)), "model": "VMware Virtual Platform",
                    "cpu_brand": h["cpu"]["brand"], "cpu_vendor": h["cpu"]["vendor"], "cpu_model": "EPYC",
                    "compatible_cpu_models": ["EPYC", "EPYC-IBPB", "Opteron_G3", "Opteron_G2", "Opteron_G1"],
                    "cpu_hz_per_core": CPU_HZ, "total_cpu_cores": CPU_CORES, "total_cpu_hz": CPU_HZ * CPU_CORES,
                    "total_cpu_sockets": h["cpu"].get("sockets", 1), "cpu_fan_speed": [], "cpu_fan_speed_unit": None,
                    "cpu_temperature_celsius": [45], "total_memory_bytes": MEMORY_TOTAL,
                    "os_memory_bytes": 16 * 2**30, "allocatable_memory_bytes": MEMORY_TOTAL - 24 * 2**30,
                    "provisioned_cpu_cores": sum(v["vcpu"] for v in vms),
                    "provisioned_memory_bytes": sum(v["memory"] for v in vms),
                    "running_pause_vm_memory_bytes": sum(v["memory"] for v in vms if v["status"] == "running"),
                    "hdd_disk_count": sum(1 for d in data if d["type"] == "HDD"),
                    "ssd_disk_count": sum(1 for d in data if d["type"] == "SSD"),
                    "hdd_data_capacity": sum(d["size"] for d in data if d["type"] == "HDD"),
                    "ssd_data_capacity": sum(d["size"] for d in data if d["type"] == "SSD"),
                    "total_data_capacity": sum(d["size"] for d in data),
                    "total_cache_capacity": self._disk_sum(h, "cache"), "used_data_space": 0,
                    "failure_data_space": 0, "pmem_dimm_capacity": 0, "pmem_dimm_count": 0, "pmem_disk_count": 0,
                    "nic_count": len(self.tower.world.hosts[h["management_ip"]].physical_nics()),
                    "nested_virtualization": False, "lsm_cap_disk_safe_umount": True,
                    "state": "IN_USE", "status": "CONNECTED_HEALTHY",
                    "host_state": self.tower.workloads.host_state(self._hid(h)),
                    "os_version": "openEuler 20.03 (LTS-SP3)", "is_os_in_raid1": False,
                    "with_faster_ssd_as_cache": not self.info.get("is_all_flash"),
                    "vm_num": len(vms), "running_vm_num": sum(1 for v in vms if v["status"] == "running"),
                    "stopped_vm_num": sum(1 for v in vms if v["status"] == "stopped"), "suspended_vm_num": 0,
                    "vms": [{"id": self.tower.tower_id("vm", v["uuid"]), "name": v["name"]} for v in vms],
                    "node_topo_local_id": node["local_id"] if node else None,
                    "disks": [], "nics": [], "labels": [], "gpu_devices": [], "usb_devices": [], "pmem_dimms": [],
                    "ipmi": None, "iommu": None, "zone": None, "entityAsyncStatus": None,
                    "hypervisor_ip": None, "vmotion_ip": None, "scvm_cpu": None, "scvm_memory": None,
                    "scvm_name": None, "vsphereEsxiAccount": None, "used_cpu_hz": None, "used_memory_bytes": None,
                    "allocable_cpu_cores_for_vm_exclusive": None,
                })
        return out

    def vdses(self) -> list[dict[str, Any]]:
        out = []
        for cluster in self._connected():
            internal = {"uuid": f"internal-{cluster['local_id']}", "name": "vds-ovsbr-internal",
                        "ovsbr_name": "ovsbr-internal", "bond_mode": ""}
            for vds in self.info.get("vdses", []) + [internal]:
                vlans = [v for v in self.info.get("vlans", []) if v["vds_uuid"] == vds["uuid"]]
                out.append({
                    "id": self.tower.tower_id("vds", vds["uuid"]), "local_id": vds["uuid"], "name": vds["name"],
                    "bond_mode": vds["bond_mode"], "ovsbr_name": vds["ovsbr_name"],
                    "cluster": self.nested_cluster(cluster["id"]), "internal": vds is internal,
                    "type": self._vds_type(vds), "work_mode": "single", "vlans_num": len(vlans),
                    "vlans": [{"id": self.tower.tower_id("vlan", v["uuid"]), "name": v["name"]} for v in vlans],
                    "nics": [], "labels": [], "entityAsyncStatus": None, "everoute_cluster": None,
                })
        return out

    def vlans(self) -> list[dict[str, Any]]:
        out = []
        names = {v["uuid"]: v["name"] for v in self.info.get("vdses", [])}
        for _cluster in self._connected():
            for v in self.info.get("vlans", []):
                out.append({
                    "id": self.tower.tower_id("vlan", v["uuid"]), "local_id": v["uuid"], "name": v["name"],
                    "vlan_id": v["vlan_id"], "type": VLAN_TYPES.get(v["type"], "VM"),
                    "vds": {"id": self.tower.tower_id("vds", v["vds_uuid"]), "name": names.get(v["vds_uuid"], "")},
                    "mode_type": "VLAN_ACCESS", "network_ids": [], "gateway_ip": None, "gateway_subnetmask": None,
                    "subnetmask": None, "labels": [], "vm_nics": [], "entityAsyncStatus": None,
                    "qos_burst": None, "qos_max_bandwidth": None, "qos_min_bandwidth": None, "qos_priority": None,
                })
        return out

    def vms(self) -> list[dict[str, Any]]:
        out = []
        table = self.tower.world.vms
        for cluster in self._connected():
            for v in self.info.get("vms", []):
                record = table.vms.get(v["uuid"], {}) if table else {}
                host = self._host_of_vm(v)
                ga = bool(record) and table.ga_running(record)
                topology = (record.get("cpu") or {}).get("topology") or {"sockets": v["vcpu"], "cores": 1}
                out.append({
                    "id": self.tower.tower_id("vm", v["uuid"]), "local_id": v["uuid"], "name": v["name"],
                    "cluster": self.nested_cluster(cluster["id"]),
                    "host": self.nested_host(host) if host else None, "node_ip": record.get("node_ip", ""),
                    "status": VM_STATUS.get(v["status"], "UNKNOWN"), "vcpu": v["vcpu"], "memory": v["memory"],
                    "cpu": {"sockets": topology.get("sockets", v["vcpu"]), "cores": topology.get("cores", 1)},
                    "cpu_model": record.get("cpu_model", "cluster_default"),
                    "description": record.get("description", ""), "firmware": record.get("firmware", "BIOS"),
                    "ha": bool(record.get("ha", True)), "ips": v.get("ip") or "", "clock_offset": "UTC",
                    "in_recycle_bin": False, "internal": False, "protected": False, "win_opt": False,
                    "nested_virtualization": bool(record.get("nested_virtualization")),
                    "out_uninstall_usb": [], "guest_os_type": "LINUX" if ga else "UNKNOWN",
                    "vm_tools_status": "RUNNING" if ga else "NOT_RUNNING",
                    "os": "openEuler 20.03 (LTS-SP3)" if ga else None, "vm_nics": [], "vm_disks": [],
                    "labels": [], "entityAsyncStatus": None, "local_created_at": iso(record["create_time"])
                    if record.get("create_time") else None,
                    **self._vm_details(v, record, ga),
                })
        return out

    def _vm_details(self, v: dict[str, Any], record: dict[str, Any], ga: bool) -> dict[str, Any]:
        """The rest of the spec's Vm properties: sizes from the VM's disks, guest facts while its
        agent runs, null for what the simulator does not measure (usage, I/O limits)."""
        from voyager.sim.backend.vms import KERNEL

        disks = [d for d in record.get("disks", []) if d.get("type") == "disk"]
        size = sum(d["size"] for d in disks) if disks else None
        shutdown = record.get("last_shutdown_time")
        return {
            "bios_uuid": v["uuid"], "cloud_init_supported": False, "guest_cpu_model": "host_passthrough",
            "hostname": "localhost.localdomain" if ga else None, "kernel_info": KERNEL if ga else None,
            "dns_servers": "" if ga else None, "vm_tools_version": "4.0.0" if ga else None,
            "video_type": "CIRRUS", "io_policy": "RESTRICT_EACH_DISK", "max_bandwidth": None,
            "max_bandwidth_policy": "DYNAMIC", "max_iops": None, "max_iops_policy": "DYNAMIC",
            "size": size, "provisioned_size": size, "logical_size_bytes": size, "used_size": None,
            "unique_size": None, "unique_logical_size": None, "used_size_usage": None, "guest_used_size": None,
            "guest_size_usage": None, "cpu_usage": None, "memory_usage": None,
            "last_shutdown_time": iso(shutdown) if shutdown else None, "deleted_at": None, "original_name": None,
            "vm_usage": "CLOUDTOWER" if record.get("profile") == "cloudtower" else None,
            "folder": None, "isolation_policy": None, "snapshot_plan": None, "backup_plans": [], "snapshots": [],
            "gpu_devices": [], "usb_devices": [], "pci_nics": [], "entity_filter_results": [],
            "vm_placement_group": [],
        }

    def cluster_objects(self) -> dict[str, set[str]]:
        """Tower ids a graph of each connected cluster may connect to."""
        out: dict[str, set[str]] = {}
        for cluster in self._connected():
            ids = {cluster["id"]}
            ids.update(self._hid(h) for h in self.info.get("hosts", []))
            ids.update(self.tower.tower_id("vm", v["uuid"]) for v in self.info.get("vms", []))
            out[cluster["id"]] = ids
        return out

    # -- dashboards ------------------------------------------------------------------------------
    def view(self, view: dict[str, Any]) -> dict[str, Any]:
        return {"id": view["id"], "local_id": view["local_id"], "name": view["name"],
                "time_unit": view["time_unit"], "time_span": view["time_span"],
                "cluster": self.nested_cluster(view["cluster_id"]), "entityAsyncStatus": None,
                "graphs": [{"id": g["id"]} for g in self.tower.dashboards.graphs_of(view["id"])]}

    def graph(self, graph: dict[str, Any]) -> dict[str, Any]:
        view = self.tower.dashboards.view(graph["view_id"]) or {"id": graph["view_id"], "name": ""}
        hosts = {self._hid(h): h for h in self.info.get("hosts", [])}
        vms = {self.tower.tower_id("vm", v["uuid"]): v for v in self.info.get("vms", [])}
        return {
            "id": graph["id"], "local_id": graph["local_id"], "title": graph["title"], "type": graph["type"],
            "resource_type": graph["resource_type"], "metric_name": graph["metric_name"],
            "metric_type": graph["metric_type"], "metric_count": graph["metric_count"],
            "instance_ids": graph["instance_ids"], "network": graph["network"], "service": graph["service"],
            "targets": {}, "cluster": self.nested_cluster(graph["cluster_id"]),
            "view": {"id": view["id"], "name": view["name"]}, "entityAsyncStatus": None,
            "hosts": [self.nested_host(hosts[i]) for i in graph["connect_id"] if i in hosts],
            "vms": [{"id": i, "name": vms[i]["name"]} for i in graph["connect_id"] if i in vms],
            "disks": [], "luns": [], "namespaces": [], "nics": [], "vmNics": [], "vmVolumes": [],
            "witnesses": [], "zones": [],
        }

    # -- topology -------------------------------------------------------------------------------
    def _cluster_topo(self, cluster_id: str) -> Optional[dict[str, str]]:
        zone = self.tower.topo.zone_of_cluster(cluster_id)
        cluster = self.tower.cluster(cluster_id)
        return {"id": zone["cluster_topo_id"], "name": self.cluster_name(cluster)} if zone and cluster else None

    def zone_topo(self, zone: dict[str, Any]) -> dict[str, Any]:
        return {"id": zone["id"], "local_id": zone["local_id"], "cluster": self.nested_cluster(zone["cluster_id"]),
                "cluster_topo": self._cluster_topo(zone["cluster_id"]),
                "rack_topoes": [{"id": r["id"], "name": r["name"]} for r in self.tower.topo.racks
                                if r["zone_topo_id"] == zone["id"]]}

    def rack_topo(self, rack: dict[str, Any]) -> dict[str, Any]:
        return {"id": rack["id"], "local_id": rack["local_id"], "name": rack["name"], "height": rack["height"],
                "cluster": self.nested_cluster(rack["cluster_id"]), "zone_topo": {"id": rack["zone_topo_id"]},
                "brick_topoes": [{"id": b["id"], "name": b["name"]} for b in self.tower.topo.bricks
                                 if b["rack_topo_id"] == rack["id"]]}

    def brick_topo(self, brick: dict[str, Any]) -> dict[str, Any]:
        rack = self.tower.topo.rack(brick["rack_topo_id"])
        return {"id": brick["id"], "local_id": brick["local_id"], "name": brick["name"],
                "height": brick["height"], "position": brick["position"], "capacity": dict(brick["capacity"]),
                "cluster": self.nested_cluster(brick["cluster_id"]),
                "cluster_topo": self._cluster_topo(brick["cluster_id"]),
                "rack_topo": {"id": rack["id"], "name": rack["name"]} if rack else None,
                "node_topoes": [{"id": n["id"], "name": n["name"]} for n in self.tower.topo.nodes
                                if n["brick_topo_id"] == brick["id"]],
                "model": None, "disk_layout": None, "power_layout": None, "power_position": None,
                "powers": [], "tag_position_in_brick": []}

    def node_topo(self, node: dict[str, Any]) -> dict[str, Any]:
        brick = self.tower.topo.brick(node["brick_topo_id"])
        host = next((h for h in self.info.get("hosts", []) if h["uuid"] == node["host_local_id"]), None)
        return {"id": node["id"], "local_id": node["local_id"], "name": node["name"],
                "cluster": self.nested_cluster(node["cluster_id"]),
                "cluster_topo": self._cluster_topo(node["cluster_id"]),
                "brick_topo": {"id": brick["id"], "name": brick["name"]} if brick else None,
                "host": self.nested_host(host) if host else None, "position": dict(node["position"])}
