"""CloudTower's inspection center (巡检中心): inspection jobs and report exports.

``world.tower.inspector``. A job inspects connected clusters, named by their
``local_id`` (the SMTX license serial, API-FACTS), for a list of known check
items; it runs ``JOB_SECONDS`` real seconds. An export of a job's report is
``EXPORT_RUNNING`` until the job has finished and ``EXPORT_SECONDS`` more have
passed, then ``EXPORT_SUCCEEDED``; the download is a zip built on demand (a
Word document listing the cluster and every checked item), nothing is stored.
"""
from __future__ import annotations

import datetime as dt
import io
import secrets
import string
import zipfile
from typing import Any, Optional
from xml.sax.saxutils import escape

from voyager.sim.tower.common import CONNECTED

JOB_SECONDS = 180.0
EXPORT_SECONDS = 30.0
FORMATS = ("word",)
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

# Check items the inspection center knows (the walkthrough's fixed lists).
ITEMS = frozenset("""
master_redundancy_check cluster_mem_usage_check cluster_cpu_usage_check host_disk_remaining_life_percent
host_power_is_on host_disk_is_healthy host_unhealthy_disk_is_offline event_disk_remove event_slot_disk_remove
event_disk_add sensor_check power_health_check bmc_selftest fan_check ipmi_account_is_valid chassis_selftest
hotfix_package_check worker_status_check worker_num_check job_duration_check failed_job_check
host_service_health host_service_resident_memory_bytes host_service_is_running log_dir_usage_check
host_cpu_overall_usage_percent host_memory_usage_percent host_time_diff_with_ntp_leader_seconds
cluster_can_sync_time_with_external_ntp_server cluster_can_connect_to_external_ntp_server mongo_data_size_check
root_disk_usage_check meta_partition_usage_check sys_partition_raid_is_normal sys_boot_health_check zk_cfg_check
zk_role_check zk_primary_check primary_check status_check zk_status_check system_config_check
third_party_software_check host_storage_network_can_ping host_management_network_can_ping
host_access_network_can_ping host_to_host_max_ping_time_ns host_work_status_is_unknown host_bond_slave_is_normal
default_gateway_check associated_nic_num_check network_loss_package_check zbs_cluster_data_space_use_rate
zbs_chunk_data_space_use_rate cluster_storage_usage_check zbs_cluster_chunks_unsafe_failure_space
partition_status_check lsm_info_check zbs_cluster_pending_migrate_bytes zbs_chunk_avg_readwrite_latency_ns
zbs_chunk_connect_status zbs_chunk_maintenance_mode zbs_cluster_chunks_without_topo zbs_chunk_dirty_cache_ratio
zbs_zone_maximum_proportion_of_rack_space zbs_rack_maximum_proportion_of_brick_space disk_max_sectors_kb_check
lsm2db_manifest_size_check journal_status_check dead_data_check cache_status_check recover_data_check
meta_leader_check zbs_zk_hosts_cfg_check elf_cluster_cpu_model_not_recommended elf_vm_placement_expire
elf_vm_placement_status elf_cluster_cpu_model_incompatible elf_host_ha_status vm_zero_page_refcount_check
vm_uuid_duplicate_check without_vm_uuid_check
""".split())


class InspectorError(Exception):
    """Rendered in the grpc-gateway shape ``{code, message, details}``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def ksuid() -> str:
    """A 27-character base-62 id like the inspector's job ids."""
    return "".join(secrets.choice(_B62) for _ in range(27))


def _str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InspectorError(3, f"{field} must be a non-empty list of strings")
    return value


def _items(value: Any, field: str) -> list[str]:
    items = _str_list(value, field)
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        raise InspectorError(3, f"unknown inspection item {unknown[0]} in {field}")
    return items


