"""`bellwether crd` prints the generated CRD, `bellwether docs` its field reference, and
`bellwether validate -f` checks ModelDeployment files the way the operator reads them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from bellwether.api import SpecError, parse
from bellwether.api.crd import crd_yaml
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.rollout.replicas import unmet_weights


def weight_notes(spec: ModelDeploymentSpec) -> list[str]:
    """The step weights the `replicas` router can only approximate with the spec's replica counts."""
    if spec.traffic.router != "replicas":
        return []
    weights = [s.set_weight for s in spec.rollout.steps if s.set_weight is not None and s.set_weight < 100]
    return unmet_weights(weights, [(r.name, r.replicas) for r in spec.regions], spec.rollout.max_surge)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("crd", help="print the ModelDeployment CustomResourceDefinition (YAML)")
    p.set_defaults(func=_crd)
    d = sub.add_parser("docs", help="print a generated docs page: the field reference (default) or the presets")
    d.add_argument("page", nargs="?", choices=("reference", "presets"), default="reference")
    d.set_defaults(func=_docs)
    v = sub.add_parser("validate", help="check ModelDeployment files the way the operator reads them")
    v.add_argument("-f", "--filename", action="append", required=True, help="a YAML file (repeatable)")
    v.set_defaults(func=_validate)


def _crd(args: argparse.Namespace) -> int:
    sys.stdout.write(crd_yaml())
    return 0


def _docs(args: argparse.Namespace) -> int:
    if args.page == "presets":
        from bellwether.analysis.presets import presets_markdown

        sys.stdout.write(presets_markdown())
        return 0
    from bellwether.api.reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.filename:
        try:
            docs = [d for d in yaml.safe_load_all(Path(name).read_text()) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError) as e:
            failed += 1
            print(f"{name}: cannot read: {e}")
            continue
        found = [d for d in docs if d.get("kind") == "ModelDeployment"]
        if not found:
            print(f"{name}: no ModelDeployment in it")
        for doc in found:
            label = f"{name}: {(doc.get('metadata') or {}).get('name', '?')}"
            try:
                md = parse(doc)
            except SpecError as e:
                failed += 1
                print(f"{label}: invalid")
                for problem in e.problems:
                    print(f"  - {problem}")
            else:
                print(f"{label}: valid")
                for note in weight_notes(md.spec):
                    print(f"  note: {note}")
    return 1 if failed else 0
