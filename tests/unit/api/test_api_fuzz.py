"""Whatever a user writes, `parse` either returns a ModelDeployment or raises SpecError with one
readable line per problem; no other exception, no pydantic internals, no raw regular expressions.

Two sources of input: arbitrary JSON-like documents (mostly refused at the top), and the shipped
examples with one part changed at random (which reach the cross-field rules deep in the spec).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bellwether.api import SpecError, dump, parse, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SEEDS = [
    doc
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") == "ModelDeployment"
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "0", "-1", "10m", "25%", "1e9", "true", "v1", "us-east", "{{name}}", "{{nope}}", "a" * 300])
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Things pydantic says that a person should never have to read.
INTERNALS = re.compile(
    r"pydantic|errors\.pydantic\.dev|Value error,|Assertion failed|input_value=|input_type=|"
    r"Traceback|<class |\[type=|\^\[|\\d|\(\?:"
)
settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_readable(error: SpecError) -> None:
    assert error.problems, "a SpecError names at least one problem"
    for problem in error.problems:
        assert isinstance(problem, str)
        where, sep, what = problem.partition(": ")
        assert sep and where and what.strip(), f"not 'field: what is wrong': {problem!r}"
        assert not INTERNALS.search(what), f"internal wording in {problem!r}"
    assert str(error) == "; ".join(error.problems)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: dict keys and list indexes, outermost first."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


def mutate(doc: dict[str, Any], path: tuple[Any, ...], how: str, value: Any, key: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    if not path:
        return doc
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "add-key" and isinstance(parent[last], dict):
        parent[last][key] = value
    elif how == "duplicate" and isinstance(parent[last], list) and parent[last]:
        parent[last].append(copy.deepcopy(parent[last][0]))
    elif how == "empty":
        parent[last] = type(parent[last])() if isinstance(parent[last], (dict, list, str)) else None
    return doc


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(doc)))
        how = draw(st.sampled_from(["replace", "delete", "add-key", "duplicate", "empty"]))
        doc = mutate(doc, path, how, draw(json_like), draw(st.text(min_size=1, max_size=12)))
    return doc


def test_the_examples_are_valid_seeds() -> None:
    assert len(SEEDS) >= 5
    for doc in SEEDS:
        parse(doc)


@settings_
@given(json_like)
def test_any_json_document_parses_or_is_refused_with_readable_problems(doc: Any) -> None:
    if not isinstance(doc, dict):
        doc = {"spec": doc}
    try:
        parse(doc)
    except SpecError as e:
        assert_readable(e)


@settings_
@given(st.dictionaries(st.text(max_size=12), json_like, max_size=6))
def test_any_json_spec_parses_or_is_refused_with_readable_problems(spec: dict[str, Any]) -> None:
    try:
        parse_spec(spec)
    except SpecError as e:
        assert_readable(e)
        assert all(p.startswith("spec") for p in e.problems)


@settings_
@given(mutated_examples())
def test_an_example_with_parts_changed_parses_or_is_refused_with_readable_problems(doc: dict[str, Any]) -> None:
    try:
        md = parse(doc)
    except SpecError as e:
        assert_readable(e)
        return
    # What parses is written back the same way: the operator's view of a spec survives a round trip.
    assert parse_spec(dump(md.spec)) == md.spec


@pytest.mark.parametrize("doc", [[], "spec", 3, None])
def test_a_document_that_is_not_a_mapping_is_refused(doc: Any) -> None:
    with pytest.raises(SpecError) as e:
        parse(doc)
    assert_readable(e.value)
