"""The request-level judge: a preset's bounds decided on the requests themselves, sequentially.

Every bound becomes a question about a share of the canary's requests since its analysis started
(the counts grow with traffic, and are judged again every interval by `sequential`'s anytime-valid
tests):

* Latency, `pXX <= r x stable`, with a live stable (scale form). Take the bucket edge `b` nearest
  r x stable's pXX. A canary exactly r times slower than stable would have as large a share of
  requests above `b` as stable has above `b / r` (about 1 - XX, since b / r is about stable's pXX).
  So the canary's requests slower than `b` are compared with stable's slower than `b / r`, over the
  same window and region: more, conclusively, is a canary more than r times slower at that quantile
  (Failed); fewer is one within the bound (Successful). A shift both revisions share (a load
  surge) moves stable's pXX, `b` and stable's count with it; a harmless 3 % shift leaves the canary's
  share far below stable's.
* Latency against a fixed value `x` (an absolute `max`; a floor `minValue` above stable's pXX; or
  stable's last pXX when no stable serves: bake, a 100 % step, a promoted wave): at most 1 - XX of the
  canary's requests may be slower than `x`. Failed reads the edge at or above `x`, Successful the edge
  at or below it, so neither rests on how requests spread inside a bucket.
* Error rate, `<= r x max(stable's rate, minValue)`: the canary's failed requests against r x stable's
  (the two-rate comparison) and against r x `minValue`; beyond both fails, within either passes.
  An absolute `max` is one more bound.

A metric with several bounds fails on any and passes on all. Anything else is Inconclusive and
pending, saying how many requests it has and needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from bellwether.analysis import sequential
from bellwether.analysis.buckets import Histogram
from bellwether.analysis.judge import Judgement, bound_text, failed_to_measure, pending
from bellwether.analysis.presets import Counting, baseline_of, kind_of
from bellwether.analysis.source import Counts
from bellwether.api.spec import Metric
from bellwether.api.units import format_value

ALPHA_FAIL = 0.05  # a canary exactly at the bound fails a series with at most this chance, ever
ALPHA_PASS = 0.1  # and is called within it with at most this chance
# Without a live stable a latency is held to stable's last value, measured at another time: a load that
# moved since moves every revision's latency alike, so the bound allows this much of it.
REFERENCE_DRIFT = 1.25

Call = Literal["fail", "pass", "open"]


@dataclass(frozen=True)
class Check:
    """One bound's state: its two sequential tests, and how to say where they stand."""

    call: Call
    says: str  # what the counts show, e.g. "25 of 1,200 canary requests took over 3.45s (2.08%)"
    against: str  # the bound's threshold, e.g. "a canary at 1.3x stable would have 0.93%"
    fail: sequential.Test
    pass_: sequential.Test
    has: float  # canary requests counted
    needs: int  # the fewest canary requests that could show it within this bound
    held: bool = False  # conclusive, but only through the first interval: not (yet) a failure


def _check(
    says: str,
    against: str,
    tests: tuple[sequential.Test, sequential.Test],
    has: float,
    needs: int,
    held: bool = False,
) -> Check:
    fail, pass_ = tests
    call: Call = "fail" if fail.conclusive else "pass" if pass_.conclusive else "open"
    return Check(call, says, against, fail, pass_, has, needs, held)


@dataclass(frozen=True)
class Context:
    """Where the counts come from: the window's start (for people) and whether the analysis is so
    young that a missing series may be a new pod's first scrapes."""

    since: float
    young: bool
    now: float
    intervals: int = 0  # whole analysis intervals since `since`

    def when(self) -> str:
        return datetime.fromtimestamp(self.since, UTC).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Reading:
    """What one window's counts say about each bound of a metric, and the values status shows."""

    checks: list[Check]
    value: float | None
    base: float | None


# Failed also looks for a regression that began after the analysis did (a slow burn): the evidence of
# windows restarted every RESTART_EVERY intervals, weighted (a mixture of e-processes is one).
RESTART_EVERY = 4
RESTART_WEIGHTS = (0.6, 0.2, 0.1, 0.1)
# And it wants the regression to persist: at least this many intervals of requests, and the analysis
# without its first interval leaning beyond the bound as well. A new pod still slow past its declared
# warm-up shows in that first interval, then fades; a regression does not.
FAIL_AFTER_INTERVALS = 2


