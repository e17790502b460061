"""What the API server does with a ModelDeployment, done in-process on the generated CRD.

An object sent to the API server is, in order: checked for its kind and apiVersion, stripped of status
(a create cannot set it), checked for unknown fields (`kubectl apply` asks for strict field validation),
its null fields pruned, defaulted from the schema, its ObjectMeta validated as for every object (a
custom resource's name is a DNS subdomain), then validated against the OpenAPI schema and every
`x-kubernetes-validations` CEL rule. This module does the same with the real rule texts, a real CEL
implementation (cel-python), jsonschema and apimachinery's name rules, so tests can say "kubectl apply
would refuse this". It is written from Kubernetes' sources, apart from `bellwether validate`, so that
tests comparing the two compare two readings of the API server, not one with itself.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate.utils
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "modeldeployments.bellwether.dev.yaml"


@functools.cache
def load_crd() -> dict[str, Any]:
    """The CRD as committed in `crds/` (what users apply); cached, so callers must not change it."""
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return crd


def object_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its object path (`spec.rollout.steps[*]`)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, join(path, name))
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}[*]")


def schema_props_errors(schema: dict[str, Any]) -> list[str]:
    """Every node checked against Kubernetes' own `JSONSchemaProps` schema (strict: unknown keywords refused).

    The CustomResourceDefinition schema stops at `items` (typed as "props or array"), so validating the
    CRD object alone would not look inside list items; checking each node on its own covers them all.
    """
    version = kubernetes_validate.utils.latest_version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    props = kubernetes_validate.utils.schema_contents(f"{folder}/jsonschemaprops-apiextensions-v1.json", version)
    defs = kubernetes_validate.utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(props) @ Registry())
    validator = jsonschema.Draft202012Validator(props, registry=registry)
    return [f"{path or '<root>'}: {e.message}" for path, node in nodes(schema) for e in validator.iter_errors(node)]


# --- Kubernetes' CEL libraries that cel-python lacks, with the semantics of k8s.io/apiserver/pkg/cel/library.


def _is_sorted(items: celtypes.ListType) -> celtypes.BoolType:
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(items: celtypes.ListType) -> celtypes.IntType:
    return celtypes.IntType(sum(int(i) for i in items))


KUBERNETES_FUNCTIONS = {"isSorted": _is_sorted, "sum": _sum}
_ENV = celpy.Environment()
_PROGRAMS: dict[str, celpy.Runner] = {}


def program(rule: str) -> celpy.Runner:
    """A compiled rule; raises `celpy.CELParseError` for a rule the API server would refuse too."""
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule), functions=KUBERNETES_FUNCTIONS)
    return _PROGRAMS[rule]


def passes(rule: str, value: Any) -> bool:
    """A rule on one value; an evaluation error (e.g. a missing field) fails, as in the API server."""
    try:
        result = program(rule).evaluate({"self": json_to_cel(value)})
    except celpy.CELEvalError:
        return False
    return result is True or result == celtypes.BoolType(True)


# --- The admission steps.


@dataclass(frozen=True)
class Rejection:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[Rejection]:
    """Strict field validation: fields the schema does not declare (else the API server drops them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or value is None:
        return []
    out: list[Rejection] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in value.items():
            if key not in schema["properties"]:
                out.append(Rejection(join(path, key), "unknown field"))
            else:
                out += unknown_fields(schema["properties"][key], sub, join(path, key))
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, sub in value.items():
            out += unknown_fields(schema["additionalProperties"], sub, join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out += unknown_fields(schema["items"], sub, join(path, i))
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting: absent properties with a `default` get it, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for key, sub in schema["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = apply_defaults(sub, out[key])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def as_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI v3.0 as Kubernetes reads it, in JSON Schema draft 4 terms: `nullable` and int-or-string spelled out."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: as_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = as_json_schema(value)
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@functools.cache
def _validator(schema_json: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(as_json_schema(json.loads(schema_json)))


def openapi_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[Rejection]:
    validator = _validator(json.dumps(schema, sort_keys=True))
    out = []
    for error in validator.iter_errors(value):
        where = path
        for part in error.absolute_path:
            where = join(where, part)
        out.append(Rejection(where, error.message))
    return out


def without_nulls(value: Any) -> Any:
    """The API server treats null-valued fields as absent in CEL (`has()` is false for them)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def numbers_as_doubles(schema: dict[str, Any], value: Any) -> Any:
    """The API server hands `type: number` fields to CEL as doubles even when written as `1`."""
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        return {
            k: numbers_as_doubles(props[k] if props and k in props else extra if isinstance(extra, dict) else {}, v)
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [numbers_as_doubles(schema["items"], v) for v in value]
    return value


def cel_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[Rejection]:
    """Every CEL rule on every node present in `value`, outermost first."""
    if value is None:
        return []
    value = without_nulls(value)
    out = [
        Rejection(path + rule.get("fieldPath", ""), rule["message"])
        for rule in schema.get("x-kubernetes-validations", [])
        if not passes(rule["rule"], value)
    ]
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                out += cel_errors(schema["properties"][key], sub, join(path, key))
            elif isinstance(schema.get("additionalProperties"), dict):
                out += cel_errors(schema["additionalProperties"], sub, join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out += cel_errors(schema["items"], sub, join(path, i))
    return out


# --- ObjectMeta, as apimachinery validates it for every object (ValidateObjectMetaAccessor).

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
OBJECT_META_FIELDS = {
    "name": str,
    "generateName": str,
    "namespace": str,
    "selfLink": str,
    "uid": str,
    "resourceVersion": str,
    "generation": int,
    "creationTimestamp": str,
    "deletionTimestamp": str,
    "deletionGracePeriodSeconds": int,
    "labels": dict,
    "annotations": dict,
    "ownerReferences": list,
    "finalizers": list,
    "managedFields": list,
}


def is_subdomain(value: str) -> bool:
    return len(value) <= 253 and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_qualified_name(value: str) -> bool:
    parts = value.split("/")
    if len(parts) > 2 or (len(parts) == 2 and not is_subdomain(parts[0])):
        return False
    return 0 < len(parts[-1]) <= 63 and QUALIFIED_NAME.fullmatch(parts[-1]) is not None


def _meta_types(meta: dict[str, Any]) -> list[Rejection]:
    out = [Rejection(f"metadata.{k}", "unknown field") for k in meta if k not in OBJECT_META_FIELDS]
    for key, kind in OBJECT_META_FIELDS.items():
        value = meta.get(key)
        wrong = value is not None and (not isinstance(value, kind) or isinstance(value, bool))
        if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
            wrong = True
        if wrong:
            out.append(Rejection(f"metadata.{key}", f"must be of type {kind.__name__}"))
    return out


def meta_errors(meta: Any) -> list[Rejection]:
    """ObjectMeta's rules (apimachinery's ValidateObjectMetaAccessor with NameIsDNSSubdomain, as the custom
    resource validator calls it): names, namespace, label and annotation keys and values, finalizers."""
    if not isinstance(meta, dict):
        return [Rejection("metadata.name", "name or generateName is required")]
    typed = _meta_types(meta)
    if typed:
        return typed
    out = []
    name, namespace = meta.get("name") or "", meta.get("namespace") or ""
    if not name:
        out.append(Rejection("metadata.name", "Required value: name or generateName is required"))
    elif not is_subdomain(name):
        out.append(Rejection("metadata.name", "a lowercase RFC 1123 subdomain"))
    if namespace and not (len(namespace) <= 63 and DNS1123_LABEL.fullmatch(namespace)):
        out.append(Rejection("metadata.namespace", "a lowercase RFC 1123 label"))
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    out += [Rejection("metadata.labels", f"{k!r}: not a qualified name") for k in labels if not is_qualified_name(k)]
    out += [
        Rejection("metadata.labels", f"{v!r}: not a label value")
        for v in labels.values()
        if len(v) > 63 or not LABEL_VALUE.fullmatch(v)
    ]
    out += [
        Rejection("metadata.annotations", f"{k!r}: not a qualified name")
        for k in annotations
        if not is_qualified_name(k.lower())
    ]
    if sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items()) > 256 * 1024:
        out.append(Rejection("metadata.annotations", "Too long: must have at most 262144 bytes"))
    finalizers = meta.get("finalizers") or []
    out += [
        Rejection("metadata.finalizers", f"{f!r}: not a qualified name")
        for f in finalizers
        if not is_qualified_name(str(f))
    ]
    return out


def type_meta_errors(crd: dict[str, Any], obj: dict[str, Any]) -> list[Rejection]:
    """kubectl finds the API by apiVersion and kind; the API server checks both again (ValidateTypeMeta)."""
    names, version = crd["spec"]["names"], crd["spec"]["versions"][0]["name"]
    expected = f"{crd['spec']['group']}/{version}"
    out = []
    if obj.get("kind") != names["kind"]:
        out.append(Rejection("kind", f"must be {names['kind']}"))
    if obj.get("apiVersion") != expected:
        out.append(Rejection("apiVersion", f"must be {expected}"))
    return out


def prune_nulls(schema: dict[str, Any], value: Any) -> Any:
    """Null-valued fields that are not nullable are dropped before defaulting (then defaulted if they have one)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None
        out = {}
        for key, sub in value.items():
            node = props.get(key, extra or {})
            if sub is None and not node.get("nullable"):
                continue
            out[key] = prune_nulls(node, sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_nulls(schema["items"], v) for v in value]
    return value


# etcd's default --max-request-bytes: a larger object cannot be stored.
ETCD_REQUEST_LIMIT = 1_572_864


def admit(crd: dict[str, Any], obj: dict[str, Any]) -> list[Rejection]:
    """Why the API server would refuse `obj` (a whole ModelDeployment); empty when it would accept it."""
    typed = type_meta_errors(crd, obj)
    if typed:
        return typed
    schema = object_schema(crd)
    created = {k: v for k, v in obj.items() if k != "status"}  # a create cannot set status
    unknown = unknown_fields(schema, created)
    defaulted = apply_defaults(schema, prune_nulls(schema, created))
    out = unknown + meta_errors(defaulted.get("metadata"))
    out += openapi_errors(schema, defaulted) + cel_errors(schema, numbers_as_doubles(schema, defaulted))
    if not out and len(json.dumps(defaulted, separators=(",", ":")).encode()) > ETCD_REQUEST_LIMIT:
        out.append(Rejection("", "etcdserver: request is too large"))
    return out
