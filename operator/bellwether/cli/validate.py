"""`bellwether validate -f FILE|DIR|-`: would the API server admit these ModelDeployments (and
ClusterAnalysisTemplates), and could the operator run their queries?

Every ModelDeployment in the files is checked as the API server admits it (`admission`) and its
queries are parsed as Prometheus parses them (`promql`). Documents of other kinds (a Secret, a
Namespace, an Argo CD Application beside the ModelDeployments) are named and left alone; a document
that looks meant as a ModelDeployment (our API group, or a kind one typo away) is checked and fails.
A file named on the command line, or stdin, that holds no ModelDeployment fails: it is almost always
the wrong file, or a typo in `kind`. In a directory, such files are skipped as long as some file in it
holds a ModelDeployment. ClusterAnalysisTemplates are checked too, and the ModelDeployments' references
to them resolved among every file read (`cli/templates.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bellwether.api import ModelDeployment
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.api.templates import ClusterAnalysisTemplateSpec
from bellwether.cli.admission import admission, belongs_to_us
from bellwether.cli.manifests import STDIN, Document, ManifestError, read, sources
from bellwether.cli.promql import query_problems
from bellwether.cli.templates import is_template, reference_problems, template_admission
from bellwether.render.disruption import budget_notes
from bellwether.render.routers import router_of
from bellwether.rollout.replicas import canary_beside, share_of, unmet_weights


def weight_notes(spec: ModelDeploymentSpec) -> list[str]:
    """The step weights the `replicas` router can only approximate with the spec's replica counts."""
    if not router_of(spec).by_pods:
        return []
    weights = [s.set_weight for s in spec.rollout.steps if s.set_weight is not None and s.set_weight < 100]
    fixed = [(r.name, r.size) for r in spec.regions if r.autoscaling is None]
    notes = unmet_weights(weights, fixed, spec.rollout.max_surge)
    # An autoscaled region's count moves: at its minimum the canary is added beside the fewest pods.
    for weight in weights:
        for r in (r for r in spec.regions if r.autoscaling is not None):
            canary = canary_beside(r.size, weight)
            if (share := share_of(r.size, canary)) != weight:
                notes.append(
                    f"setWeight {weight} gives {share}% in {r.name} at minReplicas ({r.size} stable + {canary} "
                    "canary pods serving); the share follows the live count as the autoscaler moves it"
                )
    return notes


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
    """Prints one verdict per ModelDeployment (or ClusterAnalysisTemplate) and remembers whether anything
    failed. `templates` are the valid ClusterAnalysisTemplates of every file read, for the references."""

    def __init__(self, out: TextIO, *, require_templates: bool = False) -> None:
        self.out = out
        self.failed = False
        self.checked = 0
        self.require_templates = require_templates
        self.templates: dict[str, ClusterAnalysisTemplateSpec] = {}

    def say(self, line: str, *, failed: bool = False) -> None:
        print(line, file=self.out)
        self.failed = self.failed or failed

    def check(self, doc: Document) -> None:
        """One object meant as a ModelDeployment: valid with its notes, or invalid with every problem."""
        label = f"{doc.label}: {name_of(doc.value) or '?'}"
        self.checked += 1
        if is_template(doc.value):
            found = template_admission(doc.value)
            self.verdict(label, found.problems, found.notes)
            return
        verdict = admission(doc.value)
        problems = verdict.problems + (query_problems(verdict.model) if verdict.model else [])
        notes: list[str] = []
        if verdict.model is not None:
            unresolved, notes = reference_problems(verdict.model.spec, self.templates, required=self.require_templates)
            problems += unresolved
            notes += weight_notes(verdict.model.spec) + budget_notes(verdict.model.spec)
        self.verdict(label, problems, notes)

    def verdict(self, label: str, problems: list[str], notes: list[str]) -> None:
        if problems:
            self.say(f"{label}: invalid", failed=True)
            for problem in problems:
                self.say(f"  - {problem}")
            return
        self.say(f"{label}: valid")
        for note in notes:
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


Loaded = list[tuple[str, list[Document] | ManifestError]]  # (label, the file's objects or why it is unreadable)


def load(names: Sequence[str]) -> list[tuple[str, Loaded | ManifestError]]:
    """Every file the `-f` arguments name, read once (stdin cannot be read twice), before any is checked:
    a ModelDeployment's templates may be in a later file."""
    out: list[tuple[str, Loaded | ManifestError]] = []
    for name in names:
        try:
            files = sources(name)
        except ManifestError as e:
            out.append((name, e))
            continue
        loaded: Loaded = []
        for label, path in files:
            try:
                loaded.append((label, read(label, path)))
            except ManifestError as e:
                loaded.append((label, e))
        out.append((name, loaded))
    return out


def templates_in(loaded: list[tuple[str, Loaded | ManifestError]]) -> dict[str, ClusterAnalysisTemplateSpec]:
    """The valid ClusterAnalysisTemplates of every file, by name (a later one of the same name wins, as a
    later `kubectl apply` would)."""
    found: dict[str, ClusterAnalysisTemplateSpec] = {}
    for _, files in loaded:
        for _, docs in files if not isinstance(files, ManifestError) else []:
            for doc in docs if not isinstance(docs, ManifestError) else []:
                verdict = template_admission(doc.value) if is_template(doc.value) else None
                if verdict is not None and verdict.model is not None:
                    found[verdict.model.metadata.name] = verdict.model.spec
    return found


def validate(names: Sequence[str], out: TextIO, *, require_templates: bool = False) -> int:
    """Check every ModelDeployment and ClusterAnalysisTemplate the `-f` arguments name; 0 when all are
    valid, else 1."""
    report = Report(out, require_templates=require_templates)
    loaded = load(names)
    report.templates = templates_in(loaded)
    for name, files in loaded:
        if isinstance(files, ManifestError):
            report.say(f"{name}: cannot read: {files}", failed=True)
            continue
        before, directory = report.checked, name != STDIN and Path(name).is_dir()
        for label, docs in files:
            if isinstance(docs, ManifestError):
                report.say(f"{label}: cannot read: {docs}", failed=True)
                continue
            report.file(label, docs, in_directory=directory)
        if directory and report.checked == before:
            report.say(f"{name}: no ModelDeployment in any of its {len(files)} files", failed=True)
    return 1 if report.failed else 0


def load_one(name: str, err: TextIO) -> ModelDeployment | None:
    """The first ModelDeployment of a file (or `-`, stdin), checked as `validate` checks it; None after
    printing why to `err` (the commands that run one spec then exit 1). ClusterAnalysisTemplates beside
    it are for the caller to read (`cli/templates.py`)."""
    try:
        docs = [doc for label, path in sources(name) for doc in read(label, path)]
    except ManifestError as e:
        print(f"{name}: cannot read: {e}", file=err)
        return None
    ours = [d for d in docs if (belongs_to_us(d.value) or not isinstance(d.value, dict)) and not is_template(d.value)]
    if not ours:
        print(f"{name}: no ModelDeployment in it", file=err)
        return None
    verdict = admission(ours[0].value)
    if verdict.model is None:
        print(f"{ours[0].label}: invalid", file=err)
        for problem in verdict.problems:
            print(f"  - {problem}", file=err)
    return verdict.model
