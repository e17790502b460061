"""Timestamps as status stores them (ISO 8601 UTC strings); `now` always comes from the caller."""

from __future__ import annotations

from datetime import datetime, timedelta


def stamp(now: datetime) -> str:
    return now.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def elapsed(since: str | None, now: datetime) -> float:
    """Seconds since `since`; 0 when unknown (a missing timestamp never makes anything overdue)."""
    if since is None:
        return 0.0
    return (now - parse(since)).total_seconds()


def plus(since: str, seconds: float) -> str:
    return stamp(parse(since) + timedelta(seconds=seconds))


def not_before(at: str, since: str | None) -> bool:
    """`at` is at or after `since` (compared as times: `Z` and `+00:00` spell the same instant)."""
    return since is None or parse(at) >= parse(since)
