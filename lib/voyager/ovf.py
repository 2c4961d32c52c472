"""OVF descriptors and OVA packages (DMTF OVF 1.x/2.x), read and written.

* :func:`parse_descriptor(xml) <parse_descriptor>` -> :class:`Descriptor`: the
  virtual system's name, vCPUs (``rasd:ResourceType`` 3, ``VirtualQuantity``;
  ``vmw:CoresPerSocket`` when present), memory (type 4, ``AllocationUnits``
  such as ``byte * 2^20``), disks (type 17 whose ``HostResource`` names a
  ``DiskSection/Disk``: capacity x ``capacityAllocationUnits``, its file from
  ``References/File``), NICs (type 10, ``Address`` = MAC), the firmware
  (``vmw:Config key="firmware"``: efi -> UEFI) and ``ProductSection``
  properties. :meth:`Descriptor.parsed_ovf` renders CloudTower's ``ParsedOVF``
  (OpenAPI 4.6.0).
* :class:`Ova` reads an OVA (a tar holding one ``.ovf`` and the files it
  references) without extracting it.
* :func:`write_ova` writes one (the rehearsal placeholder of step 09).

Used by the step logic (which files to upload) and by the simulator
(``/parse-ovf``). Raises :class:`OvfError` with a Chinese message.
"""
from __future__ import annotations

import io
import re
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

NS = {
    "ovf": "http://schemas.dmtf.org/ovf/envelope/1",
    "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
    "vmw": "http://www.vmware.com/schema/ovf",
}
_UNITS = re.compile(r"byte\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?", re.I)


class OvfError(ValueError):
    pass


@dataclass
class OvfDisk:
    name: str
    size: int  # bytes (the disk's capacity)
    file: Optional[str]  # the referenced file (href), None for an empty disk
    file_size: Optional[int] = None


