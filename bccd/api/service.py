"""Run the API with uvicorn inside `bccd serve`: same process, same asyncio loop as SMTP, its own port.

uvicorn's Server is driven as a task on the running loop. We bind the socket ourselves so that a busy
port raises OSError in `start()` (uvicorn would call sys.exit from inside the task), and we leave signal
handling to BccdApp, which drains SMTP first and then stops us.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Protocol

import uvicorn

from bccd.api.app import create_api
from bccd.api.context import ApiContext
from bccd.config import Settings
from bccd.logs import error_fields, get_logger
from bccd.metrics import Metrics
from bccd.outbound import mailer_from_settings
from bccd.services.runtime import Database

log = get_logger("bccd.api")

DRAIN_SECONDS = 10.0  # requests in flight get this long to finish on shutdown
START_TIMEOUT = 10.0
BACKLOG = 512


class _Smtp(Protocol):
    @property
    def listening(self) -> bool: ...


class ServedApp(Protocol):
    """What the service needs from BccdApp (a protocol, so the API does not import the SMTP stack)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def db(self) -> Database: ...
    @property
    def smtp(self) -> _Smtp: ...


def api_context(app: ServedApp) -> ApiContext:
    """The API's view of the running server: its database, metrics, Smart Bcc domain and SMTP state."""
    smtp = app.smtp
    return ApiContext(
        db=app.db,
        metrics=app.metrics,
        bcc_domain=app.settings.smtp.bcc_domains[0],
        smtp_listening=lambda: smtp.listening,
        public_url=app.settings.http.public_url,
        webhooks_allow_private=app.settings.webhooks.allow_private,
        mailer=mailer_from_settings(app.settings.outbound, app.settings.smtp.hostname),
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # BccdApp owns SIGTERM/SIGINT: it stops SMTP first, then calls HttpApiService.stop().
        yield


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # several `bccd serve` workers on one port (config http.reuse_port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpApiService:
    def __init__(self, app: ServedApp) -> None:
        self.context = api_context(app)
        self._host = app.settings.http.host
        self._port = app.settings.http.port
        self._reuse_port = app.settings.http.reuse_port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0 in tests)."""
        if self._socket is None:
            raise RuntimeError("the HTTP API is not running")
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Listen, and return once uvicorn serves requests on the socket."""
        if self._task is not None:
            return
        config = uvicorn.Config(
            create_api(self.context),
            loop="none",  # the running loop: BccdApp's
            lifespan="off",  # BccdApp owns start-up and shutdown of the database
            log_config=None,  # logging is configured once by bccd.logs
            access_log=False,  # the request guard writes one structured line per request
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=int(DRAIN_SECONDS),
        )
        self._socket = _bind(self._host, self._port, reuse_port=self._reuse_port)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="bccd-http")
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not self._server.started:
            if self._task.done():
                await self._cleanup()
                raise RuntimeError("the HTTP API failed to start")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise RuntimeError("the HTTP API did not start in time")
            await asyncio.sleep(0.01)
        log.info("http_listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close the socket."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), DRAIN_SECONDS + 5)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._cleanup()
        log.info("http_stopped")

    async def _cleanup(self) -> None:
        task, self._task, self._server = self._task, None, None
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            failure = task.exception()
            assert failure is not None
            log.error("http_server_failed", **error_fields(failure))
        if self._socket is not None:
            self._socket.close()
            self._socket = None
