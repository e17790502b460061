"""`bellwether validate -f FILE|DIR|-`: would the API server admit these ModelDeployments, and could
the operator run their queries?

Every ModelDeployment in the files is checked as the API server admits it (`admission`) and its
queries are parsed as Prometheus parses them (`promql`). Documents of other kinds (a Secret, a
Namespace, an Argo CD Application beside the ModelDeployments) are named and left alone; a document
that looks meant as a ModelDeployment (our API group, or a kind one typo away) is checked and fails.
A file named on the command line, or stdin, that holds no ModelDeployment fails: it is almost always
the wrong file, or a typo in `kind`. In a directory, such files are skipped as long as some file in it
holds a ModelDeployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bellwether.api import ModelDeployment
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.cli.admission import admission, belongs_to_us
from bellwether.cli.manifests import STDIN, Document, ManifestError, read, sources
from bellwether.cli.promql import query_problems
from bellwether.render.disruption import budget_notes
from bellwether.render.routers import router_of
from bellwether.rollout.replicas import unmet_weights


def weight_notes(spec: ModelDeploymentSpec) -> list[str]:
    """The step weights the `replicas` router can only approximate with the spec's replica counts."""
    if not router_of(spec).by_pods:
        return []
    weights = [s.set_weight for s in spec.rollout.steps if s.set_weight is not None and s.set_weight < 100]
    return unmet_weights(weights, [(r.name, r.replicas) for r in spec.regions], spec.rollout.max_surge)


def name_of(value: Any) -> str | None:
    """metadata.name, if the document has one to show."""
    meta = value.get("metadata") if isinstance(value, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


def describe(value: Any) -> str:
    """`Kind name` of a document, for the lines that say it was not checked."""
    if not isinstance(value, dict):
        return f"a {type(value).__name__}"
    return " ".join(str(p) for p in (value.get("kind") or "(no kind)", name_of(value)) if p)


class Report:
    """Prints one verdict per ModelDeployment and remembers whether anything failed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False
        self.checked = 0

    def say(self, line: str, *, failed: bool = False) -> None:
        print(line, file=self.out)
        self.failed = self.failed or failed

    def check(self, doc: Document) -> None:
        """One object meant as a ModelDeployment: valid with its notes, or invalid with every problem."""
        label = f"{doc.label}: {name_of(doc.value) or '?'}"
        self.checked += 1
        verdict = admission(doc.value)
        problems = verdict.problems + (query_problems(verdict.model) if verdict.model else [])
        if verdict.model is None or problems:
            self.say(f"{label}: invalid", failed=True)
            for problem in problems:
                self.say(f"  - {problem}")
            return
        self.say(f"{label}: valid")
        for note in weight_notes(verdict.model.spec) + budget_notes(verdict.model.spec):
            self.say(f"  note: {note}")

    def file(self, label: str, docs: list[Document], *, in_directory: bool) -> None:
        """Every object of one file; a file with none of ours fails unless a directory search found it."""
        ours = [belongs_to_us(d.value) or not isinstance(d.value, dict) for d in docs]
        if not any(ours):
            found = "the file is empty" if not docs else "found " + ", ".join(describe(d.value) for d in docs)
            skipped = ", skipped" if in_directory else ""
            self.say(f"{label}: no ModelDeployment in it ({found}){skipped}", failed=not in_directory)
            return
        for doc, checked in zip(docs, ours, strict=True):
            if checked:
                self.check(doc)
            else:
                self.say(f"{doc.label}: {describe(doc.value)}: not a ModelDeployment, not checked")


def validate(names: Sequence[str], out: TextIO) -> int:
    """Check every ModelDeployment the `-f` arguments name; 0 when all are valid, else 1."""
    report = Report(out)
    for name in names:
        try:
            files = sources(name)
        except ManifestError as e:
            report.say(f"{name}: cannot read: {e}", failed=True)
            continue
        before, directory = report.checked, name != STDIN and Path(name).is_dir()
        for label, path in files:
            try:
                docs = read(label, path)
            except ManifestError as e:
                report.say(f"{label}: cannot read: {e}", failed=True)
                continue
            report.file(label, docs, in_directory=directory)
        if directory and report.checked == before:
            report.say(f"{name}: no ModelDeployment in any of its {len(files)} files", failed=True)
    return 1 if report.failed else 0


def load_one(name: str, err: TextIO) -> ModelDeployment | None:
    """The first ModelDeployment of a file (or `-`, stdin), checked as `validate` checks it; None after
    printing why to `err` (the commands that run one spec then exit 1)."""
    try:
        docs = [doc for label, path in sources(name) for doc in read(label, path)]
    except ManifestError as e:
        print(f"{name}: cannot read: {e}", file=err)
        return None
    ours = [d for d in docs if belongs_to_us(d.value) or not isinstance(d.value, dict)]
    if not ours:
        print(f"{name}: no ModelDeployment in it", file=err)
        return None
    verdict = admission(ours[0].value)
    if verdict.model is None:
        print(f"{ours[0].label}: invalid", file=err)
        for problem in verdict.problems:
            print(f"  - {problem}", file=err)
    return verdict.model
