"""Web fixtures: the pages in-process over httpx (fast), and a real server with headless Chromium.

Browser tests need Debian's `chromium` and `chromedriver` (`apt-get install -y chromium chromium-driver`;
.ci/run installs them). Without them the browser tests are skipped with that reason, never silently.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.service import HttpApiService, api_context
from bccd.app import BccdApp
from bccd.store.migrate import upgrade
from tests.api.support import http_settings
from tests.conftest import app_settings
from tests.helpers import World, seed_world
from tests.web.support import Browser, seed_sales, sign_in

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
WINDOW = (1280, 900)
T = TypeVar("T")


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


SKIP_REASON = (
    "browser tests skipped: chromium and chromedriver not found on PATH "
    "(Debian: apt-get install -y chromium chromium-driver)"
)


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database per session, copied for each test (as tests/api does)."""
    path = tmp_path_factory.mktemp("web-template") / "bccd.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def web_db_url(web_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "bccd.sqlite3"
    with closing(sqlite3.connect(web_template)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def web(web_db_url: str) -> AsyncIterator[tuple[BccdApp, World, Callable[[str], Awaitable[Browser]]]]:
    """A running bccd (SMTP on loopback) with the seeded world; `login(role)` gives a signed-in browser."""
    app = BccdApp(app_settings(web_db_url))
    await app.start()
    clients: list[httpx.AsyncClient] = []
    try:
        world = await seed_world(app.db)
        await seed_sales(app, world)
        api = create_api(api_context(app))

        async def login(role: str | None) -> Browser:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://bccd.test")
            clients.append(client)
            if role is not None:
                await sign_in(client, app, getattr(world, role).id)
            return Browser(client)

        yield app, world, login
    finally:
        for client in clients:
            await client.aclose()
        await app.stop()


class LiveServer:
    """bccd serving SMTP and HTTP on loopback from its own thread and event loop, so that blocking
    Selenium calls in the test never stall the server."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = BccdApp(http_settings(url))
        self._thread = threading.Thread(target=self.loop.run_forever, name="bccd-live", daemon=True)
        self._thread.start()
        self.call(self.app.start())
        assert isinstance(self.app.http, HttpApiService)
        self.base_url = f"http://127.0.0.1:{self.app.http.port}"

    def call(self, coro: Awaitable[T], timeout: float = 30) -> T:
        async def run() -> T:
            return await coro

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.call(self.app.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def live(web_db_url: str) -> Iterator[tuple[LiveServer, World]]:
    server = LiveServer(web_db_url)
    try:
        world = server.call(seed_world(server.app.db))
        server.call(seed_sales(server.app, world))
        yield server, world
    finally:
        server.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (starting one costs about a second)."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip(SKIP_REASON)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def driver(chromium: Any) -> Iterator[Any]:
    """The session's browser with no cookies of an earlier test and the desktop window size."""
    chromium.delete_all_cookies()
    chromium.set_window_size(*WINDOW)
    yield chromium
    chromium.get("about:blank")
    chromium.delete_all_cookies()


def screenshot(driver: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
