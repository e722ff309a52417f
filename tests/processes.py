"""Real `bccd` processes for tests and benchmarks: a free port, the environment, the CLI, a wait."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from tests.dnsserver import quiet_server

CLI = (sys.executable, "-m", "bccd.cli")
START_TIMEOUT = 90.0  # a loaded 2-core CI machine took over 30 s to start bccd serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(
    database_url: str, smtp_port: int | None = None, *, bcc_domain: str = "bcc.test", log_level: str = "info"
) -> dict[str, str]:
    """The environment of a `bccd` process: this machine's, minus any BCCD_* of the caller, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCCD_")}
    env.update(
        {
            "BCCD_DATABASE__URL": database_url,
            "BCCD_SMTP__HOST": "127.0.0.1",
            "BCCD_SMTP__BCC_DOMAINS": json.dumps([bcc_domain]),
            "BCCD_HTTP__ENABLED": "false",
            "BCCD_LOG__LEVEL": log_level,
            "BCCD_DNS__SERVERS": json.dumps([quiet_server().address]),  # sender authentication: no network
        }
    )
    if smtp_port is not None:
        env["BCCD_SMTP__PORT"] = str(smtp_port)
    return env


def cli_json(env: dict[str, str], *args: str) -> Any:
    """Run `bccd ARGS --json` and return its one JSON document; fail with its stderr otherwise."""
    done = subprocess.run([*CLI, *args, "--json"], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"bccd {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"bccd exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"bccd did not listen on {port} within {timeout}s")


def bootstrap(
    env: dict[str, str], *, company: str = "Acme", email: str = "alice@acme.test"
) -> dict[str, Any]:
    """Migrate, create a company and one user through the CLI; return the user (with smart_bcc_address)."""
    cli_json(env, "db", "upgrade")
    created = cli_json(env, "company", "create", "--name", company)
    user: dict[str, Any] = cli_json(
        env, "user", "create", "--company", str(created["id"]), "--email", email, "--name", company + " user"
    )
    user["company_id"] = created["id"]
    return user
