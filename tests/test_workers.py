"""`bccd serve --workers 2`: two processes on one port, both storing into one database; SIGTERM stops all."""

from __future__ import annotations

import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from tests.helpers import make_mail
from tests.processes import CLI, cli_json, free_port, serve_env, wait_listening

pytestmark = pytest.mark.slow


def _wait_started(proc: subprocess.Popen[bytes], workers: int = 2) -> list[bytes]:
    """The port answers as soon as one worker listens; a SIGTERM before the other has installed its handler
    kills it outright (exit -15, seen on a loaded machine), so wait for every worker's `bccd_started` line.
    Returns the stdout lines read so far."""
    assert proc.stdout is not None
    seen: list[bytes] = []
    for line in proc.stdout:
        seen.append(line)
        if sum(b'"event": "bccd_started"' in x for x in seen) == workers:
            return seen
    raise AssertionError("bccd exited before every worker started")


def test_two_workers_serve_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", port)
    cli_json(env, "db", "upgrade")
    company = cli_json(env, "company", "create", "--name", "Acme")
    user = cli_json(
        env, "user", "create", "--company", str(company["id"]), "--email", "a@acme.test", "--name", "A"
    )
    proc = subprocess.Popen([*CLI, "serve", "--workers", "2"], env=env, stdout=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        seen = _wait_started(proc)
        for i in range(20):  # new connections: the kernel spreads them over both workers
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("a@acme.test", [user["smart_bcc_address"]], make_mail(subject=f"m{i}"))
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    out = b"".join(seen) + out
    assert out.count(b'"event": "bccd_stopped"') == 2  # both workers drained and stopped
    assert len(cli_json(env, "threads", "list", "--owner", "a@acme.test")["threads"]) == 20


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (exited, not yet reaped by its new parent) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """Issue 12 item 10: SIGKILL the supervisor; its workers must not stay behind serving the port."""
    import json
    import os
    import time

    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", port)
    cli_json(env, "db", "upgrade")
    proc = subprocess.Popen([*CLI, "serve", "--workers", "2"], env=env, stdout=subprocess.PIPE)
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the supervisor's first line names its workers
            record = json.loads(line)
            if record.get("event") == "workers_started":
                pids = record["pids"]
                break
        wait_listening(port, proc)
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids), "workers outlived their supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_stop_while_workers_are_still_starting_exits_cleanly(tmp_path: Path) -> None:
    """SIGTERM right after the supervisor started its workers, before they are listening (a service
    manager's quick stop, or a restart loop): every worker stops and the supervisor exits 0, not 1."""
    import json

    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}", port)
    cli_json(env, "db", "upgrade")
    proc = subprocess.Popen([*CLI, "serve", "--workers", "2"], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line).get("event") == "workers_started":
                break
        proc.send_signal(signal.SIGTERM)  # the workers are still importing bccd
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    stopped = [json.loads(x) for x in out.splitlines() if b'"workers_stopped"' in x]
    assert len(stopped) == 1 and len(stopped[0]["returncodes"]) == 2
