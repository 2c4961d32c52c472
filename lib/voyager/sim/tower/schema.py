"""Top-level fields of the CloudTower entities each ``/v2/api/get-*`` list returns.

The real API validates a ``where`` / ``orderBy`` against its schema whatever the
data: a misspelt field is a 400 even on an empty list. The simulator evaluates
``where`` against rendered entities (:mod:`voyager.sim.tower.where`), so it needs
the field names up front for the same answer on an empty list. These are the
fields :mod:`voyager.sim.tower.views` renders (a unit test keeps the two equal).
"""
from __future__ import annotations


def _fields(text: str) -> frozenset[str]:
    return frozenset(text.split())


FIELDS: dict[str, frozenset[str]] = {
    "get-organizations": _fields("datacenters id name"),
    "get-datacenters": _fields(
        "cluster_num clusters failure_data_space host_num id labels name organization total_cpu_hz "
        "total_data_capacity total_memory_bytes used_cpu_hz used_data_space used_memory_bytes vm_num"
    ),
    "get-clusters": _fields(
        "application_highest_version applications architecture auto_converge connect_state consistency_groups "
        "current_cpu_model datacenters disconnected_date disconnected_reason dns entityAsyncStatus "
        "everoute_cluster failure_data_space has_metrox host_num hosts hypervisor id ip is_all_flash "
        "iscsi_vip labels license_expire_date license_serial license_sign_date license_type local_id "
        "maintenance_end_date maintenance_start_date management_vip max_chunk_num max_physical_data_capacity "
        "max_physical_data_capacity_per_node metro_availability_checklist mgt_gateway mgt_netmask "
        "migration_data_size migration_speed name ntp_mode ntp_servers nvme_over_rdma_enabled "
        "nvme_over_tcp_enabled nvmf_enabled pmem_enabled provisioned_cpu_cores "
        "provisioned_cpu_cores_for_active_vm provisioned_for_active_vm_ratio provisioned_memory_bytes "
        "provisioned_ratio rdma_enabled recommended_cpu_models recover_data_size recover_speed "
        "reserved_cpu_cores_for_system_service running_vm_num settings software_edition stopped_vm_num "
        "stretch suspended_vm_num total_cache_capacity total_cpu_cores total_cpu_hz total_cpu_models "
        "total_cpu_sockets total_data_capacity total_memory_bytes type upgrade_tool_version used_cpu_hz "
        "used_data_space used_memory_bytes valid_data_space vcenterAccount vdses version vhost_enabled "
        "vm_folders vm_num vm_templates vms witness zones"
    ),
    "get-cluster-settingses": _fields("cluster default_ha default_storage_policy enabled_iscsi id vm_recycle_bin"),
    "get-tasks": _fields(
        "args cluster description error_code error_message finished_at id internal key local_created_at "
        "progress resource_id resource_mutation resource_rollback_error resource_rollback_retry_count "
        "resource_rollbacked resource_type snapshot started_at status steps type user"
    ),
    "get-views": _fields("cluster entityAsyncStatus graphs id local_id name time_span time_unit"),
    "get-graphs": _fields(
        "cluster disks entityAsyncStatus hosts id instance_ids local_id luns metric_count metric_name "
        "metric_type namespaces network nics resource_type service targets title type view vmNics vmVolumes "
        "vms witnesses zones"
    ),
    "get-zone-topoes": _fields("cluster cluster_topo id local_id rack_topoes"),
    "get-rack-topoes": _fields("brick_topoes cluster height id local_id name zone_topo"),
    "get-brick-topoes": _fields(
        "capacity cluster cluster_topo disk_layout height id local_id model name node_topoes position "
        "power_layout power_position powers rack_topo tag_position_in_brick"
    ),
    "get-node-topoes": _fields("brick_topo cluster cluster_topo host id local_id name position"),
    "get-hosts": _fields(
        "access_ip allocable_cpu_cores_for_vm_exclusive allocatable_memory_bytes chunk_id cluster "
        "compatible_cpu_models cpu_brand cpu_fan_speed cpu_fan_speed_unit cpu_hz_per_core cpu_model "
        "cpu_temperature_celsius cpu_vendor data_ip disks entityAsyncStatus failure_data_space gpu_devices "
        "hdd_data_capacity hdd_disk_count host_state hypervisor_ip id iommu ipmi is_os_in_raid1 labels "
        "local_id lsm_cap_disk_safe_umount management_ip model name nested_virtualization nic_count nics "
        "node_topo_local_id os_memory_bytes os_version pmem_dimm_capacity pmem_dimm_count pmem_dimms "
        "pmem_disk_count provisioned_cpu_cores provisioned_memory_bytes running_pause_vm_memory_bytes "
        "running_vm_num scvm_cpu scvm_memory scvm_name serial ssd_data_capacity ssd_disk_count state status "
        "stopped_vm_num suspended_vm_num total_cache_capacity total_cpu_cores total_cpu_hz total_cpu_sockets "
        "total_data_capacity total_memory_bytes usb_devices used_cpu_hz used_data_space used_memory_bytes "
        "vm_num vmotion_ip vms vsphereEsxiAccount with_faster_ssd_as_cache zone"
    ),
    "get-vdses": _fields(
        "bond_mode cluster entityAsyncStatus everoute_cluster id internal labels local_id name nics "
        "ovsbr_name type vlans vlans_num work_mode"
    ),
    "get-vlans": _fields(
        "entityAsyncStatus gateway_ip gateway_subnetmask id labels local_id mode_type name network_ids "
        "qos_burst qos_max_bandwidth qos_min_bandwidth qos_priority subnetmask type vds vlan_id vm_nics"
    ),
    "get-vms": _fields(
        "backup_plans bios_uuid clock_offset cloud_init_supported cluster cpu cpu_model cpu_usage deleted_at "
        "description dns_servers entityAsyncStatus entity_filter_results firmware folder gpu_devices "
        "guest_cpu_model guest_os_type guest_size_usage guest_used_size ha host hostname id in_recycle_bin "
        "internal io_policy ips isolation_policy kernel_info labels last_shutdown_time local_created_at local_id "
        "logical_size_bytes max_bandwidth max_bandwidth_policy max_iops max_iops_policy memory memory_usage name "
        "nested_virtualization node_ip original_name os out_uninstall_usb pci_nics protected provisioned_size "
        "size snapshot_plan snapshots status unique_logical_size unique_size usb_devices used_size "
        "used_size_usage vcpu video_type vm_disks vm_nics vm_placement_group vm_tools_status vm_tools_version "
        "vm_usage win_opt"
    ),
    "get-upload-tasks": _fields(
        "args chunk_size current_chunk finished_at id resource_type size started_at status updatedAt"
    ),
    "get-vm-volumes": _fields(
        "cluster description elf_storage_policy entityAsyncStatus guest_size_usage guest_used_size id labels "
        "local_created_at local_id lun mounting name path sharing size type unique_logical_size unique_size "
        "used_size used_size_usage vm_disks"
    ),
    "get-cloudtower-application-packages": _fields(
        "applications architecture containers id images name scosVersion version"
    ),
    "get-cloudtower-applications": _fields(
        "entityAsyncStatus id instanceStatuses name package placementSituation placementVerb resourceVersion "
        "state targetPackage user vmSpec"
    ),
    "get-backup-services": _fields(
        "application backup_clusters backup_network_gateway backup_network_ip backup_network_subnet_mask "
        "backup_network_type backup_network_vlan backup_plans backup_rd_iops_max backup_store_repositories "
        "backup_wr_iops_max description entityAsyncStatus id kube_config management_network_gateway "
        "management_network_ip management_network_subnet_mask management_network_vlan max_job_retry_times "
        "max_parallel_backup_jobs max_parallel_restore_jobs name network_status restore_rd_iops_max "
        "restore_wr_iops_max retry_interval running_vm status storage_network_gateway storage_network_ip "
        "storage_network_subnet_mask storage_network_type storage_network_vlan"
    ),
    # [INF] not in the OpenAPI spec (see voyager.sim.tower.applications)
    "get-obs-cluster-associations": _fields("application cluster id status"),
}
