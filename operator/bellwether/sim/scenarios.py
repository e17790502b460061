"""Named scenarios: a world and a next revision that behaves in a known way.

Each starts from the spec as given, serving and Healthy, then applies the same spec with the model
version bumped (a new revision) whose behaviour the scenario sets, and what the world does meanwhile
(`Behaviour.meanwhile`: a load surge, the stable revision degrading, heavy tails, little traffic).
`regressed` says what the right outcome is: True = it must be rolled back, False = it must be
promoted, None = it must not be promoted (the metrics cannot tell; or, for a full GPU pool, only an
in-place swap can proceed). `quiet`: a healthy revision with too little traffic to judge, which must
not be rolled back (pausing, saying how many requests it needs, is right).

Besides the basics, the catalog holds the worlds that tell judges apart (issue 14): ones where a
fixed threshold rolls back a healthy revision (a shared load surge, a harmless 1.1x change, heavy
tails, low traffic) and ones where per-interval statistics lack power (a regression in 3 % of the
requests, in time to first token only, 4x errors at a 0.5 % baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bellwether.api import ModelDeploymentSpec
from bellwether.api.units import resolve_int_or_percent
from bellwether.sim.fleet import HEALTHY, Behaviour, Meanwhile
from bellwether.sim.world import Pool


def _surge(spec: ModelDeploymentSpec) -> int:
    return max(resolve_int_or_percent(spec.rollout.max_surge, r.size, round_up=True) for r in spec.regions)


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
    quiet: bool = False  # healthy, but too little traffic to judge: anything but a rollback is right

    def expected(self, spec: ModelDeploymentSpec) -> str:
        """The right outcome for this spec, in the words `play` reports results."""
        if self.no_spare_gpus:
            # Only an in-place swap fits a full pool; a surge must fail visibly, not half-serve.
            return "promoted" if _surge(spec) == 0 else "not promoted"
        if self.quiet:
            return "not rolled back"
        if self.regressed is None:
            return "not promoted"
        return "rolled-back" if self.regressed else "promoted"

    def as_expected(self, spec: ModelDeploymentSpec, result: str) -> bool:
        expected = self.expected(spec)
        if expected == "not rolled back":
            return result != "rolled-back"
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
        if b.ttft_factor > 1:
            fractions.append((CAUGHT_LATENCY - 1) / (b.ttft_factor - 1))
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
            "error-spike",
            "the new revision fails 3x as many requests (0.5 % -> 1.5 %)",
            # At the profile's 0.4 % the preset's floor (2 x 0.5 %) would put 3x (1.2 %) 20 % past its bound:
            # tens of thousands of requests to tell apart, more than a 10 % step serves in minutes.
            Behaviour(error_factor=3.0, meanwhile=Meanwhile(error_rate=0.005)),
            regressed=True,
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
        # -- where a fixed threshold rolls back a healthy revision --------------------------------------
        Scenario(
            "load-surge",
            "a load surge slows both revisions 1.8x for 5 minutes, from 90 s after the canary first serves",
            Behaviour(meanwhile=Meanwhile(surge_factor=1.8, surge_after=90, surge_seconds=300)),
        ),
        Scenario(
            "stable-degrading",
            "the stable revision degrades on its own, to 1.6x slower over 10 minutes; the canary is healthy",
            Behaviour(meanwhile=Meanwhile(stable_factor=1.6, stable_ramp=600)),
        ),
        Scenario(
            "harmless-1.1x", "the new revision is 1.1x slower: within the 1.3x bound", Behaviour(latency_factor=1.1)
        ),
        Scenario(
            "low-traffic",
            "2 requests per second in each region: too few to judge a p99 in minutes",
            Behaviour(meanwhile=Meanwhile(rps=2.0)),
            quiet=True,
        ),
        Scenario(
            "heavy-tails",
            "every revision's latencies are heavy-tailed (log-t, 3 degrees of freedom); the canary is healthy",
            Behaviour(meanwhile=Meanwhile(heavy_tails=True)),
        ),
        # -- where per-interval statistics lack power -------------------------------------------------
        Scenario(
            "tail-regression",
            "3 % of the new revision's requests are 4x slower, the rest unchanged",
            Behaviour(tail_share=0.03, tail_factor=4.0),
            regressed=True,
        ),
        Scenario(
            "ttft-regression",
            "time to first token is 1.6x slower; end-to-end latency barely moves",
            Behaviour(ttft_factor=1.6),
            regressed=True,
        ),
        Scenario(
            "errors-4x",
            "the new revision fails 4x as many requests, at a 0.5 % baseline (0.5 % -> 2 %)",
            Behaviour(error_factor=4.0, meanwhile=Meanwhile(error_rate=0.005)),
            regressed=True,
        ),
        Scenario(
            "heavy-tailed-regression",
            "heavy-tailed latencies everywhere, and the new revision 1.5x slower",
            Behaviour(latency_factor=1.5, meanwhile=Meanwhile(heavy_tails=True)),
            regressed=True,
        ),
    )
}
