"""Issue 12 item 4 (S6, T4): crafted mail under the size threshold is parsed off the event loop; ordinary
small mail stays on it. The crafted shapes are the ones that held the loop for 57–200 ms each."""

from __future__ import annotations

import functools
import os
import signal
import threading

import pytest

from bccd import ingest
from bccd.mail.parse_job import parse_and_detect, parse_and_detect_detached
from bccd.parse_cost import INLINE_BUDGET_US, ParseProcess, estimated_us, parse_inline
from tests.conftest import AppFactory
from tests.helpers import make_mail, seed_world, send, threads_of
from tests.parse_spy import ParseSpy, with_pid


def crafted(kind: str) -> bytes:
    head = b"From: alice@acme.test\r\nTo: bob@client.test\r\nSubject: crafted " + kind.encode() + b"\r\n"
    if kind == "parts":
        return (
            head
            + b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
            + b"--x\r\n\r\nq\r\n" * 21_000
            + b"--x--\r\n"
        )
    if kind == "headers":
        return head + b"X-H: v\r\n" * 25_000 + b"\r\nbody\r\n"
    if kind == "markers":
        block = (
            b"---------- Forwarded message ---------\r\nFrom: c@d.test\r\nSubject: y\r\nTo: e@f.test\r\n\r\n"
        )
        return head + b"\r\n" + block * 2_500
    raise ValueError(kind)


KINDS = ("parts", "headers", "markers")


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_messages_under_the_size_threshold_are_priced_high(kind: str) -> None:
    raw = crafted(kind)
    assert len(raw) < ingest.INLINE_PARSE_MAX_BYTES
    assert estimated_us(raw) > 10 * INLINE_BUDGET_US
    assert not parse_inline(raw, ingest.INLINE_PARSE_MAX_BYTES)


def test_ordinary_mail_is_parsed_inline() -> None:
    raw = make_mail(body="Hello,\n\nthe quote is attached.\n" * 20)
    assert estimated_us(raw) < INLINE_BUDGET_US / 4
    assert parse_inline(raw, ingest.INLINE_PARSE_MAX_BYTES)


async def test_crafted_mail_is_parsed_in_the_parse_process_over_smtp(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app()
    world = await seed_world(app.db)
    spy = ParseSpy(monkeypatch)
    assert (await send(app.smtp.port, [world.bcc], make_mail(subject="small"))).code == 250
    for kind in KINDS:
        assert (await send(app.smtp.port, [world.bcc], crafted(kind))).code == 250
    assert spy.inline_threads == [threading.main_thread().name]  # the small one, on the loop
    assert len(spy.process_pids) == len(KINDS) and os.getpid() not in spy.process_pids
    assert len(await threads_of(app.db, world.company_id)) == 1 + len(KINDS)  # all stored (S6)


@pytest.mark.parametrize("kind", KINDS)
async def test_the_parse_process_gives_what_the_inline_parse_gives(kind: str) -> None:
    process = ParseProcess()
    try:
        raw = crafted(kind)
        parsed, forward = await process.run(parse_and_detect_detached, raw)
        inline_parsed, inline_forward = parse_and_detect(raw)
        assert parsed == inline_parsed and forward == inline_forward  # every field but the MIME tree
        assert process.fallbacks == 0
    finally:
        process.close()


async def test_a_killed_parse_process_loses_no_message() -> None:
    """S6: the worker dies (OOM killer, a crash): that message is parsed in the parse thread instead, and
    the next one gets a new worker process."""
    process = ParseProcess()
    try:
        first, _ = await process.run(functools.partial(with_pid, len), b"x")
        os.kill(first, signal.SIGKILL)
        raw = crafted("headers")
        parsed, _ = await process.run(parse_and_detect_detached, raw)
        assert parsed == parse_and_detect(raw)[0]
        assert process.fallbacks == 1
        second, _ = await process.run(functools.partial(with_pid, len), b"x")
        assert second not in (first, os.getpid())
    finally:
        process.close()


_OWNER_OF_A_PARSE_PROCESS = """
import asyncio, multiprocessing.forkserver as fs, sys, time
from bccd.parse_cost import ParseProcess
p = ParseProcess()
async def main():
    await p.run(len, b"x")
    pool = p._executor()
    print(fs._forkserver._forkserver_pid, *pool._processes, flush=True)
    time.sleep(60)
asyncio.run(main())
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_the_parse_process_and_its_fork_server_end_when_bccd_is_killed() -> None:
    """A SIGKILLed `bccd serve` (OOM killer, kill -9) left its parse worker and fork server running for
    good, ~75 MB each per crash; they now end within a second or two of their owner."""
    import subprocess
    import sys
    import time

    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_OF_A_PARSE_PROCESS], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 2 and all(_running(p) for p in pids), pids  # the fork server and its one worker
    owner.kill()
    owner.wait()
    owner.stdout.close()
    deadline = time.monotonic() + 10
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _running(p)], "left running after their owner was killed"
