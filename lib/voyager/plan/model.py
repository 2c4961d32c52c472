"""Typed model of the SmartX planning workbook (规划设计表).

The reader (``voyager.plan.reader``) fills these dataclasses; the validator
(``voyager.plan.rules``) checks them; the simulator, the clients and the suites
consume them. Values are kept as the engineer typed them (trimmed): IP
addresses and subnets are strings so that a typo can be reported on its cell
instead of crashing the reader. Every object that came from a row remembers the
row, so a finding can name the exact cell.

Passwords are :class:`Secret` instances: their ``repr``/``str`` never show the
value; call :meth:`Secret.reveal` at the single place a value is put on the wire.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Iterator, Optional

MASK = "******"


class Secret:
    """A password (or other secret) that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: "str | Secret | None"):
        if isinstance(value, Secret):  # str() of a Secret is the mask, not the value
            value = value._value
        self._value = "" if value is None else str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self):  # pickling would carry the value in clear text
        raise TypeError("Secret values are not picklable")

    # immutable: copies (copy.copy, copy.deepcopy, dataclasses.asdict) share the instance
    # instead of going through __reduce__
    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo: dict) -> "Secret":
        return self


@dataclass
class Finding:
    """One validation result, pointing at the cell(s) to fix."""

    severity: str  # "error" | "warning" | "info"
    rule: str  # e.g. "ip.syntax"
    cell: str  # first cell concerned, e.g. "主机规划!I5"
    message: str  # Chinese message naming the problem
    hint: str = ""  # what to do (Chinese)
    cells: list[str] = field(default_factory=list)

    @property
    def sheet(self) -> str:
        return self.cell.split("!", 1)[0] if "!" in self.cell else ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "severity": self.severity,
            "rule": self.rule,
            "cell": self.cell,
            "message": self.message,
        }
        if self.hint:
            d["hint"] = self.hint
        if len(self.cells) > 1:
            d["cells"] = list(self.cells)
        return d


@dataclass
class Network:
    """A planned network row of 虚拟网络 (management, extra management, storage, backup, BMC)."""

    row: int
    vds: Optional[str] = None
    name: Optional[str] = None
    vlan: Optional[int] = None
    subnet: Optional[str] = None  # CIDR as typed, e.g. "10.0.20.0/24"
    gateway: Optional[str] = None
    nics: list[str] = field(default_factory=list)
    bond: Optional[str] = None
    speed: Optional[str] = None  # "10G"
    port_type: Optional[str] = None  # 光口 / 电口
    switch_mode: Optional[str] = None  # Access / Trunk

    def to_dict(self) -> dict[str, Any]:
        return {
            "vds": self.vds,
            "name": self.name,
            "vlan": self.vlan,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "nics": list(self.nics),
            "bond": self.bond,
            "speed": self.speed,
        }


@dataclass
class BusinessVlan:
    row: int
    name: Optional[str] = None
    vlan: Optional[int] = None
    vlan_type: Optional[str] = None
    subnet: Optional[str] = None
    gateway: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vlan": self.vlan, "subnet": self.subnet, "gateway": self.gateway}


@dataclass
class BusinessNetworks:
    vds: Optional[str] = None
    nics: list[str] = field(default_factory=list)
    bond: Optional[str] = None
    speed: Optional[str] = None
    port_type: Optional[str] = None
    switch_mode: Optional[str] = None
    vlans: list[BusinessVlan] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vds": self.vds,
            "nics": list(self.nics),
            "bond": self.bond,
            "speed": self.speed,
            "vlans": [v.to_dict() for v in self.vlans],
        }


@dataclass
class Networks:
    bmc: Network
    mgmt: Network
    storage: Network
    extra_mgmt: Optional[Network] = None
    backup: Optional[Network] = None
    business: BusinessNetworks = field(default_factory=BusinessNetworks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bmc": {"subnet": self.bmc.subnet, "gateway": self.bmc.gateway},
            "mgmt": self.mgmt.to_dict(),
            "extra_mgmt": self.extra_mgmt.to_dict() if self.extra_mgmt else None,
            "storage": self.storage.to_dict(),
            "backup": self.backup.to_dict() if self.backup else None,
            "business": self.business.to_dict(),
        }


