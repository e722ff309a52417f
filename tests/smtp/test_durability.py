"""SPEC S2: a 250 is never lost — SIGKILL the server right after it answers, restart it, look."""

from __future__ import annotations

import hashlib
import signal
import smtplib
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.helpers import make_mail
from tests.processes import CLI, bootstrap, cli_json, free_port, serve_env, wait_listening

pytestmark = pytest.mark.slow


def _deliver_then_sigkill(env: dict[str, str], port: int, bcc: str, mails: list[bytes]) -> None:
    """Start `bccd serve`, deliver `mails` one after another, and SIGKILL it the moment the last 250
    arrived: no chance to flush or clean up."""
    proc = subprocess.Popen([*CLI, "serve"], env=env)
    try:
        wait_listening(port, proc)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for mail in mails:
                client.sendmail("alice@acme.test", [bcc], mail)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_s2_thread_survives_sigkill_after_250(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", port, log_level="warning")
    user = bootstrap(env)
    bcc = str(user["smart_bcc_address"])

    subjects = [f"durable {i}" for i in range(5)]
    _deliver_then_sigkill(env, port, bcc, [make_mail(subject=subject) for subject in subjects])

    listed = cli_json(env, "threads", "list", "--owner", str(user["id"]))
    assert sorted(t["subject"] for t in listed["threads"]) == sorted(subjects)

    # And the restarted server serves again on the same database.
    proc = subprocess.Popen([*CLI, "serve"], env=env)
    try:
        wait_listening(port, proc)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("alice@acme.test", [bcc], make_mail(subject="after restart"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # clean drain on SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = cli_json(env, "threads", "list", "--owner", str(user["id"]))
    assert len(listed["threads"]) == 6


def test_s2_a_big_message_stored_in_pieces_survives_sigkill_after_250(tmp_path: Path) -> None:
    """A 5 MB message is written in pieces before its row (bccd.store.raw_chunks); killed right after its
    250, every byte is there after the restart."""
    port = free_port()
    db_file = tmp_path / "bccd.sqlite3"
    env = serve_env(f"sqlite+aiosqlite:///{db_file}", port, log_level="warning")
    user = bootstrap(env)
    bcc = str(user["smart_bcc_address"])
    body = "".join(f"line {i:08d} of a big message, every line different\n" for i in range(100_000))
    mail = make_mail(subject="big and durable", body=body)
    assert len(mail) > 4 * 1024 * 1024

    _deliver_then_sigkill(env, port, bcc, [mail])

    with sqlite3.connect(db_file) as conn:
        ((sha, chunks, size),) = conn.execute("SELECT sha256, raw_chunks, size FROM messages").fetchall()
        pieces = conn.execute(
            "SELECT data FROM message_chunks WHERE sha256 = ? ORDER BY seq", (sha,)
        ).fetchall()
    stored = b"".join(p for (p,) in pieces)
    assert chunks == len(pieces) >= 4 and size == len(stored)
    assert hashlib.sha256(stored).hexdigest() == sha
    # What the client sent, as the server received it (DATA normalises line ends to CRLF).
    assert stored.replace(b"\r\n", b"\n") == mail.replace(b"\r\n", b"\n")
