"""The wall clock every stand-in shares, in the form Kubernetes writes timestamps: RFC 3339 in UTC, to
the second (creationTimestamp, deletionTimestamp, a condition's lastTransitionTime)."""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_text(offset: float = 0.0) -> str:
    """Now (or `offset` seconds from now) as the API server would write it."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset)
    return at.strftime(FORMAT)


def epoch(text: str | None) -> float | None:
    """Unix seconds of a Kubernetes timestamp (None when it is unset)."""
    if not text:
        return None
    return datetime.datetime.strptime(text, FORMAT).replace(tzinfo=datetime.UTC).timestamp()
