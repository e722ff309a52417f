"""SPEC S6 / T4: every message in CPython's own test_email data directory goes through the real server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import AppFactory
from tests.helpers import crlf, make_mail, seed_world, send, set_policy, thread, threads_of


def _corpus_dir() -> Path | None:
    spec = importlib.util.find_spec("test.test_email")
    if spec is None or spec.origin is None:
        return None
    data = Path(spec.origin).parent / "data"
    return data if data.is_dir() else None


CORPUS = _corpus_dir()


@pytest.mark.skipif(CORPUS is None, reason="this Python ships without test.test_email data")
async def test_cpython_email_corpus_is_stored_or_refused_clearly(make_app: AppFactory) -> None:
    assert CORPUS is not None
    app = await make_app()
    world = await seed_world(app.db)
    await set_policy(app.db, world.company_id, "any")  # the corpus' senders are not our users
    files = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.suffix in (".txt", ".eml", ""))
    assert len(files) > 30
    stored = 0
    for path in files:
        raw = crlf(path.read_bytes())
        result = await send(app.smtp.port, [world.bcc], raw)
        # Stored, or refused with a clear SMTP reply (e.g. a line longer than RFC 5321 allows).
        assert result.code == 250 or result.code in (500, 552), (path.name, result)
        stored += result.code == 250
    assert (await send(app.smtp.port, [world.bcc], make_mail(subject="still alive"))).code == 250
    summaries = await threads_of(app.db, world.company_id)
    assert len(summaries) == stored + 1
    for summary in summaries:
        t = await thread(app.db, summary["id"])
        assert isinstance(t["message"]["defects"], list)
