"""`python -m bellwether ...` runs the CLI: the same as the `bellwether` command, without an installed script."""

from bellwether.cli.main import entrypoint

entrypoint()
