"""The SMTP listener: aiosmtpd on the application's own event loop, with bccd's limits and replies.

aiosmtpd does the protocol (and since 1.4.5 refuses bare-LF/CR end-of-data smuggling, S6); this module adds
the connection caps (global and per client IP), separate command, DATA and whole-session deadlines, command
budgets, fair scheduling between sessions, enhanced status codes, a drain on shutdown and the Smart Bcc
hooks. What it needs of aiosmtpd's internals goes through `aiosmtpd_compat`; its own per-session state
is a `SessionState` on the protocol object.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from bccd.config import SmtpSettings
from bccd.ingest import Ingestor, RcptStatus
from bccd.logs import error_fields, get_logger
from bccd.metrics import Metrics
from bccd.smtp import replies
from bccd.smtp.aiosmtpd_compat import CompatSMTP
from bccd.smtp.command_addr import plain_angle_addr
from bccd.smtp.data import DataProblem, read_data
from bccd.smtp.gate import ConnectionGate, Refusal
from bccd.smtp.session import CommandBudget, SessionState

log = get_logger("bccd.smtp")

LONG_LINE_DEFECT = "line_too_long"  # RFC 5322 §2.1.1: a line over 998 characters, stored verbatim
ABORT_GRACE_SECONDS = 5.0  # after a session ends, its socket gets this long to flush before an abort
# Commands that move no mail: each may be sent max_idle_commands times per session (aiosmtpd's budget).
IDLE_COMMANDS = ("NOOP", "RSET", "HELP", "VRFY", "EXPN", "HELO", "EHLO", "STARTTLS")
_REFUSED_RCPT = frozenset({"550", "553"})
_CAP_REPLIES = {"max_commands": replies.TOO_MANY_COMMANDS, "command_rate": replies.COMMANDS_TOO_FAST}


def _closing_reason(reply: str) -> str:
    if reply == replies.TOO_MANY_FAILED_RCPTS:
        return "failed_rcpts"
    if reply == replies.SHUTTING_DOWN:
        return "shutdown"
    if "sent too many times" in reply:  # aiosmtpd's command_call_limit
        return "idle_commands"
    return "closing_reply"


def _state(server: SMTP) -> SessionState:
    assert isinstance(server, BccdSMTP) and server.state is not None
    return server.state


class SmartBccHandler:
    """aiosmtpd hooks: RCPT resolves the Smart Bcc owner, DATA hands the bytes to ingest."""

    def __init__(self, ingestor: Ingestor, settings: SmtpSettings, metrics: Metrics) -> None:
        self._ingestor = ingestor
        self._settings = settings
        self._metrics = metrics

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
        state = _state(server)
        reply = await self._rcpt(state, envelope, address, rcpt_options)
        if replies.code_of(reply) in _REFUSED_RCPT:
            state.failed_rcpts += 1
            if state.failed_rcpts > self._settings.max_failed_rcpts:
                log.warning("smtp_session_closed", reason="failed_rcpts", failed=state.failed_rcpts)
                reply = replies.TOO_MANY_FAILED_RCPTS  # push() closes the connection after a 421
        self._metrics.smtp_replies.labels("RCPT", replies.code_of(reply)).inc()
        return reply

    async def _rcpt(
        self, state: SessionState, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            log.info("smtp_rcpt_refused", reason="too_many_recipients")
            return replies.TOO_MANY_RECIPIENTS
        try:
            address.encode("utf-8")
        except UnicodeEncodeError:  # aiosmtpd keeps undecodable bytes as surrogates
            log.info("smtp_rcpt_refused", reason="malformed_address")
            return replies.MALFORMED_ADDRESS
        try:
            resolution = await self._ingestor.resolve_recipient(address)
        except Exception as exc:
            log.error("smtp_rcpt_failed", **error_fields(exc))
            return replies.RCPT_TEMPFAIL
        if resolution.status is RcptStatus.FOREIGN_DOMAIN:
            log.info("smtp_rcpt_refused", reason="relay_denied")
            return replies.RELAY_DENIED
        if resolution.status is RcptStatus.UNKNOWN_ADDRESS or resolution.recipient is None:
            log.info("smtp_rcpt_refused", reason="unknown_address")
            return replies.UNKNOWN_ADDRESS
        try:
            sender_class = await self._ingestor.sender_class(resolution.recipient, envelope.mail_from)
        except Exception as exc:
            log.error("smtp_rcpt_failed", **error_fields(exc))
            return replies.RCPT_TEMPFAIL
        if state.recipients and sender_class != state.sender_class:
            # S5, no silent drops (bccd.sender_policy): the client sends it again in its own transaction.
            owner = resolution.recipient.owner.id
            log.info("smtp_rcpt_deferred", reason="sender_policy_differs", owner=owner)
            return replies.SEPARATE_TRANSACTION
        state.sender_class = sender_class
        state.recipients.append(resolution.recipient)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        log.info("smtp_rcpt_accepted", owner=resolution.recipient.owner.id)
        return replies.RCPT_OK

    async def deliver(
        self, state: SessionState, envelope: Envelope, defects: tuple[str, ...], helo: str | None = None
    ) -> str:
        reply = await self._data(state, envelope, defects, helo)
        self._metrics.smtp_replies.labels("DATA", replies.code_of(reply)).inc()
        return reply

    async def _data(
        self, state: SessionState, envelope: Envelope, defects: tuple[str, ...], helo: str | None
    ) -> str:
        raw = envelope.original_content
        if not isinstance(raw, bytes | bytearray):
            return replies.TEMPFAIL
        try:
            delivery = await self._ingestor.deliver(
                bytes(raw),
                envelope.mail_from,
                state.recipients,
                session_id=state.id,
                defects=defects,
                client_ip=state.peer_ip,
                helo=helo,
            )
        except Exception as exc:
            # S2: never 250 without a commit; the client keeps the message and retries.
            log.error("message_store_failed", size=len(raw), **error_fields(exc))
            return replies.TEMPFAIL
        if delivery.retry is not None:
            # A3: a `require` owner's check hit a DNS failure: nothing stored, the client retries.
            log.info("message_deferred", reason="sender_auth", auth_reason=delivery.retry, size=len(raw))
            return replies.SENDER_AUTH_REPLIES[delivery.retry]
        if delivery.mixed:
            log.info("message_deferred", reason="sender_policy_mixed", size=len(raw))
            return replies.SENDER_POLICY_MIXED
        if not delivery.accepted:
            if delivery.refusal is not None:
                log.info("message_refused", reason="sender_auth", auth_reason=delivery.refusal, size=len(raw))
                return replies.SENDER_AUTH_REPLIES[delivery.refusal]
            log.info("message_refused", reason="sender_policy", size=len(raw))
            return replies.SENDER_REFUSED
        self._metrics.messages_accepted.inc()
        log.info("message_accepted", size=len(raw), threads=[t.id for t in delivery.threads])
        return replies.STORED

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", **error_fields(error))
        return replies.TEMPFAIL


class BccdSMTP(CompatSMTP):
    """aiosmtpd's protocol with bccd's caps, deadlines, budgets and reply texts."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """A plain `<local@domain>` without the stdlib header parser (bccd.smtp.command_addr)."""
        plain = plain_angle_addr(arg)
        if plain is None:
            return super()._getaddr(arg)
        local = plain[0].rpartition("@")[0]
        if self.local_part_limit and len(local) > self.local_part_limit:
            return None, None
        return plain

    def __init__(
        self,
        handler: SmartBccHandler,
        *,
        settings: SmtpSettings,
        gate: ConnectionGate[BccdSMTP],
        metrics: Metrics,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(
            handler,
            line_length_limit=settings.max_line_length + 2,
            hostname=settings.hostname,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=settings.command_timeout,
            tls_context=tls_context,
            require_starttls=False,
            auth_require_tls=True,
            ident="bccd Smart Bcc",
            command_call_limit={
                **{name: settings.max_idle_commands for name in IDLE_COMMANDS},
                "*": settings.max_commands,
            },
        )
        self._handler = handler
        self._settings = settings
        self._gate = gate
        self._metrics = metrics
        self.state: SessionState | None = None
        self._lost = False
        self._greeted = False
        self._in_hello = False
        self._in_data_phase = False

    # --- connection lifetime: every way a connection ends gives its slot back ---------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.state is not None:  # STARTTLS: the TLS layer reports the same connection again
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else "unknown"
        refusal = self._gate.acquire(self, ip)
        if refusal is not None:
            reply = {
                Refusal.CLOSING: replies.SHUTTING_DOWN,
                Refusal.CONNECTION_CAP: replies.TOO_MANY_CONNECTIONS,
                Refusal.IP_CAP: replies.TOO_MANY_FROM_IP,
            }[refusal]
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply.encode("ascii") + b"\r\n")
            transport.close()
            self._metrics.smtp_refused.labels(refusal.value).inc()
            log.warning("smtp_connection_refused", reason=refusal.value)
            return
        self.state = SessionState(
            peer_ip=ip, budget=CommandBudget(self._settings.max_commands, self._settings.command_rate)
        )
        self._metrics.smtp_sessions.inc()
        super().connection_made(transport)
        task = self.session_task
        assert task is not None
        task.add_done_callback(self._session_finished)

    def connection_lost(self, error: Exception | None) -> None:
        if self.state is None or self._lost:
            return
        self._lost = True
        self._gate.release(self)
        super().connection_lost(error)

    def _session_finished(self, task: asyncio.Task[None]) -> None:
        """The session task ended (QUIT, close, timeout, cap, error): free the slot, close the socket."""
        self._gate.release(self)
        if self._lost:
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        raw = self.raw_transport
        if raw is not None:
            self.loop.call_later(ABORT_GRACE_SECONDS, self._abort_if_open, raw)

    def _abort_if_open(self, raw: asyncio.BaseTransport) -> None:
        if not self._lost and isinstance(raw, asyncio.Transport):
            raw.abort()

    def close_now(self, reply: str | None, reason: str) -> None:
        """Send `reply` (if any), close the connection and end the session task."""
        self._metrics.smtp_closed.labels(reason).inc()
        transport = self.transport
        if reply is not None and isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(reply.encode("ascii") + b"\r\n")
        if transport is not None:
            transport.close()
        task = self.session_task
        if task is not None and not task.done():
            task.cancel()

    # --- deadlines ---------------------------------------------------------------------------------------

    def session_deadline(self, seconds: float) -> float:
        if self._in_data_phase or self.state is None:
            return seconds  # a DATA transfer already started gets its whole data_timeout
        return min(seconds, self._settings.session_timeout - self.state.age())

    def on_timeout(self) -> None:
        state = self.state
        if state is None:
            return
        if state.in_tls_handshake:
            # Nothing readable can be said inside a half-done handshake; the TLS layer would not even
            # report the close (the slot leaked here before), so drop the socket and end the session.
            reason = "tls_handshake_timeout"
            raw = self.raw_transport
            if isinstance(raw, asyncio.Transport):
                raw.abort()
            self.close_now(None, reason)
        elif not self._in_data_phase and state.age() >= self._settings.session_timeout:
            reason = "session_timeout"
            self.close_now(replies.SESSION_TOO_LONG, reason)
        else:
            reason = "data_timeout" if self._in_data_phase else "command_timeout"
            self.close_now(replies.TIMEOUT, reason)  # RFC 5321 §4.5.3.2: say why before closing
        log.info("smtp_session_timeout", reason=reason)

    # --- the session task --------------------------------------------------------------------------------

    async def run_session(self) -> None:
        assert self.state is not None
        structlog.contextvars.bind_contextvars(session=self.state.id)
        log.info("smtp_session_started")
        try:
            await super().run_session()
        finally:
            log.info("smtp_session_ended", commands=self.state.budget.used)

    def on_new_transaction(self) -> None:
        if self.state is not None:
            self.state.new_transaction()

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        text = replies.AIOSMTPD_REWRITES.get(text, text)
        greeting = not self._greeted
        if not greeting and not self._in_hello:
            text = replies.with_enhanced_code(text)
        self._greeted = True  # the first reply is the 220 greeting, which carries no enhanced code
        await super().push(text)
        state = self.state
        assert state is not None
        final = len(text) >= 4 and text[3] == " "
        if final and not greeting and not text.startswith("354"):
            # One final reply per command (RFC 5321 §4.2): this counts every line the client sent,
            # including the empty and unparseable ones aiosmtpd answers without calling a command.
            cap = state.budget.spend()
            if cap is not None and not text.startswith("421"):
                log.warning("smtp_session_closed", reason=cap, commands=state.budget.used)
                self.close_now(_CAP_REPLIES[cap], cap)
            elif self._gate.closing and not self._in_data_phase and not text.startswith("421"):
                self.close_now(replies.SHUTTING_DOWN, "shutdown")
        open_ = self.transport is not None and not self.transport.is_closing()
        if text.startswith("421") and final and open_:
            self.close_now(None, _closing_reason(text))  # 421 means the server closes (RFC 5321 §3.8)
        # Fairness (issue 12 item 1): with pipelined commands buffered, aiosmtpd would run them all
        # without ever returning to the event loop; one pass of the loop per reply lets every other
        # session, the accept queue and HTTP have their turn.
        await asyncio.sleep(0)

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

    async def smtp_STARTTLS(self, arg: str) -> None:
        assert self.state is not None
        self.state.in_tls_handshake = True
        try:
            await super().smtp_STARTTLS(arg)
        finally:
            self.state.in_tls_handshake = False
        if self.transport is None or self.transport.is_closing():
            # The handshake "completed" because the connection went away under it: end the session.
            self.close_now(None, "tls_handshake_aborted")

    async def smtp_AUTH(self, arg: str) -> None:
        await self.push(replies.AUTH_NOT_OFFERED)

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self.state is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        if self._gate.closing:
            await self.push(replies.SHUTTING_DOWN)
            return
        self._in_data_phase = True
        self._gate.enter_data(self)  # a drain lets this transfer finish (issue 12 item 13)
        try:
            # The whole DATA transfer gets its own deadline (S4); the command timeout resumes after it.
            self.arm_timer(self._settings.data_timeout)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            result = await read_data(
                self.stream_reader,
                size_limit=self.data_size_limit,
                line_cap=self._settings.max_data_line_length,
            )
            if result.problem is DataProblem.TOO_BIG:
                reply = replies.SIZE_EXCEEDED
            elif result.problem is DataProblem.LINE_TOO_LONG:
                log.info("message_refused", reason="line_too_long", longest_line=result.longest_line)
                reply = replies.LINE_TOO_LONG
            else:
                self.envelope.content = result.content
                self.envelope.original_content = result.content
                long_line = result.longest_line > self._settings.max_line_length
                reply = await self._handler.deliver(
                    self.state,
                    self.envelope,
                    (LONG_LINE_DEFECT,) if long_line else (),
                    self.session.host_name if self.session is not None else None,
                )
            self.end_transaction()
        finally:
            self._in_data_phase = False
            self._gate.leave_data(self)
        self.arm_timer(self.command_timeout)
        await self.push(reply)


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
        self.gate: ConnectionGate[BccdSMTP] = ConnectionGate(
            settings.max_connections, settings.max_connections_per_ip, metrics.smtp_connections.set
        )
        self._handler = SmartBccHandler(ingestor, settings, metrics)
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

    async def stop(self, drain_seconds: float | None = None) -> None:
        """SIGTERM: no new sessions; idle ones get 421 now; DATA in progress may finish within the drain."""
        if self._server is None:
            return
        drain = self._settings.drain_timeout if drain_seconds is None else drain_seconds
        self.gate.closing = True
        self._server.close()
        for proto in list(self.gate.open):
            if not self.gate.in_data(proto):
                proto.close_now(replies.SHUTTING_DOWN, "shutdown")
        if self.gate.busy:
            log.info("smtp_draining", busy=self.gate.busy, seconds=drain)
        try:
            await asyncio.wait_for(self.gate.idle.wait(), drain)
        except TimeoutError:
            log.warning("smtp_drain_timeout", busy=self.gate.busy)
        for proto in list(self.gate.open):
            proto.close_now(replies.SHUTTING_DOWN, "shutdown")
        try:
            await asyncio.wait_for(self.gate.empty.wait(), ABORT_GRACE_SECONDS)
        except TimeoutError:
            log.warning("smtp_stop_sessions_left", open=len(self.gate.open))
        await self._server.wait_closed()
        self._server = None
        log.info("smtp_stopped")
