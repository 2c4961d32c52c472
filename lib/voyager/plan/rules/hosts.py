"""Rules about the hosts (主机规划) and the passwords of the plan."""
from __future__ import annotations

import re
from collections import defaultdict

from voyager.plan import cells as C
from voyager.plan.model import Secret
from voyager.plan.rules.common import Context, host, hosts_cell, mgmt, repeats, rule

MIN_HOSTS, MAX_HOSTS = 3, 16
MIN_REDACTABLE = 6  # shorter secrets cannot be masked by value in logs without mangling text

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def valid_hostname(name: str) -> bool:
    """RFC 1123 host name: dot-separated labels of 1-63 letters, digits and hyphens,
    not starting or ending with a hyphen."""
    return bool(HOSTNAME_RE.match(name))


@rule("hosts.count", "error", "主机数量在 3 到 16 台之间")
def hosts_count(ctx: Context):
    n = len(ctx.plan.hosts)
    if not MIN_HOSTS <= n <= MAX_HOSTS:
        row = ctx.plan.hosts[0].row if ctx.plan.hosts else C.HOST_ROWS[0]
        cell = host(row, "name")
        yield ctx.finding(cell, f"{cell}: 规划了 {n} 台主机，SMTX OS 集群需要 {MIN_HOSTS} 到 {MAX_HOSTS} 台",
                          "请在 主机规划 第 3-18 行填写 3 到 16 台主机（带外地址、主机名、管理地址、存储IP）")


@rule("hostname.rfc1123", "error", "主机名符合 RFC 1123")
def hostname_rfc1123(ctx: Context):
    for h in ctx.plan.hosts:
        if h.name and not valid_hostname(h.name):
            cell = host(h.row, "name")
            yield ctx.finding(cell, f"{cell}: 主机名「{h.name}」不合法",
                              "主机名只能包含英文字母、数字和连字符(-)，每段 1-63 个字符，"
                              "不能以连字符开头或结尾，不能有空格、下划线或中文")


@rule("hostname.duplicate", "error", "主机名不重复")
def hostname_duplicate(ctx: Context):
    for h, first in repeats(ctx.plan.hosts, lambda h: h.name.lower() if h.name else None):
        cell, other = host(h.row, "name"), host(first.row, "name")
        yield ctx.finding(cell, f"{cell}: 主机名「{h.name}」与 {other} 重复（主机名不区分大小写）",
                          "每台主机需要唯一的主机名", [cell, other])


def plan_secrets(ctx: Context):
    """(cell, label, secret) of every password in the plan."""
    p = ctx.plan
    for h in p.hosts:
        yield host(h.row, "bmc_password"), "带外密码", h.bmc_password
        yield host(h.row, "ssh_password"), "SSH 密码", h.ssh_password
        yield host(h.row, "admin_password"), "管理员密码", h.admin_password
    yield hosts_cell(C.HOST_ADMIN_PASSWORD), "集群管理员密码", p.cluster.admin_password
    for comp, label in ctx.components():
        yield mgmt(comp.row, "web_password"), f"{label} Web 管理员密码", comp.web_password
        yield mgmt(comp.row, "ssh_password"), f"{label} SSH 密码", comp.ssh_password
        yield mgmt(comp.row, "admin_password"), f"{label} 系统管理员密码", comp.admin_password


@rule("password.short", "warning", f"密码至少 {MIN_REDACTABLE} 个字符（才能在日志和报告中按值隐藏）")
def password_short(ctx: Context):
    by_value: dict[Secret, list[str]] = defaultdict(list)
    for cell, _label, secret in plan_secrets(ctx):
        if secret and len(secret) < MIN_REDACTABLE:
            by_value[secret].append(cell)
    for secret, where in by_value.items():
        count = f"（共 {len(where)} 处）" if len(where) > 1 else ""
        yield ctx.finding(where[0], f"{where[0]}: 密码只有 {len(secret)} 个字符{count}，"
                          "这么短的值无法在日志和报告中按值安全地隐藏",
                          f"请使用至少 {MIN_REDACTABLE} 个字符的密码",
                          where)
