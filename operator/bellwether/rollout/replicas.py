"""Weights to replica counts: pure arithmetic, kept apart so every rule has a worked example.

The rules follow the usual canary practice: the canary gets its share of the region's replicas,
rounded up (a 1% step still gets a pod); `replicas + maxSurge` caps the pods of a region at every
moment; stable gives up a pod only when a ready canary pod replaces it, and with `maxSurge: 0` (a full
GPU pool) it gives up exactly the pods the canary takes, so the region's GPU total never rises. Which
ready pods then serve is `best_split`: the share closest to the step's weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bellwether.api.units import resolve_int_or_percent


def canary_count(replicas: int, weight: int) -> int:
    """The canary's replicas for `weight`% of a region of `replicas`, rounded up.

    >>> canary_count(10, 10)
    1
    >>> canary_count(4, 10)
    1
    >>> canary_count(4, 50)
    2
    >>> canary_count(4, 0)
    0
    >>> canary_count(3, 100)
    3
    """
    if weight <= 0:
        return 0
    return min(replicas, -(-replicas * weight // 100))


def surge_count(max_surge: str, replicas: int) -> int:
    """Extra pods allowed above `replicas`; a percentage rounds up, like Kubernetes' maxSurge.

    >>> surge_count("25%", 4)
    1
    >>> surge_count("25%", 10)
    3
    >>> surge_count("0", 8)
    0
    """
    return resolve_int_or_percent(max_surge, replicas, round_up=True)


def best_split(weight: int, stable: int, canary: int, replicas: int) -> tuple[int, int]:
    """(stable, canary) pods to serve, out of the ready ones, that put the canary's share closest to
    `weight`, serving at least as many pods as the region needs when that many are ready.

    Ties go to the lower share (never more users on the canary than asked), then to more pods.

    >>> best_split(10, 4, 1, 4)   # 4 stable + 1 canary: 20%, the closest to 10% with 4 replicas
    (4, 1)
    >>> best_split(50, 4, 1, 4)   # only one canary pod ready yet: 25%
    (3, 1)
    >>> best_split(50, 3, 2, 4)
    (2, 2)
    >>> best_split(10, 2, 1, 2)
    (2, 1)
    >>> best_split(0, 4, 1, 4), best_split(100, 4, 4, 4), best_split(50, 0, 2, 4)
    ((4, 0), (0, 4), (0, 2))
    >>> best_split(100, 4, 2, 4)  # promoting, 2 canary pods ready of 4: stable still carries the rest
    (2, 2)
    """
    need = min(replicas, max(stable, 0) + max(canary, 0))
    if canary <= 0 or weight <= 0:
        return max(stable, 0), 0
    if weight >= 100 or stable <= 0:
        # All to the canary, but stable keeps serving what the canary cannot carry yet.
        return max(0, need - canary), canary
    best: tuple[tuple[float, float, int], tuple[int, int]] | None = None
    for b in range(1, canary + 1):
        low = max(1, need - b)
        if low > stable:
            continue
        ideal = b * (100 - weight) / weight
        for a in {min(stable, max(low, math.floor(ideal))), min(stable, max(low, math.ceil(ideal)))}:
            share = 100 * b / (a + b)
            key = (abs(share - weight), share, -(a + b))
            if best is None or key < best[0]:
                best = (key, (a, b))
    assert best is not None  # b = canary, a = stable always reaches `need`
    return best[1]


def share_of(stable: int, canary: int) -> int:
    """The canary's share of traffic, in percent, when these pods serve."""
    total = stable + canary
    return round(100 * canary / total) if total else 0


def split(replicas: int, weight: int, max_surge: str, canary_ready: int = 0) -> tuple[int, int]:
    """(stable, canary) pods for a region at `weight`%; never more than `replicas + maxSurge` together.

    With surge, the canary grows into the surge room; stable gives up a pod only for a ready canary pod
    (so ready pods never fall below `replicas`), and keeps in the end what the closest share needs:

    >>> split(10, 10, "25%")      # 1 canary fits in a surge of 3
    (10, 1)
    >>> split(10, 10, "25%", canary_ready=1)   # 9 stable + 1 canary serve exactly 10%
    (9, 1)
    >>> split(10, 50, "25%")      # 5 canaries wanted, 3 fit beside 10 stable
    (10, 3)
    >>> split(10, 50, "25%", canary_ready=3)
    (7, 5)
    >>> split(10, 50, "25%", canary_ready=5)
    (5, 5)
    >>> split(4, 10, "1", canary_ready=1)      # 4 + 1: 20%, closer to 10% than 3 + 1
    (4, 1)
    >>> split(4, 100, "1", canary_ready=4)
    (0, 4)

    With `maxSurge: 0` the canary takes stable's place pod for pod:

    >>> split(8, 25, "0")
    (6, 2)
    >>> split(8, 100, "0")
    (0, 8)
    """
    canary = canary_count(replicas, weight)
    surge = surge_count(max_surge, replicas)
    if surge == 0:
        return replicas - canary, canary
    room = replicas + surge
    final = 0 if canary >= replicas else best_split(weight, min(replicas, room - canary), canary, replicas)[0]
    stable = max(final, replicas - min(canary_ready, canary))
    return stable, min(canary, room - stable)


