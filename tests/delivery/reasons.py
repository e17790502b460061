"""Every condition and Event reason the operator can write, read from its source.

Reasons are plain strings passed to a handful of functions (`emit`, `roll_back`, `set_condition`,
`Event(...)`, `Condition(reason=...)`, ...). Rather than listing those functions, this finds every
function and record in the scanned packages that takes a `reason`, and follows what each call passes
for it back to string literals: module constants, local variables, tuple items, `a or b`, `x if c else
y`, dict values and attributes assigned elsewhere (e.g. `progress.rollback_reason`). A reason built at
run time (an f-string) cannot be documented ahead, so it is an error.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "bellwether"
SCANNED = ("rollout", "handlers", "cycle")  # packages, or modules (cycle.py)
RECORDS = ("Event", "Condition")  # records with a `reason` field: rollout/types.py and api/status.py
REASON = re.compile(r"^[A-Z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Site:
    node: ast.expr
    scope: ast.AST  # the enclosing function (or module) whose local names `node` may use
    where: str


class Reasons:
    def __init__(self, package: Path = PACKAGE) -> None:
        self.package = package
        modules = [package / f"{d}.py" for d in SCANNED if (package / f"{d}.py").exists()]
        paths = [p for d in SCANNED for p in sorted((package / d).glob("*.py"))] + modules
        self.modules = {p: ast.parse(p.read_text()) for p in paths}
        self.parents: dict[ast.AST, ast.AST] = {}
        for tree in self.modules.values():
            for parent in ast.walk(tree):
                for child in ast.iter_child_nodes(parent):
                    self.parents[child] = parent
        self.constants: dict[str, ast.expr] = {}
        self.attributes: dict[str, list[Site]] = {}
        self.sinks: dict[str, int | None] = {name: None for name in RECORDS}  # name -> position of `reason`
        for path, tree in self.modules.items():
            for node in tree.body:
                target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
                if isinstance(node, ast.Assign) and isinstance(target, ast.Name) and target.id.isupper():
                    self.constants[target.id] = node.value
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    names = [a.arg for a in node.args.posonlyargs + node.args.args]
                    if names[:1] in (["self"], ["cls"]):
                        names = names[1:]  # called as a method: `work.emit(type, reason, message)`
                    if "reason" in names + [a.arg for a in node.args.kwonlyargs]:
                        self.sinks[node.name] = names.index("reason") if "reason" in names else None
                for target, value in self._assignments(node):
                    if isinstance(target, ast.Attribute):
                        site = Site(value, self._scope(node), self._where(path, node))
                        self.attributes.setdefault(target.attr, []).append(site)
        self.sinks["Event"] = 1  # Event(type, reason, message)

    def _where(self, path: Path, node: ast.AST) -> str:
        return f"{path.relative_to(self.package.parent)}:{getattr(node, 'lineno', 0)}"

    def _scope(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return node

    @staticmethod
    def _assignments(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            yield node.target, node.value
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    yield from zip(target.elts, node.value.elts, strict=False)
                else:
                    yield target, node.value

    def _locals(self, name: str, scope: ast.AST) -> list[ast.expr]:
        return [
            value
            for node in ast.walk(scope)
            for target, value in self._assignments(node)
            if isinstance(target, ast.Name) and target.id == name
        ]

    def _expand(self, node: ast.expr, scope: ast.AST, seen: set[int]) -> Iterator[tuple[ast.expr, ast.AST]]:
        """The expressions `node` may evaluate to, following names, attributes and choices."""
        if id(node) in seen:
            return
        seen = seen | {id(node)}
        if isinstance(node, ast.Name):
            found = self._locals(node.id, scope)
            if found:
                for value in found:
                    yield from self._expand(value, scope, seen)
            elif node.id in self.constants:
                yield from self._expand(self.constants[node.id], scope, seen)
        elif isinstance(node, ast.Attribute):
            for site in self.attributes.get(node.attr, []):
                yield from self._expand(site.node, site.scope, seen)
        elif isinstance(node, ast.IfExp):
            yield from self._expand(node.body, scope, seen)
            yield from self._expand(node.orelse, scope, seen)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                yield from self._expand(value, scope, seen)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            index = node.slice.value
            if isinstance(node.value, ast.Dict):
                yield from self._expand(node.value, scope, seen)
            for value, value_scope in self._expand(node.value, scope, seen):
                if isinstance(value, ast.Tuple) and isinstance(index, int) and index < len(value.elts):
                    yield from self._expand(value.elts[index], value_scope, seen)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            yield from self._expand(node.func.value, scope, seen)
            for arg in node.args[1:]:
                yield from self._expand(arg, scope, seen)
        elif isinstance(node, ast.Dict):
            for value in node.values:
                yield from self._expand(value, scope, seen)
        else:
            yield node, scope

    def _strings(self, node: ast.expr, scope: ast.AST, where: str) -> set[str]:
        out = set()
        for value, _ in self._expand(node, scope, set()):
            if isinstance(value, ast.JoinedStr):
                raise AssertionError(f"{where}: a reason built at run time cannot be documented")
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                if not REASON.match(value.value):
                    raise AssertionError(f"{where}: {value.value!r} is not a reason (CamelCase, one word)")
                out.add(value.value)
        return out

    def emitted(self) -> dict[str, set[str]]:
        """reason -> where in the source it is passed on."""
        found: dict[str, set[str]] = {}
        for path, tree in self.modules.items():
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name not in self.sinks:
                    continue
                position = self.sinks[name]
                args = [k.value for k in node.keywords if k.arg == "reason"]
                if position is not None and len(node.args) > position:
                    args.append(node.args[position])
                where = self._where(path, node)
                for arg in args:
                    for reason in self._strings(arg, self._scope(node), where):
                        found.setdefault(reason, set()).add(where)
        return found
