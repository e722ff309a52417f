"""Issue 9 on the command line: `user token --expires-in-days`, `user tokens`, `user revoke-token`,
`company set`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bccd.cli import EXIT_NOT_FOUND, EXIT_USAGE
from bccd.config import load_settings
from bccd.services.runtime import open_database
from bccd.services.users import authenticate
from tests.test_cli import Cli, _reset_logging, _world, cli

__all__ = ["_reset_logging", "cli"]  # fixtures used here


def _authenticates(cli: Cli, raw: str) -> bool:
    async def check() -> bool:
        db = open_database(load_settings(cli.config).database.url.get_secret_value())
        try:
            return await authenticate(db, raw) is not None
        finally:
            await db.close()

    return asyncio.run(check())


def test_user_tokens_list_expiry_and_revoke(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    first = w["owner"]["api_token"]
    # `user token U` works as before: the token, shown once, never expiring.
    code, out, _ = cli.run("user", "token", "alice@acme.test")
    assert code == 0 and out.startswith("api_token (shown once): bccd_") and "expires" not in out
    issued = cli.json("user", "token", "alice@acme.test", "--expires-in-days", "7")
    assert issued["api_token"].startswith(issued["prefix"]) and issued["expires_at"]
    assert _authenticates(cli, issued["api_token"])

    listed = cli.json("user", "tokens", "alice@acme.test")
    assert listed["user"] == w["owner"]["id"]
    tokens = listed["tokens"]
    assert len(tokens) == 3 and [t["expires_at"] is None for t in tokens] == [True, True, False]
    assert all(set(t) == {"id", "user", "prefix", "created_at", "last_used_at", "expires_at"} for t in tokens)
    code, out, _ = cli.run("user", "tokens", "alice@acme.test")
    assert code == 0 and first not in out and issued["api_token"] not in out
    assert len(out.splitlines()) == 3 and "never" in out and tokens[0]["prefix"] in out

    assert cli.json("user", "revoke-token", str(tokens[0]["id"])) == {
        "revoked": tokens[0]["id"],
        "user": w["owner"]["id"],
    }
    assert not _authenticates(cli, first) and _authenticates(cli, issued["api_token"])
    assert [t["id"] for t in cli.json("user", "tokens", "alice@acme.test")["tokens"]] == [
        t["id"] for t in tokens[1:]
    ]
    code, _, err = cli.run("user", "revoke-token", str(tokens[0]["id"]))
    assert code == EXIT_NOT_FOUND and "not found" in err
    assert cli.json("user", "tokens", "bob@acme.test")["tokens"][0]["prefix"].startswith("bccd_")


def test_user_token_expiry_must_be_a_positive_number_of_days(cli: Cli, tmp_path: Path) -> None:
    _world(cli, tmp_path)
    for bad in ("0", "-1", "soon"):
        try:
            code, _, _ = cli.run("user", "token", "alice@acme.test", "--expires-in-days", bad)
        except SystemExit as exc:
            code = int(str(exc.code))
        assert code == EXIT_USAGE
    code, _, err = cli.run("user", "token", "alice@acme.test", "--expires-in-days", "100000")
    assert code == EXIT_USAGE and "between 1 and 3650" in err


def test_company_set_changes_settings_and_never_log(cli: Cli, tmp_path: Path) -> None:
    _world(cli, tmp_path)
    listed = cli.json("company", "list")["companies"]
    assert listed[0]["sender_auth"] == "record" and listed[0]["never_log"] == []
    changed = cli.json(
        "company", "set", "Acme", "--sender-policy", "company", "--sender-auth", "require",
        "--never-log", "@News.Example", "--never-log", "Boss@Acme.test",
    )  # fmt: skip
    assert (changed["sender_policy"], changed["sender_auth"]) == ("company", "require")
    assert changed["never_log"] == ["boss@acme.test", "news.example"]
    # --never-log adds; --clear-never-log empties first; other settings stay.
    added = cli.json("company", "set", str(changed["id"]), "--never-log", "x.example")
    assert added["never_log"] == ["boss@acme.test", "news.example", "x.example"]
    assert added["sender_policy"] == "company"
    replaced = cli.json("company", "set", "Acme", "--clear-never-log", "--never-log", "y.example")
    assert replaced["never_log"] == ["y.example"]
    assert cli.json("company", "set", "Acme", "--clear-never-log")["never_log"] == []
    code, out, _ = cli.run("company", "list")
    assert code == 0 and "sender_policy=company  sender_auth=require  never_log=-" in out
    code, _, err = cli.run("company", "set", "Acme", "--never-log", "not a domain")
    assert code == EXIT_USAGE and "never_log" in err
    code, _, err = cli.run("company", "set", "Nope", "--sender-auth", "off")
    assert code == EXIT_NOT_FOUND
    assert cli.json("company", "list")["companies"][0]["never_log"] == []  # refused: nothing changed
