"""The `bccd` command line: every command of the core issue, run in-process against a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bccd.cli import EXIT_CONFLICT, EXIT_FORBIDDEN, EXIT_NOT_FOUND, EXIT_USAGE, main


class Cli:
    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(self.config)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        assert len(out.strip().splitlines()) == 1  # one JSON document, logs go to stderr
        return json.loads(out)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    # main() configures structlog to write to this test's captured stderr; later tests must not inherit it.
    yield
    structlog.reset_defaults()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    config = tmp_path / "bccd.toml"
    config.write_text(
        '[smtp]\nbcc_domains = ["bcc.test"]\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "db.sqlite3"}"\n'
        '[log]\nlevel = "info"\n'
    )
    c = Cli(config, capsys)
    assert c.run("db", "upgrade")[0] == 0
    return c


def _world(cli: Cli, tmp_path: Path) -> dict[str, Any]:
    company = cli.json("company", "create", "--name", "Acme")
    assert company["sender_auth"] == "record"  # A1: the default for a new company, shown at creation
    owner = cli.json(
        "user",
        "create",
        "--company",
        "Acme",
        "--email",
        "alice@acme.test",
        "--name",
        "Alice",
        "--alias",
        "alice@home.test",
    )
    other = cli.json(
        "user", "create", "--company", str(company["id"]), "--email", "bob@acme.test", "--name", "Bob"
    )
    lines = [
        {"kind": "organization", "company": company["id"], "external_id": "o1", "name": "Client Corp"},
        {
            "kind": "person",
            "company": company["id"],
            "external_id": "p1",
            "name": "Carol",
            "emails": ["carol@client.test"],
            "organization": "o1",
        },
        {
            "kind": "deal",
            "company": company["id"],
            "external_id": "A",
            "title": "Deal A",
            "person": "p1",
            "created_at": "2020-01-01T00:00:00Z",
        },
        {
            "kind": "deal",
            "company": company["id"],
            "external_id": "B",
            "title": "Deal B",
            "person": "p1",
            "created_at": "2020-01-01T00:00:00Z",
        },
    ]
    path = tmp_path / "dir.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    assert cli.json("import", str(path)) == {"created": 4, "updated": 0, "total": 4}
    return {"company": company, "owner": owner, "other": other}


def test_company_and_user_create_print_ids_and_address(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    assert isinstance(w["company"]["id"], int)
    owner = w["owner"]
    assert isinstance(owner["id"], int)
    local, _, domain = owner["smart_bcc_address"].partition("@")
    assert domain == "bcc.test" and len(local) >= 13 and local == local.lower()  # ≥ 64 random bits (T2)
    assert owner["aliases"] == []  # S5: an alternative address counts once confirmed (issue 11)
    pending = [(a["address"], a["confirmed"]) for a in owner["alternative_addresses"]]
    assert pending == [("alice@home.test", False)]
    assert owner["api_token"].startswith("bccd_")  # the first token is shown once, at creation (T2)
    quiet = cli.json(
        "user", "create", "--company", "Acme", "--email", "q@acme.test", "--name", "Q", "--no-token"
    )
    assert "api_token" not in quiet
    code, _, err = cli.run("user", "create", "--company", "Acme", "--email", "ALICE@acme.test", "--name", "X")
    assert code == EXIT_CONFLICT and "already exists" in err


def test_rotate_address_and_user_set(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    rotated = cli.json("user", "rotate-address", "alice@acme.test")
    assert rotated["smart_bcc_address"] != w["owner"]["smart_bcc_address"]
    updated = cli.json(
        "user",
        "set",
        str(w["owner"]["id"]),
        "--autolink",
        "off",
        "--role",
        "admin",
        "--alias",
        "a1@x.test",
        "--alias",
        "a2@x.test",
    )
    assert (updated["autolink"], updated["role"], updated["aliases"]) == (False, "admin", [])
    pending = [(a["address"], a["confirmed"]) for a in updated["alternative_addresses"]]
    assert pending == [("a1@x.test", False), ("a2@x.test", False)]  # --alias replaced alice@home.test
    with pytest.raises(SystemExit) as exc:  # argparse refuses it with a usage message, exit status 2
        cli.run("user", "set", "alice@acme.test", "--autolink", "maybe")
    assert exc.value.code == EXIT_USAGE and "expected on or off" in cli.capsys.readouterr().err
    token = cli.json("user", "token", "alice@acme.test")["api_token"]
    assert token.startswith("bccd_") and len(token) > 40


def test_user_set_keeps_the_last_admin(cli: Cli, tmp_path: Path) -> None:
    """Issue 8 "every rule holds on every interface": the CLI refuses what the API refuses (409 there)."""
    w = _world(cli, tmp_path)
    admin = cli.json(
        "user", "create", "--company", "Acme", "--email", "root@acme.test", "--name", "R", "--admin"
    )
    code, _, err = cli.run("user", "set", str(admin["id"]), "--role", "regular")
    assert code == EXIT_CONFLICT and "at least one admin" in err
    assert cli.json("user", "set", "root@acme.test")["role"] == "admin"  # nothing changed
    # With a second admin, stepping down is fine.
    assert cli.json("user", "set", str(w["owner"]["id"]), "--role", "admin")["role"] == "admin"
    assert cli.json("user", "set", str(admin["id"]), "--role", "regular")["role"] == "regular"
    # The operator may still change a last admin's other settings.
    code, _, err = cli.run("user", "set", str(w["owner"]["id"]), "--role", "regular")
    assert code == EXIT_CONFLICT
    assert cli.json("user", "set", str(w["owner"]["id"]), "--autolink", "off")["autolink"] is False


def _write_lines(path: Path, *lines: dict[str, Any] | str) -> Path:
    """A JSON-lines file; a str is written as it is (to make a line that is not JSON)."""
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def test_import_reports_bad_line_and_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    company = cli.json("company", "create", "--name", "Acme")
    org = {"kind": "organization", "company": company["id"], "external_id": "o1", "name": "Org"}
    orphan = {
        "kind": "person",
        "company": company["id"],
        "external_id": "p",
        "name": "P",
        "organization": "zz",
    }
    path = tmp_path / "lines.jsonl"

    bad_status = {
        "kind": "deal",
        "company": company["id"],
        "external_id": "d1",
        "title": "D",
        "status": "bogus",
    }
    code, _, err = cli.run("import", str(_write_lines(path, org, bad_status)))
    assert code == EXIT_USAGE and "line 2" in err and "status" in err and "nothing was imported" in err
    code, _, err = cli.run("import", str(_write_lines(path, orphan, "{not json")))
    assert code == EXIT_USAGE and "line 2" in err and "invalid JSON" in err
    code, _, err = cli.run("import", str(_write_lines(path, orphan)))
    assert code == EXIT_USAGE and "line 1" in err and "unknown organization 'zz'" in err
    # Nothing from the failed files was written: importing the organization now creates it.
    assert cli.json("import", str(_write_lines(path, org)))["created"] == 1
    code, _, err = cli.run("import", str(tmp_path / "nope.jsonl"))
    assert code == EXIT_USAGE and "no such file" in err


async def _deliver_one(config: Path, bcc: str) -> int:
    from bccd.app import BccdApp
    from bccd.config import load_settings
    from tests.helpers import make_mail, send

    settings = load_settings(config)
    settings = settings.model_copy(
        update={
            "smtp": settings.smtp.model_copy(update={"port": 0}),
            "http": settings.http.model_copy(update={"enabled": False}),
        }
    )
    app = BccdApp(settings)
    await app.start()
    try:
        result = await send(app.smtp.port, [bcc], make_mail(subject="Offer"))
        assert result.code == 250
    finally:
        await app.stop()
    return 1


def test_threads_list_show_link_unlink(cli: Cli, tmp_path: Path) -> None:
    import asyncio

    w = _world(cli, tmp_path)
    asyncio.run(_deliver_one(cli.config, w["owner"]["smart_bcc_address"]))
    assert cli.json("threads", "list")["threads"][0]["subject"] == "Offer"  # one company: no filter needed
    listed = cli.json("threads", "list", "--owner", "alice@acme.test", "--unlinked")
    [summary] = listed["threads"]
    assert summary["decision"]["reason"] == "ambiguous"
    tid = str(summary["id"])
    shown = cli.json("threads", "show", tid)
    assert shown["decision"]["candidates"] == [{"type": "deal", "id": "A"}, {"type": "deal", "id": "B"}]
    assert shown["persons"] == ["p1"] and shown["organizations"] == ["o1"]
    code, text, _ = cli.run("threads", "show", tid)
    assert code == 0 and "ambiguous (rule L7)" in text and "candidates: deal A, deal B" in text

    # M1: another regular user of the company may not link it; the owner may.
    code, _, err = cli.run("link", tid, "--type", "deal", "--id", "A", "--as", "bob@acme.test")
    assert code == EXIT_FORBIDDEN
    linked = cli.json("link", tid, "--type", "deal", "--id", "A", "--as", "alice@acme.test")
    assert linked["result"] == "linked" and linked["thread"]["item"] == {"type": "deal", "id": "A"}
    assert cli.json("link", tid, "--type", "deal", "--id", "A")["result"] == "unchanged"
    code, _, err = cli.run("link", tid, "--type", "deal", "--id", "B")
    assert code == EXIT_CONFLICT and "forward the mail to your Smart Bcc address" in err
    assert cli.json("link", tid, "--type", "deal", "--id", "B", "--replace")["result"] == "replaced"
    on_b = cli.json("threads", "list", "--company", "Acme", "--item", "deal:B")
    assert [t["id"] for t in on_b["threads"]] == [int(tid)]
    assert cli.json("threads", "list", "--owner", "alice@acme.test", "--unlinked")["threads"] == []
    assert cli.json("unlink", tid)["result"] == "unlinked"
    assert cli.json("unlink", tid)["result"] == "unchanged"
    history = cli.json("threads", "show", tid)["history"]
    assert [h["action"] for h in history] == ["auto_link", "link_item", "replace_item", "unlink_item"]
    assert history[1]["actor"] == f"user:{w['owner']['id']}" and history[2]["actor"] == "operator"
    code, _, err = cli.run("link", tid, "--type", "deal", "--id", "nope")
    assert code == EXIT_NOT_FOUND
    code, _, err = cli.run("threads", "show", "999")
    assert code == EXIT_NOT_FOUND


def test_threads_list_needs_a_company_when_there_are_several(cli: Cli) -> None:
    cli.json("company", "create", "--name", "One")
    cli.json("company", "create", "--name", "Two")
    code, _, err = cli.run("threads", "list")
    assert code == EXIT_USAGE and "give --owner or --company" in err
    assert cli.json("threads", "list", "--company", "Two") == {"threads": [], "next_cursor": None}


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[smtp]\nport = 'many'\n")
    assert main(["threads", "list", "--company", "1", "--config", str(config)]) == EXIT_USAGE
    assert "smtp.port" in capsys.readouterr().err
    config.write_text("[smtp]\nbogus = 1\n")
    assert main(["threads", "list", "--company", "1", "--config", str(config)]) == EXIT_USAGE
    assert "smtp.bogus" in capsys.readouterr().err
