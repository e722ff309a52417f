"""Two real `bccd serve` processes on one PostgreSQL database, as two MX hosts of equal priority.

Mail goes to both nodes at once, including the same bytes to both (an MX retry landing on the other
host while the first delivery is still in flight). Afterwards: every 250 is stored exactly once, nothing
is duplicated, and every thread is linked as the rules say (S2, S3, L6–L10, §3 one thread per owner).
Setup and checks go through the `bccd` CLI, the way an operator would do them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import smtplib
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _pg_admin
from tests.processes import CLI, cli_json, free_port, serve_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BCC_DOMAIN = "bcc.test"
START_TIMEOUT = 30.0
SMTP_TIMEOUT = 30.0
MAX_ATTEMPTS = 8  # an MTA retries a 4xx; so does this test, on the other node like an MX fallback would
UNIQUE_PER_NODE = 12
SENT_TO_BOTH = 10


@pytest.fixture
def database_url(pg_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server (pg_url skips the test when there is no server)."""
    name = f"bccd_multinode_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _env(database_url: str, smtp_port: int | None = None) -> dict[str, str]:
    return serve_env(database_url, smtp_port, bcc_domain=BCC_DOMAIN)


def _cli(database_url: str, *args: str) -> Any:
    return cli_json(_env(database_url), *args)


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def events(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                found[json.loads(line).get("event", "")] += 1
        return found


def _start(database_url: str, name: str, tmp_path: Path) -> Node:
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve"], env=_env(database_url, port), stdout=out, stderr=subprocess.STDOUT
        )
    return Node(name, port, proc, log)


def _wait_listening(node: Node) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            pytest.fail(f"{node.name} exited with {node.proc.returncode}:\n{node.log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", node.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{node.name} did not listen on {node.port} within {START_TIMEOUT}s")


def _stop(node: Node) -> int:
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
    try:
        return node.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        node.proc.wait()
        return -9


@dataclass(frozen=True)
class Mail:
    key: str  # unique; also the subject, so a thread can be traced back to the mail
    raw: bytes
    rcpts: tuple[str, ...]
    expect_item: dict[str, str] | None
    expect_reason: str


def _mail(key: str, to: str, rcpts: tuple[str, ...], item: dict[str, str] | None, reason: str) -> Mail:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@acme.test>"
    msg["To"] = to
    msg["Subject"] = key
    msg["Message-ID"] = f"<{key}@acme.test>"
    msg["Date"] = "Thu, 26 Nov 2026 12:00:00 +0000"
    msg.set_content(f"About {key}.\n")
    return Mail(key, msg.as_bytes(), rcpts, item, reason)


def _send(mail: Mail, ports: list[int], first: int) -> tuple[str, int, int]:
    """Deliver like an MTA: a 4xx or a dropped connection is retried, on the next MX host."""
    last = 0
    for attempt in range(MAX_ATTEMPTS):
        port = ports[(first + attempt) % len(ports)]
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=SMTP_TIMEOUT) as client:
                refused = client.sendmail("alice@acme.test", list(mail.rcpts), mail.raw)
                assert not refused, refused
                return mail.key, 250, attempt + 1
        except smtplib.SMTPResponseException as exc:
            last = exc.smtp_code
            if exc.smtp_code >= 500:
                return mail.key, exc.smtp_code, attempt + 1
        except smtplib.SMTPRecipientsRefused as exc:
            return mail.key, min(code for code, _ in exc.recipients.values()), attempt + 1
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            last = 421
        time.sleep(0.2)
    return mail.key, last, MAX_ATTEMPTS


def _record(kind: str, external_id: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "company": "Acme", "external_id": external_id, **fields}


def _persons_of(subject: str) -> list[str]:
    if "peter" in subject or "shared" in subject:
        return ["p-1"]
    return ["p-2"] if "paula" in subject else []


