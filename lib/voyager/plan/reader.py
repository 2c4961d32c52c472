"""Read the SmartX planning workbook (规划设计表) into the typed model.

The cell-level quirks (formulas without cached values, merged ranges, odd spaces,
numbers typed as text...) are handled by :mod:`voyager.plan.workbook`; this module maps
the template's layout (:mod:`voyager.plan.cells`) onto the model:

* a host row (主机规划 3-18) is in use when any of E, H, I, N is filled; a business
  network row (虚拟网络 8-18) when D or F is filled; other typing in an unused row is a
  ``read.host_row`` / ``read.vlan_row`` finding, never silently dropped;
* empty optional sections (extra management network row 5, backup network row 7,
  Observability, backup service, ER, test range) become ``None``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from voyager.plan import cells as C
from voyager.plan.model import (
    ER,
    BusinessNetworks,
    BusinessVlan,
    CloudTower,
    Cluster,
    Component,
    Document,
    Host,
    IpRange,
    Network,
    Networks,
    Plan,
)
from voyager.plan.workbook import PlanError, PlanWorkbook

__all__ = ["PlanError", "read_plan"]


def read_plan(path: str | Path) -> Plan:
    """Read the plan workbook at ``path``. Raises :class:`PlanError` only when the
    workbook cannot be opened or a required sheet is missing; every per-cell problem
    is a finding in ``plan.findings``."""
    return _Reader(Path(path)).read()


class _Reader(PlanWorkbook):
    """Maps the template layout onto the model."""

    def stray_cells(self, sheet: str, coords: list[str], rule: str, message: str, hint: str) -> None:
        """A warning naming the filled ``coords`` of a row that is not read (``message``
        follows the first cell's reference)."""
        stray = [c for c in coords if self.filled(sheet, c)]
        if stray:
            self.finding("warning", rule, sheet, stray[0], f"{C.ref(sheet, stray[0])}: {message}", hint,
                         [C.ref(sheet, c) for c in stray])

    # -- the plan ----------------------------------------------------------------
    def read(self) -> Plan:
        self.open()
        cluster = self.cluster()
        networks = self.networks()
        hosts = self.hosts()
        document = Document(
            customer=self.text(C.DOC, C.DOC_CUSTOMER),
            project=self.text(C.DOC, C.DOC_PROJECT),
            datacenter=self.text(C.DOC, C.DOC_DATACENTER),
        )
        cloudtower = self.component(C.MGMT_ROW_CLOUDTOWER, CloudTower, always=True)
        assert isinstance(cloudtower, CloudTower)
        cloudtower.organization = document.customer
        cloudtower.datacenter = document.datacenter
        plan = Plan(
            source=str(self.path),
            cluster=cluster,
            hosts=hosts,
            networks=networks,
            cloudtower=cloudtower,
            obs=self.component(C.MGMT_ROW_OBS, Component),
            backup_service=self.component(C.MGMT_ROW_BACKUP, Component),
            er=self.er(),
            ntp=self.column_list("ntp", C.MGMT_NTP),
            dns=self.column_list("dns", C.MGMT_DNS),
            test_ip_range=self.test_range(),
            document=document,
            findings=self.findings,
            locations=self.locations,
        )
        return plan

    def column_list(self, key: str, coords: tuple[str, ...]) -> list[str]:
        """Non-empty values of ``coords`` (集群管理信息 E22:E24 ...) in order; when a
        value is not in its default cell (a gap above it), remember where it was."""
        values: list[str] = []
        for coord in coords:
            value = self.tech(C.MGMT, coord)
            if value:
                if coord != coords[len(values)]:
                    self.locations[f"{key}[{len(values)}]"] = C.ref(C.MGMT, coord)
                values.append(value)
        return values

    def cluster(self) -> Cluster:
        H = C.HOSTS
        name = self.word(C.NET, C.NET_CLUSTER_NAME)
        refs = {C.ref(s, c): self.word(s, c) for s, c in C.CLUSTER_NAME_REFS}
        return Cluster(
            name=name,
            vip=self.tech(H, C.HOST_VIP),
            serial=self.word(H, C.HOST_CLUSTER_SERIAL),
            admin_user=self.user(H, C.HOST_ADMIN_USER),
            admin_password=self.secret(H, C.HOST_ADMIN_PASSWORD),
            version_note=self.text(H, C.HOST_VERSION_NOTE),
            features=self.word(H, C.HOST_FEATURES),
            storage_arch=self.word(H, C.HOST_STORAGE_ARCH),
            network_arch=self.word(H, C.HOST_NETWORK_ARCH),
            name_refs=refs,
        )

    def _net(self, row: int, key: str) -> str:
        return f"{C.NET_COL[key]}{row}"

    def network(self, row: int, shared_row: Optional[int] = None, links: bool = True) -> Network:
        """One network row; ``shared_row`` supplies VDS, NICs, bond, speed and port type
        when the row shares its VDS (extra management network row 5 -> row 4)."""
        N = C.NET

        def shared(key: str, reader):
            value = reader(N, self._net(row, key))
            if value in (None, []) and shared_row is not None:
                value = reader(N, self._net(shared_row, key))
            return value

        return Network(
            row=row,
            vds=shared("vds", self.text),
            name=self.text(N, self._net(row, "name")),
            vlan=self.vlan(N, self._net(row, "vlan")),
            subnet=self.tech(N, self._net(row, "subnet")),
            gateway=self.tech(N, self._net(row, "gateway")),
            nics=shared("nics", self.nics) if links else [],
            bond=shared("bond", self.word) if links else None,
            speed=shared("speed", self.tech),
            port_type=shared("port_type", self.word),
            switch_mode=self.word(N, self._net(row, "switch_mode")),
        )

    def _optional_row_used(self, row: int) -> bool:
        # VDS/network names, VLAN type and switch mode carry template defaults; the
        # row is in use once a VLAN ID, subnet or gateway is given.
        return any(self.filled(C.NET, self._net(row, k)) for k in ("vlan", "subnet", "gateway"))

    def networks(self) -> Networks:
        extra = None
        if self._optional_row_used(C.NET_ROW_EXTRA_MGMT):
            extra = self.network(C.NET_ROW_EXTRA_MGMT, shared_row=C.NET_ROW_MGMT)
        backup = None
        if self._optional_row_used(C.NET_ROW_BACKUP):
            backup = self.network(C.NET_ROW_BACKUP)
        return Networks(
            bmc=self.network(C.NET_ROW_BMC, links=False),
            mgmt=self.network(C.NET_ROW_MGMT),
            storage=self.network(C.NET_ROW_STORAGE),
            extra_mgmt=extra,
            backup=backup,
            business=self.business(),
        )

    def business(self) -> BusinessNetworks:
        N = C.NET
        first = C.NET_BUSINESS_ROWS[0]
        vlans: list[BusinessVlan] = []
        for row in C.NET_BUSINESS_ROWS:
            col = C.NET_COL
            if self.filled(N, f"{col['name']}{row}") or self.filled(N, f"{col['vlan']}{row}"):
                vlans.append(BusinessVlan(
                    row=row,
                    name=self.text(N, f"{col['name']}{row}"),
                    vlan=self.vlan(N, f"{col['vlan']}{row}"),
                    vlan_type=self.word(N, f"{col['vlan_type']}{row}"),
                    subnet=self.tech(N, f"{col['subnet']}{row}"),
                    gateway=self.tech(N, f"{col['gateway']}{row}"),
                ))
            else:
                self.stray_cells(N, [f"{col[k]}{row}" for k in ("subnet", "gateway")], "read.vlan_row",
                                 f"第 {row} 行填写了网段/网关，但没有业务网络名称(D{row})"
                                 f"和 VLAN ID(F{row})，该行未计为业务网络",
                                 f"请补全 D{row} 和 F{row}，或清空该行")
        return BusinessNetworks(
            vds=self.text(N, f"{C.NET_COL['vds']}{first}"),
            nics=self.nics(N, f"{C.NET_COL['nics']}{first}"),
            bond=self.word(N, f"{C.NET_COL['bond']}{first}"),
            speed=self.tech(N, f"{C.NET_COL['speed']}{first}"),
            port_type=self.word(N, f"{C.NET_COL['port_type']}{first}"),
            switch_mode=self.word(N, f"{C.NET_COL['switch_mode']}{first}"),
            vlans=vlans,
        )

    def hosts(self) -> list[Host]:
        H = C.HOSTS
        col = C.HOST_COL
        hosts: list[Host] = []
        for row in C.HOST_ROWS:
            if not any(self.filled(H, f"{c}{row}") for c in C.HOST_USED_COLS):
                # template defaults (序号, SSH/admin user, description) do not make a host;
                # anything else typed into the row is reported, not dropped silently
                self.stray_cells(H, [f"{col[k]}{row}" for k in ("sn", "bmc_user", "bmc_password", "ssh_password",
                                                                "admin_password", "rack", "unit")],
                                 "read.host_row",
                                 f"第 {row} 行填写了部分主机信息，但没有带外地址、主机名、"
                                 f"管理地址或存储IP（E/H/I/N 列），该行未计为主机",
                                 f"如果这是一台主机，请补全 H{row}、I{row}、N{row}；否则清空该行")
                continue
            index = self.integer(H, f"{col['index']}{row}", "read.index", "序号",
                                 "序号应为 1-16 的整数；已按行号推算", "info")
            hosts.append(Host(
                row=row,
                index=index if index is not None else row - C.HOST_ROWS[0] + 1,
                name=self.word(H, f"{col['name']}{row}"),
                mgmt_ip=self.tech(H, f"{col['mgmt_ip']}{row}"),
                storage_ip=self.tech(H, f"{col['storage_ip']}{row}"),
                sn=self.word(H, f"{col['sn']}{row}"),
                bmc_ip=self.tech(H, f"{col['bmc_ip']}{row}"),
                bmc_user=self.user(H, f"{col['bmc_user']}{row}"),
                bmc_password=self.secret(H, f"{col['bmc_password']}{row}"),
                ssh_user=self.user(H, f"{col['ssh_user']}{row}"),
                ssh_password=self.secret(H, f"{col['ssh_password']}{row}"),
                admin_user=self.user(H, f"{col['admin_user']}{row}"),
                admin_password=self.secret(H, f"{col['admin_password']}{row}"),
                description=self.text(H, f"{col['description']}{row}"),
                rack=self.word(H, f"{col['rack']}{row}"),
                unit=self.integer(H, f"{col['unit']}{row}", "read.unit", "机架位置",
                                  "请填写机架 U 位的数字，例如 12", "warning", suffix="U"),
            ))
        return hosts

    def component(self, row: int, cls, always: bool = False):
        M = C.MGMT
        col = C.MGMT_COL
        if not always and not (self.filled(M, f"{col['ip']}{row}")
                               or self.filled(M, f"{col['serial']}{row}")):
            return None
        return cls(
            row=row,
            vm_name=self.word(M, f"{col['vm_name']}{row}"),
            version=self.tech(M, f"{col['version']}{row}"),
            ip=self.tech(M, f"{col['ip']}{row}"),
            web_user=self.user(M, f"{col['web_user']}{row}"),
            web_password=self.secret(M, f"{col['web_password']}{row}"),
            ssh_user=self.user(M, f"{col['ssh_user']}{row}"),
            ssh_password=self.secret(M, f"{col['ssh_password']}{row}"),
            admin_user=self.user(M, f"{col['admin_user']}{row}"),
            admin_password=self.secret(M, f"{col['admin_password']}{row}"),
            serial=self.word(M, f"{col['serial']}{row}"),
        )

    def er(self) -> Optional[ER]:
        M = C.MGMT
        vip = self.tech(M, C.MGMT_ER_VIP)
        nodes = self.column_list("er.nodes", C.MGMT_ER_NODES)
        serial = self.word(M, C.MGMT_ER_SERIAL)
        if vip is None and not nodes and serial is None:
            return None
        return ER(vip=vip, nodes=nodes, serial=serial)

    def test_range(self) -> Optional[IpRange]:
        start = self.tech(C.MGMT, C.MGMT_TEST_IP_START)
        end = self.tech(C.MGMT, C.MGMT_TEST_IP_END)
        if start is None and end is None:
            return None
        return IpRange(start=start, end=end)
