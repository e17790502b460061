"""Waiting for something the operator does on its own time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | None] | Callable[[], Awaitable[T | None]], timeout: float = 20.0, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")
