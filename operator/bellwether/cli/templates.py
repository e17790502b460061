"""`bellwether validate` and `check` on ClusterAnalysisTemplates, and on the references to them.

A template is checked as the API server admits it (its CRD's schema and CEL rules, strictly typed,
ObjectMeta, etcd's size) and its queries parsed as Prometheus parses them, like a ModelDeployment's.
A ModelDeployment's `spec.analysis.templates` are resolved among the files read, as the operator
resolves them: no metric name given by two templates, at most 32 metrics in all. A template the files do not hold is a note, not an error: offline, validate cannot know the
cluster, where the template may already be. `--require-templates` makes it an error (a CI job that
checks a directory of every manifest). `bellwether check` resolves them from its files, then the cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import ValidationError

from bellwether.api import API_VERSION, GROUP, ModelDeployment
from bellwether.api.resource import explain
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.api.templates import (
    TEMPLATE_KIND,
    ClusterAnalysisTemplate,
    ClusterAnalysisTemplateSpec,
    TemplateProblem,
    merge,
    referenced,
    resolve,
)
from bellwether.cli.admission import OBJECT_FIELDS, _hint, _unknown, as_sent, metadata_problems, size_problems
from bellwether.cli.manifests import ManifestError, read, sources
from bellwether.cli.promql import metric_problems

TEMPLATE_FIELDS = tuple(f for f in OBJECT_FIELDS if f != "status")  # a template has no status
DEFAULT_INTERVAL = 30.0  # seconds: how a template's queries are rendered to be parsed (the value does not matter)


@dataclass(frozen=True)
class TemplateVerdict:
    model: ClusterAnalysisTemplate | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_template(doc: Any) -> bool:
    """A ClusterAnalysisTemplate of ours (Argo Rollouts has a kind of the same name in argoproj.io)."""
    if not isinstance(doc, dict) or doc.get("kind") != TEMPLATE_KIND:
        return False
    version = doc.get("apiVersion")
    return not isinstance(version, str) or version.split("/")[0] == GROUP


def _type_meta(doc: dict[str, Any]) -> list[str]:
    version = doc.get("apiVersion")
    problems = []
    if version is None:
        problems.append(f"apiVersion: is required (kubectl: apiVersion not set); use {API_VERSION}")
    elif version != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION} (got {version!r})")
    return problems + [_unknown(k, TEMPLATE_FIELDS, "") for k in doc if k not in TEMPLATE_FIELDS]


def template_admission(doc: dict[str, Any]) -> TemplateVerdict:
    """Everything the API server would refuse in a ClusterAnalysisTemplate, and what Prometheus would."""
    problems = _type_meta(doc) + metadata_problems(doc.get("metadata"))
    notes = []
    meta = doc.get("metadata")
    if isinstance(meta, dict) and meta.get("namespace"):
        notes.append(f"metadata.namespace is ignored: a {TEMPLATE_KIND} is cluster-scoped")
    sent = as_sent(doc, "", problems)
    model = None
    try:
        model = ClusterAnalysisTemplate.model_validate(sent, strict=True, by_alias=True, by_name=False)
    except ValidationError as e:
        explained = explain(e, prefix="", root=ClusterAnalysisTemplate).problems
        hints = [_hint(dict(error)) for error in e.errors()]
        problems += [p + h for p, h in zip(explained, hints, strict=True) if not p.startswith("metadata")]
    if model is not None:
        problems += metric_problems(model.spec.metrics, DEFAULT_INTERVAL, "spec.metrics")
    if not problems:
        problems += size_problems(doc)
    return TemplateVerdict(None if problems else model, problems, notes)


def reference_problems(
    spec: ModelDeploymentSpec, found: Mapping[str, ClusterAnalysisTemplateSpec], *, required: bool
) -> tuple[list[str], list[str]]:
    """(problems, notes) of a spec's template references against the templates at hand."""
    problems: list[str] = []
    notes: list[str] = []
    for i, name in enumerate(referenced(spec)):
        if name in found:
            continue
        where = f"spec.analysis.templates[{i}]"
        if required:
            problems.append(f"{where}: {TEMPLATE_KIND} {name!r} is not in the files read (--require-templates)")
        else:
            notes.append(
                f"{where}: {TEMPLATE_KIND} {name!r} is not in the files read, not checked: the operator "
                "needs it in the cluster (--require-templates makes this an error)"
            )
    try:
        merge(spec, found)
    except TemplateProblem as e:
        problems += e.problems
    return problems, notes


