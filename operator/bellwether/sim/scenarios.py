"""Named scenarios: a world and a next revision that behaves in a known way.

Each starts from the spec as given, serving and Healthy, then applies the same spec with the model
version bumped (a new revision) whose behaviour the scenario sets. `regressed` says what the right
outcome is: True = it must be rolled back, False = it must be promoted, None = it must not be promoted
(the metrics cannot tell; or, for a full GPU pool, only an in-place swap can proceed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bellwether.api import ModelDeploymentSpec
from bellwether.api.units import resolve_int_or_percent
from bellwether.sim.fleet import HEALTHY, Behaviour
from bellwether.sim.world import Pool


def _surge(spec: ModelDeploymentSpec) -> int:
    return max(resolve_int_or_percent(spec.rollout.max_surge, r.replicas, round_up=True) for r in spec.regions)


CAUGHT_LATENCY = 1.5  # regressions at least this large must be caught (issue 6's goals)
CAUGHT_ERRORS = 3.0


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    behaviour: Behaviour = HEALTHY
    regressed: bool | None = False
    only_last_region: bool = False  # the regression shows in the last region of the last wave only
    no_spare_gpus: bool = False  # the first wave's pools are exactly full
    outage_after: float | None = None  # seconds after the new revision is applied: Prometheus goes down

    def expected(self, spec: ModelDeploymentSpec) -> str:
        """The right outcome for this spec, in the words `play` reports results."""
        if self.no_spare_gpus:
            # Only an in-place swap fits a full pool; a surge must fail visibly, not half-serve.
            return "promoted" if _surge(spec) == 0 else "not promoted"
        if self.regressed is None:
            return "not promoted"
        return "rolled-back" if self.regressed else "promoted"

    def as_expected(self, spec: ModelDeploymentSpec, result: str) -> bool:
        expected = self.expected(spec)
        return result != "promoted" if expected == "not promoted" else result == expected

    def behaviour_for(self, spec: ModelDeploymentSpec) -> Behaviour:
        if not self.only_last_region:
            return self.behaviour
        last = spec.waves()[-1][-1]
        return replace(self.behaviour, regions=frozenset({last}))

    def pools(self, spec: ModelDeploymentSpec) -> dict[str, Pool]:
        return {name: Pool(spare_gpus=0) for name in spec.waves()[0]} if self.no_spare_gpus else {}

    def visible_after(self) -> float:
        """Seconds after the new revision first serves in an affected region until the regression
        reaches the size that must be caught (a slow burn takes a while to get there)."""
        b = self.behaviour
        if not self.regressed or b.ramp_seconds <= 0:
            return 0.0
        fractions = []
        if b.latency_factor > 1:
            fractions.append((CAUGHT_LATENCY - 1) / (b.latency_factor - 1))
        if b.error_factor > 1:
            fractions.append((CAUGHT_ERRORS - 1) / (b.error_factor - 1))
        return b.ramp_seconds * min(1.0, *fractions) if fractions else 0.0


CATALOG: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "the new revision behaves exactly like the old one"),
        Scenario(
            "latency-regression",
            "the new revision is 1.5x slower (p99, TTFT, inter-token) everywhere",
            Behaviour(latency_factor=1.5),
            regressed=True,
        ),
        Scenario(
            "error-spike", "the new revision fails 3x as many requests", Behaviour(error_factor=3.0), regressed=True
        ),
        Scenario(
            "slow-burn",
            "latency creeps up to 2x over 10 minutes of serving",
            Behaviour(latency_factor=2.0, ramp_seconds=600),
            regressed=True,
        ),
        Scenario(
            "warm-up-spike",
            "each new pod is 3x slower for its first 90 s of serving, then healthy",
            Behaviour(spike_factor=3.0, spike_seconds=90),
        ),
        Scenario(
            "no-data",
            "the new revision exports no metrics (say, a renamed metrics port)",
            Behaviour(exports_metrics=False),
            regressed=None,
        ),
        Scenario(
            "prometheus-outage",
            "Prometheus becomes unreachable 2 minutes into the rollout and stays down",
            regressed=None,
            outage_after=120,
        ),
        Scenario(
            "gpu-shortage",
            "the first wave's GPU pool has no spare GPUs: a surge cannot be scheduled, an in-place swap can",
            regressed=None,
            no_spare_gpus=True,
        ),
        Scenario(
            "region-specific-regression",
            "the new revision is 2x slower in one region only (the last one rolled out)",
            Behaviour(latency_factor=2.0),
            regressed=True,
            only_last_region=True,
        ),
    )
}
