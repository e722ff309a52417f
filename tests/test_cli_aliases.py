"""`bccd user add-alias / confirm-alias / aliases` (S5, issue 11) against a real loopback SMTP relay: the code
is mailed and never printed or logged, confirms once, and the operator can confirm on the user's behalf."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bccd.cli import EXIT_CONFLICT, EXIT_USAGE
from tests.relay import Relay
from tests.test_cli import Cli


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture
def relay() -> Iterator[Relay]:
    with Relay() as r:
        yield r


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], relay: Relay) -> Cli:
    config = tmp_path / "bccd.toml"
    config.write_text(
        '[smtp]\nbcc_domains = ["bcc.test"]\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "db.sqlite3"}"\n'
        '[log]\nlevel = "debug"\n'
        f'[outbound]\nhost = "127.0.0.1"\nport = {relay.port}\nstarttls = false\nfrom = "bccd@bccd.test"\n'
    )
    c = Cli(config, capsys)
    assert c.run("db", "upgrade")[0] == 0
    return c


def test_add_confirm_and_list_aliases(cli: Cli, relay: Relay) -> None:
    cli.json("company", "create", "--name", "Acme")
    user = cli.json("user", "create", "--company", "Acme", "--email", "alice@acme.test", "--name", "Alice")

    code, out, err = cli.run("user", "add-alias", "alice@acme.test", "Alice@Work.test", "--json")
    assert code == 0, err
    code_sent = relay.code_for("alice@work.test")
    assert code_sent not in out and code_sent not in err  # mailed only: never printed, never logged
    assert '"confirmation_sent": true' in out and '"confirmed": false' in out

    wrong = ("--code", "ZZZZZ-ZZZZZ")
    status, _, err = cli.run("user", "confirm-alias", str(user["id"]), "alice@work.test", *wrong)
    assert status == EXIT_USAGE and "wrong confirmation code" in err
    confirmed = cli.json("user", "confirm-alias", "alice@acme.test", "alice@work.test", "--code", code_sent)
    assert (confirmed["confirmed"], confirmed["confirmed_by"]) == (True, "code")
    status, _, _ = cli.run("user", "confirm-alias", "alice@acme.test", "alice@work.test", "--code", code_sent)
    assert status == EXIT_CONFLICT  # once

    cli.json("user", "add-alias", "alice@acme.test", "alice@home.test")
    by_operator = cli.json("user", "confirm-alias", "alice@acme.test", "alice@home.test")
    assert by_operator["confirmed_by"] == "operator" and by_operator["confirmed_at"]

    listed = cli.json("user", "aliases", "alice@acme.test")["aliases"]
    assert [(a["address"], a["confirmed_by"]) for a in listed] == [
        ("alice@home.test", "operator"),
        ("alice@work.test", "code"),
    ]
    assert cli.json("user", "show", "alice@acme.test")["aliases"] == ["alice@home.test", "alice@work.test"]
    status, text, _ = cli.run("user", "aliases", "alice@acme.test")
    assert status == 0 and "alice@work.test  confirmed by code" in text
