"""`PrometheusSource`: the metrics port answered by a real Prometheus over its HTTP API.

Plain `aiohttp` rather than a Prometheus client library: the operator's loop is asyncio (kopf), a
`query_range` call (a sample per interval) or an instant `query` (a preset's counts over the whole
window, `increase(...[<window>])` evaluated at its end) is all it needs, and the client libraries are
synchronous and pull in pandas and matplotlib. This is the only module of `analysis/` that does I/O.

Every failure comes back as a `Sample` with an `error` a person can act on (unreachable, timeout,
query rejected, a result of the wrong shape), which the judge turns into an Inconclusive measurement.
The bearer token is sent, never echoed in an error.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bellwether.analysis.presets import counting_of, query_of
from bellwether.analysis.source import Counts, Sample, Window
from bellwether.analysis.templating import TemplateError, Variables, render
from bellwether.api.spec import Metric
from bellwether.render.names import fit


def _variables(window: Window, interval_seconds: float) -> Variables:
    return Variables(
        name=fit(window.name),  # the `deployment` label holds the name as Kubernetes allows it in a label
        namespace=window.namespace,
        region=window.region,
        revision=window.revision,
        role=window.role,
        interval_seconds=interval_seconds,
    )


def rendered(metric: Metric, window: Window) -> str:
    """The PromQL a metric runs for a window: its template with the window's escaped values."""
    return render(query_of(metric), _variables(window, window.step))


def counted(template: str, window: Window) -> str:
    """A request-level query for a window: its range `[{{interval}}]` is the whole window, in seconds."""
    return render(template, _variables(window, max(1.0, math.floor(window.end - window.start))))


class PrometheusSource:
    """Use as `async with PrometheusSource(...) as source:` to share one connection pool, or hand it a
    `session` that outlives it (the operator keeps one for all its cycles: a pool per cycle would pay a
    new connection, and at scale a new TLS handshake, for every measurement). Used bare, each sample
    opens and closes its own."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        bearer_token: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._session = session
        self._owned = False  # whether `_session` is ours to close
        self.queries = 0

    async def __aenter__(self) -> PrometheusSource:
        if self._session is None:
            self._session, self._owned = aiohttp.ClientSession(), True
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session, self._owned = None, False

    async def sample(self, metric: Metric, window: Window) -> Sample:
        try:
            query = rendered(metric, window)
        except TemplateError as e:
            return Sample(None, error=f"metric {metric.name}: {e}")
        step = window.step if window.step > 0 else max(1.0, window.end - window.start)
        count = max(1, math.floor((window.end - window.start) / step + 1e-9))
        params = {
            "query": query,
            "start": f"{window.end - (count - 1) * step:.3f}",
            "end": f"{window.end:.3f}",
            "step": f"{step:g}",
            "timeout": f"{self.timeout:g}s",
        }
        body, error = await self._ask("/api/v1/query_range", params)
        if error is not None:
            return Sample(None, error=error)
        return _parse(body, window.end, step)

    async def counts(self, metric: Metric, window: Window) -> Counts:
        """A preset's counts over the window: bucket increases by `le`, or failed and total requests."""
        counting = counting_of(metric)
        if counting is None:
            return Counts(present=False, error=f"metric {metric.name} is not judged on its requests")
        try:
            if counting.buckets is not None:
                buckets, error = await self._vector(counted(counting.buckets, window), window.end)
                if error is not None:
                    return Counts(error=error)
                every = max((v for le, v in buckets if math.isinf(le)), default=0.0)
                seconds = sorted((le * counting.le_seconds, v) for le, v in buckets)
                return Counts(present=bool(buckets), buckets=seconds, total=every)
            assert counting.failed is not None and counting.total is not None
            (failed, error1), (total, error2) = await asyncio.gather(
                self._vector(counted(counting.failed, window), window.end),
                self._vector(counted(counting.total, window), window.end),
            )
        except TemplateError as e:
            return Counts(error=f"metric {metric.name}: {e}")
        if error1 or error2:
            return Counts(error=error1 or error2)
        return Counts(present=bool(total), failed=sum(v for _, v in failed), total=sum(v for _, v in total))

    async def _vector(self, query: str, at: float) -> tuple[list[tuple[float, float]], str | None]:
        """An instant query's result as (le, value) pairs (le is +Inf for a series without one)."""
        params = {"query": query, "time": f"{at:.3f}", "timeout": f"{self.timeout:g}s"}
        data, error = await self._ask("/api/v1/query", params)
        if error is not None:
            return [], error
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            return [], "the query returned no vector"
        out = []
        for series in data.get("result") or []:
            try:
                le = float((series.get("metric") or {}).get("le", "+Inf"))
                value = float(series["value"][1])
            except (TypeError, ValueError, KeyError, IndexError):
                return [], f"the query returned {series!r}, not a number"
            if math.isfinite(value):
                out.append((le, value))
        return out, None

    async def _ask(self, path: str, params: dict[str, str]) -> tuple[Any, str | None]:
        """The answer's `data`, or why there is none, in words a person can act on."""
        try:
            return await self._post(path, params), None
        except TimeoutError:
            return None, f"Prometheus at {self.url} did not answer within {self.timeout:g}s"
        except aiohttp.ClientError as e:
            return None, f"Prometheus at {self.url} unreachable: {_plain(e)}"
        except _Rejected as e:
            return None, str(e)

    async def _post(self, path: str, params: dict[str, str]) -> Any:
        self.queries += 1
        timeout = aiohttp.ClientTimeout(total=self.timeout + 1.0)
        if self._session is not None:
            return await self._send(self._session, path, params, timeout)
        async with aiohttp.ClientSession() as session:
            return await self._send(session, path, params, timeout)

    async def _send(
        self, session: aiohttp.ClientSession, path: str, params: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> Any:
        # Encoded here: a dict would go through aiohttp's multipart machinery (a fresh boundary per request).
        form, headers = urlencode(params), {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}
        async with session.post(self.url + path, data=form, headers=headers, timeout=timeout) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise _Rejected(f"Prometheus at {self.url} answered HTTP {response.status} without a JSON body")
            if body.get("status") != "success":
                kind = body.get("errorType", f"HTTP {response.status}")
                raise _Rejected(f"Prometheus refused the query ({kind}): {body.get('error', 'no reason given')}")
            return body.get("data")


class _Rejected(Exception):
    pass


def _plain(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _parse(data: Any, end: float, step: float) -> Sample:
    """One series of one number per step; anything else is an error saying how to fix the query."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        return Sample(None, error=f"the query returned a {kind}, not a number per interval; it must be a vector")
    result = data.get("result") or []
    if not result:
        return Sample(None)
    if len(result) > 1:
        labels = ", ".join(sorted({k for series in result for k in (series.get("metric") or {})})) or "none"
        return Sample(
            None,
            error=f"the query returned {len(result)} series (labels: {labels}); "
            "it must return one: aggregate it, e.g. sum(...) or histogram_quantile(q, sum by (le) (...))",
        )
    points: list[tuple[float, float]] = []
    for at, raw in result[0].get("values") or []:
        try:
            points.append((float(at), float(raw)))
        except (TypeError, ValueError):
            return Sample(None, error=f"the query returned {raw!r}, not a number")
    series = tuple(v for _, v in points if math.isfinite(v))
    last = points[-1] if points else None
    value = last[1] if last is not None and last[0] > end - step / 2 else None
    return Sample(value, series)
