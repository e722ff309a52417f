"""`bccd threads show ID --body` (issue 9): the thread plus its body, as text or in the --json document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bccd.app import BccdApp
from bccd.cli import main
from bccd.config import load_settings
from tests.helpers import make_mail, send


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


async def _deliver(config: Path, bcc: str, body: str) -> None:
    app = BccdApp(load_settings(config))
    await app.start()
    try:
        assert (await send(app.smtp.port, [bcc], make_mail(subject="Offer", body=body))).code == 250
    finally:
        await app.stop()


def test_threads_show_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bccd.toml"
    config.write_text(
        '[smtp]\nbcc_domains = ["bcc.test"]\nport = 0\nhost = "127.0.0.1"\n[http]\nenabled = false\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "db.sqlite3"}"\n[log]\nlevel = "warning"\n'
    )

    def run(*args: str) -> tuple[int, str]:
        code = main([*args, "--config", str(config)])
        return code, capsys.readouterr().out

    assert run("db", "upgrade")[0] == 0
    run("company", "create", "--name", "Acme")
    code, out = run(
        "user", "create", "--company", "Acme", "--email", "alice@acme.test", "--name", "A", "--json"
    )
    bcc = json.loads(out)["smart_bcc_address"]
    asyncio.run(_deliver(config, bcc, "Price is 42.\n\nOn Mon, Bob wrote:\n> price?\n"))
    tid = json.loads(run("threads", "list", "--json")[1])["threads"][0]["id"]

    code, out = run("threads", "show", str(tid), "--body", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == tid and shown["subject"] == "Offer"
    assert shown["body"]["stripped_text"] == "Price is 42."
    assert shown["body"]["text"].startswith("Price is 42.\n\nOn Mon, Bob wrote:\n> price?")
    assert shown["body"]["html"] is None and shown["body"]["truncated"] is False

    code, text = run("threads", "show", str(tid), "--body")
    assert code == 0 and "decision:" in text and "> price?" in text
    code, text = run("threads", "show", str(tid))
    assert code == 0 and "> price?" not in text  # the body only when asked for

    # `threads list --query` (issue 9 "Search").
    assert [
        t["id"] for t in json.loads(run("threads", "list", "--query", "price", "--json")[1])["threads"]
    ] == [tid]
    assert json.loads(run("threads", "list", "--query", "nonexistent", "--json")[1])["threads"] == []
