"""`bellwether validate` notes the shares an autoscaled region gives at its minimum, by the maths the
rollout uses there (the canary beside the live pods), not the fixed regions' split."""

from __future__ import annotations

from bellwether.api import parse_spec
from bellwether.cli.validate import weight_notes

METRIC = {
    "type": "Pods",
    "pods": {"metric": {"name": "vllm:num_requests_waiting"}, "target": {"type": "AverageValue", "averageValue": 5}},
}


def test_an_autoscaled_regions_notes_use_the_canary_beside_its_minimum() -> None:
    spec = parse_spec(
        {
            "model": {"name": "llama", "version": "1", "uri": "s3://m/1"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0"},
            "regions": [
                {"name": "a", "autoscaling": {"minReplicas": 4, "maxReplicas": 8, "metrics": [METRIC]}},
                {"name": "b", "replicas": 4},
            ],
            "rollout": {"steps": [{"setWeight": 25}, {"setWeight": 50}]},
        }
    )
    notes = weight_notes(spec)
    # 25% beside 4 autoscaled pods: 1 more pod (20%); a fixed region of 4 gives 3 + 1 exactly.
    assert notes == [
        "setWeight 25 gives 20% in a at minReplicas (4 stable + 1 canary pods serving); "
        "the share follows the live count as the autoscaler moves it"
    ]
