"""DESIGN "scale: processes": several `bccd serve` workers share the SMTP and HTTP ports (SO_REUSEPORT)."""

from __future__ import annotations

import pytest

from bccd.app import BccdApp
from bccd.config import Settings
from tests.helpers import make_mail, seed_world, send, threads_of
from tests.processes import free_port


def _settings(url: str, smtp_port: int, http_port: int, reuse: bool) -> Settings:
    return Settings(
        smtp={"host": "127.0.0.1", "port": smtp_port, "bcc_domains": ["bcc.test"], "reuse_port": reuse},
        http={"enabled": True, "host": "127.0.0.1", "port": http_port, "reuse_port": reuse},
        database={"url": url},
        log={"level": "warning"},
    )


async def test_two_workers_share_both_ports(sqlite_url: str) -> None:
    smtp_port, http_port = free_port(), free_port()
    workers = [BccdApp(_settings(sqlite_url, smtp_port, http_port, True)) for _ in range(2)]
    for worker in workers:
        await worker.start()
    try:
        world = await seed_world(workers[0].db)
        for i in range(6):
            assert (await send(smtp_port, [world.bcc], make_mail(subject=f"m{i}"))).code == 250
        assert len(await threads_of(workers[1].db, world.company_id)) == 6  # one database for both
    finally:
        for worker in workers:
            await worker.stop()


async def test_without_reuse_port_the_second_worker_fails_cleanly(sqlite_url: str) -> None:
    smtp_port, http_port = free_port(), free_port()
    first = BccdApp(_settings(sqlite_url, smtp_port, http_port, False))
    await first.start()
    try:
        second = BccdApp(_settings(sqlite_url, smtp_port, http_port, False))
        with pytest.raises(OSError):
            await second.start()
        assert not second.smtp.listening  # nothing half-started is left behind
    finally:
        await first.stop()