@dataclass(frozen=True)
class Windows:
    """One revision's counts over the windows a metric is judged on, all ending now: the analysis so
    far, the windows restarted since (oldest first), and the analysis without its first interval."""

    whole: Counts
    restarts: Sequence[Counts] = ()
    later: Counts | None = None


def judge_counts(
    metric: Metric,
    counting: Counting,
    canary: Windows,
    stable: Windows | None,
    reference: float | None,
    context: Context,
) -> Judgement:
    """The metric's verdict from the canary's counts and stable's (`stable` None: no stable serves,
    and `reference` is its last known value)."""
    bound = bound_text(metric)
    whole = _read(metric, counting, canary.whole, stable.whole if stable else None, reference, context)
    if isinstance(whole, Judgement):
        return whole
    restarted = [
        _read(metric, counting, c, stable.restarts[j] if stable else None, reference, context)
        for j, c in enumerate(canary.restarts)
    ]
    later = None
    if canary.later is not None and context.intervals >= FAIL_AFTER_INTERVALS:
        later = _read(metric, counting, canary.later, stable.later if stable else None, reference, context)
    checks = []
    for i, check in enumerate(whole.checks):
        evidence = RESTART_WEIGHTS[0] * check.fail.evidence + sum(RESTART_WEIGHTS[1 + len(restarted) :])
        for j, reading in enumerate(restarted, start=1):
            evidence += RESTART_WEIGHTS[j] * (reading.checks[i].fail.evidence if isinstance(reading, Reading) else 1.0)
        # Without the first interval the evidence need not be conclusive (it may be one interval), only lean so.
        persists = isinstance(later, Reading) and later.checks[i].fail.evidence > 1.0
        fail = replace(check.fail, evidence=evidence)
        held = fail.conclusive and not persists
        if held:
            fail = replace(fail, needed=float("inf"))
        checks.append(_check(check.says, check.against, (fail, check.pass_), check.has, check.needs, held))
    return _verdict(Reading(checks, whole.value, whole.base), bound, context)


def _read(
    metric: Metric,
    counting: Counting,
    canary: Counts,
    stable: Counts | None,
    reference: float | None,
    context: Context,
) -> Reading | Judgement:
    bound = bound_text(metric)
    if canary.error is not None:
        return failed_to_measure(f"canary query failed: {canary.error}", bound=bound)
    if stable is not None and stable.error is not None:
        return failed_to_measure(f"stable query failed: {stable.error}", bound=bound)
    if not canary.present:
        if context.young:
            return pending("no canary series yet: a new series has no increase before its second scrape", bound=bound)
        return failed_to_measure(
            "no data for the canary: no series matched (no traffic yet, or labels that do not match)", bound=bound
        )
    if stable is not None and not stable.present:
        return failed_to_measure("no data for the stable revision to compare with", bound=bound)
    if kind_of(metric) == "latency":
        return _latency(metric, counting.quantile or 0.99, canary, stable, reference, context)
    return _errors(metric, canary, stable, reference, context)


# -- latency ----------------------------------------------------------------------------------------


def _latency(
    metric: Metric, q: float, canary: Counts, stable: Counts | None, reference: float | None, context: Context
) -> Reading | Judgement:
    bound, c = bound_text(metric), Histogram.of(canary.buckets)
    s = Histogram.of(stable.buckets) if stable is not None else None
    value = c.quantile(q)
    base = s.quantile(q) if s is not None else reference
    checks: list[Check] = []
    baseline = baseline_of(metric)
    if baseline is not None:
        if s is not None and s.total * (1 - q) < 1:
            return pending(
                f"stable has {s.total:,.0f} requests since {context.when()}: too few to place its p{q * 100:g} "
                f"(at least {round(1 / (1 - q)):,})",
                value,
                base,
                bound,
            )
        if base is None:
            return failed_to_measure("no stable value to compare with", value, bound=bound)
        r, floor = baseline.max_ratio, baseline.min_value
        if s is not None and base >= floor and c.edges:
            checks.append(_scaled(c, s, r, base))
        elif s is not None:
            checks.append(_at_most(c, q, r * floor, f"{r:g}x stable's floor"))
        else:
            drift = f"{r:g}x stable's last {format_value(base, 's')}, with {REFERENCE_DRIFT:g}x for load since"
            checks.append(_at_most(c, q, r * REFERENCE_DRIFT * max(base, floor), drift))
    if metric.max is not None:
        checks.append(_at_most(c, q, metric.max, "the maximum"))
    return Reading(checks, value, base)


