"""``voyager plan check | show | new`` (registered by ``voyager.cli``).

Exit codes: 0 = success / no error finding; 2 = findings to fix, or bad input (one
Chinese error line on stderr, no traceback).

Registering the commands imports only argparse-level code: the reader (openpyxl), the
rules and the template generator are imported by the command that runs, so ``voyager
--help`` and ``voyager sim`` do not pay for them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from voyager.plan.model import Finding, Plan

EXIT_OK = 0
EXIT_FINDINGS = 2
SEVERITY_LABELS = {"error": "错误", "warning": "警告", "info": "提示"}


def register(subparsers) -> None:
    plan = subparsers.add_parser("plan", help="规划设计表：检查、查看、生成",
                                 description="SmartX 规划设计表（.xlsx）的检查、查看与生成")
    sub = plan.add_subparsers(dest="plan_command", metavar="SUBCOMMAND")
    plan.set_defaults(func=lambda args: _usage(plan))

    check = sub.add_parser("check", help="检查规划表，指出需要修改的单元格",
                           description="检查规划表。退出码 0 = 没有错误（--strict 时也没有警告），2 = 有问题需要修改")
    check.add_argument("plan", metavar="PLAN", help="规划设计表 .xlsx")
    check.add_argument("--json", action="store_true", help="输出 JSON: {ok, findings}")
    check.add_argument("--strict", action="store_true", help="警告也视为失败")
    check.add_argument("--sim", action="store_true", help="规划用于模拟器演练：允许回环地址 127.0.0.0/8")
    check.set_defaults(func=_guard(cmd_check))

    show = sub.add_parser("show", help="显示解析结果（密码显示为 ******）")
    show.add_argument("plan", metavar="PLAN", help="规划设计表 .xlsx")
    show.add_argument("--json", action="store_true", help="输出 JSON")
    show.set_defaults(func=_guard(cmd_show))

    new = sub.add_parser("new", help="生成一份模板布局的新规划表",
                         description="生成与 SmartX 规划设计表模板布局相同的新工作簿；--demo 填入完整的演示规划"
                                     "（地址均在 127.0.0.0/8，密码为模板默认值，带外密码为厂商常见默认值）")
    new.add_argument("out", metavar="OUT.xlsx", help="输出文件")
    new.add_argument("--demo", action="store_true", help="填入演示规划")
    new.add_argument("--hosts", type=int, default=None, metavar="N", help="演示规划的主机数量 3-16（默认 3）")
    new.add_argument("--force", action="store_true", help="覆盖已存在的文件")
    new.set_defaults(func=_guard(cmd_new))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_FINDINGS


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Bad input -> one Chinese line on stderr and exit 2 (no traceback)."""

    def run(args: argparse.Namespace) -> int:
        from voyager.plan.reader import PlanError

        try:
            return command(args)
        except (PlanError, UsageError) as exc:
            print(f"错误: {exc}", file=sys.stderr)
            return EXIT_FINDINGS
        except BrokenPipeError:
            raise  # stdout's reader left (`| head`): voyager.cli ends quietly
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            print(f"错误: 无法访问文件{where}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FINDINGS

    return run


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    from voyager.plan.reader import read_plan
    from voyager.plan.rules import validate

    plan = read_plan(args.plan)
    findings = validate(plan, sim=args.sim)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITY_LABELS}
    ok = counts["error"] == 0 and not (args.strict and counts["warning"])
    if args.json:
        print(json.dumps({"ok": ok, "findings": [f.to_dict() for f in findings]},
                         ensure_ascii=False, indent=2))
    else:
        print(render_table(plan, findings, counts, ok, strict=args.strict, sim=args.sim))
    return EXIT_OK if ok else EXIT_FINDINGS


def _short(f: Finding) -> str:
    """The message without its leading ``sheet!cell: `` (the table shows both)."""
    prefix = f"{f.cell}: "
    return f.message[len(prefix):] if f.message.startswith(prefix) else f.message