@dataclass
class Host:
    """A row of 主机规划 (rows 3..18)."""

    row: int
    index: int  # 序号 (column B), 1-based
    name: Optional[str] = None
    mgmt_ip: Optional[str] = None
    storage_ip: Optional[str] = None
    sn: Optional[str] = None
    bmc_ip: Optional[str] = None
    bmc_user: Optional[str] = None
    bmc_password: Secret = field(default_factory=lambda: Secret(""))
    ssh_user: Optional[str] = None
    ssh_password: Secret = field(default_factory=lambda: Secret(""))
    admin_user: Optional[str] = None
    admin_password: Secret = field(default_factory=lambda: Secret(""))
    description: Optional[str] = None
    rack: Optional[str] = None
    unit: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "row": self.row,
            "name": self.name,
            "mgmt_ip": self.mgmt_ip,
            "storage_ip": self.storage_ip,
            "sn": self.sn,
            "bmc_ip": self.bmc_ip,
            "bmc_user": self.bmc_user,
            "bmc_password": str(self.bmc_password),
            "ssh_user": self.ssh_user,
            "ssh_password": str(self.ssh_password),
            "admin_user": self.admin_user,
            "admin_password": str(self.admin_password),
            "rack": self.rack,
            "unit": self.unit,
        }


@dataclass
class Cluster:
    name: Optional[str] = None
    vip: Optional[str] = None
    serial: Optional[str] = None  # 主机规划!E19, written back
    admin_user: Optional[str] = None  # fisheye admin (L19)
    admin_password: Secret = field(default_factory=lambda: Secret(""))
    version_note: Optional[str] = None  # C19, e.g. "版本:6.2.0P4"
    features: Optional[str] = None  # O19: None | RDMA | Boost | RDMA+Boost
    storage_arch: Optional[str] = None  # Q19: 混闪-分层 | 全闪-不分层
    network_arch: Optional[str] = None  # Q20: 三网融合 | 存储独立 | 三网独立
    # Other cells that repeat the cluster name, as read ({"主机规划!C3": "..."}); the
    # template fills them with ``=虚拟网络!B3``. Not part of to_dict (checked by rules).
    name_refs: dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def vhost_enabled(self) -> bool:
        return bool(self.features) and "Boost" in self.features

    @property
    def rdma_enabled(self) -> bool:
        return bool(self.features) and "RDMA" in self.features

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vip": self.vip,
            "serial": self.serial,
            "admin_user": self.admin_user,
            "admin_password": str(self.admin_password),
            "network_arch": self.network_arch,
            "storage_arch": self.storage_arch,
            "features": self.features,
            "version_note": self.version_note,
        }


@dataclass
class Component:
    """A management VM row of 集群管理信息 (CloudTower row 3, Observability 4, backup 5)."""

    row: int
    vm_name: Optional[str] = None
    version: Optional[str] = None
    ip: Optional[str] = None
    web_user: Optional[str] = None
    web_password: Secret = field(default_factory=lambda: Secret(""))
    ssh_user: Optional[str] = None
    ssh_password: Secret = field(default_factory=lambda: Secret(""))
    admin_user: Optional[str] = None
    admin_password: Secret = field(default_factory=lambda: Secret(""))
    serial: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vm_name": self.vm_name,
            "ip": self.ip,
            "version": self.version,
            "serial": self.serial,
            "web_user": self.web_user,
            "web_password": str(self.web_password),
            "ssh_user": self.ssh_user,
            "ssh_password": str(self.ssh_password),
            "admin_user": self.admin_user,
            "admin_password": str(self.admin_password),
        }


@dataclass
class CloudTower(Component):
    organization: Optional[str] = None  # 文档描述!C15
    datacenter: Optional[str] = None  # 文档描述!C17

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(organization=self.organization, datacenter=self.datacenter)
        return d


