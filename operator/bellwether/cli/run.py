"""`bellwether run`: the operator process (kopf), its `/metrics` and its health probe."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import sys
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the operator against the current kubeconfig context or in-cluster",
        description="Run the operator: watch ModelDeployments and roll them out, serve Prometheus metrics and a "
        "health probe. In a pod it uses its service account; elsewhere --kubeconfig, $KUBECONFIG or "
        "~/.kube/config. It checks that configuration once before starting and exits if there is none.",
        epilog="Exit status: 0 when stopped (SIGTERM, SIGINT); 1 when no cluster is configured or the "
        "kubeconfig cannot be used; 2 for a usage error.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable; globs allowed)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    p.add_argument("--metrics-port", type=int, default=8080, help="serve Prometheus metrics on :PORT/metrics")
    p.add_argument("--health-port", type=int, default=8081, help="serve liveness/readiness on :PORT/healthz")
    p.add_argument("--log-format", choices=["json", "text"], default="text")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    peering = p.add_mutually_exclusive_group()
    peering.add_argument("--peering", metavar="NAME", help="coordinate with other replicas through this peering")
    peering.add_argument("--standalone", action="store_true", help="no peering: the only replica")
    p.add_argument(
        "--priority",
        type=int,
        help="peering priority: the live replica with the highest one acts (default: random, so replicas differ)",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "--interval",
        type=float,
        default=30.0,
        help="longest wait in seconds between two rollout cycles of one ModelDeployment while the operator keeps "
        "up (default 30)",
    )
    notify = p.add_argument_group(
        "installation-wide notifications", "every ModelDeployment's rollout events, to one more receiver"
    )
    notify.add_argument(
        "--notify-secret",
        metavar="NAMESPACE/NAME",
        help="a Secret holding the receiver's URL (docs/notifications.md); read when sending, never logged",
    )
    notify.add_argument("--notify-key", default="url", help="the Secret's key holding the URL (default url)")
    notify.add_argument(
        "--notify-authorization-key", metavar="KEY", help="a key of the same Secret holding an Authorization header"
    )
    notify.add_argument("--notify-format", choices=["json", "slack"], default="json")
    notify.add_argument(
        "--notify-events", metavar="EVENT,...", default="", help="events to send, comma-separated (default: all)"
    )
    p.set_defaults(func=_run)


def installation_receivers(args: argparse.Namespace) -> tuple[Any, ...]:
    """The `--notify-*` flags as a receiver; a usage error (ValueError) names the flag at fault."""
    if not args.notify_secret:
        return ()
    from pydantic import ValidationError

    from bellwether.api.hooks import Notification
    from bellwether.hooks import Receiver

    namespace, _, name = args.notify_secret.partition("/")
    if not namespace or not name:
        raise ValueError(f"--notify-secret {args.notify_secret!r}: give NAMESPACE/NAME")

    def source(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": name, "key": key}}

    doc: dict[str, Any] = {"name": "installation", "urlFrom": source(args.notify_key), "format": args.notify_format}
    if args.notify_authorization_key:
        doc["authorizationFrom"] = source(args.notify_authorization_key)
    doc["events"] = [e.strip() for e in args.notify_events.split(",") if e.strip()]
    try:
        notification = Notification.model_validate(doc)
    except ValidationError as e:
        raise ValueError(f"--notify-*: {e.errors()[0]['msg']} ({args.notify_events or args.notify_secret})") from e
    return (Receiver(notification, namespace, installation=True),)


def cluster_problem(kubeconfig: str | None, context: str | None) -> str | None:
    """Why the operator could not reach any cluster, or None: the home cluster's credentials loaded the
    way the operator loads them. Without this, kopf would log a traceback and retry every minute for a
    configuration that is simply absent. An unreachable API server is not checked: that can heal."""
    import yaml
    from kubernetes_asyncio.config import ConfigException

    from bellwether.clusters.config import home_credentials, kubeconfig_path

    in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    where = "the in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig_path(kubeconfig)}"
    try:
        creds = asyncio.run(home_credentials(kubeconfig, context))
    except FileNotFoundError:
        pod = (
            ""
            if "KUBERNETES_SERVICE_HOST" in os.environ
            else " and this is not a pod (KUBERNETES_SERVICE_HOST is unset)"
        )
        return f"no cluster configured: {where} does not exist{pod}; give --kubeconfig, set $KUBECONFIG, or run in a cluster"
    except (ConfigException, OSError, yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"cannot use {where}: {first}"
    if not creds.server:
        return f"cannot use {where}: it names no API server"
    return None


def _run(args: argparse.Namespace) -> int:
    try:
        receivers = installation_receivers(args)
    except ValueError as e:
        print(f"bellwether run: {e}", file=sys.stderr)
        return 2
    problem = cluster_problem(args.kubeconfig, args.context)
    if problem:
        print(f"bellwether run: {problem}", file=sys.stderr)
        return 1
    import kopf
    import prometheus_client

    from bellwether.handlers.operator import Options, build_registry, settings

    kopf.configure(
        verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    )
    prometheus_client.start_http_server(args.metrics_port)
    clusterwide = args.all_namespaces or not args.namespace
    if clusterwide and not args.all_namespaces:
        logging.getLogger("bellwether").info("no --namespace given: watching all namespaces")
    # kopf pauses every replica when peers share a priority: replicas of one Deployment need distinct ones.
    priority = args.priority if args.priority is not None else random.SystemRandom().randrange(1, 2**31)
    options = Options(
        kubeconfig=args.kubeconfig,
        context=args.context,
        interval=args.interval,
        namespaces=tuple(args.namespace or ()),
        notify=receivers,
    )
    tune_gc()
    kopf.run(
        registry=build_registry(options),
        settings=settings(),
        standalone=args.standalone or None,
        peering_name=args.peering,
        priority=priority,
        clusterwide=clusterwide,
        namespaces=args.namespace,
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
    )
    return 0


def tune_gc() -> None:
    """Collect the old generation far less often than Python's defaults would.

    Each cycle's JSON lives across a few awaits, long enough to survive the young collections, so with
    the default thresholds a full collection ran every two seconds at 1,000 ModelDeployments, each a
    half-second pause of the event loop that every cycle in flight waited out. Almost all of it is freed
    by reference counting anyway. What start-up imported lives as long as the process: frozen, it is
    left out of every collection.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 100)