def render_table(plan: Plan, findings: list[Finding], counts: dict[str, int], ok: bool,
                 strict: bool = False, sim: bool = False) -> str:
    mode = "（--sim：允许回环地址）" if sim else ""
    lines = [f"规划表: {plan.source}{mode}",
             f"主机 {len(plan.hosts)} 台；发现 {counts['error']} 个错误、{counts['warning']} 个警告、"
             f"{counts['info']} 个提示"]
    by_sheet: dict[str, list[Finding]] = {}
    for f in findings:
        by_sheet.setdefault(f.sheet or "（其他）", []).append(f)
    width = max((len(f.cell.split("!", 1)[-1]) for f in findings), default=2)
    rule_width = max((len(f.rule) for f in findings), default=4)
    for sheet, items in by_sheet.items():
        lines.append("")
        lines.append(f"【{sheet}】")
        for f in items:
            coord = f.cell.split("!", 1)[-1]
            lines.append(f"  {SEVERITY_LABELS.get(f.severity, f.severity)}  {coord.ljust(width)}  "
                         f"{f.rule.ljust(rule_width)}  {_short(f)}")
            indent = " " * (12 + width + rule_width)  # under the message (severity is 2 wide chars)
            if f.hint:
                lines.append(f"{indent}→ {f.hint}")
            if len(f.cells) > 1:
                others = [c for c in f.cells if c != f.cell]
                shown = "、".join(others[:8]) + (f" 等 {len(others)} 处" if len(others) > 8 else "")
                lines.append(f"{indent}  相关单元格: {shown}")
    lines.append("")
    if ok:
        tail = "，警告请酌情处理" if counts["warning"] else ""
        lines.append(f"结论: 通过，没有错误{tail}。")
    elif counts["error"]:
        lines.append(f"结论: 有 {counts['error']} 个错误需要修改（退出码 2）。")
    else:
        lines.append(f"结论: --strict 模式下 {counts['warning']} 个警告视为失败（退出码 2）。")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace) -> int:
    from voyager.plan.reader import read_plan

    plan = read_plan(args.plan)
    data = plan.to_dict()
    data["findings"] = [f.to_dict() for f in plan.findings]
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(render_summary(plan))
    return EXIT_OK


def render_summary(plan: Plan) -> str:
    c = plan.cluster
    n = plan.networks
    lines = [f"规划表: {plan.source}",
             f"集群: {c.name}  VIP {c.vip}  网络架构 {c.network_arch}  存储架构 {c.storage_arch}  "
             f"功能 {c.features}  {c.version_note or ''}".rstrip(),
             "", "主机:"]
    for h in plan.hosts:
        lines.append(f"  {h.index:>2}. {h.name or '-':<28} 管理 {h.mgmt_ip or '-':<15} 存储 "
                     f"{h.storage_ip or '-':<15} 带外 {h.bmc_ip or '-'}")
    lines.append("")
    lines.append("网络:")
    for label, net in (("管理", n.mgmt), ("额外管理", n.extra_mgmt), ("存储", n.storage), ("备份", n.backup)):
        if net is not None:
            lines.append(f"  {label}: {net.vds} / {net.name}  VLAN {net.vlan}  {net.subnet}  网关 "
                         f"{net.gateway}  网口 {','.join(net.nics)}  {net.bond or ''}")
    b = n.business
    if b.vlans:
        lines.append(f"  业务: {b.vds}  网口 {','.join(b.nics)}  {b.bond or ''}")
        for v in b.vlans:
            lines.append(f"    {v.name}  VLAN {v.vlan}  {v.subnet or ''}  网关 {v.gateway or ''}")
    ct = plan.cloudtower
    lines += ["", f"CloudTower: {ct.vm_name} {ct.version}  {ct.ip}  组织 {ct.organization}  "
                  f"数据中心 {ct.datacenter}"]
    for label, comp in (("Observability", plan.obs), ("备份服务", plan.backup_service)):
        if comp is not None:
            lines.append(f"{label}: {comp.vm_name} {comp.version}  {comp.ip}")
    lines.append(f"NTP: {', '.join(plan.ntp) or '-'}    DNS: {', '.join(plan.dns) or '-'}")
    if plan.test_ip_range is not None:
        lines.append(f"测试IP范围: {plan.test_ip_range.start} - {plan.test_ip_range.end}")
    if plan.findings:
        lines.append(f"读取时发现 {len(plan.findings)} 个问题，请运行 voyager plan check 查看")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- new
def cmd_new(args: argparse.Namespace) -> int:
    from voyager.plan.template import is_demo_workbook, new_template

    out = Path(args.out)
    if out.suffix.lower() != ".xlsx":
        raise UsageError(f"输出文件 {out} 必须以 .xlsx 结尾")
    if args.hosts is not None and not args.demo:
        raise UsageError("--hosts 只能与 --demo 一起使用（空白模板包含全部 16 行主机）")
    hosts = 3 if args.hosts is None else args.hosts
    if not 3 <= hosts <= 16:
        raise UsageError(f"--hosts 必须在 3 到 16 之间，收到 {hosts}")
    if not out.parent.is_dir():
        raise UsageError(f"输出目录不存在: {out.parent}")
    if out.exists() and not args.force and not (args.demo and is_demo_workbook(out)):
        raise UsageError(f"文件已存在: {out}；为避免覆盖已填写的规划表，请换一个文件名或加 --force")
    new_template(out, demo=args.demo, hosts=hosts)
    if args.demo:
        print(f"已生成演示规划表 {out}：{hosts} 台主机，所有地址在 127.0.0.0/8，"
              f"密码为模板默认值（带外密码为厂商常见默认值）。检查: voyager plan check {out} --sim")
    else:
        print(f"已生成空白规划表 {out}（SmartX 规划设计表布局）。填写后运行: voyager plan check {out}")
    return EXIT_OK
