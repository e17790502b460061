"""One POST of a JSON document, bounded by a timeout, described without secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from bellwether.api.hooks import MAX_EXCERPT
from bellwether.hooks.secrets import Target


@dataclass(frozen=True)
class Answer:
    outcome: Literal["ok", "refused", "timeout", "unreachable"]
    code: int | None
    excerpt: str  # of the answer's body, bounded, with the URL and header values taken out

    def describe(self, timeout: float) -> str:
        if self.outcome == "timeout":
            return f"no answer within {timeout:g}s"
        if self.code is None:
            return f"no connection ({self.excerpt})"
        return f"HTTP {self.code}" + (f": {self.excerpt}" if self.excerpt else "")

    @property
    def retryable(self) -> bool:
        """Worth trying again: the receiver may recover (5xx, 429, no answer); other 4xx will not."""
        return self.outcome in ("timeout", "unreachable") or self.code == 429 or (self.code or 0) >= 500


def excerpt(text: str, to: Target) -> str:
    return to.redact(re.sub(r"\s+", " ", text)).strip()[:MAX_EXCERPT]


async def post(session: aiohttp.ClientSession, to: Target, document: dict[str, Any], timeout: float) -> Answer:
    """POST `document`; never raises for what the receiver does (a refused connection, a timeout, a
    bad answer). Errors are named by their class only: aiohttp's messages can carry the URL."""
    try:
        async with session.post(
            to.url,
            json=document,
            headers=to.headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            text = await response.text(errors="replace")
            outcome: Literal["ok", "refused"] = "ok" if 200 <= response.status < 300 else "refused"
            return Answer(outcome, response.status, excerpt(text[: 4 * MAX_EXCERPT], to))
    except TimeoutError:
        return Answer("timeout", None, "")
    except (aiohttp.ClientError, OSError, ValueError) as e:
        return Answer("unreachable", None, type(e).__name__)