def final_shares(replicas: int, weight: int, max_surge: str) -> tuple[int, int, int]:
    """(stable pods serving, canary pods serving, canary share %) once a step's pods are all ready."""
    stable, canary = split(replicas, weight, max_surge, canary_ready=replicas)
    a, b = best_split(weight, stable, canary, replicas)
    return a, b, share_of(a, b)


def unmet_weights(weights: Sequence[int], regions: Sequence[tuple[str, int]], max_surge: str) -> list[str]:
    """A line per step weight a region's replica count cannot give exactly (the `replicas` router).

    >>> unmet_weights([10, 50], [("us-east", 4)], "25%")
    ['setWeight 10 gives 20% in us-east (4 stable + 1 canary pods serving): 10% needs a multiple of 10 replicas']
    """
    out = []
    for weight in weights:
        exact = 100 // math.gcd(weight, 100)
        for name, replicas in regions:
            a, b, share = final_shares(replicas, weight, max_surge)
            if share != weight:
                out.append(
                    f"setWeight {weight} gives {share}% in {name} ({a} stable + {b} canary pods serving): "
                    f"{weight}% needs a multiple of {exact} replicas"
                )
    return out


# -- autoscaled regions -------------------------------------------------------------------------
# An autoscaler (an HPA on the stable Deployment) sizes the region, and every pod serves: the canary
# is added beside stable's live pods in the proportion of its weight. The autoscaler then sees on
# stable's pods the same per-pod load as before the canary took its share, so it keeps stable at
# stable's part of the load and Bellwether never has to write stable's replicas during a step.


def canary_beside(stable: int, weight: int) -> int:
    """Canary pods beside `stable` live pods whose share of all of them is closest to `weight`%.

    The fixed point of `canary_count(stable + canary, weight)`: the region's live count includes the
    canary. Ties go to the lower share; a weight above 0 always gets a pod.

    >>> canary_beside(4, 50), canary_beside(9, 10), canary_beside(8, 25), canary_beside(16, 25)
    (4, 1, 3, 5)
    >>> canary_beside(4, 10)   # 1 of 5 (20%) is as close as 0 of 4, and a step above 0 gets a pod
    1
    >>> canary_beside(4, 0), canary_beside(0, 50)
    (0, 1)
    """
    if weight <= 0:
        return 0
    if weight >= 100 or stable <= 0:
        return max(stable, 1)
    ideal = stable * weight / (100 - weight)
    candidates = {max(1, math.floor(ideal)), max(1, math.ceil(ideal))}
    return min(candidates, key=lambda c: (abs(share_of(stable, c) - weight), c))


def autoscaled_canary(stable_live: int, weight: int, max_surge: str, stable_ready: int, canary_ready: int) -> int:
    """The canary's replicas at `weight`% beside `stable_live` autoscaled pods.

    Pods never exceed the ready ones plus `maxSurge` of them (the cap is on what serves now, as the
    autoscaler moves the total), and the cap never takes a ready canary pod away: only the share does,
    when the autoscaler shrinks stable because the load fell.

    >>> autoscaled_canary(4, 50, "25%", 4, 0)      # room for 1 pod beside 4 ready
    1
    >>> autoscaled_canary(4, 50, "25%", 4, 1)      # 5 ready: 2 more fit
    3
    >>> autoscaled_canary(4, 50, "25%", 4, 3)
    4
    >>> autoscaled_canary(8, 50, "25%", 4, 4)      # stable doubled by its autoscaler, new pods loading
    4
    >>> autoscaled_canary(8, 50, "25%", 8, 4)      # ... and ready: the canary grows within the surge
    7
    >>> autoscaled_canary(3, 50, "25%", 3, 4)      # stable shrank (less load): the canary follows
    3
    """
    want = canary_beside(stable_live, weight)
    ready = stable_ready + canary_ready
    room = ready + surge_count(max_surge, max(ready, 1)) - stable_live
    return max(min(want, canary_ready), min(want, room))


def live_total(stable_live: int, canary_live: int, floor: int, ceiling: int) -> int:
    """A region's live count while a canary serves beside an autoscaled stable: both sides' replicas,
    at least the autoscaler's minimum; the ceiling bounds only what stable alone may grow to.

    >>> live_total(6, 2, 2, 10), live_total(0, 0, 2, 10), live_total(10, 4, 2, 10)
    (8, 2, 14)
    """
    return max(floor, min(stable_live, ceiling) + canary_live)
