"""The ``voyager`` command. Each command group registers itself from its own
package (``voyager.plan.cli``, ``voyager.sim.cli``) so this module stays a
dispatcher."""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, attribute) of each command group's ``register(subparsers)``
COMMAND_GROUPS = ("voyager.plan.cli", "voyager.sim.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voyager",
        description="SmartX SMTX OS 部署与验收工具 (smtx-voyager)。部署请运行: pytest suites/ --plan=PLAN.xlsx",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_GROUPS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("已中断 (interrupted)", file=sys.stderr)
        return 130
