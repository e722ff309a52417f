"""Issue 9 webhooks with real `bccd` processes: the CLI, and "nothing lost" across SIGKILL and restart."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import _send_blocking, make_mail
from tests.processes import CLI, bootstrap, cli_json, free_port, serve_env, wait_listening
from tests.webhooks.receiver import Receiver, verify


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", free_port())
    env.update(
        {
            "BCCD_WEBHOOKS__ALLOW_PRIVATE": "true",
            "BCCD_WEBHOOKS__POLL_INTERVAL": "0.05",
            "BCCD_WEBHOOKS__RETRY_BASE": "0.1",
            "BCCD_WEBHOOKS__TIMEOUT": "1",
            **extra,
        }
    )
    return env


def _serve(env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(int(env["BCCD_SMTP__PORT"]), proc)
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_cli_adds_lists_and_removes_webhooks(tmp_path: Path, receiver: Receiver) -> None:
    env = _env(tmp_path)
    user = bootstrap(env)
    added = cli_json(
        env, "webhook", "add", "--company", "Acme", "--url", receiver.url, "--event", "thread.created"
    )
    assert added["secret"].startswith("whsec_") and added["events"] == ["thread.created"]
    assert added["company"] == user["company_id"]
    listed = cli_json(env, "webhook", "list")
    assert [(h["id"], h["url"]) for h in listed] == [(added["id"], receiver.url)] and "secret" not in listed[
        0
    ]
    assert cli_json(env, "webhook", "list", "--company", "Acme")[0]["id"] == added["id"]
    assert cli_json(env, "webhook", "remove", str(added["id"])) == {"removed": added["id"]}
    assert cli_json(env, "webhook", "list") == []
    # without allow_private the SSRF guard refuses a loopback URL (exit status 2, nothing stored)
    env["BCCD_WEBHOOKS__ALLOW_PRIVATE"] = "false"
    done = subprocess.run(
        [*CLI, "webhook", "add", "--company", "Acme", "--url", receiver.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "non-public address" in done.stderr
    assert cli_json(env, "webhook", "list") == []


@pytest.mark.slow
def test_sigkill_between_commit_and_delivery_delivers_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = _env(tmp_path, BCCD_WEBHOOKS__ENABLED="false")  # this node commits but never delivers
    user = bootstrap(env)
    secret = cli_json(env, "webhook", "add", "--company", "Acme", "--url", receiver.url)["secret"]
    proc = _serve(env)
    try:
        result = _send_blocking(
            int(env["BCCD_SMTP__PORT"]),
            "alice@acme.test",
            [user["smart_bcc_address"]],
            make_mail(subject="Survives"),
        )
        assert result.code == 250
    finally:
        _kill(proc)
    assert receiver.all() == []

    env["BCCD_WEBHOOKS__ENABLED"] = "true"
    proc = _serve(env)
    try:
        receiver.wait_for_blocking(lambda r: len(r.delivered()) == 1)
        [request] = receiver.delivered()
        assert request.json["type"] == "thread.created" and request.json["data"]["subject"] == "Survives"
        assert verify(secret, request)
    finally:
        _kill(proc)


@pytest.mark.slow
def test_sigkill_mid_delivery_redelivers_the_same_event_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = _env(tmp_path)
    user = bootstrap(env)
    cli_json(env, "webhook", "add", "--company", "Acme", "--url", receiver.url)
    receiver.delay = 3.0  # the first attempt is in flight when the node dies
    proc = _serve(env)
    try:
        result = _send_blocking(
            int(env["BCCD_SMTP__PORT"]),
            "alice@acme.test",
            [user["smart_bcc_address"]],
            make_mail(subject="In flight"),
        )
        assert result.code == 250
        receiver.wait_for_blocking(lambda r: len(r.all()) == 1, timeout=10)  # recorded, answer pending
    finally:
        _kill(proc)
    first = receiver.all()[0]
    receiver.delay = 0.0
    proc = _serve(env)
    try:
        receiver.wait_for_blocking(lambda r: len(r.all()) == 2, timeout=30)  # after the lease (7 s)
    finally:
        _kill(proc)
    second = receiver.all()[1]
    assert second.webhook_id == first.webhook_id and second.body == first.body  # dedupe by webhook-id
    assert second.json["data"]["subject"] == "In flight"
