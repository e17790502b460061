"""`bellwether` command line: one module per command group, each adding its own subcommands.

Command modules import heavy dependencies (kopf, aiohttp) inside their handlers, so `bellwether crd`
and `--help` stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines `register(subparsers)`, which adds its subcommands with `set_defaults(func=...)`;
# `func(args) -> int` is the exit code.
COMMAND_MODULES = (
    "bellwether.cli.crd_cmd",  # crd, docs, validate
    "bellwether.cli.demo",  # demo
    "bellwether.cli.simulate",  # simulate
    "bellwether.cli.check",  # check
    "bellwether.cli.run",  # run
    "bellwether.cli.control",  # status, promote, abort, retry, pause, resume
)


def build_parser(prog: str = "bellwether", modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Safe canary rollouts for ML model serving, judged by Prometheus."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "bellwether") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    code: int = args.func(args)
    return code


def kubectl_plugin() -> None:
    """`kubectl bellwether ...`: the same commands, named as kubectl shows them."""
    sys.exit(main(prog="kubectl bellwether"))


def entrypoint() -> None:
    sys.exit(main())