def _scaled(c: Histogram, s: Histogram, r: float, base: float) -> Check:
    """Scale form: canary's requests above `b` against stable's above `b / r` (the module's docstring).
    `b` is the edge nearest r x stable's pXX, chosen from stable's counts alone; the comparison then
    holds at the quantile where stable's share above `b / r` puts it, within a bucket of pXX. Failed
    also asks the next edge up (the evidence of the two averaged), where a regression of only some
    requests (a slow tail) shows more plainly than a shift of all of them."""
    b = _nearest_edge(c, r * base)
    k, n = c.above(b), c.total
    at_bound = s.above_between(b / r)
    fail, pass_ = sequential.versus(k, n, at_bound, s.total, 1.0, ALPHA_FAIL, ALPHA_PASS)
    higher = c.edge_at_or_above(b * (1 + 1e-6))
    if higher is not None:
        further, _ = sequential.versus(c.above(higher), n, s.above_between(higher / r), s.total, 1.0, ALPHA_FAIL, 1.0)
        fail = replace(fail, evidence=(fail.evidence + further.evidence) / 2)
    return _check(
        f"{k:,.0f} of {n:,.0f} canary requests took over {format_value(b, 's')} ({_share(k, n)})",
        f"a canary at {r:g}x stable would have {_share(at_bound, s.total)} "
        f"(stable: {at_bound:,.1f} of {s.total:,.0f} over {format_value(b / r, 's')})",
        (fail, pass_),
        n,
        sequential.requests_needed_versus(n, s.total, at_bound / s.total if s.total else 0.0, 1.0, ALPHA_PASS),
    )


def _nearest_edge(c: Histogram, x: float) -> float:
    up, down = c.edge_at_or_above(x), c.edge_at_or_below(x)
    if up is None or down is None:
        return up or down or x
    return down if x / down < up / x else up


def _at_most(c: Histogram, q: float, x: float, what: str) -> Check:
    """Fixed form: at most 1 - q of the canary's requests slower than `x`. Failed counts from the edge
    at or above `x` (no assumption); Successful from `x` itself, interpolated inside its bucket (the
    edge below would ask a canary a whole bucket better than the bound)."""
    tau = 1 - q
    up, n = c.edge_at_or_above(x), c.total
    k_up = c.above(up) if up is not None else 0.0
    fail = sequential.above(k_up, n, tau, ALPHA_FAIL) if up is not None else sequential.Test(0.0, 1 / ALPHA_FAIL)
    return _check(
        f"{k_up:,.0f} of {n:,.0f} canary requests took over {format_value(up or x, 's')} ({_share(k_up, n)})",
        f"{what} ({format_value(x, 's')}) allows {_share(tau, 1)}",
        (fail, sequential.below(c.above_between(x), n, tau, ALPHA_PASS)),
        n,
        sequential.requests_needed(tau, ALPHA_PASS),
    )


# -- error rates ------------------------------------------------------------------------------------


def _errors(
    metric: Metric, canary: Counts, stable: Counts | None, reference: float | None, context: Context
) -> Reading | Judgement:
    bound = bound_text(metric)
    k, n = canary.failed, canary.total
    value = k / n if n > 0 else None
    base = (stable.failed / stable.total if stable.total > 0 else None) if stable is not None else reference
    checks: list[Check] = []
    baseline = baseline_of(metric)
    if baseline is not None:
        r, floor = baseline.max_ratio, baseline.min_value
        if stable is not None:
            if stable.total <= 0:
                return pending(f"stable served no requests since {context.when()}", value, base, bound)
            checks.append(_versus_stable(k, n, stable, r, floor))
        elif base is None:
            return failed_to_measure("no stable value to compare with", value, bound=bound)
        else:
            checks.append(_rate(k, n, r * max(base, floor), f"{r:g}x stable's last {_share(base, 1)}"))
    if metric.max is not None:
        checks.append(_rate(k, n, metric.max, "the maximum"))
    return Reading(checks, value, base)


