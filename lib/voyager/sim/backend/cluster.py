"""The deployed SMTX OS cluster: settings, license, fisheye users and sessions,
IPMI accounts, storage policies, CPU compatibility.

Secrets are kept only as salted digests (:mod:`voyager.sim.backend.passwords`):
the fisheye root password and session tokens never enter the state file.
"""
from __future__ import annotations

import ipaddress
import secrets
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from voyager.sim.backend.errors import SimError, form_error
from voyager.sim.backend.passwords import hash_password, token_digest, verify_password

SESSION_DAYS = 7
LICENSE_PERIOD = 2592000  # 30 days, TRIAL
CPU_MODELS = ["host_passthrough", "Dhyana", "EPYC", "EPYC-IBPB", "Opteron_G3", "Opteron_G2", "Opteron_G1"]
RECOMMENDED_CPU_MODELS = ["EPYC"]
IPMI_PORT = 623


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def is_ipv4(text: Any) -> bool:
    try:
        ipaddress.IPv4Address(str(text))
        return True
    except ValueError:
        return False


class ClusterState:
    """Created by the deployment when it finishes (``world.cluster``)."""

    def __init__(self, **fields: Any) -> None:
        self.name: str = fields["name"]
        self.uuid: str = fields.get("uuid") or str(uuid.uuid4())
        self.host_ips: list[str] = list(fields["host_ips"])
        self.master_ip: str = fields["master_ip"]
        self.platform: str = fields.get("platform", "kvm")
        self.version: str = fields.get("version", "6.2.0")
        self.vhost_enabled: bool = bool(fields.get("vhost_enabled"))
        self.rdma_enabled: bool = bool(fields.get("rdma_enabled"))
        self.created: float = fields["created"]
        self.dns_servers: list[str] = list(fields.get("dns_servers") or [])
        self.ntp_mode: str = fields.get("ntp_mode", "internal")
        self.ntp_servers: list[str] = list(fields.get("ntp_servers") or [])
        self.vip: Optional[str] = fields.get("vip")
        self.iscsi_vip: Optional[str] = fields.get("iscsi_vip")
        self.serial: str = fields.get("serial") or str(uuid.uuid4())
        self.datastore: str = fields.get("datastore") or f"zbs-iscsi-datastore-{uuid.uuid4()}"
        self.root_password: Optional[str] = fields.get("root_password")  # digest
        self.sessions: dict[str, dict[str, Any]] = dict(fields.get("sessions") or {})
        self.ipmi_accounts: list[dict[str, Any]] = list(fields.get("ipmi_accounts") or [])
        self.storage_policies: list[dict[str, Any]] = list(fields.get("storage_policies") or [])
        self.cpu_model: Optional[str] = fields.get("cpu_model")

    def to_state(self) -> dict[str, Any]:
        return dict(vars(self))

    # -- fisheye users and sessions ------------------------------------------------------
    def setup_root(self, password: str, repeat: str) -> None:
        if self.root_password is not None:
            raise SimError("ALREADY_EXISTS", "root user has already been set up", status=409)
        if not password:
            raise SimError("INVALID_ARGUMENT", "password must not be empty")
        if password != repeat:
            raise SimError("INVALID_ARGUMENT", "password and repeat do not match")
        self.root_password = hash_password(password)

    def check_root(self, username: str, password: str) -> bool:
        return username == "root" and verify_password(password, self.root_password)

    def login(self, username: str, password: str, now: float) -> dict[str, Any]:
        if self.root_password is None:
            raise SimError("FAILED_PRECONDITION", "root user has not been set up yet", status=400)
        if not self.check_root(username, password):
            raise SimError("UNAUTHENTICATED", "invalid username or password", status=401)
        token = secrets.token_hex(16)
        session = {"user_id": username, "create_time": now, "expire_time": now + SESSION_DAYS * 86400}
        self.sessions[token_digest(token)] = session
        return {"user_id": username, "token": token, "create_time": iso_utc(now),
                "expire_time": iso_utc(session["expire_time"]), "update_time": iso_utc(now)}

    def session(self, token: Optional[str], now: float) -> Optional[dict[str, Any]]:
        if not token:
            return None
        found = self.sessions.get(token_digest(token))
        if found is None or found["expire_time"] < now:
            return None
        return found

    def logout(self, token: str) -> bool:
        return self.sessions.pop(token_digest(token), None) is not None

    # -- settings -----------------------------------------------------------------------
    def validate_vip(self, body: dict[str, Any], mgmt_subnet: Optional[str]) -> None:
        vip = body.get("management_vip")
        if not is_ipv4(vip):
            raise form_error("management_vip", "must be an IPv4 address")
        if mgmt_subnet:
            try:
                if ipaddress.IPv4Address(vip) not in ipaddress.IPv4Network(mgmt_subnet, strict=False):
                    raise form_error("management_vip", f"must be in the management network {mgmt_subnet}")
            except ValueError:
                pass
        if body.get("iscsi_vip") is not None and not is_ipv4(body["iscsi_vip"]):
            raise form_error("iscsi_vip", "must be null or an IPv4 address")

    @staticmethod
    def validate_dns(body: dict[str, Any]) -> None:
        servers = body.get("dns_servers")
        if not isinstance(servers, list) or not servers:
            raise form_error("dns_servers", "must be a non-empty list")
        for s in servers:
            if not is_ipv4(s):
                raise form_error("dns_servers", f"{s} is not an IPv4 address")

    @staticmethod
    def validate_ntp(body: dict[str, Any]) -> None:
        mode = body.get("ntp_mode")
        if mode not in ("external", "internal"):
            raise form_error("ntp_mode", "must be external or internal")
        servers = body.get("ntp_servers")
        if not isinstance(servers, list) or not all(isinstance(s, str) and s.strip() for s in servers):
            raise form_error("ntp_servers", "must be a list of host names or addresses")
        if mode == "external" and not servers:
            raise form_error("ntp_servers", "external mode needs at least one server")

    # -- license --------------------------------------------------------------------------
    def license(self) -> dict[str, Any]:
        return {
            "serial": self.serial, "software_edition": "ENTERPRISE", "max_chunk_num": 255,
            "max_physical_data_capacity": 0, "max_physical_data_capacity_per_node": 140737488355328,
            "license_capabilities": {"has_metrox": True, "has_remote_backup": True},
            "license_type": "TRIAL", "vendor": "SMTX", "maintenance_start_date": 0, "maintenance_period": 0,
            "sign_date": int(self.created), "platform": 15, "mode": "HCI", "period": LICENSE_PERIOD,
            "pricing_type": "PRICING_TYPE_UNKNOWN",
        }

    # -- IPMI ------------------------------------------------------------------------------
    def upsert_ipmi(self, accounts: list[dict[str, Any]], world) -> dict[str, Any]:
        success, failure = [], []
        for acc in accounts:
            host = world.host_by_uuid(acc.get("node_uuid"))
            if host is None or host.mgmt_ip not in self.host_ips:
                raise form_error("accounts", f"node_uuid {acc.get('node_uuid')} is not a host of this cluster")
            valid = world.bmc_reachable(acc.get("host"), acc.get("user"), acc.get("password"))
            entry = {"node_uuid": host.uuid, "node_name": acc.get("node_name") or host.hostname,
                     "host": acc.get("host"), "port": IPMI_PORT, "user": acc.get("user"), "is_valid": valid,
                     "interface": "lanplus" if valid else None}
            (success if valid else failure).append(entry)
            self.ipmi_accounts = [a for a in self.ipmi_accounts if a["node_uuid"] != host.uuid] + [entry]
        return {"success": success, "failure": failure}

    # -- CPU compatibility ---------------------------------------------------------------------
    def set_cpu_model(self, model: Any) -> None:
        if model not in CPU_MODELS:
            raise form_error("cpu_model", f"must be one of {', '.join(CPU_MODELS)}")
        self.cpu_model = model


def default_storage_policy(created: float, storage_ips: list[str], datastore: str) -> dict[str, Any]:
    return {
        "created_time": int(created), "datastores": [datastore], "description": "default storage policy",
        "modified_time": int(created), "name": "default", "read_only": False, "replica_num": 2,
        "resource_state": "in-use", "storage_pool_id": "system", "stripe_num": 4, "stripe_size": 262144,
        "thin_provision": True, "type": "replica", "uuid": str(uuid.uuid4()), "whitelist": ",".join(storage_ips),
    }
