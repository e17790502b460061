"""Anytime-valid tests on a share of requests: is it above a threshold, or below it?

The judge turns every bound into a question about a share: of the canary's requests since its
analysis started, how many were slower than a latency, or failed? Each request is a coin, and `k` of
`n` coins came up. The counts grow with traffic and are looked at every interval, as often as the
engine likes, so a fixed-sample test (a p-value checked again and again) would false-alarm far more
often than its level says. These tests do not: their error rates hold however often they are looked at.

The statistic is a mixture likelihood ratio (a mixture SPRT; Robbins 1970, and the "always valid
p-values" of Johari et al. and Lindon et al., KDD 2022): for a threshold p0 and a few alternatives
theta, the average of the likelihood ratios

    LR(theta) = (theta / p0)^k * ((1 - theta) / (1 - p0))^(n - k)

For every theta above p0, LR is a nonnegative supermartingale while each request's chance is at most
p0, whatever the chance does over time; so is their average, and by Ville's inequality it ever reaches
1/alpha with probability at most alpha. "The share is above p0" is concluded when it does and the
observed share is above p0 (below p0 the ratio only shrinks towards it). The mirror image, alternatives
below p0, concludes "the share is below p0". Confidence bounds are the thresholds such a test does not
reject yet, so they hold at all times too (a confidence sequence, Howard et al. 2021).

Two revisions are compared the same way (`versus`). Take the requests that came up on either side
(slow or failed ones of the canary and of stable) as they arrive: if the canary's chance per request
is `ratio` times stable's, each of them is the canary's with chance pi0 = ratio n_c / (ratio n_c + n_s),
for n_c and n_s requests served. The canary's share of them against pi0 is then a test of one share as
above: the sequential form of the exact conditional test for two Poisson rates. Both revisions' noise
is in it, and it asks only for the events, so it needs neither side's rate to be known.

The alternatives are multiples of the threshold's odds (for a small share, of the share itself), a
grid rather than a continuous prior: the evidence is then a number an SRE can recompute from two
counts, and its cost over the best single alternative is at most log(len(grid)) (1.4 nats for four).
They span the effects a canary bound cares about, from a quarter beyond the threshold to four times
it; an effect far outside them is still detected, a little later. Odds keep every alternative a
share even when the threshold is large (a canary's part of the events at a 50 % split).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ABOVE: tuple[float, ...] = (1.25, 1.6, 2.5, 4.0)  # alternatives for "above p0", as multiples of its odds
BELOW: tuple[float, ...] = (0.7, 0.45, 0.25, 0.1)  # and for "below p0"


def log_evidence(k: float, n: float, p0: float, multiples: Sequence[float]) -> float:
    """log of the mixture likelihood ratio of `k` of `n` against the share `p0`; counts may be
    fractional (Prometheus extrapolates `increase`)."""
    if n <= 0 or not 0.0 < p0 < 1.0:
        return 0.0
    k = min(max(k, 0.0), n)
    odds = p0 / (1 - p0)
    terms = []
    for m in multiples:
        theta = m * odds / (1 + m * odds)
        terms.append(k * (math.log(theta) - math.log(p0)) + (n - k) * (math.log1p(-theta) - math.log1p(-p0)))
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


@dataclass(frozen=True)
class Test:
    """The state of one one-sided test: its evidence (a likelihood ratio) against the level it needs."""

    evidence: float  # the mixture likelihood ratio, >= 0
    needed: float  # 1 / alpha

    @property
    def conclusive(self) -> bool:
        return self.evidence >= self.needed


def above(k: float, n: float, p0: float, alpha: float) -> Test:
    """Evidence that the share is above `p0` (the null: at most p0)."""
    if n <= 0 or k / n <= p0:
        return Test(min(1.0, _ratio(k, n, p0, ABOVE)), 1 / alpha)
    return Test(_ratio(k, n, p0, ABOVE), 1 / alpha)


def below(k: float, n: float, p0: float, alpha: float) -> Test:
    """Evidence that the share is below `p0` (the null: at least p0)."""
    if n <= 0 or k / n >= p0:
        return Test(min(1.0, _ratio(k, n, p0, BELOW)), 1 / alpha)
    return Test(_ratio(k, n, p0, BELOW), 1 / alpha)


def _ratio(k: float, n: float, p0: float, multiples: Sequence[float]) -> float:
    return math.exp(min(700.0, log_evidence(k, n, p0, multiples)))


def upper_bound(k: float, n: float, alpha: float) -> float:
    """The largest share that `k` of `n` cannot yet rule out: the test "below q" is not conclusive
    at any q above it. Holds at all times with probability 1 - alpha."""
    if n <= 0:
        return 1.0
    lo, hi = min(1.0, k / n), 1.0
    if math.log(1 / alpha) > log_evidence(k, n, hi - 1e-12, BELOW):
        return 1.0
    for _ in range(60):  # the evidence grows with q: bisect for where it reaches 1/alpha
        mid = (lo + hi) / 2
        if log_evidence(k, n, mid, BELOW) >= math.log(1 / alpha):
            hi = mid
        else:
            lo = mid
    return hi


def lower_bound(k: float, n: float, alpha: float) -> float:
    """The smallest share that `k` of `n` cannot yet rule out (0 when nothing rules anything out)."""
    if n <= 0 or k <= 0:
        return 0.0
    lo, hi = 0.0, min(1.0, k / n)
    for _ in range(60):  # the evidence shrinks as q grows
        mid = (lo + hi) / 2
        if log_evidence(k, n, mid, ABOVE) >= math.log(1 / alpha):
            lo = mid
        else:
            hi = mid
    return lo


def requests_needed(p0: float, alpha: float) -> int:
    """The fewest requests that can show a share below `p0` at all: with not a single one of them slow
    (or failed). A share nearer the threshold needs more; this is the floor an SRE can plan with."""
    if not 0.0 < p0 < 1.0:
        return 0
    n = 1.0
    while log_evidence(0.0, n, p0, BELOW) < math.log(1 / alpha):
        n *= 1.25
        if n > 1e12:
            return int(n)
    lo, hi = n / 1.25, n
    while hi - lo > 1:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if log_evidence(0.0, mid, p0, BELOW) >= math.log(1 / alpha) else (mid, hi)
    return math.ceil(hi)


def versus(
    k: float, n: float, k_stable: float, n_stable: float, ratio: float, alpha_above: float, alpha_below: float
) -> tuple[Test, Test]:
    """(evidence the canary's share is above `ratio` x stable's, evidence it is below), from `k` of `n`
    canary requests and `k_stable` of `n_stable` stable ones (see the module's docstring)."""
    if n <= 0 or n_stable <= 0:
        return Test(0.0, 1 / alpha_above), Test(0.0, 1 / alpha_below)
    pi0 = ratio * n / (ratio * n + n_stable)
    events = k + k_stable
    return above(k, events, pi0, alpha_above), below(k, events, pi0, alpha_below)


def requests_needed_versus(n: float, n_stable: float, stable_share: float, ratio: float, alpha: float) -> int:
    """The fewest canary requests that can show its share below `ratio` x stable's at all (none of them
    slow), at the current split of traffic and stable's share: the events needed, over the events
    each canary request brings."""
    if n_stable <= 0 or stable_share <= 0:
        return 0
    if n <= 0:  # no split of traffic yet: as if stable's share were known exactly
        return requests_needed(min(ratio * stable_share, 0.999999), alpha)
    pi0 = ratio * n / (ratio * n + n_stable)
    events = requests_needed(pi0, alpha)
    per_request = stable_share * n_stable / n  # stable's events per canary request; the canary adds none
    return math.ceil(events / per_request)
