"""A static CEL cost estimate, after the API server's, for the CRD's `x-kubernetes-validations`.

A comprehension costs its list's maxItems times its body, nested comprehensions multiply, and a rule
inside list items counts once per item. It counts every parse-tree operation, so it overestimates; the
API server refuses a CRD whose rules estimate above 10,000,000 each or 100,000,000 in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celpy
from lark import Tree

from support.crdkit import join

_ENV = celpy.Environment()
STATIC_COST_LIMIT = 10_000_000
STATIC_CRD_COST_LIMIT = 100_000_000
_MACROS = {"all", "exists", "exists_one", "filter", "map"}
_UNBOUNDED = float("inf")


def _size(schema: dict[str, Any] | None) -> float:
    if not schema:
        return _UNBOUNDED
    for key in ("maxItems", "maxProperties", "maxLength"):
        if key in schema:
            return float(schema[key])
    return 1.0 if schema.get("type") in ("integer", "number", "boolean") or "enum" in schema else _UNBOUNDED


def _resolve(tree: Any, scope: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The schema node a CEL expression denotes (`self.rollout.waves`, a bound variable), if known."""
    if not isinstance(tree, Tree):
        return None
    subtrees = [c for c in tree.children if isinstance(c, Tree)]
    if tree.data == "ident":
        return scope.get(str(tree.children[0]))
    if tree.data == "member_dot":
        base = _resolve(tree.children[0], scope) or {}
        extra = base.get("additionalProperties")
        return base.get("properties", {}).get(str(tree.children[1]), extra if isinstance(extra, dict) else None)
    if tree.data == "member_dot_arg":
        target, method = _resolve(tree.children[0], scope), str(tree.children[1])
        if method == "filter":
            return target
        if method == "map" and target:
            return {"type": "array", "maxItems": target.get("maxItems"), "items": {}}
        return None
    return _resolve(subtrees[0], scope) if len(subtrees) == 1 and len(tree.children) == 1 else None


def _cost(tree: Any, scope: dict[str, dict[str, Any]]) -> float:
    if not isinstance(tree, Tree):
        return 0.0
    subtrees = [c for c in tree.children if isinstance(c, Tree)]
    if tree.data == "member_dot_arg" and str(tree.children[1]) in _MACROS:
        target, args = tree.children[0], tree.children[2].children
        iterated = _resolve(target, scope)
        items = (iterated or {}).get("items") or (iterated or {}).get("additionalProperties") or {}
        inner = {**scope, str(_resolve_name(args[0])): items}
        return _cost(target, scope) + _size(iterated) * (1 + sum(_cost(a, inner) for a in args[1:]))
    if tree.data == "member_dot_arg":
        return 1 + sum(_cost(c, scope) for c in subtrees) + _size(_resolve(tree.children[0], scope))
    if len(subtrees) == 1 and len(tree.children) == 1:
        return _cost(subtrees[0], scope)
    return 1 + sum(_cost(c, scope) for c in subtrees)


def _resolve_name(tree: Any) -> str:
    while isinstance(tree, Tree):
        tree = tree.children[0]
    return str(tree)


def estimated_cost(rule: str, node: dict[str, Any]) -> float:
    return _cost(_ENV.compile(rule), {"self": node})


def rule_costs(schema: dict[str, Any], path: str = "", times: float = 1.0) -> Iterator[tuple[str, str, float, float]]:
    """(path, rule, estimated cost, how many times it can run per object) for every rule."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule["rule"], estimated_cost(rule["rule"], schema), times
    for name, sub in schema.get("properties", {}).items():
        yield from rule_costs(sub, join(path, name), times)
    if isinstance(schema.get("items"), dict):
        yield from rule_costs(schema["items"], f"{path}[*]", times * _size(schema))