def test_two_nodes_one_database_store_every_accepted_message_once(database_url: str, tmp_path: Path) -> None:
    # Both nodes migrate at start, at the same moment, as a compose file or a rolling deploy would.
    upgrades = [
        subprocess.Popen([*CLI, "db", "upgrade"], env=_env(database_url), stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in upgrades:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()

    company = _cli(database_url, "company", "create", "--name", "Acme", "--sender-policy", "company")
    user = ("user", "create", "--company")
    alice = _cli(database_url, *user, str(company["id"]), "--email", "alice@acme.test", "--name", "Alice")
    bob = _cli(database_url, *user, "Acme", "--email", "bob@acme.test", "--name", "Bob")
    directory = tmp_path / "directory.jsonl"
    since = {"created_at": "2020-01-01T00:00:00Z"}  # older than any thread: candidates for L5
    lines = [
        _record("organization", "o-1", name="Initech"),
        _record("person", "p-1", name="Peter", emails=["peter@initech.example"], organization="o-1"),
        _record("person", "p-2", name="Paula", emails=["paula@example.org"]),
        _record("deal", "d-1", title="Big deal", person="p-1", **since),
        _record("lead", "l-1", title="Lead", person="p-2", **since),
        _record("project", "pr-1", title="Project", person="p-2", **since),
    ]
    directory.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert _cli(database_url, "import", str(directory)) == {"created": 6, "updated": 0, "total": 6}

    a_bcc, b_bcc = alice["smart_bcc_address"], bob["smart_bcc_address"]
    local, _, domain = a_bcc.partition("@")
    d1 = {"type": "deal", "id": "d-1"}
    kinds = [
        ("peter", "peter@initech.example", (a_bcc,), d1, "linked"),  # L6: Peter's one open deal
        ("paula", "paula@example.org", (a_bcc,), None, "ambiguous"),  # L7: Paula's lead and project
        ("stranger", "x@elsewhere.example", (a_bcc,), None, "no_matching_person"),  # L3
        ("target", "x@elsewhere.example", (f"{local}+deal-d-1@{domain}",), d1, "explicit_target"),  # L10
    ]
    run = uuid.uuid4().hex[:6]
    unique = [
        _mail(f"{run}-{kind}-{i}", to, rcpts, item, reason)
        for i in range(UNIQUE_PER_NODE * 2)
        for kind, to, rcpts, item, reason in [kinds[i % len(kinds)]]
    ]
    to_both = [
        _mail(f"{run}-both-{kind}-{i}", to, rcpts, item, reason)
        for i in range(SENT_TO_BOTH)
        for kind, to, rcpts, item, reason in [kinds[i % len(kinds)]]
    ]
    # One transaction for two owners, sent to both nodes: two threads in all, never four (§3, S3).
    shared = _mail(f"{run}-shared", "peter@initech.example", (a_bcc, b_bcc), d1, "linked")

    nodes = [_start(database_url, "node-a", tmp_path), _start(database_url, "node-b", tmp_path)]
    try:
        for node in nodes:
            _wait_listening(node)
        ports = [n.port for n in nodes]
        jobs = [(m, i % 2) for i, m in enumerate(unique)]
        jobs += [(m, first) for m in [*to_both, shared] for first in (0, 1)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda job: _send(job[0], ports, job[1]), jobs))
    finally:
        exit_codes = [_stop(node) for node in nodes]
    assert exit_codes == [0, 0], [n.log.read_text()[-2000:] for n in nodes]  # clean drain on SIGTERM

    # Every delivery, duplicates included, ended in 250 (retries after a 4xx are allowed, S2).
    assert [(key, code) for key, code, _ in results if code != 250] == []

    alice_threads = _cli(database_url, "threads", "list", "--owner", "alice@acme.test", "--limit", "200")[
        "threads"
    ]
    bob_threads = _cli(database_url, "threads", "list", "--owner", str(bob["id"]))["threads"]
    by_subject = Counter(t["subject"] for t in alice_threads)
    sent = [*unique, *to_both, shared]
    # Exactly one thread per accepted message and owner: nothing lost, nothing duplicated (S2, S3).
    assert by_subject == Counter(m.key for m in sent)
    assert [t["subject"] for t in bob_threads] == [shared.key]
    expected = {m.key: (m.expect_item, m.expect_reason) for m in sent}
    for thread in [*alice_threads, *bob_threads]:
        assert (thread["item"], thread["decision"]["reason"]) == expected[thread["subject"]], thread
        assert thread["persons"] == _persons_of(thread["subject"]), thread  # L1

    # One message sent to both nodes, in full: one decision record and its one participant.
    retried = next(t for t in alice_threads if t["subject"] == to_both[0].key)
    shown = _cli(database_url, "threads", "show", str(retried["id"]))
    assert [h["action"] for h in shown["history"]] == ["auto_link"]
    assert [(p["address"], p["role"]) for p in shown["participants"]] == [("peter@initech.example", "to")]

    # Each node's own account agrees: both took mail, and together they created each thread once.
    events = [n.events() for n in nodes]
    assert all(e["message_accepted"] > 0 for e in events), events
    created = sum(e["thread_created"] for e in events)
    assert created == len(alice_threads) + len(bob_threads)
    assert sum(e["message_accepted"] for e in events) == len(results)
    assert sum(e["thread_deduplicated"] for e in events) >= SENT_TO_BOTH  # the copies sent to both
