"""Weights to replica counts: pure arithmetic, kept apart so every rule has a worked example.

The rules follow the usual canary practice: the canary gets its share of the region's replicas,
rounded up (a 1% step still gets a pod); extra pods are bounded by `maxSurge`; stable shrinks only as
far as the surge budget forces it, and with `maxSurge: 0` (a full GPU pool) it gives up exactly the
pods the canary takes, so the region's GPU total never rises.
"""

from __future__ import annotations

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


def split(replicas: int, weight: int, max_surge: str, canary_ready: int = 0) -> tuple[int, int]:
    """(stable, canary) replicas for a region at `weight`%.

    With surge, stable keeps every pod the budget allows, and never drops below what the ready canary
    pods replace (so ready serving pods never fall below `replicas`):

    >>> split(10, 10, "25%")      # 1 canary fits in a surge of 3
    (10, 1)
    >>> split(10, 50, "25%")      # 5 canaries: total limited to 13, but stable keeps 10 until they are ready
    (10, 5)
    >>> split(10, 50, "25%", canary_ready=5)
    (8, 5)
    >>> split(4, 100, "1", canary_ready=4)
    (1, 4)

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
    budget = replicas + surge - canary
    stable = min(replicas, max(budget, replicas - min(canary_ready, canary)))
    return max(stable, 0), canary
