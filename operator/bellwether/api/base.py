"""What every API model shares: the wire naming, CEL rule entries, and errors that know their field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from bellwether.api.patterns import DNS_SUBDOMAIN


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are typos, so they are errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; the message is what `kubectl apply` prints."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class Invalid(ValueError):
    """A cross-field problem raised by a model validator, pointing below the model that found it.

    pydantic locates a model validator's error at the model itself (`spec.rollout`); `at` carries the
    rest of the path (`steps[2].setWeight`) so the message names the exact field to fix.
    """

    def __init__(self, at: str, message: str) -> None:
        self.at = at
        super().__init__(message)


class KeyRef(Wire):
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="The Secret's (or ConfigMap's) name."
    )
    key: str = Field(min_length=1, max_length=253, description="The key within it.")
