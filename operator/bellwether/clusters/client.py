"""A small Kubernetes REST client: just the verbs Bellwether uses, on aiohttp.

Kept thin on purpose: every request goes through one method, so API errors are counted per cluster and
verb in one place, and the tests' HTTP-level API stand-in sees exactly what a real API server would.
That method also retries what a server asks to be retried: 429 after its Retry-After, and 5xx, a few
times with a short backoff (every verb used here is idempotent). An unreachable server is not retried:
the cycle reports the region and moves on; the next cycle tries again.
Credentials come from `kubernetes_asyncio`'s kubeconfig and in-cluster loaders (tokens, client
certificates, exec plugins), re-read by `config.py` before they expire.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

FIELD_MANAGER = "bellwether"

# Kinds Bellwether reads or writes: kind -> (API path prefix, plural).
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Service": ("/api/v1", "services"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "Pod": ("/api/v1", "pods"),
    "Secret": ("/api/v1", "secrets"),
    "Event": ("/api/v1", "events"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "ModelDeployment": ("/apis/bellwether.dev/v1alpha1", "modeldeployments"),
    "ClusterAnalysisTemplate": ("/apis/bellwether.dev/v1alpha1", "clusteranalysistemplates"),  # cluster-scoped
}

ErrorHook = Callable[[str, str], None]  # (cluster, verb): called once per failed request
RETRIED = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 3  # per request, for the statuses above
BACKOFF = 0.5  # seconds before the 2nd attempt, doubled after; a Retry-After header replaces it
MAX_RETRY_AFTER = 10.0  # a longer Retry-After ends the request: the next cycle is a better time to retry


class ApiError(Exception):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, cluster: str, verb: str, path: str, status: int, reason: str, message: str) -> None:
        self.cluster, self.verb, self.path = cluster, verb, path
        self.status, self.reason, self.message = status, reason, message
        self.retry_after: float | None = None  # what the server's Retry-After header asked for
        super().__init__(f"{verb} {path} in cluster {cluster}: {status} {reason}: {message}".strip())


@dataclass(frozen=True)
class Endpoint:
    """Where a cluster's API server is and how to authenticate to it."""

    server: str
    headers: Mapping[str, str]
    ssl: ssl.SSLContext | bool  # True = system defaults; an SSLContext for a custom CA / client cert
    server_hostname: str | None = None


def path_for(kind: str, namespace: str | None, name: str | None = None) -> str:
    prefix, plural = KINDS[kind]
    out = prefix + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    return out + (f"/{quote(name)}" if name else "")


class KubeClient:
    def __init__(
        self, cluster: str, endpoint: Endpoint, session: aiohttp.ClientSession, on_error: ErrorHook | None = None
    ) -> None:
        self.cluster = cluster
        self.endpoint = endpoint
        self.session = session
        self.on_error = on_error
        # What `region.apply_region` last applied here, to skip unchanged objects (see RESYNC_SECONDS).
        self.applied: dict[str, tuple[str, float]] = {}  # object path -> (digest, when)
        self.pruned: dict[str, tuple[frozenset[tuple[str, str]], float]] = {}  # selector -> (kept, when)
        self.swept = time.monotonic()  # when both were last rid of entries past resync
        self.served_kinds: set[str] = set()  # route kinds found served here (their CRDs are installed)
        # What `region.observe_region` last listed of a steady region's pods, and the Deployments'
        # versions then: "namespace/selector" -> (versions, pods, when).
        self.listed_pods: dict[str, tuple[tuple[tuple[str, str], ...], list[dict[str, Any]], float]] = {}
        self.changed_at = -math.inf  # when `region.apply_region` last wrote or deleted anything here

    async def request(
        self,
        verb: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        not_found_ok: bool = False,
    ) -> dict[str, Any] | None:
        """One API call; a 404 is None when `not_found_ok`, anything else non-2xx raises ApiError.
        429 and 5xx answers are retried (see the module's docstring) before they raise."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._request_once(verb, path, params, body, content_type, not_found_ok)
            except ApiError as e:
                wait = _retry_wait(e, attempt)
                if wait is None or verb == "create":  # a create is not idempotent
                    raise
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt either returns or raises

    async def _request_once(
        self,
        verb: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        not_found_ok: bool,
    ) -> dict[str, Any] | None:
        headers = {**self.endpoint.headers, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        method = {"get": "GET", "list": "GET", "create": "POST", "delete": "DELETE"}.get(verb, "PATCH")
        try:
            async with self.session.request(
                method,
                self.endpoint.server.rstrip("/") + path,
                params=params,
                data=data,
                headers=headers,
                ssl=self.endpoint.ssl,
                server_hostname=self.endpoint.server_hostname,
            ) as resp:
                text = await resp.text()
                if resp.status == 404 and not_found_ok:
                    return None
                if resp.status >= 400:
                    reason, message = _status_of(text, resp.reason or "")
                    error = ApiError(self.cluster, verb, path, resp.status, reason, message)
                    error.retry_after = _seconds(resp.headers.get("Retry-After"))
                    raise error
                result: dict[str, Any] = json.loads(text) if text else {}
                return result
        except ApiError:
            self._count(verb)
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._count(verb)
            raise ApiError(self.cluster, verb, path, 0, "Unreachable", str(e) or type(e).__name__) from e

    def _count(self, verb: str) -> None:
        if self.on_error is not None:
            self.on_error(self.cluster, verb)

    async def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return await self.request("get", path_for(kind, namespace, name), not_found_ok=True)

    async def list(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        result = await self.request("list", path_for(kind, namespace), params=params)
        assert result is not None
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def apply(
        self, obj: Mapping[str, Any], *, force: bool = True, manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Server-side apply: we own exactly the fields we send; `force` takes them back from anyone else."""
        meta = obj["metadata"]
        params = {"fieldManager": manager, "force": "true" if force else "false"}
        result = await self.request(
            "apply",
            path_for(obj["kind"], meta.get("namespace"), meta["name"]),
            params=params,
            body=obj,
            content_type="application/apply-patch+yaml",  # JSON is valid YAML
        )
        assert result is not None
        return result

    async def merge_patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
        resource_version: str | None = None,
    ) -> dict[str, Any] | None:
        """A JSON merge patch; with `resource_version`, only if nobody changed the object since then
        (otherwise ApiError 409 Conflict)."""
        path = path_for(kind, namespace, name) + (f"/{subresource}" if subresource else "")
        if resource_version is not None:
            meta = {**patch.get("metadata", {}), "resourceVersion": resource_version}
            patch = {**patch, "metadata": meta}
        return await self.request(
            "patch", path, body=patch, content_type="application/merge-patch+json", not_found_ok=True
        )

    async def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete (foreground, so a Deployment's pods go with it); already gone is fine."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        await self.request("delete", path_for(kind, namespace, name), body=body, not_found_ok=True)


def _seconds(header: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is not used by API servers)."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _retry_wait(error: ApiError, attempt: int) -> float | None:
    """How long to wait before attempt `attempt + 1`, or None when the error is final."""
    if error.status not in RETRIED or attempt >= ATTEMPTS:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
    return float(BACKOFF * 2 ** (attempt - 1))


def _status_of(text: str, default: str) -> tuple[str, str]:
    try:
        status = json.loads(text)
    except ValueError:
        return default, text[:200]
    if not isinstance(status, dict):
        return default, text[:200]
    return str(status.get("reason") or default), str(status.get("message") or "")
