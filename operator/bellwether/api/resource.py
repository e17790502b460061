"""The whole `ModelDeployment` object, the revision hash, and readable validation errors."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bellwether.api.base import Invalid
from bellwether.api.patterns import meaning
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


def _join(where: str, at: str) -> str:
    if not where:
        return at
    return where + at if at.startswith("[") else f"{where}.{at}"


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class found by following an error's location from `root`, to name its known fields."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        model = _first_model(field.annotation)
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _unknown_field(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    if not loc:  # a model-level error (a cross-field rule) has no field to suggest
        return "is not a known field"
    model = _model_at(root, loc[:-1])
    if model is None:
        return "is not a known field"
    known = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"is not a known field; {hint}known fields here: {', '.join(known)}"


def _say(e: ErrorDetails, root: type[BaseModel]) -> str:
    """pydantic's message, reworded to say what is allowed (and never to print a raw regex)."""
    kind, ctx, got = e["type"], e.get("ctx", {}), e.get("input")
    shown = f" (got {got!r})" if isinstance(got, (str, int, float)) else ""
    words: dict[str, str] = {
        "missing": "is required",
        "literal_error": f"must be one of {ctx.get('expected')}{shown}",
        "enum": f"must be one of {ctx.get('expected')}{shown}",
        "string_pattern_mismatch": f"must be {meaning(str(ctx.get('pattern')))}{shown}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}{shown}",
        "greater_than": f"must be greater than {ctx.get('gt')}{shown}",
        "less_than_equal": f"must be at most {ctx.get('le')}{shown}",
        "less_than": f"must be less than {ctx.get('lt')}{shown}",
        "string_too_short": f"must have at least {ctx.get('min_length')} character(s)",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "too_long": f"must have at most {ctx.get('max_length')} items",
        "int_parsing": f"must be a whole number{shown}",
        "int_type": f"must be a whole number{shown}",
        "int_from_float": f"must be a whole number{shown}",
        "float_parsing": f"must be a number{shown}",
        "float_type": f"must be a number{shown}",
        "string_type": f"must be a string{shown}",
        "bool_type": f"must be true or false{shown}",
        "bool_parsing": f"must be true or false{shown}",
        "list_type": "must be a list",
        "dict_type": "must be a mapping of names to values",
        "model_type": "must be a mapping of fields (an object)",
        "model_attributes_type": "must be a mapping of fields (an object)",
    }
    if kind == "extra_forbidden":
        return _unknown_field(root, tuple(e["loc"]))
    if kind in words:
        return words[kind]
    return str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def explain(error: ValidationError, prefix: str = "spec", root: type[BaseModel] | None = None) -> SpecError:
    """One line per problem: the full field path (`spec.rollout.steps[2].setWeight`), then what is allowed."""
    model = root or (ModelDeploymentSpec if prefix == "spec" else ModelDeployment)
    problems = []
    for e in error.errors():
        where = ".".join(p for p in (prefix, _path(tuple(e["loc"]))) if p)
        cause = e.get("ctx", {}).get("error")
        if isinstance(cause, Invalid):
            where = _join(where, cause.at)
        problems.append(f"{where or 'object'}: {_say(e, model)}")
    return SpecError(problems)


def parse_spec(raw: dict[str, Any]) -> ModelDeploymentSpec:
    try:
        return ModelDeploymentSpec.model_validate(raw)
    except ValidationError as e:
        raise explain(e) from None


def parse(raw: Any) -> ModelDeployment:
    """A whole object from YAML or the API server; raises SpecError naming every bad field."""
    if not isinstance(raw, dict):
        raise SpecError([f"object: must be a mapping of fields (got {type(raw).__name__})"])
    if raw.get("kind", KIND) != KIND:
        raise SpecError([f"kind: must be {KIND} (got {raw.get('kind')!r})"])
    if raw.get("apiVersion", API_VERSION) != API_VERSION:
        raise SpecError([f"apiVersion: must be {API_VERSION} (got {raw.get('apiVersion')!r})"])
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
