"""`bellwether crd` prints the generated CRD, `bellwether docs` its field reference, and
`bellwether validate -f` checks ModelDeployment files as the API server would admit them.

The checks themselves live in `validate` (and the modules it uses), imported when the command runs,
so `bellwether crd` stays instant."""

from __future__ import annotations

import argparse
import sys

from bellwether.api.crd import crd_yaml, template_crd_yaml


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "crd",
        help="print the ModelDeployment (or ClusterAnalysisTemplate) CustomResourceDefinition (YAML)",
        description="Print a CustomResourceDefinition generated from the models, as shipped in crds/ and the "
        "Helm chart: `bellwether crd | kubectl apply -f -`, `bellwether crd ClusterAnalysisTemplate | kubectl "
        "apply -f -`.",
    )
    p.add_argument("kind", nargs="?", choices=("ModelDeployment", "ClusterAnalysisTemplate"), default="ModelDeployment")
    p.set_defaults(func=_crd)
    d = sub.add_parser(
        "docs",
        help="print a generated docs page: the field reference (default) or the presets",
        description="Print a page generated from the code: every field of the spec with its type, default and "
        "bounds (reference), or the built-in metric queries (presets).",
    )
    d.add_argument("page", nargs="?", choices=("reference", "presets"), default="reference")
    d.set_defaults(func=_docs)
    v = sub.add_parser(
        "validate",
        help="check ModelDeployment files as the API server would admit them, and parse their queries",
        description="Check every ModelDeployment in the files as the API server admits it (the CRD's schema and "
        "CEL rules, strict types: no quoted numbers, object names, unknown fields), read the way kubectl reads "
        "YAML, and parse every metric query as Prometheus would. ClusterAnalysisTemplates are checked the same "
        "way, and the templates a ModelDeployment names are resolved among the files read. Lists are checked "
        "item by item; other kinds are named and skipped. Valid files get notes on what the operator cannot do "
        "exactly (step weights) and on templates not in the files.",
        epilog="Exit status: 0 when every ModelDeployment and ClusterAnalysisTemplate is valid; 1 when one is "
        "invalid (with --require-templates: names a template the files do not hold), a file cannot be read, "
        "or a file (or stdin) holds no ModelDeployment; 2 for a usage error.",
    )
    v.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a YAML or JSON file, a directory (every .yaml, .yml and .json file in it, recursively) or - for "
        "stdin (repeatable)",
    )
    v.add_argument(
        "--require-templates",
        action="store_true",
        help="fail a ModelDeployment naming a ClusterAnalysisTemplate the files do not hold (default: a note, "
        "since it may already be in the cluster)",
    )
    v.set_defaults(func=_validate)


def _crd(args: argparse.Namespace) -> int:
    sys.stdout.write(template_crd_yaml() if args.kind == "ClusterAnalysisTemplate" else crd_yaml())
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
    from bellwether.cli.validate import validate

    return validate(args.filename, sys.stdout, require_templates=args.require_templates)
