"""Fixtures for the sim's own tests (the sim itself comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.sim.helpers import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook endpoint on a free port that keeps what it gets."""
    target = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks"
    yield target
    await runner.cleanup()
