"""`bellwether` command line: one module per command group, each adding its own subcommands.

Command modules import heavy dependencies (kopf, aiohttp) inside their handlers, so `bellwether crd`
and `--help` stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import textwrap
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


DISTRIBUTION = "bellwether-operator"

# The exit status of every command, as `--help` and docs/kubectl-plugin.md list it (a test keeps them equal).
EXIT_CODES = {
    0: "success (validate: every ModelDeployment is valid; check: every query gives a number the judge accepts)",
    1: "failure: an invalid or unreadable file, a file without a ModelDeployment, a ModelDeployment that does not "
    "exist, a request the API server refused, no cluster configured (run), the wrong demo outcome",
    2: "usage error: an unknown command, flag or value",
    3: "the answer is no: check found a query without a usable number; simulate's outcome is not the right one "
    "for the scenario",
}
EXIT_STATUS = "exit status:\n" + "\n".join(
    textwrap.fill(meaning, 100, initial_indent=f"  {code}  ", subsequent_indent="     ")
    for code, meaning in EXIT_CODES.items()
)


def version() -> str:
    """The installed package's version; a source tree that was never installed has none."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def describe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give every subcommand a description (its help, as a sentence) and the exit status, where its module
    gave none: `bellwether COMMAND --help` then always says what the command does and what it returns."""
    for choice in sub._choices_actions:
        command = sub.choices[choice.dest]
        if not command.description and choice.help:
            command.description = choice.help[0].upper() + choice.help[1:] + "."
        if not command.epilog:
            command.epilog = EXIT_STATUS
            command.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser(prog: str = "bellwether", modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Safe canary rollouts for ML model serving, judged by Prometheus.",
        epilog=EXIT_STATUS + f"\n\nSee `{prog} COMMAND --help` for each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # a command group not built yet
            raise
        module.register(sub)
    describe(sub)
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
