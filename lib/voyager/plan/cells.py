"""Where each field of the planning workbook lives (see PLAN-FIELDS.md).

The template's layout is fixed (sheets protected, rows cannot be inserted), so
fields are addressed by coordinate. The reader, the writer, the template
generator and the validator all take their coordinates from here.
"""
from __future__ import annotations

# Sheet names
NET = "虚拟网络"
HOSTS = "主机规划"
MGMT = "集群管理信息"
DOC = "文档描述"
PLAN_SHEETS = (DOC, NET, HOSTS, MGMT)

# 虚拟网络 -----------------------------------------------------------------
NET_CLUSTER_NAME = "B3"
NET_ROW_BMC = 3
NET_ROW_MGMT = 4
NET_ROW_EXTRA_MGMT = 5
NET_ROW_STORAGE = 6
NET_ROW_BACKUP = 7
NET_BUSINESS_ROWS = range(8, 19)  # 8..18
# columns of a network row
NET_COL = {
    "vds": "C",
    "name": "D",
    "purpose": "E",
    "vlan": "F",
    "vlan_type": "G",
    "subnet": "H",
    "gateway": "I",
    "nics": "J",
    "bond": "K",
    "speed": "L",
    "port_type": "M",
    "switch_mode": "N",
}

# 主机规划 -----------------------------------------------------------------
HOST_ROWS = range(3, 19)  # 3..18, at most 16 hosts
HOST_COL = {
    "index": "B",
    "cluster_name": "C",
    "sn": "D",
    "bmc_ip": "E",
    "bmc_user": "F",
    "bmc_password": "G",
    "name": "H",
    "mgmt_ip": "I",
    "ssh_user": "J",
    "ssh_password": "K",
    "admin_user": "L",
    "admin_password": "M",
    "storage_ip": "N",
    "description": "O",
    "rack": "P",
    "unit": "Q",
}
# a host row is in use when any of these columns is filled
HOST_USED_COLS = ("E", "H", "I", "N")
HOST_CLUSTER_SERIAL = "E19"  # written back
HOST_VERSION_NOTE = "C19"
HOST_VIP = "I19"
HOST_ADMIN_USER = "L19"
HOST_ADMIN_PASSWORD = "M19"
HOST_FEATURES = "O19"
HOST_STORAGE_ARCH = "Q19"
HOST_NETWORK_ARCH = "Q20"

# 集群管理信息 ---------------------------------------------------------------
MGMT_ROW_CLOUDTOWER = 3
MGMT_ROW_OBS = 4
MGMT_ROW_BACKUP = 5
MGMT_COL = {
    "vm_name": "B",
    "version": "D",
    "ip": "E",
    "web_user": "F",
    "web_password": "G",
    "ssh_user": "H",
    "ssh_password": "I",
    "admin_user": "J",
    "admin_password": "K",
    "serial": "M",
}
MGMT_CLOUDTOWER_SERIAL = "M3"  # written back
MGMT_OBS_SERIAL = "M4"  # written back
MGMT_BACKUP_SERIAL = "M5"  # written back
MGMT_ER_VIP = "E6"
MGMT_ER_NODES = ("E7", "E8", "E9", "E10", "E11")
MGMT_ER_SERIAL = "M6"
MGMT_TEST_IP_START = "E18"
MGMT_TEST_IP_END = "E19"
MGMT_NTP = ("E22", "E23", "E24")
MGMT_DNS = ("E25", "E26")

# 文档描述 ------------------------------------------------------------------
DOC_CUSTOMER = "C15"  # -> CloudTower organization
DOC_PROJECT = "C16"
DOC_DATACENTER = "C17"  # -> CloudTower datacenter

# Cells that repeat the cluster name (template formula ``=虚拟网络!B3``)
CLUSTER_NAME_REFS = ((HOSTS, "C3"), (MGMT, "N3"))

# Merged ranges of the template (the value lives in the top-left cell). The reader takes
# the ranges from the file itself and falls back to these; the template writer uses them.
MERGED = {
    DOC: ("B11:F14", "C15:F15", "C16:F16", "C17:F17"),
    NET: ("B1:N1", "B3:B18", "C4:C5", "J4:J5", "K4:K5", "L4:L5", "M4:M5", "C8:C18",
          "E8:E18", "J8:J18", "K8:K18", "L8:L18", "M8:M18", "N8:N18", "B23:N27"),
    HOSTS: ("B1:O1", "C3:C18", "E19:G19", "J19:K19", "Q2:R2", "Q19:R19", "Q20:R20",
            "B20:M20", "B21:B22", "B23:L27", "B29:O34"),
    MGMT: ("B1:N1", "N3:N19", "B6:B11", "M6:M11", "B18:B19", "C18:C19", "D18:D19",
           "B20:L20", "F21:N21", "F22:N24", "F25:N25", "F26:N26"),
}

# Write-back targets: key -> (sheet, cell)
WRITE_BACK = {
    "cluster_serial": (HOSTS, HOST_CLUSTER_SERIAL),
    "cloudtower_serial": (MGMT, MGMT_CLOUDTOWER_SERIAL),
    "obs_serial": (MGMT, MGMT_OBS_SERIAL),
    "backup_serial": (MGMT, MGMT_BACKUP_SERIAL),
}

# Data-validation lists of the template
BOND_MODES = ("balance-tcp", "balance-slb", "active-backup")
SWITCH_MODES = ("Access", "Trunk")
NIC_SPEEDS = ("1G", "10G", "25G", "40G", "56G", "100G")
BMC_SPEEDS = ("100M", "1G")
PORT_TYPES = ("光口", "电口")
FEATURES = ("None", "RDMA", "Boost", "RDMA+Boost")
STORAGE_ARCHS = ("混闪-分层", "全闪-不分层")
NETWORK_ARCHS = ("三网融合", "存储独立", "三网独立")
SUPPORTED_NETWORK_ARCHS = ("存储独立", "三网独立")

# Template defaults
DEFAULT_PASSWORD = "HC!r0cks"
DEFAULT_BMC_USER = "ADMIN"
DEFAULT_BMC_PASSWORD = "ADMIN"
DEFAULT_SSH_USER = "smartx"
DEFAULT_ADMIN_USER = "root"
DEFAULT_HOST_PASSWORD_AFTER_DEPLOY = "P@ssw0rd!123"


def ref(sheet: str, cell: str) -> str:
    """``主机规划!I5`` style reference used in findings and messages."""
    return f"{sheet}!{cell}"


def speed_bits(speed: str | None) -> int | None:
    """"10G" -> 10_000_000_000 (the unit the host scan reports)."""
    if not speed:
        return None
    s = speed.strip().upper()
    units = {"G": 1_000_000_000, "M": 1_000_000}
    if s and s[-1] in units and s[:-1].isdigit():
        return int(s[:-1]) * units[s[-1]]
    return None