class Inspector:
    def __init__(self, tower) -> None:
        self.tower = tower
        self.jobs: dict[str, dict[str, Any]] = {}
        self.exports: dict[str, dict[str, Any]] = {}

    @property
    def clock(self):
        return self.tower.clock

    def _cluster_by_local_id(self, local_id: str) -> Optional[dict[str, Any]]:
        return next((c for c in self.tower.clusters
                     if c["local_id"] == local_id and c["connect_state"] == CONNECTED), None)

    def create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InspectorError(3, "request body must be an object")
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise InspectorError(3, "version is required")
        clusters = _str_list(body.get("cluster_uuids"), "cluster_uuids")
        for local_id in clusters:
            if self._cluster_by_local_id(local_id) is None:
                raise InspectorError(5, f"cluster {local_id} not found (cluster_uuids take the cluster's "
                                        "local_id, i.e. its SMTX serial)")
        items = _items(body.get("user_defined_items_names"), "user_defined_items_names")
        job = {"id": ksuid(), "version": version, "cluster_uuids": list(clusters),
               "user_defined_items_names": list(items), "created_at": self.clock.now()}
        self.jobs[job["id"]] = job
        self.tower.changed()
        return job

    def job_done(self, job: dict[str, Any]) -> bool:
        return self.clock.reached(job["created_at"], JOB_SECONDS)

    def render_job(self, job: dict[str, Any]) -> dict[str, Any]:
        return {"id": job["id"], "version": job["version"], "cluster_uuids": job["cluster_uuids"],
                "cluster_names": {}, "user_defined_items_names": job["user_defined_items_names"]}

    def export(self, job_id: str, fmt: Optional[str], body: Any) -> str:
        job = self.jobs.get(job_id)
        if job is None:
            raise InspectorError(5, f"job {job_id} not found")
        if fmt not in FORMATS:
            raise InspectorError(3, f"format must be one of {', '.join(FORMATS)}")
        if not isinstance(body, dict) or not isinstance(body.get("options"), list) or not body["options"]:
            raise InspectorError(3, "options must be a non-empty list")
        options = []
        for opt in body["options"]:
            if not isinstance(opt, dict) or opt.get("cluster_uuid") not in job["cluster_uuids"]:
                raise InspectorError(3, "each option needs a cluster_uuid of the job")
            months = opt.get("graph_duration_months")
            if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 12:
                raise InspectorError(3, "graph_duration_months must be an integer between 1 and 12")
            options.append({"cluster_uuid": opt["cluster_uuid"], "items_names": _items(opt.get("items_names"),
                                                                                       "items_names"),
                            "graph_duration_months": months})
        now = self.clock.now()
        stamp = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        filename = f"InspectorReport-{stamp}-{job_id}.zip"
        self.exports[filename] = {"job_id": job_id, "format": fmt, "options": options, "created_at": now}
        self.tower.changed()
        return filename

    def export_status(self, filename: Optional[str]) -> str:
        export = self.exports.get(filename or "")
        if export is None:
            raise InspectorError(5, f"export {filename} not found")
        job = self.jobs[export["job_id"]]
        job_end = job["created_at"] + self.clock.wall(JOB_SECONDS)
        start = max(job_end, export["created_at"])
        done = self.job_done(job) and self.clock.reached(start, EXPORT_SECONDS)
        return "EXPORT_SUCCEEDED" if done else "EXPORT_RUNNING"

    def download(self, filename: Optional[str]) -> bytes:
        if self.export_status(filename) != "EXPORT_SUCCEEDED":
            raise InspectorError(9, f"export {filename} is still running")
        export = self.exports[filename]
        job = self.jobs[export["job_id"]]
        info = self.tower.cluster_info() or {}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for opt in export["options"]:
                name = info.get("name") if info.get("license_serial") == opt["cluster_uuid"] else opt["cluster_uuid"]
                zf.writestr(f"InspectorReport-{name}.docx", _docx(_report_lines(job, opt, name, info)))
        return buf.getvalue()

    def to_state(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "exports": self.exports}

    def load_state(self, state: dict[str, Any]) -> None:
        self.jobs = dict(state.get("jobs") or {})
        self.exports = dict(state.get("exports") or {})


def _report_lines(job: dict[str, Any], opt: dict[str, Any], name: str, info: dict[str, Any]) -> list[str]:
    lines = [
        "SmartX 集群巡检报告 (Inspection report)",
        f"集群 (cluster): {name}",
        f"集群序列号 (serial): {opt['cluster_uuid']}",
        f"版本 (version): {info.get('version', '')}",
        f"主机数 (hosts): {len(info.get('hosts', []))}",
        f"巡检任务 (job): {job['id']}  巡检版本 (inspector version): {job['version']}",
        f"图表时间范围 (graph duration): {opt['graph_duration_months']} 个月",
        f"巡检项 (items): {len(opt['items_names'])}",
    ]
    lines += [f"{item}: 通过 (PASS)" for item in opt["items_names"]]
    return lines


def _docx(lines: list[str]) -> bytes:
    """A minimal, valid WordprocessingML (.docx) document with one paragraph per line."""
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{escape(line)}</w:t></w:r></w:p>" for line in lines)
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>'),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body>{body}</w:body></w:document>"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return buf.getvalue()