@dataclass
class ER:
    vip: Optional[str] = None  # 集群管理信息!E6
    nodes: list[str] = field(default_factory=list)  # E7:E11
    serial: Optional[str] = None  # M6

    def to_dict(self) -> dict[str, Any]:
        return {"vip": self.vip, "nodes": list(self.nodes), "serial": self.serial}


@dataclass
class IpRange:
    start: Optional[str] = None  # 集群管理信息!E18
    end: Optional[str] = None  # 集群管理信息!E19

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}


@dataclass
class Document:
    customer: Optional[str] = None  # 文档描述!C15
    project: Optional[str] = None  # C16
    datacenter: Optional[str] = None  # C17


@dataclass
class Plan:
    """The whole plan. ``findings`` holds what the reader could not parse."""

    source: Optional[str]
    cluster: Cluster
    hosts: list[Host]
    networks: Networks
    cloudtower: CloudTower
    obs: Optional[Component] = None
    backup_service: Optional[Component] = None
    er: Optional[ER] = None
    ntp: list[str] = field(default_factory=list)  # E22:E24
    dns: list[str] = field(default_factory=list)  # E25:E26
    test_ip_range: Optional[IpRange] = None
    document: Document = field(default_factory=Document)
    findings: list[Finding] = field(default_factory=list)
    # Where list items were read when that differs from the default layout, e.g.
    # {"ntp[0]": "集群管理信息!E23"} when E22 was left empty. Not part of to_dict.
    locations: dict[str, str] = field(default_factory=dict)

    # -- secrets -----------------------------------------------------------
    def secrets(self) -> list[Secret]:
        """Every non-empty secret of the plan (for the redactor)."""
        found: list[Secret] = []
        for obj in _walk(self):
            if isinstance(obj, Secret) and obj and obj not in found:
                found.append(obj)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cluster": self.cluster.to_dict(),
            "hosts": [h.to_dict() for h in self.hosts],
            "networks": self.networks.to_dict(),
            "cloudtower": self.cloudtower.to_dict(),
            "obs": self.obs.to_dict() if self.obs else None,
            "backup_service": self.backup_service.to_dict() if self.backup_service else None,
            "er": self.er.to_dict() if self.er else None,
            "ntp": list(self.ntp),
            "dns": list(self.dns),
            "test_ip_range": self.test_ip_range.to_dict() if self.test_ip_range else None,
            "document": {
                "customer": self.document.customer,
                "project": self.document.project,
                "datacenter": self.document.datacenter,
            },
        }

    def fingerprint(self) -> str:
        """A digest of the plan's content, excluding the write-back cells
        (cluster/CloudTower/OBS/backup/ER serials) and the file path.
        Secrets enter only as digests, so the fingerprint leaks nothing."""
        d = self.content_fields()
        blob = json.dumps(d, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def content_fields(self) -> dict[str, Any]:
        """Flat ``{path: value}`` of the plan content used for the fingerprint and
        for telling which fields changed between two runs. Secret values are
        replaced by a short digest (never the value)."""
        flat: dict[str, Any] = {}
        _flatten(self.to_dict(), "", flat)
        for key in list(flat):
            if key == "source" or key.endswith(".serial") or key.startswith("document"):
                if key != "document.customer" and key != "document.datacenter":
                    flat.pop(key, None)
        for path, secret in _secret_paths(self):
            flat[path] = "sha256:" + hashlib.sha256(secret.reveal().encode()).hexdigest()[:12]
        return flat


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            yield from _walk(getattr(obj, f.name))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item)


def _secret_paths(obj: Any, prefix: str = "") -> Iterator[tuple[str, Secret]]:
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            if f.name == "findings":
                continue
            value = getattr(obj, f.name)
            path = f"{prefix}.{f.name}" if prefix else f.name
            if isinstance(value, Secret):
                yield path, value
            else:
                yield from _secret_paths(value, path)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _secret_paths(item, f"{prefix}[{i}]")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else k, out)
    elif isinstance(value, list):
        if not value:
            out[prefix] = []
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value
