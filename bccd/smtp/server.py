"""The SMTP listener: aiosmtpd on the application's own event loop, with bccd's limits and replies.

aiosmtpd does the protocol (and since 1.4.5 refuses bare-LF/CR end-of-data smuggling, S6); this module adds
the connection cap, separate command and DATA deadlines, enhanced status codes and the Smart Bcc hooks.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from bccd.config import SmtpSettings
from bccd.ingest import Ingestor, RcptStatus, Recipient
from bccd.logs import get_logger
from bccd.metrics import Metrics
from bccd.smtp import replies

log = get_logger("bccd.smtp")

# RFC 5321 §4.5.3.1.5: the reply line limit is 512 octets; aiosmtpd's default is fine for commands.
DRAIN_SECONDS = 30.0


class ConnectionGate:
    """Counts open sessions against the cap (S4) and remembers them for a clean drain on shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: set[BccdSMTP] = set()
        self.busy = 0  # sessions inside DATA processing right now
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False

    def enter_data(self) -> None:
        self.busy += 1
        self.idle.clear()

    def leave_data(self) -> None:
        self.busy -= 1
        if not self.busy:
            self.idle.set()


class SmartBccHandler:
    """aiosmtpd hooks: RCPT resolves the Smart Bcc owner, DATA hands the bytes to ingest."""

    def __init__(
        self, ingestor: Ingestor, settings: SmtpSettings, metrics: Metrics, gate: ConnectionGate
    ) -> None:
        self._ingestor = ingestor
        self._settings = settings
        self._metrics = metrics
        self._gate = gate

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # T3: no AUTH is offered; S4: PIPELINING is (aiosmtpd reads commands one line at a time anyway).
        kept = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        kept.insert(len(kept) - 1, "250-PIPELINING")
        kept.insert(len(kept) - 1, "250-ENHANCEDSTATUSCODES")  # RFC 2034: every other reply carries one
        return kept

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = await self._rcpt(envelope, address, rcpt_options)
        self._metrics.smtp_replies.labels("RCPT", replies.code_of(reply)).inc()
        return reply

    async def _rcpt(self, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        recipients: list[Recipient] = getattr(envelope, "bccd_recipients", [])
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            log.info("smtp_rcpt_refused", reason="too_many_recipients")
            return replies.TOO_MANY_RECIPIENTS
        try:
            resolution = await self._ingestor.resolve_recipient(address)
        except Exception:
            log.exception("smtp_rcpt_failed")
            return replies.RCPT_TEMPFAIL
        if resolution.status is RcptStatus.FOREIGN_DOMAIN:
            log.info("smtp_rcpt_refused", reason="relay_denied")
            return replies.RELAY_DENIED
        if resolution.status is RcptStatus.UNKNOWN_ADDRESS or resolution.recipient is None:
            log.info("smtp_rcpt_refused", reason="unknown_address")
            return replies.UNKNOWN_ADDRESS
        recipients.append(resolution.recipient)
        envelope.bccd_recipients = recipients  # type: ignore[attr-defined]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        log.info("smtp_rcpt_accepted", owner=resolution.recipient.owner.id)
        return replies.RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._gate.enter_data()
        try:
            reply = await self._data(session, envelope)
        finally:
            self._gate.leave_data()
        self._metrics.smtp_replies.labels("DATA", replies.code_of(reply)).inc()
        return reply

    async def _data(self, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if not isinstance(raw, bytes | bytearray):
            return replies.TEMPFAIL
        recipients: list[Recipient] = getattr(envelope, "bccd_recipients", [])
        try:
            delivery = await self._ingestor.deliver(
                bytes(raw), envelope.mail_from, recipients, session_id=getattr(session, "bccd_id", None)
            )
        except Exception as exc:
            # S2: never 250 without a commit; the client keeps the message and retries.
            log.error("message_store_failed", error=type(exc).__name__, size=len(raw))
            return replies.TEMPFAIL
        if not delivery.accepted:
            log.info("message_refused", reason="sender_policy", size=len(raw))
            return replies.SENDER_REFUSED
        self._metrics.messages_accepted.inc()
        log.info("message_accepted", size=len(raw), threads=[t.id for t in delivery.threads])
        return replies.STORED

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", error=type(error).__name__)
        return replies.TEMPFAIL


class BccdSMTP(SMTP):
    """aiosmtpd's protocol with bccd's connection cap, deadlines and reply texts."""

    def __init__(
        self,
        handler: SmartBccHandler,
        *,
        settings: SmtpSettings,
        gate: ConnectionGate,
        metrics: Metrics,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        # Read by SMTP.__init__ to size the stream buffer: the longest line we take (RFC 5321 §4.5.3.1.6).
        self.line_length_limit = settings.max_line_length + 2
        super().__init__(
            handler,
            hostname=settings.hostname,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=settings.command_timeout,
            tls_context=tls_context,
            require_starttls=False,
            auth_require_tls=True,
            ident="bccd Smart Bcc",
        )
        self._bccd_settings = settings
        self._gate = gate
        self._metrics = metrics
        self._counted = False
        self._session_id = uuid.uuid4().hex[:16]
        self._greeted = False
        self._in_hello = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._counted or self._original_transport is not None:  # STARTTLS upgrade of a counted session
            super().connection_made(transport)
            return
        if self._gate.closing or len(self._gate.open) >= self._gate.limit:
            reply = replies.SHUTTING_DOWN if self._gate.closing else replies.TOO_MANY_CONNECTIONS
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply.encode("ascii") + b"\r\n")
            transport.close()
            log.warning(
                "smtp_connection_refused", reason="closing" if self._gate.closing else "connection_cap"
            )
            return
        self._counted = True
        self._gate.open.add(self)
        self._metrics.smtp_sessions.inc()
        self._metrics.smtp_connections.set(len(self._gate.open))
        super().connection_made(transport)
        setattr(self.session, "bccd_id", self._session_id)  # noqa: B010 - Session has no slot for it

    def connection_lost(self, error: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._gate.open.discard(self)
        self._metrics.smtp_connections.set(len(self._gate.open))
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        structlog.contextvars.bind_contextvars(session=self._session_id)
        log.info("smtp_session_started")
        try:
            await super()._handle_client()
        finally:
            log.info("smtp_session_ended")

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        text = replies.AIOSMTPD_REWRITES.get(text, text)
        if self._greeted and not self._in_hello:
            text = replies.with_enhanced_code(text)
        self._greeted = True  # the first reply is the 220 greeting, which carries no enhanced code
        await super().push(text)

    async def smtp_HELO(self, hostname: str) -> None:
        self._in_hello = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._in_hello = False

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_hello = True  # RFC 2034: the HELO/EHLO answer carries no enhanced codes
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_hello = False

    async def smtp_DATA(self, arg: str) -> None:
        # The whole DATA transfer gets its own deadline (S4); the command timeout resumes after it.
        self._reset_timeout(self._bccd_settings.data_timeout)
        await super().smtp_DATA(arg)

    def _timeout_cb(self) -> None:
        # RFC 5321 §4.5.3.2: tell the client why before closing an idle or stalled session.
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(replies.TIMEOUT.encode("ascii") + b"\r\n")
        log.info("smtp_session_timeout")
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def smtp_AUTH(self, arg: str) -> None:
        await self.push(replies.AUTH_NOT_OFFERED)


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key) if settings.tls_key else None)
    return ctx


class SmtpServer:
    """Owns the listening socket. `stop()` refuses new sessions, lets DATA in progress finish, then closes."""

    def __init__(self, ingestor: Ingestor, settings: SmtpSettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self.gate = ConnectionGate(settings.max_connections)
        self._handler = SmartBccHandler(ingestor, settings, metrics, self.gate)
        self._tls = _tls_context(settings)
        self._server: asyncio.base_events.Server | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _protocol(self) -> BccdSMTP:
        return BccdSMTP(
            self._handler,
            settings=self._settings,
            gate=self.gate,
            metrics=self._metrics,
            tls_context=self._tls,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            host=self._settings.host,
            port=self._settings.port,
            reuse_port=self._settings.reuse_port or None,
        )
        log.info("smtp_listening", host=self._settings.host, port=self.port)

    async def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        if self._server is None:
            return
        self.gate.closing = True
        self._server.close()
        try:
            await asyncio.wait_for(self.gate.idle.wait(), drain_seconds)
        except TimeoutError:
            log.warning("smtp_drain_timeout", busy=self.gate.busy)
        for proto in list(self.gate.open):
            transport = proto.transport
            if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
                transport.write(replies.SHUTTING_DOWN.encode("ascii") + b"\r\n")
                transport.close()
        await self._server.wait_closed()
        self._server = None
        log.info("smtp_stopped")
