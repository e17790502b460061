"""What the API server refuses in a ModelDeployment, found without one: `bellwether validate`'s checks.

The operator's models are lax where the API server is strict, because the operator only ever reads
objects the API server has already admitted: pydantic turns `replicas: "4"` into 4, ignores unknown
top-level fields and never looks at `metadata.name`. A file is checked here the way the API server
admits it (apiextensions-apiserver's custom resource strategy):

1. kind and apiVersion of the resource; strict field validation (unknown fields, `kubectl apply`'s default);
2. ObjectMeta as for every object: the name a DNS subdomain, the namespace a DNS label, label and
   annotation keys qualified names, label values short words, annotations at most 256 KiB;
3. null fields pruned (the schema then defaults them), status dropped (a create cannot set it);
4. the spec in pydantic's strict mode (no quoted numbers, no numbers for strings) with every range,
   pattern and cross-field rule the CRD has as CEL;
5. the size etcd can store.

Tests run this and the generated CRD (schema and CEL, evaluated in-process) over the bad-input catalog
and check that both refuse, at the same field.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bellwether.api import API_VERSION, GROUP, KIND, ModelDeployment
from bellwether.api.resource import explain

OBJECT_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
# etcd's default --max-request-bytes: the largest object the API server can store.
ETCD_LIMIT = 1_572_864
ANNOTATIONS_LIMIT = 262_144  # every annotation's key and value together (apimachinery's TotalAnnotationSizeLimitB)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

SUBDOMAIN_WORDS = (
    "a Kubernetes object name (a DNS subdomain): at most 253 lowercase letters, digits, '-' and '.', "
    "each dot-separated part starting and ending with a letter or digit (e.g. llama-chat or llama.v2)"
)
LABEL_WORDS = "a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
QUALIFIED_WORDS = (
    "a qualified name: an optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', '_' "
    "and '.', starting and ending with a letter or digit (e.g. app.kubernetes.io/name)"
)
LABEL_VALUE_WORDS = (
    "a label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)

# ObjectMeta's fields and the JSON type each must have; anything else is an unknown field.
_STRINGS, _INTEGER, _MAP, _LIST = "a string", "a whole number", "a mapping of strings to strings", "a list"
META_FIELDS = {
    "name": _STRINGS,
    "generateName": _STRINGS,
    "namespace": _STRINGS,
    "selfLink": _STRINGS,
    "uid": _STRINGS,
    "resourceVersion": _STRINGS,
    "generation": _INTEGER,
    "creationTimestamp": _STRINGS,
    "deletionTimestamp": _STRINGS,
    "deletionGracePeriodSeconds": _INTEGER,
    "labels": _MAP,
    "annotations": _MAP,
    "ownerReferences": _LIST,
    "finalizers": _LIST,
    "managedFields": _LIST,
}


@dataclass(frozen=True)
class Admission:
    """The verdict on one object: the model when the API server would admit it, else every problem."""

    model: ModelDeployment | None
    problems: list[str] = field(default_factory=list)


def dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value) is not None


def dns_label(value: str) -> bool:
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def qualified_name(value: str) -> bool:
    """apimachinery's IsQualifiedName: `name` or `prefix/name`."""
    parts = value.split("/")
    if len(parts) > 2 or (len(parts) == 2 and not dns_subdomain(parts[0])):
        return False
    name = parts[-1]
    return 0 < len(name) <= 63 and _NAME_PART.fullmatch(name) is not None


def label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


def _unknown(key: str, known: tuple[str, ...] | list[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    path = f"{where}.{key}" if where else key
    return f"{path}: is not a known field; {hint}known fields here: {', '.join(known)}"


def type_meta(doc: dict[str, Any]) -> list[str]:
    """The resource the object names; kubectl needs both fields to find the API to send it to."""
    problems = []
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if kind is None:
        problems.append(f"kind: is required (kubectl: kind not set); use {KIND}")
    elif kind != KIND:
        problems.append(f"kind: must be {KIND} (got {kind!r})")
    if version is None:
        problems.append(f"apiVersion: is required (kubectl: apiVersion not set); use {API_VERSION}")
    elif version != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION} (got {version!r})")
    problems += [_unknown(k, OBJECT_FIELDS, "") for k in doc if k not in OBJECT_FIELDS]
    return problems


def _typed(value: Any, kind: str) -> bool:
    if kind == _STRINGS:
        return isinstance(value, str)
    if kind == _INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _MAP:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, list)


def metadata_problems(meta: Any) -> list[str]:
    """ObjectMeta as the API server validates it for every object (apimachinery's ValidateObjectMeta,
    with the custom resources' rule that the name is a DNS subdomain)."""
    if meta is None:
        return ["metadata.name: is required"]
    if not isinstance(meta, dict):
        return ["metadata: must be a mapping of fields (an object)"]
    problems = [_unknown(k, list(META_FIELDS), "metadata") for k in meta if k not in META_FIELDS]
    for key, kind in META_FIELDS.items():
        if meta.get(key) is not None and not _typed(meta[key], kind):
            problems.append(f"metadata.{key}: must be {kind} (got {meta[key]!r})"[:300])
    if problems:
        return problems
    name, namespace = meta.get("name"), meta.get("namespace")
    if not name:
        problems.append("metadata.name: is required (kubectl apply needs a name; generateName only works with create)")
    elif not dns_subdomain(name):
        problems.append(f"metadata.name: must be {SUBDOMAIN_WORDS} (got {name!r})")
    if namespace and not dns_label(namespace):
        problems.append(f"metadata.namespace: must be {LABEL_WORDS} (got {namespace!r})")
    return (
        problems
        + _labels(meta.get("labels") or {})
        + _annotations(meta.get("annotations") or {})
        + _finalizers(meta.get("finalizers") or [])
    )


