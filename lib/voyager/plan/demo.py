"""A complete, valid demo plan whose every address is in 127.0.0.0/8.

It is what ``voyager plan new --demo`` writes and what ``pytest suites/ --sim``
rehearses when no plan is given. Passwords are the template defaults, except the
BMC password: the template's ``ADMIN`` is shorter than the redactor can hide by
value (rule ``password.short``), so the demo uses :data:`DEMO_BMC_PASSWORD`, a
vendor-style default, and passes ``voyager plan check --sim --strict``.

Address scheme (N hosts, 3 <= N <= 16):
  BMC        127.10.19.0/24   hosts .11 ..
  management 127.10.20.0/24   gateway .1, CloudTower .2, OBS .3, backup .4,
                              VIP .10, hosts .11 .., test range .231-.239
  storage    127.10.21.0/24   hosts .11 ..
  business   127.11.<k>.0/24  VLAN 1120+k, k = 0..2
  NTP 127.10.0.2 + ntp.demo.local, DNS 127.10.0.114 / 127.10.0.1
"""
from __future__ import annotations

from voyager.plan import cells
from voyager.plan.model import (
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
    Secret,
)

DEMO_CLUSTER = "DEMO-SMTX-Cls01"
DEMO_BMC_PASSWORD = "Admin@9000"


def build_demo_plan(hosts: int = 3) -> Plan:
    if not 3 <= hosts <= 16:
        raise ValueError(f"主机数量必须在 3 到 16 之间，收到 {hosts}")
    pw = cells.DEFAULT_PASSWORD
    plan_hosts = [
        Host(
            row=3 + i,
            index=i + 1,
            name=f"demo-node-{i + 1:02d}",
            mgmt_ip=f"127.10.20.{11 + i}",
            storage_ip=f"127.10.21.{11 + i}",
            sn=f"DEMO-SN-{i + 1:04d}",
            bmc_ip=f"127.10.19.{11 + i}",
            bmc_user=cells.DEFAULT_BMC_USER,
            bmc_password=Secret(DEMO_BMC_PASSWORD),
            ssh_user=cells.DEFAULT_SSH_USER,
            ssh_password=Secret(pw),
            admin_user=cells.DEFAULT_ADMIN_USER,
            admin_password=Secret(pw),
            description=f"SmartX管理集群Node{i + 1}",
            rack="A01",
            unit=1 + 2 * i,
        )
        for i in range(hosts)
    ]
    networks = Networks(
        bmc=Network(row=3, vds="（IPMI）", name="（IPMI）", vlan=0, subnet="127.10.19.0/24",
                    gateway="127.10.19.1", nics=[], bond=None, speed="1G", port_type="电口",
                    switch_mode="Access"),
        mgmt=Network(row=4, vds="vDS-MgMt-Network", name="default", vlan=0,
                     subnet="127.10.20.0/24", gateway="127.10.20.1", nics=["ens192", "ens224"],
                     bond="active-backup", speed="10G", port_type="光口", switch_mode="Access"),
        extra_mgmt=None,
        storage=Network(row=6, vds="vDS-Storage-Network", name="storage-network", vlan=0,
                        subnet="127.10.21.0/24", gateway="127.10.21.1",
                        nics=["ens161", "ens256"], bond="active-backup", speed="25G",
                        port_type="光口", switch_mode="Access"),
        backup=None,
        business=BusinessNetworks(
            vds="vDS-Prod-Network", nics=["ens225", "ens257"], bond="balance-slb",
            speed="10G", port_type="光口", switch_mode="Trunk",
            vlans=[
                BusinessVlan(row=8 + k, name=f"VLAN-{1120 + k}", vlan=1120 + k,
                             vlan_type="Access", subnet=f"127.11.{k}.0/24",
                             gateway=f"127.11.{k}.1")
                for k in range(3)
            ],
        ),
    )
    return Plan(
        source=None,
        cluster=Cluster(
            name=DEMO_CLUSTER, vip="127.10.20.10", serial=None,
            admin_user=cells.DEFAULT_ADMIN_USER, admin_password=Secret(pw),
            version_note="版本:6.2.0P4", features="Boost", storage_arch="混闪-分层",
            network_arch="三网独立",
        ),
        hosts=plan_hosts,
        networks=networks,
        cloudtower=CloudTower(
            row=3, vm_name="cloudtower", version="4.7.1", ip="127.10.20.2",
            web_user="root", web_password=Secret(pw), ssh_user="smartx",
            ssh_password=Secret(pw), admin_user="root", admin_password=Secret(pw),
            organization="演示客户", datacenter="DEMO-DC",
        ),
        # the template's defaults for rows 4/5 (web login N/A), with an address and a version
        obs=Component(row=cells.MGMT_ROW_OBS, vm_name="Observability", version="1.4.2", ip="127.10.20.3",
                      ssh_user="o11y", admin_user="admin"),
        backup_service=Component(row=cells.MGMT_ROW_BACKUP, vm_name="backup", version="2.2.1", ip="127.10.20.4",
                                 ssh_user="smartx", admin_user="admin"),
        er=None,
        ntp=["127.10.0.2", "127.10.0.3", "ntp.demo.local"],
        dns=["127.10.0.114", "127.10.0.1"],
        test_ip_range=IpRange(start="127.10.20.231", end="127.10.20.239"),
        document=Document(customer="演示客户", project="超融合演示项目", datacenter="DEMO-DC"),
    )
