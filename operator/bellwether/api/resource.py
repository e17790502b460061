"""The whole `ModelDeployment` object, the revision hash, and readable validation errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bellwether.api.spec import ModelDeploymentSpec, dump
from bellwether.api.status import ModelDeploymentStatus, Template

GROUP = "bellwether.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
API_VERSION = f"{GROUP}/{VERSION}"


class ObjectMeta(BaseModel):
    """Only the metadata the operator reads; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    namespace: str = "default"
    generation: int = 1
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ModelDeployment(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)


class SpecError(ValueError):
    """An invalid ModelDeployment, with one line per problem: the field, then what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("literal", "str", "int"):
            continue  # pydantic's internal union / validator tags say nothing to a person
        else:
            out += f".{part}" if out else part
    return out


def explain(error: ValidationError, prefix: str = "spec") -> SpecError:
    problems = []
    for e in error.errors():
        where = ".".join(p for p in (prefix, _path(tuple(e["loc"]))) if p) or "object"
        msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e["type"] == "missing":
            msg = "is required"
        elif e["type"] == "extra_forbidden":
            msg = "is not a known field (check the spelling; see docs/reference.md)"
        problems.append(f"{where}: {msg}")
    return SpecError(problems)


def parse_spec(raw: dict[str, Any]) -> ModelDeploymentSpec:
    try:
        return ModelDeploymentSpec.model_validate(raw)
    except ValidationError as e:
        raise explain(e) from None


def parse(raw: dict[str, Any]) -> ModelDeployment:
    """A whole object from YAML or the API server; raises SpecError naming every bad field."""
    if raw.get("kind", KIND) != KIND:
        raise SpecError([f"kind: expected {KIND}, got {raw.get('kind')!r}"])
    try:
        return ModelDeployment.model_validate(raw)
    except ValidationError as e:
        raise explain(e, prefix="") from None


def template_of(spec: ModelDeploymentSpec) -> Template:
    return Template(model=spec.model, runtime=spec.runtime)


def revision_of(template: Template) -> str:
    """A short stable hash of everything that shapes the serving pods; replicas and routing are excluded."""
    canonical = json.dumps(dump(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]