def _labels(labels: dict[str, str]) -> list[str]:
    problems = [f"metadata.labels: key {k!r} must be {QUALIFIED_WORDS}" for k in labels if not qualified_name(k)]
    return problems + [
        f"metadata.labels.{k}: must be {LABEL_VALUE_WORDS} (got {v!r})"[:300]
        for k, v in labels.items()
        if not label_value(v)
    ]


def _annotations(annotations: dict[str, str]) -> list[str]:
    # Case does not matter in annotation keys (the API server lowercases them to check).
    problems = [
        f"metadata.annotations: key {k!r} must be {QUALIFIED_WORDS}"
        for k in annotations
        if not qualified_name(k.lower())
    ]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_LIMIT:
        problems.append(f"metadata.annotations: must have at most {ANNOTATIONS_LIMIT} bytes in all (has {size})")
    return problems


def _finalizers(finalizers: list[Any]) -> list[str]:
    problems = [
        f"metadata.finalizers: {f!r} must be {QUALIFIED_WORDS}"
        for f in finalizers
        if not isinstance(f, str) or not qualified_name(f)
    ]
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        problems.append("metadata.finalizers: orphan and foregroundDeletion cannot both be set")
    return problems


def as_sent(value: Any, path: str, problems: list[str]) -> Any:
    """The value as the API server works on it: fields set to null are pruned (the schema's default
    then applies, as for an absent field); NaN and infinities, which JSON cannot carry, are reported."""
    if isinstance(value, dict):
        return {k: as_sent(v, f"{path}.{k}" if path else k, problems) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [as_sent(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path}: {value} is not a JSON number; kubectl cannot send it")
    return value


def _hint(error: dict[str, Any]) -> str:
    """What to write instead, where YAML's quoting is the likely cause."""
    kind, got = error["type"], error.get("input")
    if kind in ("int_type", "float_type") and isinstance(got, str):
        return "; the API server takes no quoted numbers: write it without quotes"
    if kind == "string_type" and isinstance(got, (int, float)) and not isinstance(got, bool):
        return "; YAML read the unquoted value as a number: put it in quotes"
    if kind == "string_type" and isinstance(got, bool):
        return "; YAML read the unquoted value as true/false (yes, no, on, off, y and n too): put it in quotes"
    return ""


def model_problems(doc: dict[str, Any]) -> tuple[ModelDeployment | None, list[str]]:
    """The spec in the models' strict mode: the API server's types, every range, pattern and CEL rule."""
    problems: list[str] = []
    sent = as_sent({k: v for k, v in doc.items() if k != "status"}, "", problems)
    try:
        # by_name=False: the models also take snake_case names (populate_by_name), the API server only camelCase
        model = ModelDeployment.model_validate(sent, strict=True, by_alias=True, by_name=False)
    except ValidationError as e:
        explained = explain(e, prefix="", root=ModelDeployment).problems
        hints = [_hint(dict(error)) for error in e.errors()]
        # metadata is checked by metadata_problems, in the API server's terms
        problems += [p + h for p, h in zip(explained, hints, strict=True) if not p.startswith("metadata")]
        return None, problems
    return (None if problems else model), problems


def size_problems(doc: dict[str, Any]) -> list[str]:
    size = len(json.dumps(doc, separators=(",", ":"), default=str).encode())
    if size > ETCD_LIMIT:
        return [f"object: is {size // 1024} KiB as JSON; etcd stores at most {ETCD_LIMIT // 1024} KiB per object"]
    return []


def admission(doc: Any) -> Admission:
    """Everything the API server would refuse in `doc`, one line per problem, the field first."""
    if not isinstance(doc, dict):
        return Admission(None, [f"object: must be a mapping of fields (got {type(doc).__name__})"])
    problems = type_meta(doc) + metadata_problems(doc.get("metadata"))
    model, spec_problems = model_problems(doc)
    problems += spec_problems
    if not problems:
        problems += size_problems(doc)
    return Admission(None if problems else model, problems)


def belongs_to_us(doc: Any) -> bool:
    """A document meant as a ModelDeployment: our kind, our API group, or a kind close to ours (a typo)."""
    if not isinstance(doc, dict):
        return False
    kind, version = doc.get("kind"), doc.get("apiVersion")
    if isinstance(version, str) and version.split("/")[0] == GROUP:
        return True
    return isinstance(kind, str) and (kind == KIND or bool(difflib.get_close_matches(kind, [KIND], n=1, cutoff=0.8)))
