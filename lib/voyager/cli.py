"""The ``voyager`` command. Each command group registers itself from its own
package (``voyager.plan.cli``, ``voyager.sim.cli``) so this module stays a
dispatcher.

Output to a pipe its reader closed (``voyager plan show x.xlsx | head -1``) ends
every command quietly here, with exit status 141 (128 + SIGPIPE, what a shell
reports for ``yes | head -1``): no error line, no traceback. Command groups let
:class:`BrokenPipeError` pass through their own error handling.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# (module, attribute) of each command group's ``register(subparsers)``
COMMAND_GROUPS = ("voyager.plan.cli", "voyager.sim.cli")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


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
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            code = 2
        else:
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
        return code
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        print("已中断 (interrupted)", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """The reader of stdout went away: stop quietly. stdout is pointed at /dev/null so the
    interpreter's last flush of the unwritten rest fails no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    return EXIT_BROKEN_PIPE
