"""`docs/reference.md` is generated from the CRD schema and documents every spec field."""

from __future__ import annotations

from bellwether.api.reference import reference_markdown
from support.crdkit import ROOT, load_crd, nodes, object_schema

REFERENCE = ROOT / "docs" / "reference.md"


def test_reference_matches_the_models() -> None:
    assert REFERENCE.read_text() == reference_markdown(), "docs/reference.md drifted: run `bellwether docs`"


def test_reference_documents_every_spec_field_with_a_description() -> None:
    text = reference_markdown()
    spec = object_schema(load_crd())["properties"]["spec"]
    for path, node in nodes(spec, "spec"):
        for name, field in node.get("properties", {}).items():
            assert f"| `{name}` |" in text, f"{path}.{name} missing"
            assert field.get("description"), f"{path}.{name} has no description"
    assert "## `spec.rollout.steps[]`" in text
    assert "setWeight must increase through the steps" in text


def test_reference_says_what_patterns_allow_instead_of_printing_them() -> None:
    text = reference_markdown()
    assert "a DNS label: lowercase letters" in text
    assert "^[a-z0-9]" not in text
