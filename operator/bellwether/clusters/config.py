"""Where each region's API server is: the home cluster from in-cluster config or a kubeconfig, remote
regions from kubeconfig Secrets in the ModelDeployment's namespace.

A broken or missing Secret is the user's to fix, so the error says which Secret, which key and what is
wrong with it; it ends up in the ModelDeployment's status, never as a crash.
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import ConfigException, load_incluster_config
from kubernetes_asyncio.config.kube_config import KubeConfigLoader

from bellwether.api.spec import Region
from bellwether.clusters.client import Endpoint, ErrorHook, KubeClient

HOME = "home"
CREDENTIAL_TTL = 600.0  # re-read credentials this often: exec-plugin and projected tokens expire
SECRET_TTL = 10.0  # a Secret read is reused this long, by every ModelDeployment that names it


class ClusterConfigError(Exception):
    """A region's cluster cannot be configured; the message tells the user what to fix."""


@dataclass(frozen=True)
class Credentials:
    """What a kubeconfig or the in-cluster service account resolves to; shared by our client and kopf's."""

    server: str
    authorization: str | None = None  # the whole header value, e.g. "Bearer <token>"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    namespace: str | None = None


async def _credentials(cfg: Configuration, namespace: str | None = None) -> Credentials:
    auth = await cfg.auth_settings()
    authorization = auth["BearerToken"]["value"] if "BearerToken" in auth else None
    if cfg.username and cfg.password:
        authorization = "Basic " + base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
    return Credentials(
        server=str(cfg.host or ""),
        authorization=authorization,
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        insecure=not cfg.verify_ssl,
        tls_server_name=getattr(cfg, "tls_server_name", None),
        namespace=namespace,
    )


def endpoint_of(creds: Credentials) -> Endpoint:
    headers = {"Authorization": creds.authorization} if creds.authorization else {}
    tls: ssl.SSLContext | bool = True
    if creds.server.startswith("https"):
        context = ssl.create_default_context(cafile=creds.ca_file)
        if creds.cert_file and creds.key_file:
            context.load_cert_chain(creds.cert_file, creds.key_file)
        if creds.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        tls = context
    return Endpoint(creds.server, headers, tls, creds.tls_server_name)


async def credentials_from_kubeconfig(config: dict[str, Any], context: str | None = None) -> Credentials:
    cfg = Configuration()
    loader = KubeConfigLoader(config_dict=config, config_base_path=None, active_context=context)
    await loader.load_and_set(cfg)
    namespace = (loader.current_context or {}).get("context", {}).get("namespace")
    return await _credentials(cfg, namespace)


async def endpoint_from_kubeconfig(config: dict[str, Any], context: str | None = None) -> Endpoint:
    return endpoint_of(await credentials_from_kubeconfig(config, context))


def kubeconfig_path(kubeconfig: str | None = None) -> str:
    return kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")


async def home_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """In a pod: the service account. Elsewhere: `kubeconfig`, $KUBECONFIG or ~/.kube/config."""
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        cfg = Configuration()
        load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return await _credentials(cfg)
    with open(kubeconfig_path(kubeconfig)) as f:
        return await credentials_from_kubeconfig(yaml.safe_load(f), context)


async def home_endpoint(kubeconfig: str | None = None, context: str | None = None) -> Endpoint:
    return endpoint_of(await home_credentials(kubeconfig, context))


class Clusters:
    """The home cluster's client and, per kubeconfig Secret, a cached client of a remote region."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        kubeconfig: str | None = None,
        context: str | None = None,
        on_error: ErrorHook | None = None,
        secret_ttl: float = SECRET_TTL,
    ) -> None:
        self.session = session
        self.kubeconfig, self.context = kubeconfig, context
        self.on_error = on_error
        self.secret_ttl = secret_ttl
        self._home: tuple[float, KubeClient] | None = None
        # (namespace, name) -> (read at, the Secret or None when missing). Many ModelDeployments name
        # the same Secret and each cycle needs it: one GET per Secret per `secret_ttl` serves them all,
        # and a fixed or broken Secret still takes effect within `secret_ttl`.
        self._secrets: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._secrets_swept = time.monotonic()
        # (namespace, secret, key) -> (resourceVersion, created at, client)
        self._remote: dict[tuple[str, str, str], tuple[str, float, KubeClient]] = {}

    async def home(self) -> KubeClient:
        now = time.monotonic()
        if self._home is None or now - self._home[0] > CREDENTIAL_TTL:
            endpoint = await home_endpoint(self.kubeconfig, self.context)
            self._home = (now, KubeClient(HOME, endpoint, self.session, self.on_error))
        return self._home[1]

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret as read at most `secret_ttl` ago (None: it does not exist)."""
        now = time.monotonic()
        cached = self._secrets.get((namespace, name))
        if cached is not None and now - cached[0] < self.secret_ttl:
            return cached[1]
        if now - self._secrets_swept > CREDENTIAL_TTL:  # forget Secrets no longer named by anyone
            self._secrets = {k: v for k, v in self._secrets.items() if now - v[0] < self.secret_ttl}
            self._secrets_swept = now
        secret = await (await self.home()).get("Secret", namespace, name)
        self._secrets[(namespace, name)] = (time.monotonic(), secret)
        return secret

    async def for_region(self, namespace: str, region: Region) -> KubeClient:
        """The client of `region`'s cluster; raises ClusterConfigError saying what is wrong."""
        if region.cluster is None:
            return await self.home()
        ref = region.cluster.kubeconfig_secret
        cache_key = (namespace, ref.name, ref.key)
        secret = await self.secret(namespace, ref.name)
        if secret is None:
            self._remote.pop(cache_key, None)
            raise ClusterConfigError(
                f"region {region.name}: Secret {namespace}/{ref.name} not found; create it with the region's "
                f"kubeconfig under key {ref.key!r}"
            )
        now = time.monotonic()
        cached = self._remote.get(cache_key)
        version = str(secret.get("metadata", {}).get("resourceVersion", ""))
        if cached and cached[0] == version and now - cached[1] < CREDENTIAL_TTL:
            return cached[2]
        self._remote.pop(cache_key, None)
        endpoint = await self._parse(namespace, region.name, ref.name, ref.key, secret)
        client = KubeClient(region.name, endpoint, self.session, self.on_error)
        self._remote[cache_key] = (version, now, client)
        return client

    async def _parse(self, namespace: str, region: str, name: str, key: str, secret: dict[str, Any]) -> Endpoint:
        where = f"region {region}: Secret {namespace}/{name}"
        data = secret.get("data") or {}
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise ClusterConfigError(f"{where} has no key {key!r} (keys: {keys})")
        try:
            config = yaml.safe_load(base64.b64decode(data[key]))
            if not isinstance(config, dict) or not config.get("clusters"):
                raise ValueError("no clusters in it")
            return await endpoint_from_kubeconfig(config)
        except (ValueError, yaml.YAMLError, ConfigException, KeyError, TypeError, OSError, ssl.SSLError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ClusterConfigError(f"{where} key {key!r} is not a usable kubeconfig: {first_line}") from None
