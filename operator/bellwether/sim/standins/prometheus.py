"""A tiny server answering the Prometheus HTTP query API (`/api/v1/query`, `/api/v1/query_range`).

The value of a query is chosen by the test from the label matchers in it (e.g. the canary revision in
one region answers with a high error rate), so the operator's real Prometheus client, query templates
and judge run unchanged. It can also be down (503, as behind a load balancer with no Prometheus left)
or slow (every answer `delay` seconds late; past the query's `timeout`, a timeout error instead).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

from aiohttp import web

Rule = Callable[[str], float | None]  # query text -> value (None = no data)
_MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def labels_in(query: str) -> dict[str, str]:
    """Equality matchers in a PromQL query: `{revision="abc"}` -> {"revision": "abc"}."""
    return dict(_MATCHER.findall(query))


class PrometheusStandIn:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.queries: list[str] = []
        self.down = False  # answer 503 to everything
        self.delay = 0.0  # seconds before each answer
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        app.router.add_route("*", "/api/v1/query_range", self._query_range)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, str]:
        if self.down:
            raise web.HTTPServiceUnavailable(text="no healthy upstream")
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        if self.delay:
            # Like Prometheus, give up at the query's own `timeout` with a timeout error.
            limit = float(params.get("timeout", "120s").rstrip("s") or 120)
            await asyncio.sleep(min(self.delay, limit))
            if self.delay > limit:
                error = {"status": "error", "errorType": "timeout", "error": "query timed out in query execution"}
                raise web.HTTPServiceUnavailable(text=json.dumps(error), content_type="application/json")
        return params

    async def _query(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        query = params["query"]
        self.queries.append(query)
        value = self.rule(query)
        at = float(params.get("time", 0) or 0)
        result = [] if value is None else [{"metric": {}, "value": [at, repr(value)]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    async def _query_range(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        query = params["query"]
        self.queries.append(query)
        value = self.rule(query)
        start, end, step = float(params["start"]), float(params["end"]), float(params.get("step", 15) or 15)
        points = []
        t = start
        while t <= end + 1e-9:
            points.append([t, repr(value)])
            t += step
        result = [] if value is None else [{"metric": {}, "values": points}]
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": result}})
