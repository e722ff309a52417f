"""Prometheus metrics, in a registry owned by the running app (no process-global state)."""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_* (CPU, memory, open fds), python_gc_* and python_info: the client library's standard
        # collectors, which only read process-wide state, registered in this app's registry too.
        for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
            self.registry.register(collector)
        self.smtp_sessions = Counter(
            "bccd_smtp_sessions", "SMTP connections accepted", registry=self.registry
        )
        self.smtp_connections = Gauge(
            "bccd_smtp_connections", "SMTP connections open now", registry=self.registry
        )
        self.smtp_refused = Counter(
            "bccd_smtp_connections_refused",
            "SMTP connections refused at connect, by reason (connection_cap, ip_cap, closing)",
            ["reason"],
            registry=self.registry,
        )
        self.smtp_closed = Counter(
            "bccd_smtp_sessions_closed",
            "SMTP sessions closed by the server before QUIT, by reason (timeouts, caps, shutdown)",
            ["reason"],
            registry=self.registry,
        )
        self.smtp_replies = Counter(
            "bccd_smtp_replies",
            "Final replies to RCPT and DATA, by command and reply code",
            ["command", "code"],
            registry=self.registry,
        )
        self.messages_accepted = Counter(
            "bccd_messages_accepted", "Messages accepted (250 to DATA)", registry=self.registry
        )
        self.threads_created = Counter("bccd_threads_created", "Threads created", registry=self.registry)
        self.link_outcomes = Counter(
            "bccd_link_outcomes",
            "Automatic link decisions by reason code",
            ["reason"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "bccd_ingest_seconds",
            "Time from end of DATA to durable commit",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.commit_queue_depth = Gauge(
            "bccd_commit_queue_depth",
            "Writes waiting for the database writer (grows when commits are slower than arrivals)",
            registry=self.registry,
        )
        self.auth_seconds = Histogram(
            "bccd_sender_auth_seconds",
            "Time SPF, DKIM and DMARC took for one message (DNS waits and DKIM verification)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.auth_verdicts = Counter(
            "bccd_sender_auth_verdicts",
            "Sender authentication verdicts (pass, fail, none, temperror), once per evaluated message",
            ["verdict"],
            registry=self.registry,
        )
        self.auth_budget_exhausted = Counter(
            "bccd_sender_auth_dns_budget_exhausted",
            "Messages whose DNS budget ran out before every lookup was answered",
            registry=self.registry,
        )
        self.http_requests = Counter(
            "bccd_http_requests", "HTTP API requests by status code", ["code"], registry=self.registry
        )

        self.webhook_queue_depth = Gauge(
            "bccd_webhook_queue_depth", "Webhook deliveries pending (due or retrying)", registry=self.registry
        )
        self.webhook_deliveries = Counter(
            "bccd_webhook_deliveries",
            "Webhook delivery attempts by result: delivered, failed_attempt, given_up",
            ["result"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