def templates_in_files(names: Sequence[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ClusterAnalysisTemplates in the files (as written) by name, and why any could not be used."""
    found: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name in names:
        try:
            docs = [doc for label, path in sources(name) for doc in read(label, path)]
        except ManifestError as e:
            problems.append(f"{name}: cannot read: {e}")
            continue
        for doc in docs:
            if not is_template(doc.value):
                continue
            verdict = template_admission(doc.value)
            if verdict.model is None:
                problems += [f"{doc.label}: {p}" for p in verdict.problems]
            else:
                found[verdict.model.metadata.name] = doc.value
    return found, problems


async def templates_in_cluster(names: Sequence[str], kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """The named ClusterAnalysisTemplates as the cluster holds them (None: not there), read as the
    operator reads them."""
    import aiohttp

    from bellwether.clusters.client import KubeClient
    from bellwether.clusters.config import endpoint_of, home_credentials

    creds = await home_credentials(kubeconfig, context)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = KubeClient("home", endpoint_of(creds), session)
        found = await asyncio.gather(*(client.get(TEMPLATE_KIND, None, n) for n in names))
    return dict(zip(names, found, strict=True))


def resolve_from_files(md: ModelDeployment, files: Sequence[str], err: TextIO) -> ModelDeployment | None:
    """The ModelDeployment with the metrics of its templates, every one from `files` (for `simulate`,
    which has no cluster). None after printing why."""
    if not referenced(md.spec):
        return md
    found, problems = templates_in_files(files)
    return _resolved(md, found, problems, err)


def resolve_for_check(args: Any, md: ModelDeployment, err: TextIO) -> ModelDeployment | None:
    """The ModelDeployment with its templates' metrics, as the operator will judge it: templates from the
    `-f` file and `--templates` files first, then the cluster for the rest. None after printing why."""
    names = referenced(md.spec)
    if not names:
        return md
    found, problems = templates_in_files([args.filename, *(args.templates or [])])
    missing = [n for n in names if n not in found]
    if missing and not problems:
        problems += _from_cluster(found, missing, args.kubeconfig, args.context)
    return _resolved(md, found, problems, err)


def _from_cluster(found: dict[str, Any], missing: list[str], kubeconfig: str | None, context: str | None) -> list[str]:
    """Read the missing templates into `found`; why they could not be, if they could not."""
    from bellwether.cli.run import cluster_problem
    from bellwether.clusters.client import ApiError

    where = cluster_problem(kubeconfig, context)
    if where is not None:
        them = "it" if len(missing) == 1 else "them"
        names = ", ".join(repr(n) for n in missing)
        return [f"{TEMPLATE_KIND} {names} not in the files, and no cluster to read {them} from: {where}"]
    try:
        found.update(asyncio.run(templates_in_cluster(missing, kubeconfig, context)))
    except (ApiError, OSError) as e:
        return [f"reading {TEMPLATE_KIND}s from the cluster failed: {e}"]
    return []


def _resolved(
    md: ModelDeployment, found: Mapping[str, Any], problems: list[str], err: TextIO
) -> ModelDeployment | None:
    if not problems:
        try:
            return md.model_copy(update={"spec": resolve(md.spec, found)})
        except TemplateProblem as e:
            problems = problems + e.problems
    for problem in problems:
        print(problem, file=err)
    return None
