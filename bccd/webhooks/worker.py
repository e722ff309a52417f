"""The delivery worker: runs on `bccd serve`'s loop and posts due events to their endpoints.

- At-least-once: a delivery is marked delivered only after a 2xx; a crash mid-flight leaves the row to be
  claimed again when its lease ends. Receivers dedupe by `webhook-id`.
- In order per thread and endpoint (the claim query holds back later events of a pending thread).
- Retries with exponential backoff and jitter (`retry_base` doubling up to `retry_max`) until the event is
  `retry_for` old (default 26 h); then the delivery is failed. A 410 Gone disables the endpoint.
- Isolation: HTTP happens outside any transaction; at most `per_endpoint_concurrency` requests per endpoint
  and `concurrency` per node are in flight, each bounded by `timeout`, so a slow or dead endpoint holds
  only its own slots — never SMTP's commit path or another endpoint's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bccd import __version__
from bccd.config import WebhookSettings
from bccd.logs import get_logger
from bccd.metrics import Metrics
from bccd.services.runtime import Database
from bccd.webhooks import store
from bccd.webhooks.signing import headers as signed_headers
from bccd.webhooks.ssrf import UnsafeEndpoint, resolve

log = get_logger("bccd.webhooks")

DEPTH_EVERY = 5.0  # seconds between queue-depth samples for the gauge
STOP_GRACE = 5.0  # requests in flight get this long on shutdown (their rows are retried anyway)


def envelope(c: store.Claimed) -> dict[str, Any]:
    return {
        "id": c.event_uid,
        "type": c.event_type,
        "timestamp": c.event_at.isoformat(),
        "company": c.company_id,
        "data": c.data,
    }


def body_of(c: store.Claimed) -> bytes:
    return json.dumps(envelope(c), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def backoff(attempts: int, settings: WebhookSettings) -> float:
    """Seconds until the next attempt after `attempts` failures: doubling, capped, with ±25 % jitter."""
    delay = min(settings.retry_max, settings.retry_base * 2 ** max(0, attempts - 1))
    return float(delay * random.uniform(0.75, 1.25))


def _pinned(url: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, dict[str, str]]:
    """The URL with its host replaced by the checked address, and the Host header to send."""
    parts = urlsplit(url)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), {"host": host_header}


class WebhookWorker:
    def __init__(self, db: Database, settings: WebhookSettings, metrics: Metrics) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._per_endpoint: Counter[int] = Counter()

    @property
    def lease(self) -> float:
        """How long a claimed delivery is ours: longer than any attempt can take (capped below)."""
        return self.settings.timeout * 2 + 5

    def start(self) -> None:
        if self._task is not None:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,
            headers={"user-agent": f"bccd-webhooks/{__version__}"},
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )
        self._task = asyncio.create_task(self._run(), name="bccd-webhooks")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_depth = 0.0
        while not self._stopping.is_set():
            try:
                if loop.time() >= next_depth:
                    async with self.db.read() as conn:
                        self.metrics.webhook_queue_depth.set(await store.queue_depth(conn))
                    next_depth = loop.time() + DEPTH_EVERY
                claimed = await self._claim()
            except Exception as exc:  # the database is down: keep the loop alive, try again
                log.warning("webhook_claim_failed", error=type(exc).__name__)
                claimed = []
            for c in claimed:
                self._per_endpoint[c.endpoint_id] += 1
                task = asyncio.create_task(self._deliver(c), name=f"bccd-webhook-{c.id}")
                self._inflight.add(task)
                task.add_done_callback(self._done(c.endpoint_id))
            if claimed and len(self._inflight) < self.settings.concurrency:
                continue  # more may be due at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)

    def _done(self, endpoint_id: int) -> Any:
        def callback(task: asyncio.Task[None]) -> None:
            self._inflight.discard(task)
            self._per_endpoint[endpoint_id] -= 1
            if self._per_endpoint[endpoint_id] <= 0:
                del self._per_endpoint[endpoint_id]
            self._wake.set()  # a slot is free: the next event of that thread may be due now

        return callback

    async def _claim(self) -> list[store.Claimed]:
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0:
            return []
        async with self.db.read() as conn:
            endpoints = await store.due_endpoints(conn)
        endpoints = [e for e in endpoints if self._per_endpoint[e] < self.settings.per_endpoint_concurrency]
        if not endpoints:
            return []
        out: list[store.Claimed] = []
        async with self.db.write() as conn:
            for endpoint_id in endpoints:
                room = min(
                    free - len(out), self.settings.per_endpoint_concurrency - self._per_endpoint[endpoint_id]
                )
                if room <= 0:
                    continue
                out += await store.claim(conn, endpoint_id, limit=room, lease=self.lease)
        return out

    async def _deliver(self, c: store.Claimed) -> None:
        try:
            status, error = await self._post(c)
        except Exception as exc:  # never let one delivery kill the worker
            status, error = None, f"{type(exc).__name__}"
        try:
            await self._record(c, status, error)
        except Exception as exc:  # the row is retried when its lease ends
            log.warning("webhook_result_not_saved", delivery=c.id, error=type(exc).__name__)

    async def _post(self, c: store.Claimed) -> tuple[int | None, str | None]:
        """(HTTP status or None, error or None) of one attempt."""
        assert self._client is not None
        try:
            ips = await resolve(c.url, allow_private=self.settings.allow_private)
        except UnsafeEndpoint as exc:
            return None, str(exc)
        body = body_of(c)
        timestamp = int(datetime.now(UTC).timestamp())
        url, host = _pinned(c.url, ips[0])
        hdrs = {**signed_headers(c.secrets, c.event_uid, timestamp, body), **host}
        extensions = {"sni_hostname": urlsplit(c.url).hostname} if c.url.startswith("https:") else None
        try:
            async with asyncio.timeout(self.settings.timeout * 2):  # whole attempt, not each phase
                response = await self._client.post(url, content=body, headers=hdrs, extensions=extensions)
        except (httpx.TimeoutException, TimeoutError):
            return None, "timeout"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: connection failed"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    async def _record(self, c: store.Claimed, status: int | None, error: str | None) -> None:
        now = datetime.now(UTC)
        if error is None:
            assert status is not None
            async with self.db.write() as conn:
                await store.mark_delivered(conn, c.id, status)
            self.metrics.webhook_deliveries.labels(result="delivered").inc()
            log.info(
                "webhook_delivered",
                delivery=c.id,
                endpoint=c.endpoint_id,
                webhook_id=c.event_uid,
                status=status,
            )
            return
        self.metrics.webhook_deliveries.labels(result="failed_attempt").inc()
        if status == 410:
            async with self.db.write() as conn:
                await store.disable_endpoint(conn, c.endpoint_id, "410 Gone from the endpoint")
                await store.mark_failed(
                    conn, c.id, status=status, error="410 Gone: endpoint disabled", retry_at=None
                )
            log.warning("webhook_endpoint_disabled", endpoint=c.endpoint_id, status=status)
            return
        give_up = now - c.event_at >= timedelta(seconds=self.settings.retry_for)
        retry_at = None if give_up else now + timedelta(seconds=backoff(c.attempts, self.settings))
        async with self.db.write() as conn:
            await store.mark_failed(conn, c.id, status=status, error=error, retry_at=retry_at)
        if give_up:
            self.metrics.webhook_deliveries.labels(result="given_up").inc()
        log.warning(
            "webhook_attempt_failed",
            delivery=c.id,
            endpoint=c.endpoint_id,
            webhook_id=c.event_uid,
            attempts=c.attempts,
            error=error,
            gave_up=give_up,
        )
