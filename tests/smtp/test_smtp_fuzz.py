"""SPEC S6 / T4: arbitrary SMTP conversations (commands, garbage, bare CR/LF) never crash or stall bccd."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_mail
from tests.processes import CLI, cli_json, free_port, serve_env, wait_listening

pytestmark = pytest.mark.slow

COMMANDS = [
    b"EHLO fuzz.test",
    b"HELO",
    b"MAIL FROM:<alice@acme.test>",
    b"MAIL FROM:<> SIZE=99999999999",
    b"RCPT TO:<{bcc}>",
    b"RCPT TO:<{bcc}> NOTIFY=NEVER",
    b"RCPT TO:<x@elsewhere.test>",
    b"DATA",
    b".",
    b"RSET",
    b"NOOP",
    b"VRFY x",
    b"STARTTLS",
    b"AUTH PLAIN AGEAYg==",
    b"BDAT 10 LAST",
    b"HELP",
    b"Subject: =?utf-8?q?=FF?=",
    b"",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp / 'bccd.sqlite3'}", port)
    env.update(
        {"BCCD_LOG__LEVEL": "error", "BCCD_SMTP__COMMAND_TIMEOUT": "5", "BCCD_SMTP__DATA_TIMEOUT": "5"}
    )
    cli_json(env, "db", "upgrade")
    company = cli_json(env, "company", "create", "--name", "Fuzz", "--sender-policy", "any")
    user = cli_json(
        env, "user", "create", "--company", str(company["id"]), "--email", "a@acme.test", "--name", "A"
    )
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL)
    wait_listening(port, proc)
    yield {"port": port, "bcc": user["smart_bcc_address"], "proc": proc, "env": env}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def _conversation(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(0.15)
        try:
            sock.recv(4096)
            sock.sendall(payload)
            while sock.recv(4096):
                pass
        except (TimeoutError, ConnectionError):
            pass


lines = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=200)),
        st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conversation=lines)
def test_any_conversation_leaves_the_server_serving(server: dict[str, Any], conversation: list[Any]) -> None:
    payload = b"".join(line.replace(b"{bcc}", server["bcc"].encode()) + end for line, end in conversation)
    _conversation(server["port"], payload)
    assert server["proc"].poll() is None  # never crashed
    with smtplib.SMTP("127.0.0.1", server["port"], timeout=10) as client:  # and never stalled
        assert client.noop()[0] == 250


def test_mail_still_stored_after_the_fuzzing(server: dict[str, Any]) -> None:
    with smtplib.SMTP("127.0.0.1", server["port"], timeout=10) as client:
        client.sendmail("a@acme.test", [server["bcc"]], make_mail(subject="after fuzz"))
    threads = cli_json(server["env"], "threads", "list", "--owner", "a@acme.test", "--limit", "200")[
        "threads"
    ]
    assert "after fuzz" in [t["subject"] for t in threads]
