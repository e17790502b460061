"""`docs/reference.md`: every field of the ModelDeployment and ClusterAnalysisTemplate CRDs, generated
from the same schemas as `crds/`.

Run `python -m bellwether.api.reference > docs/reference.md` (or `bellwether docs`); a test fails when
the committed file drifts, so the reference can never describe a field the CRD does not have.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bellwether.api.crd import crd, template_crd
from bellwether.api.patterns import meaning
from bellwether.api.resource import API_VERSION, KIND
from bellwether.api.templates import TEMPLATE_KIND
from bellwether.api.units import DURATION_PATTERN

INTRO = f"""# ModelDeployment reference

`apiVersion: {API_VERSION}`, `kind: {KIND}` (short name `mdep`). Generated from the API models by
`python -m bellwether.api.reference`; do not edit by hand. Durations are strings like `30s`, `5m` or
`1h30m`. Fields marked *required* must be given; the others have the default shown or are optional.
Rules list the checks the API server makes with CEL beyond the field types (`kubectl apply` prints
the message); `bellwether validate -f` makes the same checks locally.
"""


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "any")
    if node.get("pattern") == DURATION_PATTERN:
        return "duration"
    if kind == "array":
        return f"list of {_type(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return str(kind)


def _limits(node: dict[str, Any]) -> list[str]:
    out = []
    if "enum" in node:
        out.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "pattern" in node and node["pattern"] != DURATION_PATTERN:
        out.append(meaning(node["pattern"]))
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None or high is not None:
        above = ">" if node.get("exclusiveMinimum") else ">="
        bounds = [f"{above} {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        out.append(" and ".join(b for b in bounds if b))
    if node.get("minItems") == 1 or node.get("minLength") == 1:
        out.append("not empty")
    if "maxItems" in node:
        out.append(f"at most {node['maxItems']} items")
    if "items" in node and "maxLength" in node["items"]:
        out.append(f"items at most {node['items']['maxLength']} characters")
    if "properties" not in node:
        out += [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
    return out


def _objects(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object with properties, outermost first, named by its path (`spec.rollout.steps[]`)."""
    if "properties" in node:
        yield path, node
        for name, sub in node["properties"].items():
            yield from _objects(sub, f"{path}.{name}")
    elif node.get("type") == "array":
        yield from _objects(node["items"], f"{path}[]")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(path: str, node: dict[str, Any]) -> list[str]:
    lines = [f"## `{path}`", ""]
    if node.get("description"):
        lines += [node["description"], ""]
    lines += ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    required = set(node.get("required", []))
    for name, sub in node["properties"].items():
        kind = _type(sub) + (", *required*" if name in required else "")
        default = f"`{sub['default']}`" if "default" in sub else ""
        words = "; ".join([sub.get("description", "").rstrip("."), *_limits(sub)]).strip("; ")
        lines.append(f"| `{name}` | {kind} | {_cell(default)} | {_cell(words)} |")
    rules = node.get("x-kubernetes-validations", [])
    if rules:
        lines += ["", "Rules:", ""]
        lines += [f"- {rule['message']}" for rule in rules]
    return [*lines, ""]


TEMPLATE_INTRO = f"""# ClusterAnalysisTemplate reference

`apiVersion: {API_VERSION}`, `kind: {TEMPLATE_KIND}` (short name `bwcat`), cluster-scoped: metrics and
bounds that ModelDeployments reference by name in `spec.analysis.templates` (see
[analysis templates](analysis-templates.md)). Its `metrics` are exactly
those of `spec.analysis.metrics` above.
"""


def reference_markdown() -> str:
    root = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    lines = [INTRO]
    for top in ("spec", "status"):
        for path, node in _objects(root[top], top):
            lines += _section(path, node)
    template = template_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    lines.append(TEMPLATE_INTRO)
    for path, node in _objects(template, f"{TEMPLATE_KIND}.spec"):
        if not path.startswith(f"{TEMPLATE_KIND}.spec.metrics"):
            lines += _section(path, node)  # the metrics themselves are described above, once
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
