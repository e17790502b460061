"""Field ownership as the API server keeps it, for the one case that needs it here: an apply that is
not forced conflicts with a field another manager set to a different value.

Server-side apply records which manager last set each field (an apply, or an update such as a merge
patch or the scale subresource). An apply with `force=false` that would change a field owned by
someone else is refused with 409 Conflict and changes nothing; Bellwether relies on that to co-own a
Deployment's `replicas` with an autoscaler at the count it observed, and to lose the race safely when
the autoscaler moved it meanwhile. Only leaves outside `metadata` and `status` are tracked; lists are
atomic, as in the default list type of most fields (a simplification: real lists may merge by key).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Path = tuple[str, ...]


def leaves(obj: Mapping[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    for k, v in obj.items():
        if not prefix and k in ("metadata", "status", "apiVersion", "kind"):
            continue
        if isinstance(v, Mapping) and v:
            yield from leaves(v, (*prefix, k))
        else:
            yield (*prefix, k), v


def value_at(obj: Mapping[str, Any], path: Path) -> Any:
    cur: Any = obj
    for k in path:
        if not isinstance(cur, Mapping) or k not in cur:
            return None
        cur = cur[k]
    return cur


def conflicts(
    current: Mapping[str, Any], body: Mapping[str, Any], owners: Mapping[Path, str], manager: str
) -> list[str]:
    """The fields an unforced apply by `manager` would take from another manager: `.path (owner)`."""
    return [
        f".{'.'.join(path)} (owned by {owners[path]})"
        for path, value in leaves(body)
        if owners.get(path, manager) != manager and value_at(current, path) != value
    ]


def record(owners: dict[Path, str], written: Mapping[str, Any], manager: str) -> None:
    for path, _ in leaves(written):
        owners[path] = manager
