"""A webhook receiver on loopback: real HTTP, answers scripted per request, every request kept."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class Answer:
    status: int = 200
    text: str = "ok"
    delay: float = 0.0  # seconds before answering


@dataclass
class WebhookServer:
    """`answers` are used in order, the last one for every request after them."""

    answers: list[Answer] = field(default_factory=lambda: [Answer()])
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: Answer) -> None:
        self.answers = list(answers)

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text() or "{}")
        self.received.append(Received(request.path_qs, dict(request.headers), body, time.monotonic()))
        answer = self.answers[min(len(self.received), len(self.answers)) - 1]
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, text=answer.text)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)  # the receiver logs nothing
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (really: deliveries happen in the background) until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.02)
