"""Serve one stand-in cluster until interrupted: an API server stand-in with its control plane (the
Deployment, ReplicaSet and EndpointSlice controllers, the scheduler, kubelets, the namespace
lifecycle), for running `bellwether run` or the end-to-end tests against where no cluster is at hand:

    python -m bellwether.sim.standins --kubeconfig /tmp/standin.kubeconfig
    BELLWETHER_E2E_KUBECONFIG=/tmp/standin.kubeconfig python -m pytest tests/e2e

Pods become ready `--ready-after` seconds after they are bound; terminating pods go after `--grace`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

import yaml

from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.kubelet import Kubelet


async def serve(kubeconfig: Path, ready_after: float, grace: float) -> None:
    server = ApiServer("standin")
    await server.start()
    await server.put("namespaces", {"metadata": {"name": "default"}})
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig("default")))
    print(f"serving {server.url}; kubeconfig in {kubeconfig}", flush=True)
    with Kubelet(server, delay=ready_after, grace=grace):
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write the kubeconfig")
    parser.add_argument("--ready-after", type=float, default=1.0, help="seconds from binding to Ready")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds a deleted pod stays terminating")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.kubeconfig, args.ready_after, args.grace))


if __name__ == "__main__":
    main()
