"""Issue 12 items 14 and 20: /readyz follows the last write's result; /metrics has process metrics."""

from __future__ import annotations

from tests.api.support import Api
from tests.helpers import make_mail, send


async def _limit_pages(api: Api, pages: int | None) -> None:
    """SQLite's max_page_count on the (single) writer connection: past it every write fails with
    SQLITE_FULL, "database or disk is full" — the very error a full disk gives."""
    async with api.app.db.write() as conn:
        if pages is None:
            await conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")
        else:
            current = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
            await conn.exec_driver_sql(f"PRAGMA max_page_count = {int(current)}")


async def test_readyz_is_503_after_a_failed_write_and_200_after_a_good_one(api: Api) -> None:
    assert (await api.anonymous.get("/readyz")).status_code == 200
    await _limit_pages(api, 0)
    big = make_mail(subject="no room", body="x" * 200_000)
    assert (await send(api.app.smtp.port, [api.world.bcc], big)).code == 451
    ready = await api.anonymous.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": True, "writes": False, "smtp": True}
    assert ready.json()["last_write_error"] == "disk_full"
    await _limit_pages(api, None)  # space again: the next write succeeds …
    assert (await send(api.app.smtp.port, [api.world.bcc], make_mail(subject="room"))).code == 250
    ready = await api.anonymous.get("/readyz")  # … and the node is ready again
    assert ready.status_code == 200 and ready.json()["checks"]["writes"] is True
    assert "last_write_error" not in ready.json()


async def test_a_business_refusal_is_no_storage_failure(api: Api) -> None:
    from bccd.health import is_storage_failure

    assert not is_storage_failure(ValueError("conflict"))
    async with api.app.db.write():
        pass
    try:
        async with api.app.db.write():
            raise LookupError("not found")  # rolled back, but the store is fine
    except LookupError:
        pass
    assert (await api.anonymous.get("/readyz")).status_code == 200


async def test_process_and_gc_metrics(api: Api) -> None:
    text = (await api.anonymous.get("/metrics")).text
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        assert f"\n{name} " in text, name
    assert "python_gc_objects_collected_total{" in text
    assert "python_info{" in text


async def test_commit_queue_depth_is_exported(api: Api) -> None:
    text = (await api.anonymous.get("/metrics")).text
    assert "\nbccd_commit_queue_depth 0.0\n" in text
