"""Virtual time: the simulated world and the engine read the same clock, which only moves when told to.

A 30-minute rollout then runs in a fraction of a second, and the same seed gives the same run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class VirtualClock:
    """Seconds since `start`; `now()` is the timezone-aware UTC datetime the engine is given."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.start = start
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def unix(self) -> float:
        """Unix seconds, the time axis of metric windows."""
        return self.start.timestamp() + self.elapsed

    def at(self, unix: float) -> float:
        """Elapsed virtual seconds at a Unix time (for reading metric windows back on the timeline)."""
        return unix - self.start.timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"virtual time cannot go back ({seconds}s)")
        self.elapsed += seconds
