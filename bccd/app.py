"""The running server: builds the object graph from settings and owns start, serve and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from typing import Protocol

from alembic.runtime.migration import MigrationContext

from bccd.auth.dns import AsyncDns
from bccd.auth.evaluate import SenderAuthenticator
from bccd.config import Settings
from bccd.ingest import Ingestor
from bccd.logs import get_logger
from bccd.metrics import Metrics
from bccd.parse_cost import parse_process
from bccd.smtp.server import SmtpServer
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.migrate import current_head
from bccd.store.raw_chunks import tidy_forever
from bccd.webhooks.worker import WebhookWorker

log = get_logger("bccd.app")


class SchemaOutOfDate(RuntimeError):
    """The database is not at the migration head: the operator must run `bccd db upgrade`."""


class HttpService(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class BccdApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = Database(settings.database.url.get_secret_value(), pool_size=settings.database.pool_size)
        self.commits = CommitQueue(self.db, batch_max=settings.database.commit_batch_max)
        self.metrics.commit_queue_depth.set_function(lambda: self.commits.depth)
        # One resolver (and its TTL cache) for the whole server: sender authentication at end of DATA.
        self.dns = AsyncDns(settings.dns)
        self.ingestor = Ingestor(
            self.db,
            self.commits,
            bcc_domains=settings.smtp.bcc_domains,
            metrics=self.metrics,
            authenticator=SenderAuthenticator(self.dns, self.metrics),
        )
        self.smtp = SmtpServer(self.ingestor, settings.smtp, self.metrics)
        self.http: HttpService | None = None
        self.webhooks = WebhookWorker(self.db, settings.webhooks, self.metrics)
        self._stop = asyncio.Event()
        self._tidy: asyncio.Task[None] | None = None

    async def check_schema(self) -> None:
        async with self.db.reader.connect() as conn:
            revision = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        head = current_head()
        if revision != head:
            raise SchemaOutOfDate(
                f"database schema is at {revision or 'nothing'}, code expects {head}: run `bccd db upgrade`"
            )

    async def start(self) -> None:
        await self.check_schema()
        parse_process.start()  # the fork server and its worker, before the first expensive message
        self.commits.start()
        if self.db.is_sqlite:  # pieces of big messages that were never stored (bccd.store.raw_chunks)
            self._tidy = asyncio.create_task(tidy_forever(self.db), name="bccd-chunk-tidy")
        if self.settings.webhooks.enabled:
            self.webhooks.start()
        try:
            await self.smtp.start()
            if self.settings.http.enabled:
                from bccd.api.service import HttpApiService

                self.http = HttpApiService(self)
                await self.http.start()
        except BaseException:
            # A port already taken must not leave half a server running (SMTP up, HTTP down).
            await self.stop()
            raise
        log.info("bccd_started")

    async def stop(self) -> None:
        """SIGTERM: stop taking mail, finish what is in flight, commit, close the database."""
        log.info("bccd_stopping")
        await self.smtp.stop()
        if self.http is not None:
            await self.http.stop()
        await self.commits.stop()
        if self._tidy is not None:
            self._tidy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tidy
            self._tidy = None
        await self.webhooks.stop()
        await self.db.close()
        log.info("bccd_stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        # Everything loaded so far (modules, the vocabulary, the public suffix list) lives as long as the
        # process: out of the collector's generations, so full collections stop re-walking it.
        gc.collect()
        gc.freeze()
        try:
            await self._stop.wait()
        finally:
            await self.stop()
