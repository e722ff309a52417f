"""SPEC S2: a 250 is never lost — SIGKILL the server right after it answers, restart it, look."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_mail

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bccd.cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start listening")


def test_s2_thread_survives_sigkill_after_250(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "BCCD_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}",
        "BCCD_SMTP__PORT": str(port),
        "BCCD_SMTP__BCC_DOMAINS": '["bcc.test"]',
        "BCCD_HTTP__ENABLED": "false",
        "BCCD_LOG__LEVEL": "warning",
    }
    subprocess.run(
        [sys.executable, "-m", "bccd.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    company = _cli(env, "company", "create", "--name", "Acme")
    user = _cli(
        env, "user", "create", "--company", str(company["id"]), "--email", "alice@acme.test", "--name", "A"
    )
    bcc = str(user["smart_bcc_address"])

    proc = subprocess.Popen([sys.executable, "-m", "bccd.cli", "serve"], env=env)
    try:
        _wait_port(port, proc)
        subjects = [f"durable {i}" for i in range(5)]
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for subject in subjects:
                client.sendmail("alice@acme.test", [bcc], make_mail(subject=subject))
            # The last 250 has just arrived: kill without any chance to flush or clean up.
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    listed = _cli(env, "threads", "list", "--owner", str(user["id"]))
    assert sorted(t["subject"] for t in listed["threads"]) == sorted(subjects)

    # And the restarted server serves again on the same database.
    proc = subprocess.Popen([sys.executable, "-m", "bccd.cli", "serve"], env=env)
    try:
        _wait_port(port, proc)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("alice@acme.test", [bcc], make_mail(subject="after restart"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # clean drain on SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = _cli(env, "threads", "list", "--owner", str(user["id"]))
    assert len(listed["threads"]) == 6
