"""``voyager sim`` (serve) and ``voyager sim status`` (registered by ``voyager.cli``).

``voyager sim --plan PLAN [--speed S] [--state FILE] [--faults SPEC] [--bind-plan-ips]``
prints one JSON line ``{"http": ..., "https": ..., "ssh": {ip: port}}`` on stdout
and serves until interrupted (Ctrl-C or SIGTERM). ``PLAN`` is a workbook or
``demo`` / ``demo:N`` for the built-in loopback demo plan with N hosts.

``voyager sim status --state FILE`` (or ``voyager sim --state FILE status``: the
shared option may stand on either side of the subcommand) prints the counts saved
with the state.

Exit codes: 0 = success, 2 = bad input (one Chinese error line on stderr).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from voyager.sim.backend.clock import DEFAULT_SPEED

EXIT_USAGE = 2


class UsageError(Exception):
    pass


def register(subparsers) -> None:
    sim = subparsers.add_parser(
        "sim", help="启动内置 SmartX 模拟器（集群、CloudTower、SSH，仅监听 127.0.0.0/8）",
        description="启动内置 SmartX 模拟器。启动后在标准输出打印一行 JSON（各服务地址），直到 Ctrl-C 结束。")
    sim.add_argument("--plan", metavar="PLAN", help="规划设计表 .xlsx，或 demo / demo:N（内置演示规划，N 台主机）")
    sim.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                     help=f"时间倍率：真实耗时 × 倍率 = 模拟耗时；0 = 立即完成（默认 {DEFAULT_SPEED}）")
    _add_state_option(sim, "状态文件：每次变化后保存，启动时读取", default=None)
    sim.add_argument("--faults", metavar="SPEC", default="",
                     help="注入故障 KIND:TARGET:COUNT[,...]（fail-job / http-500 / http-reset / slow / drop-chunk / "
                          "ssh-fail / ssh-drop；HTTP 目标可带方法，如 'http-500:POST /api/v2/network/vds:1'）")
    sim.add_argument("--bind-plan-ips", action="store_true",
                     help="另外监听规划中的 127.x 地址的 80/443/22 端口（需要权限，失败时跳过）")
    sim.add_argument("--host-overrides", metavar="JSON", default=None,
                     help='让主机与规划不同，如 {"127.10.20.11": {"down_nics": ["ens192"]}}')
    sim.add_argument("--slow-seconds", type=float, default=None, help="slow 故障的延迟秒数（默认 35）")
    sim.set_defaults(func=_guard(cmd_serve))
    sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    status = sub.add_parser("status", help="打印状态文件中的计数（JSON）",
                            description="打印模拟器状态文件中的计数：deployed、hosts、vds、vlans 等")
    # SUPPRESS: without its own --state, status keeps the one given before it (voyager sim --state F status)
    _add_state_option(status, "模拟器状态文件（也可写在 status 之前）", default=argparse.SUPPRESS)
    status.set_defaults(func=_guard(cmd_status))


def _add_state_option(parser: argparse.ArgumentParser, help_text: str, *, default) -> None:
    """``--state FILE``, shared by ``voyager sim`` and ``voyager sim status``."""
    parser.add_argument("--state", metavar="FILE", default=default, help=help_text)


def _guard(command):
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except UsageError as exc:
            print(f"错误: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return run


def load_plan(spec: str):
    if spec == "demo" or spec.startswith("demo:"):
        from voyager.plan.demo import build_demo_plan
        try:
            hosts = int(spec.split(":", 1)[1]) if ":" in spec else 3
            return build_demo_plan(hosts)
        except ValueError as exc:
            raise UsageError(f"--plan {spec}: {exc}") from None
    from voyager.plan.reader import PlanError, read_plan
    path = Path(spec)
    if not path.exists():
        raise UsageError(f"规划设计表 {spec} 不存在")
    try:
        plan = read_plan(path)
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    if not [h for h in plan.hosts if h.mgmt_ip]:
        raise UsageError(f"规划设计表 {spec} 中没有带管理 IP 的主机，无法模拟")
    return plan


def cmd_serve(args: argparse.Namespace) -> int:
    from voyager.sim.backend.faults import FaultSpecError, parse_faults
    from voyager.sim.backend.persistence import StateFileError
    from voyager.sim.simulator import DEFAULT_SLOW_SECONDS, Simulator

    if not args.plan:
        raise UsageError("请用 --plan 指定规划设计表（或 demo），例如: voyager sim --plan demo")
    if args.speed < 0:
        raise UsageError("--speed 不能为负数")
    try:
        parse_faults(args.faults)
    except FaultSpecError as exc:
        raise UsageError(str(exc)) from None
    overrides: Any = None
    if args.host_overrides:
        try:
            overrides = json.loads(args.host_overrides)
        except ValueError:
            raise UsageError("--host-overrides 不是有效的 JSON") from None
    plan = load_plan(args.plan)
    try:
        sim = Simulator(plan, speed=args.speed, state_file=args.state, faults=args.faults,
                        host_overrides=overrides, bind_plan_ips=args.bind_plan_ips,
                        slow_seconds=args.slow_seconds if args.slow_seconds is not None else DEFAULT_SLOW_SECONDS)
    except (StateFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    sim.start()
    try:
        print(json.dumps(sim.endpoints), flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from voyager.sim.backend.persistence import StateFileError, status_from_file

    if not getattr(args, "state", None):
        raise UsageError("请用 --state 指定模拟器状态文件，例如: voyager sim status --state sim-world.json")
    try:
        print(json.dumps(status_from_file(Path(args.state))))
    except StateFileError as exc:
        raise UsageError(str(exc)) from None
    return 0
