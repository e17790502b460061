"""The CLI's documented exit statuses are the ones `--help` prints."""

from __future__ import annotations

from pathlib import Path

from bellwether.cli.main import EXIT_CODES, build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "kubectl-plugin.md"


def test_kubectl_plugin_doc_lists_every_exit_status_as_help_does() -> None:
    text = DOC.read_text()
    section = text[text.index("## Exit status") :]
    for code, meaning in EXIT_CODES.items():
        assert f"| `{code}` | {meaning[0].upper() + meaning[1:]}. |" in section, code
    assert section.count("\n| `") == len(EXIT_CODES)
    assert "`bellwether --version`" in section
    help_text = " ".join(build_parser().format_help().split())
    for meaning in EXIT_CODES.values():
        assert " ".join(meaning.split()) in help_text