@dataclass
class Descriptor:
    name: str
    vcpu: int
    cores: int
    memory: int  # bytes
    disks: list[OvfDisk] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    firmware: str = "BIOS"
    description: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    def parsed_ovf(self) -> dict[str, Any]:
        """CloudTower's ``ParsedOVF`` schema."""
        cores = self.cores if self.cores and self.vcpu % self.cores == 0 else 1
        return {"name": self.name, "description": self.description, "vcpu": self.vcpu,
                "cpu": {"sockets": self.vcpu // cores, "cores": cores}, "memory": self.memory,
                "firmware": self.firmware,
                "disks": [{"name": d.name, "size": d.size, "type": "DISK", "bus": "VIRTIO"} for d in self.disks],
                "nics": [{"mac": m} for m in self.macs]}


def _units(text: Optional[str], default: int = 1) -> int:
    m = _UNITS.fullmatch((text or "").strip())
    if not text:
        return default
    if not m:
        raise OvfError(f"OVF 中无法识别的容量单位 {text!r}")
    return int(m.group(1)) ** int(m.group(2)) if m.group(1) else 1


def _attr(el: ET.Element, name: str) -> Optional[str]:
    return el.get(f"{{{NS['ovf']}}}{name}", el.get(name))


def _text(el: ET.Element, tag: str) -> Optional[str]:
    child = el.find(f"rasd:{tag}", NS)
    return child.text.strip() if child is not None and child.text else None


def parse_descriptor(xml: bytes | str) -> Descriptor:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise OvfError(f"OVF 描述文件不是有效的 XML：{exc}") from None
    files = {_attr(f, "id"): (_attr(f, "href"), _attr(f, "size")) for f in root.iterfind("ovf:References/ovf:File", NS)}
    disks_by_id = {}
    for d in root.iterfind("ovf:DiskSection/ovf:Disk", NS):
        capacity = int(_attr(d, "capacity") or 0) * _units(_attr(d, "capacityAllocationUnits"))
        href, fsize = files.get(_attr(d, "fileRef"), (None, None))
        disks_by_id[_attr(d, "diskId")] = (capacity, href, int(fsize) if fsize else None)
    system = root.find("ovf:VirtualSystem", NS)
    if system is None:
        raise OvfError("OVF 描述文件中没有 VirtualSystem")
    name_el = system.find("ovf:Name", NS)
    name = (name_el.text or "").strip() if name_el is not None else (_attr(system, "id") or "")
    info = system.find("ovf:AnnotationSection/ovf:Annotation", NS)
    vcpu = cores = memory = 0
    disks, macs = [], []
    for item in system.iterfind("ovf:VirtualHardwareSection/ovf:Item", NS):
        kind = _text(item, "ResourceType")
        quantity = _text(item, "VirtualQuantity")
        if kind == "3":
            vcpu = int(quantity or 1)
            per_socket = item.find("vmw:CoresPerSocket", NS)
            cores = int(per_socket.text) if per_socket is not None and per_socket.text else 1
        elif kind == "4":
            memory = int(quantity or 0) * _units(_text(item, "AllocationUnits"), 2 ** 20)
        elif kind == "17":
            ref = (_text(item, "HostResource") or "").rsplit("/", 1)[-1]
            if ref not in disks_by_id:
                raise OvfError(f"OVF 中的磁盘 {ref!r} 没有在 DiskSection 中声明")
            capacity, href, fsize = disks_by_id[ref]
            disks.append(OvfDisk(_text(item, "ElementName") or ref, capacity, href, fsize))
        elif kind == "10":
            macs.append(_text(item, "Address") or "")
    if vcpu <= 0 or memory <= 0:
        raise OvfError("OVF 描述文件没有声明 CPU 或内存（VirtualHardwareSection 的 ResourceType 3/4）")
    firmware = "BIOS"
    for cfg in system.iterfind("ovf:VirtualHardwareSection/vmw:Config", NS):
        if cfg.get(f"{{{NS['vmw']}}}key") == "firmware" and (cfg.get(f"{{{NS['vmw']}}}value") or "").lower() == "efi":
            firmware = "UEFI"
    props = {_attr(p, "key"): _attr(p, "value") or "" for p in system.iterfind("ovf:ProductSection/ovf:Property", NS)}
    return Descriptor(name or "vm", vcpu, cores, memory, disks, macs, firmware,
                      (info.text or "").strip() if info is not None and info.text else "", props)


class Ova:
    """An OVA package: ``descriptor`` (parsed), ``descriptor_bytes``, ``member(name)``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with tarfile.open(self.path, "r:") as tar:
                members = {m.name: m for m in tar.getmembers() if m.isfile()}
                ovfs = [n for n in members if n.lower().endswith(".ovf")]
                if len(ovfs) != 1:
                    raise OvfError(f"{self.path.name} 应包含且只包含一个 .ovf 描述文件（找到 {len(ovfs)} 个）")
                self.descriptor_name = ovfs[0]
                self.descriptor_bytes = tar.extractfile(members[ovfs[0]]).read()
                self.sizes = {n: m.size for n, m in members.items()}
        except (tarfile.TarError, OSError) as exc:
            raise OvfError(f"无法读取 OVA 文件 {self.path}：{exc}") from None
        self.descriptor = parse_descriptor(self.descriptor_bytes)
        for disk in self.descriptor.disks:
            if disk.file and disk.file not in self.sizes:
                raise OvfError(f"{self.path.name} 中缺少 OVF 引用的磁盘文件 {disk.file}")

    def disk_files(self) -> list[tuple[str, int]]:
        """``[(file name, size)]`` of the disk files to upload, in disk order."""
        return [(d.file, self.sizes[d.file]) for d in self.descriptor.disks if d.file]

    def open(self, name: str) -> IO[bytes]:
        """A readable stream of member ``name`` (the caller closes it)."""
        tar = tarfile.open(self.path, "r:")
        member = tar.extractfile(name)
        if member is None:
            tar.close()
            raise OvfError(f"{self.path.name} 中没有文件 {name}")
        return _Member(tar, member)


class _Member(io.RawIOBase):
    def __init__(self, tar: tarfile.TarFile, fh: IO[bytes]) -> None:
        self._tar, self._fh = tar, fh

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def seekable(self) -> bool:
        return True  # a member of an uncompressed tar: tarfile seeks within it

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()
        self._tar.close()
        super().close()


def descriptor_xml(name: str, *, vcpu: int, memory_mib: int, disk_gib: int, disk_file: str, disk_file_size: int,
                   mac: str, properties: Optional[dict[str, str]] = None, description: str = "") -> bytes:
    """A minimal OVF 1.0 descriptor: one virtual system, one disk, one NIC."""
    props = "".join(f'<Property ovf:key="{k}" ovf:type="string" ovf:value="{v}"/>'
                    for k, v in (properties or {}).items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="{NS['ovf']}" xmlns:ovf="{NS['ovf']}" xmlns:rasd="{NS['rasd']}" xmlns:vmw="{NS['vmw']}">
  <References><File ovf:id="file1" ovf:href="{disk_file}" ovf:size="{disk_file_size}"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{disk_gib}" ovf:capacityAllocationUnits="byte * 2^30"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
  <NetworkSection><Info>The list of logical networks</Info><Network ovf:name="VM Network"/></NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info><Name>{name}</Name>
    <AnnotationSection><Info>Description</Info><Annotation>{description}</Annotation></AnnotationSection>
    <ProductSection><Info>Properties</Info>{props}</ProductSection>
    <VirtualHardwareSection><Info>Virtual hardware requirements</Info>
      <Item><rasd:ElementName>{vcpu} virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>{vcpu}</rasd:VirtualQuantity>
        <vmw:CoresPerSocket ovf:required="false">1</vmw:CoresPerSocket></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>{memory_mib}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory_mib}</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>disk0</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Address>{mac}</rasd:Address><rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>ethernet0</rasd:ElementName><rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
""".encode("utf-8")


def write_ova(path: Path, descriptor_name: str, descriptor: bytes, files: dict[str, bytes]) -> Path:
    """Write an OVA (the descriptor first, as the OVF spec requires); atomic."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with tarfile.open(tmp, "w:", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [(descriptor_name, descriptor), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return path
