"""Walkthrough step 04 (部署cloudtower并配置), what its parts share: the names
the plan gives CloudTower (VM name 集群管理信息!B3, IP E3, organization
文档描述!C15), the walkthrough's fixed accounts, and the run-state section the
step keeps its ids and work in flight in (``cloudtower``).

The step itself is in two modules: ``steps.cloudtower_vm`` (the ISO, the VM's
placement, the VM with the walkthrough's fixed specification, its guest agent
and its NIC) and ``steps.cloudtower_setup`` (the installer over SSH, port 443,
and CloudTower's first setup: root user, organization, login, NTP, DNS,
license serial).

Fixed by the walkthrough (not plan values): the SSH account ``cloudtower`` and
CloudTower's root password ``HC!r0cks`` (its encoded form is hard-coded in
``createRootUser``). Both are kept as :class:`Secret` and registered with the
redactor.
"""
from __future__ import annotations

from voyager.plan import cells
from voyager.plan.model import Plan, Secret
from voyager.redact import REDACTOR
from voyager.steps.config import StepError


SECTION = "cloudtower"
DEFAULT_VM_NAME = "cloudtower"

# -- the walkthrough's fixed accounts ------------------------------------------------------------
SSH_USER = "cloudtower"
ROOT_USER = "root"
ROOT_PASSWORD = Secret(cells.DEFAULT_PASSWORD)  # HC!r0cks: "默认密码就是HC!r0cks，不能修改"
ENCODED_ROOT_PASSWORD = Secret(
    "NzllNTE3NTgxYWY5NDY3ODM4ZTczMTg1MDc4YmM3YzQ6eVpSSTlodUNxNDBNL3J4ZTViZ1dqZz09")
REDACTOR.add_secret(ROOT_PASSWORD)
REDACTOR.add_secret(ENCODED_ROOT_PASSWORD)


def mgmt_cell(key: str) -> str:
    """A cell of the management network row (虚拟网络 row 4)."""
    return cells.ref(cells.NET, f"{cells.NET_COL[key]}{cells.NET_ROW_MGMT}")


def tower_cell(key: str) -> str:
    """A cell of CloudTower's row (集群管理信息 row 3)."""
    return cells.ref(cells.MGMT, f"{cells.MGMT_COL[key]}{cells.MGMT_ROW_CLOUDTOWER}")


def vm_name(plan: Plan) -> str:
    """集群管理信息!B3, lower-cased (default ``cloudtower``)."""
    return (plan.cloudtower.vm_name or DEFAULT_VM_NAME).strip().lower()


def tower_ip(plan: Plan) -> str:
    if not plan.cloudtower.ip:
        raise StepError(f"规划表未填写 CloudTower 的 IP 地址（{tower_cell('ip')}）")
    return plan.cloudtower.ip


def organization_name(plan: Plan) -> str:
    name = plan.cloudtower.organization or plan.document.customer
    if not name:
        raise StepError(f"规划表未填写客户名称（{cells.ref(cells.DOC, cells.DOC_CUSTOMER)}），无法命名 CloudTower 组织")
    return name


