from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from support.receiver import WebhookServer


@pytest.fixture
async def server() -> AsyncIterator[WebhookServer]:
    s = WebhookServer()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
