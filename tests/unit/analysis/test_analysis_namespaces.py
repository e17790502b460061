"""Template values match where the series come from: `{{namespace}}` is the namespace a region's pods
run in, which for a remote region with its own namespace is not the ModelDeployment's."""

from __future__ import annotations

from datetime import UTC, datetime

from bellwether.analysis.measure import measure
from bellwether.analysis.source import Sample, Window
from bellwether.api import parse_spec
from bellwether.api.spec import Metric
from bellwether.rollout.types import AnalysisRequest


class Recording:
    """The metrics port, answering every window with the same healthy series and keeping the windows."""

    def __init__(self) -> None:
        self.windows: list[Window] = []

    async def sample(self, metric: Metric, window: Window) -> Sample:
        self.windows.append(window)
        return Sample(0.001, (0.001,) * 10)


async def test_each_region_is_measured_in_the_namespace_its_pods_run_in() -> None:
    spec = parse_spec(
        {
            "model": {"name": "llama", "version": "v1", "uri": "s3://m/v1"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0"},
            "regions": [
                {"name": "us-east", "replicas": 2},
                {
                    "name": "eu-west",
                    "replicas": 2,
                    "namespace": "ml-serving",
                    "cluster": {"kubeconfigSecret": {"name": "eu", "key": "kubeconfig"}},
                },
            ],
            "analysis": {
                "prometheus": {"url": "http://prometheus:9090"},
                "metrics": [{"name": "errors", "query": 'sum(x{namespace="{{namespace}}"})', "max": 0.01}],
            },
        }
    )
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    requests = [
        AnalysisRequest(region, "canary1", "stable1", 30.0, "2026-12-02T11:00:00+00:00")
        for region in ("us-east", "eu-west")
    ]
    source = Recording()
    await measure(spec, "chat", "ml", requests, source, now)
    seen = {(w.region, w.namespace) for w in source.windows}
    assert seen == {("us-east", "ml"), ("eu-west", "ml-serving")}
