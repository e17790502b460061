"""Reading a webhook's URL and Authorization header, from the spec or from a Secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bellwether.api.base import KeyRef
from bellwether.api.hooks import Endpoint

# (namespace, Secret key reference) -> the value; raises SecretError saying what is missing
Resolve = Callable[[str, KeyRef], Awaitable[str]]


class SecretError(Exception):
    """A Secret (or its key) a webhook names cannot be read; the message names it, never a value."""


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]

    def redact(self, text: str) -> str:
        """`text` without the URL or any header value in it (an answer echoing what it was sent)."""
        for secret in (self.url, *self.headers.values()):
            if secret:
                text = text.replace(secret, "***")
        return text


async def target(endpoint: Endpoint, namespace: str, resolve: Resolve) -> Target:
    """The URL and headers to call; SecretError when a Secret named for them cannot be read."""
    if endpoint.url_from is not None:
        url = (await resolve(namespace, endpoint.url_from.secret_key_ref)).strip()
        if not url.startswith(("http://", "https://")):
            ref = endpoint.url_from.secret_key_ref
            raise SecretError(f"Secret {namespace}/{ref.name} key {ref.key} does not hold an http(s):// URL")
    else:
        assert endpoint.url is not None  # the schema: exactly one of url and urlFrom
        url = endpoint.url
    headers = {"Content-Type": "application/json", "User-Agent": "bellwether"}
    if endpoint.authorization_from is not None:
        headers["Authorization"] = (await resolve(namespace, endpoint.authorization_from.secret_key_ref)).strip()
    return Target(url, headers)


def from_secrets(secrets: dict[tuple[str, str], dict[str, str]]) -> Resolve:
    """A resolver over Secrets held in memory, (namespace, name) -> key -> value: the simulator's and
    the tests' Secrets, and the shape the operator's resolver answers in."""

    async def resolve(namespace: str, ref: KeyRef) -> str:
        data = secrets.get((namespace, ref.name))
        if data is None:
            raise SecretError(f"Secret {namespace}/{ref.name} not found")
        if ref.key not in data:
            raise SecretError(f"Secret {namespace}/{ref.name} has no key {ref.key}")
        return data[ref.key]

    return resolve
