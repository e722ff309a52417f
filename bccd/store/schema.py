"""The database schema as SQLAlchemy Core tables; Alembic migrations (bccd/migrations) create it.

Items (deals, leads, projects) share one table with a `type` column: the linker's candidate query is one
indexed lookup, and a thread's single item link (SPEC L9) is one foreign key column the database enforces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite needs INTEGER PRIMARY KEY for rowid aliasing; PostgreSQL gets BIGINT identities.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are tz-aware UTC in Python on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Ts = UtcDateTime()

companies = Table(
    "companies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    # sender_policy: owner|company|any (SPEC S5); never_log: addresses and domains never recorded (§3)
    Column("sender_policy", String(16), nullable=False, server_default="owner"),
    Column("never_log", JSON, nullable=False),
    Column("created_at", Ts, nullable=False),
    # sender_auth: off|record|require (issue 11): whether SPF/DKIM/DMARC results are kept, or also enforced
    Column("sender_auth", String(16), nullable=False, server_default="record"),
    CheckConstraint("sender_policy IN ('owner', 'company', 'any')", name="sender_policy"),
    CheckConstraint("sender_auth IN ('off', 'record', 'require')", name="sender_auth"),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False, server_default="regular"),
    Column("autolink", Boolean, nullable=False, server_default="1"),
    Column("smart_bcc_local", String(64), nullable=False, unique=True),
    Column("created_at", Ts, nullable=False),
    UniqueConstraint("email", name="uq_users_email"),
    CheckConstraint("role IN ('admin', 'regular')", name="role"),
)

user_addresses = Table(
    "user_addresses",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("confirmed", Boolean, nullable=False, server_default="1"),
    # a one-time confirmation code mailed to the address (sha256 hex) and until when it is good
    Column("confirmation_hash", String(64), nullable=True),
    Column("confirmation_expires_at", Ts, nullable=True),
    Column("confirmed_at", Ts, nullable=True),
    Column("confirmed_by", String(64), nullable=True),  # "code" or "user:<admin id>"
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex (SPEC T2)
    Column("prefix", String(16), nullable=False),  # first characters, to tell tokens apart in listings
    Column("created_at", Ts, nullable=False),
    Column("expires_at", Ts, nullable=True),  # NULL: never expires
    Column("last_used_at", Ts, nullable=True),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", String(500), nullable=False),
    Column("created_at", Ts, nullable=False),
    UniqueConstraint("company_id", "external_id", name="uq_organizations_company_external"),
)

persons = Table(
    "persons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", String(500), nullable=False),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    Column("created_at", Ts, nullable=False),
    UniqueConstraint("company_id", "external_id", name="uq_persons_company_external"),
)

person_emails = Table(
    "person_emails",
    metadata,
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Index("ix_person_emails_company_address", "company_id", "address"),
    sqlite_with_rowid=False,  # the key is the table: the index above yields person_id (migration 0013)
)

items = Table(
    "items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="SET NULL"), nullable=True, index=True),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    Column("status", String(16), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("status_changed_at", Ts, nullable=False),
    UniqueConstraint("company_id", "type", "external_id", name="uq_items_company_type_external"),
    CheckConstraint("type IN ('deal', 'lead', 'project')", name="type"),
    CheckConstraint(
        "(type = 'deal' AND status IN ('open', 'won', 'lost', 'deleted'))"
        " OR (type = 'lead' AND status IN ('open', 'archived', 'converted', 'deleted'))"
        " OR (type = 'project' AND status IN ('open', 'completed', 'canceled', 'deleted'))",
        name="status",
    ),
)

item_participants = Table(
    "item_participants",
    metadata,
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True),
    sqlite_with_rowid=False,  # the key is the table: the person_id index yields item_id (migration 0013)
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("raw", LargeBinary, nullable=False),  # verbatim DATA bytes (SPEC §3); empty when in chunks
    Column("size", Integer, nullable=False),
    # > 0: the raw bytes are in that many `message_chunks` rows instead (SQLite, big messages: see
    # bccd/store/raw_chunks.py)
    Column("raw_chunks", Integer, nullable=False, server_default="0"),
    Column("message_id", Text, nullable=True),
    Column("date", Text, nullable=True),
    Column("from_addrs", JSON, nullable=False),
    Column("to_addrs", JSON, nullable=False),
    Column("cc_addrs", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text_body", Text, nullable=True),
    Column("html_body", Text, nullable=True),
    Column("attachments", JSON, nullable=False),
    Column("defects", JSON, nullable=False),
    Column("forward", JSON, nullable=True),
    Column("received_at", Ts, nullable=False),
)

# The raw bytes of a big message in pieces, each written in its own short transaction before the message
# row is (bccd/store/raw_chunks.py). Keyed by the message's sha256: the pieces exist before its row does.
message_chunks = Table(
    "message_chunks",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("written_at", Ts, nullable=False),
)

threads = Table(
    "threads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message_pk", Id, ForeignKey("messages.id"), nullable=False, index=True),
    Column("subject", Text, nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("visibility", String(16), nullable=False, server_default="private"),
    # SPEC L9: one item per thread, as one column; ON DELETE RESTRICT keeps history honest.
    Column("item_id", Id, ForeignKey("items.id"), nullable=True, index=True),
    Column("decision_outcome", String(16), nullable=False),
    Column("decision_reason", String(40), nullable=False),
    Column("decision_rule", String(8), nullable=False),
    Column("decision", JSON, nullable=False),
    Column("smtp_session", String(40), nullable=True),
    # SPF/DKIM/DMARC results and verdict at acceptance (issue 11); NULL when sender_auth was off
    Column("authentication", JSON, nullable=True),
    # SPEC S3: a byte-identical retry for the same owner is the same thread, enforced by the database.
    UniqueConstraint("owner_id", "message_pk", name="uq_threads_owner_message"),
    CheckConstraint("visibility IN ('private', 'shared')", name="visibility"),
    # Listings walk the newest threads (migration 0009): of a company, of an owner, the unlinked ones.
    Index("ix_threads_company_id", "company_id", "id"),
    Index("ix_threads_owner_id", "owner_id", "id"),
    Index(
        "ix_threads_unlinked",
        "company_id",
        "id",
        sqlite_where=text("item_id IS NULL"),
        postgresql_where=text("item_id IS NULL"),
    ),
)

thread_participants = Table(
    "thread_participants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("thread_id", Id, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False, index=True),
    # Text, not VARCHAR(320): a header may carry an over-long address; PostgreSQL would refuse it and
    # the message would be 451'd forever (S6), while SQLite ignores lengths (migration 0002).
    Column("address", Text, nullable=False),
    Column("name", Text, nullable=True),
    Column("role", String(16), nullable=False),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="SET NULL"), nullable=True, index=True),
    CheckConstraint(
        "role IN ('from', 'to', 'cc', 'original_from', 'original_to', 'original_cc')", name="role"
    ),
)

thread_persons = Table(
    "thread_persons",
    metadata,
    Column("thread_id", Id, ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("source", String(8), nullable=False),  # auto|manual
)

thread_organizations = Table(
    "thread_organizations",
    metadata,
    Column("thread_id", Id, ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "organization_id",
        Id,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("source", String(8), nullable=False),
)

link_history = Table(
    "link_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("thread_id", Id, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", Ts, nullable=False),
    Column("actor", String(64), nullable=False),  # "bccd" for automatic decisions, else "user:<id>"
    Column("action", String(32), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("reason", Text, nullable=False),
)

# -- webhooks (issue 9): endpoints, the outbox of events, one delivery row per event and endpoint --------

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),  # the event types it is subscribed to
    Column("description", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("disabled_reason", Text, nullable=True),
    Column("secret", String(100), nullable=False),  # whsec_<base64>; signs every delivery
    Column("previous_secret", String(100), nullable=True),  # still signs until rotated_at + 24 h
    Column("rotated_at", Ts, nullable=True),
    Column("created_at", Ts, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(40), nullable=False, unique=True),  # the webhook-id receivers dedupe by
    Column("company_id", Id, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("thread_id", Id, ForeignKey("threads.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("type", String(40), nullable=False),
    Column("data", JSON, nullable=False),  # the thread JSON as of the event (plus the change, if manual)
    Column("created_at", Ts, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Id, ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint_id", Id, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("thread_id", Id, nullable=True),  # the event's thread: deliveries of one thread go in order
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When the next attempt is due; while an attempt is in flight, the end of its lease.
    Column("next_attempt_at", Ts, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("delivered_at", Ts, nullable=True),
    Column("created_at", Ts, nullable=False),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_order", "endpoint_id", "thread_id", "id"),
)

# Browser sign-in (issue 10): one-time login links and the server-side sessions they open. Only sha256
# hashes of the secrets are stored, like API tokens (T2); deleting the session row signs it out.
login_links = Table(
    "login_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Ts, nullable=False),
    Column("expires_at", Ts, nullable=False),
    Column("used_at", Ts, nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("created_at", Ts, nullable=False),
    Column("expires_at", Ts, nullable=False),
)
