"""The dashboard in headless Chromium: every page loads with no console errors; screenshots are
saved under test-artifacts/ (gitignored). Needs Debian's chromium and chromium-driver and Python's
selenium; scripts/test installs them. With CI=true a missing browser fails the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.dashboard import Dashboard
from ledger.db import Ledger
from tests.view.fill import NOW

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PAGES = {
    "overview": "/",
    "repository": "/repos/acme/widgets",
    "pull": "/repos/acme/widgets/pulls/3",
    "jobs": "/jobs",
}


def _browser_or_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python package selenium is not installed (pip install -e '.[dev]')"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def browser_available() -> None:
    reason = _browser_or_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true: the browser test must run, but {reason}")
    pytest.skip(reason)


def _visit_all(base: str, out: Path) -> dict[str, list[dict[str, Any]]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    profile = tempfile.mkdtemp(prefix="prsteward-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
    )
    logs: dict[str, list[dict[str, Any]]] = {}
    try:
        driver.set_page_load_timeout(30)
        for name, path in PAGES.items():
            driver.get(base + path)
            assert driver.title.endswith("prsteward"), (name, driver.title)
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1280, max(900, min(int(height) + 40, 4000)))
            driver.save_screenshot(str(out / f"dashboard-{name}.png"))
            logs[name] = list(driver.get_log("browser"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return logs


async def test_every_page_loads_without_console_errors(
    browser_available: None, filled_sqlite: Ledger
) -> None:
    app = web.Application()
    Dashboard(filled_sqlite, host="127.0.0.1", token=None, clock=lambda: NOW).mount(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        logs = await asyncio.to_thread(_visit_all, f"http://127.0.0.1:{port}", ARTIFACTS)
    finally:
        await runner.cleanup()
    errors = {
        page: [entry for entry in entries if entry.get("level") in {"SEVERE", "WARNING"}]
        for page, entries in logs.items()
    }
    assert errors == {page: [] for page in PAGES}
    for name in PAGES:
        shot = ARTIFACTS / f"dashboard-{name}.png"
        assert shot.stat().st_size > 10_000, shot  # a real rendering, not a blank page