def _versus_stable(k: float, n: float, stable: Counts, r: float, floor: float) -> Check:
    """`<= r x max(stable, floor)`: beyond it means beyond both r x stable and r x floor; within it,
    within either (each side's evidence then counts half, so the level holds for the pair)."""
    ks, ns = stable.failed, stable.total
    over_stable, under_stable = sequential.versus(k, n, ks, ns, r, ALPHA_FAIL, ALPHA_PASS)
    says = f"{k:,.0f} of {n:,.0f} canary requests failed ({_share(k, n)}), stable {ks:,.0f} of {ns:,.0f}"
    against = f"{r:g}x stable allows {_share(r * ks, ns)}"
    needs = sequential.requests_needed_versus(n, ns, ks / ns, r, ALPHA_PASS)
    if floor <= 0:
        return _check(says, against, (over_stable, under_stable), n, needs)
    over_floor, under_floor = (
        sequential.above(k, n, r * floor, ALPHA_FAIL),
        sequential.below(k, n, r * floor, ALPHA_PASS),
    )
    fail = sequential.Test(min(over_stable.evidence, over_floor.evidence), 1 / ALPHA_FAIL)
    pass_ = sequential.Test((under_stable.evidence + under_floor.evidence) / 2, 1 / ALPHA_PASS)
    floor_needs = sequential.requests_needed(r * floor, ALPHA_PASS)
    needs = min(needs, floor_needs) if needs else floor_needs
    return _check(says, f"{against}, at least {_share(r * floor, 1)} (floored)", (fail, pass_), n, needs)


def _rate(k: float, n: float, p0: float, what: str) -> Check:
    fail = sequential.above(k, n, p0, ALPHA_FAIL) if p0 < 1 else sequential.Test(0.0, 1 / ALPHA_FAIL)
    pass_ = sequential.below(k, n, min(p0, 1.0), ALPHA_PASS)
    return _check(
        f"{k:,.0f} of {n:,.0f} canary requests failed ({_share(k, n)})",
        f"{what} allows {_share(p0, 1)}",
        (fail, pass_),
        n,
        sequential.requests_needed(min(p0, 0.999999), ALPHA_PASS),
    )


# -- the verdict --------------------------------------------------------------------------------------


def _share(k: float, n: float) -> str:
    if n <= 0:
        return "none"
    share = 100 * k / n
    return f"{share:.2f}%" if share < 10 else f"{share:.1f}%"


def _verdict(reading: Reading, bound: str | None, context: Context) -> Judgement:
    checks, value, base = reading.checks, reading.value, reading.base
    if not checks:
        return Judgement("Successful", value, base, bound, "within bounds")
    failed = next((c for c in checks if c.call == "fail"), None)
    if failed is not None:
        why = f"{failed.says}; {failed.against} (evidence {failed.fail.evidence:.3g} >= {failed.fail.needed:g})"
        return Judgement("Failed", value, base, bound, f"beyond the bound: {why}")
    if all(c.call == "pass" for c in checks):
        least = min(c.pass_.evidence for c in checks)
        summary = "; ".join(f"{c.says}; {c.against}" for c in checks)
        return Judgement("Successful", value, base, bound, f"within the bound: {summary} (evidence {least:.3g})")
    open_ = next(c for c in checks if c.call == "open")
    if open_.held:
        return pending(
            f"beyond the bound so far, but not after the first interval: {open_.says}; {open_.against} "
            f"(evidence {open_.fail.evidence:.3g}); measuring again before calling it",
            value,
            base,
            bound,
        )
    if open_.has < open_.needs:
        return pending(
            f"too few requests to conclude: {open_.has:,.0f} canary requests since {context.when()}, at least "
            f"{open_.needs:,} needed to show it within the bound ({open_.says}; {open_.against})",
            value,
            base,
            bound,
        )
    return pending(
        f"not yet conclusive: {open_.says}; {open_.against}; evidence {open_.fail.evidence:.3g} of "
        f"{open_.fail.needed:g} to fail, {open_.pass_.evidence:.3g} of {open_.pass_.needed:g} to pass",
        value,
        base,
        bound,
    )
