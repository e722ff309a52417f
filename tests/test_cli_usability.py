"""The CLI as a stranger meets it (issue 12 items 7, 8, 9, 15, 16, 21; issue 9's company/user listings)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bccd.cli import EXIT_CONFLICT, EXIT_USAGE, build_parser, main
from tests.test_cli import Cli, _deliver_one, _reset_logging, _world, cli

__all__ = ["_reset_logging", "cli"]  # fixtures used here


def _run_first(cli: Cli, *args: str) -> tuple[int, str, str]:
    """Global options before the command: `bccd --config F --json threads list`."""
    code = main(["--config", str(cli.config), *args])
    out, err = cli.capsys.readouterr()
    return code, out, err


# Each documented command with arguments that succeed on the _world data; creates use fresh names per form.
def _commands(form: str) -> list[list[str]]:
    return [
        ["company", "list"],
        ["user", "list"],
        ["user", "list", "--company", "Acme"],
        ["user", "show", "alice@acme.test"],
        ["user", "create", "--company", "Acme", "--email", f"{form}@acme.test", "--name", form],
        ["user", "set", "bob@acme.test", "--autolink", "off"],
        ["user", "token", "bob@acme.test"],
        ["user", "token", "bob@acme.test", "--expires-in-days", "30"],
        ["user", "tokens", "bob@acme.test"],
        ["company", "set", "Acme", "--sender-auth", "record", "--never-log", "noreply.example"],
        ["user", "rotate-address", "bob@acme.test"],
        ["threads", "list", "--company", "Acme"],
        ["threads", "show", "1"],
        ["link", "1", "--type", "deal", "--id", "A"],
        ["unlink", "1"],
        ["db", "upgrade"],
        ["company", "create", "--name", f"Other {form}"],  # last: then two companies exist
    ]


@pytest.mark.parametrize("where", ["before", "after", "between"])
def test_item7_global_options_work_before_or_after_every_command(
    cli: Cli, tmp_path: Path, where: str
) -> None:
    w = _world(cli, tmp_path)
    asyncio.run(_deliver_one(cli.config, w["owner"]["smart_bcc_address"]))
    for command in _commands(where):
        if where == "before":
            argv = ["--config", str(cli.config), "--json", *command]
        elif where == "after":
            argv = [*command, "--json", "--config", str(cli.config)]
        else:  # one of each side
            argv = ["--json", *command, "--config", str(cli.config)]
        code = main(argv)
        out, err = cli.capsys.readouterr()
        assert code == 0, (argv, err)
        # --json was honoured wherever it stood, and --config found the world's database.
        json.loads(out)
    code, out, _ = _run_first(cli, "--json", "threads", "show", "1")
    assert code == 0 and json.loads(out)["subject"] == "Offer"


def test_item7_config_before_the_command_is_not_ignored(cli: Cli, tmp_path: Path) -> None:
    # The turn-1 bug: `bccd --config FILE serve` served an empty database in the working directory.
    _world(cli, tmp_path)
    code, out, err = _run_first(cli, "--json", "company", "list")
    assert code == 0, err
    assert [c["name"] for c in json.loads(out)["companies"]] == ["Acme"]


def test_item7_version_and_help_for_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("bccd ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest}: no help text"
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
                assert action.help, f"{path}: option {action.dest} has no help text"

    walk(build_parser(), "bccd")


def test_item15_threads_list_pages_with_a_cursor_and_says_when_more_exist(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    for _ in range(3):
        asyncio.run(_deliver_one(cli.config, w["owner"]["smart_bcc_address"]))
    first = cli.json("threads", "list", "--limit", "2")
    assert len(first["threads"]) == 2 and first["next_cursor"] == first["threads"][-1]["id"]
    rest = cli.json("threads", "list", "--limit", "2", "--cursor", str(first["next_cursor"]))
    assert len(rest["threads"]) == 1 and rest["next_cursor"] is None
    everything = cli.json("threads", "list", "--limit", "1", "--all")
    assert [t["id"] for t in everything["threads"]] == [3, 2, 1] and everything["next_cursor"] is None
    exact = cli.json("threads", "list", "--limit", "3")
    assert exact["next_cursor"] is None  # a full last page is not "more"
    code, text, _ = cli.run("threads", "list", "--limit", "2")
    assert code == 0 and f"--cursor {first['next_cursor']}" in text
    for bad in ("0", "-1", "x", "201"):
        if bad == "201":
            code, _, err = cli.run("threads", "list", "--limit", bad)
            assert code == EXIT_USAGE and "at most 200" in err
        else:
            with pytest.raises(SystemExit) as exit_:
                cli.run("threads", "list", "--limit", bad)
            assert exit_.value.code == EXIT_USAGE


def test_item21_human_output_names_the_owner_and_says_linked_once(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    asyncio.run(_deliver_one(cli.config, w["owner"]["smart_bcc_address"]))
    cli.json("link", "1", "--type", "deal", "--id", "A")
    code, text, _ = cli.run("threads", "list")
    assert code == 0 and "alice@acme.test" in text and "owner=1" not in text
    code, text, _ = cli.run("threads", "show", "1")
    assert code == 0 and "owner alice@acme.test" in text
    assert "linked — linked" not in text


def test_item11_human_thread_output_escapes_terminal_controls(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    asyncio.run(_deliver_one(cli.config, w["owner"]["smart_bcc_address"]))
    db = cli_db_path(cli)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE threads SET subject = ?", ("evil\x1b[2J\u202etxt.exe",))
    conn.commit()
    conn.close()
    for command in (("threads", "list"), ("threads", "show", "1")):
        code, text, _ = cli.run(*command)
        assert code == 0 and "\x1b" not in text and "\u202e" not in text
        assert "\\x1b[2J" in text and "\\u202e" in text


def cli_db_path(cli: Cli) -> Path:
    for line in cli.config.read_text().splitlines():
        if line.startswith("url"):
            return Path(line.split("///", 1)[1].rstrip('"'))
    raise AssertionError("no url in the test config")


def test_item16_company_names_are_unique_and_a_legacy_duplicate_asks_for_the_id(cli: Cli) -> None:
    cli.json("company", "create", "--name", "Acme")
    code, _, err = cli.run("company", "create", "--name", "ACME")
    assert code == EXIT_CONFLICT and "already exists (id 1)" in err
    # A database from before the rule may hold two: the name is refused as ambiguous, naming the ids.
    conn = sqlite3.connect(cli_db_path(cli))
    conn.execute(
        "INSERT INTO companies (name, sender_policy, never_log, created_at) "
        "SELECT name, sender_policy, never_log, created_at FROM companies WHERE id = 1"
    )
    conn.commit()
    conn.close()
    code, _, err = cli.run("user", "create", "--company", "Acme", "--email", "a@a.test", "--name", "A")
    assert code == EXIT_CONFLICT and "ids 1, 2" in err and "give the id" in err
    assert cli.json("user", "create", "--company", "2", "--email", "a@a.test", "--name", "A")["company"] == 2


def test_company_list_user_list_and_show(cli: Cli, tmp_path: Path) -> None:
    w = _world(cli, tmp_path)
    cli.json("company", "create", "--name", "Beta")
    cli.json("user", "create", "--company", "Beta", "--email", "zed@beta.test", "--name", "Zed")
    assert [c["name"] for c in cli.json("company", "list")["companies"]] == ["Acme", "Beta"]
    assert len(cli.json("user", "list")["users"]) == 3
    acme = cli.json("user", "list", "--company", "Acme")["users"]
    assert sorted(u["email"] for u in acme) == ["alice@acme.test", "bob@acme.test"]
    shown = cli.json("user", "show", "alice@acme.test")
    assert shown["id"] == w["owner"]["id"] and shown["smart_bcc_address"] == w["owner"]["smart_bcc_address"]


def test_item8_import_of_a_directory_and_from_standard_input(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = cli.json("company", "create", "--name", "Acme")
    code, _, err = cli.run("import", str(tmp_path))
    assert code == EXIT_USAGE and "is a directory" in err and "Traceback" not in err
    line = {"kind": "organization", "company": company["id"], "external_id": "o1", "name": "Org"}
    fake = io.TextIOWrapper(io.BytesIO((json.dumps(line) + "\n").encode()))
    monkeypatch.setattr("sys.stdin", fake)
    assert cli.json("import", "-") == {"created": 1, "updated": 0, "total": 1}


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[log]\nformat = "json"\n')
    return path


def test_item9_commands_never_create_a_database_and_say_where_they_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nowhere" / "bccd.sqlite3"
    config = _config(tmp_path, f"sqlite+aiosqlite:///{db}")
    assert main(["--config", str(config), "threads", "list"]) == 1
    _, err = capsys.readouterr()
    assert f"no database at {db}" in err and "bccd db upgrade" in err and "Traceback" not in err
    assert not db.exists() and not db.parent.exists()
    # db upgrade is the one command that creates it (and its directory).
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert db.exists()


def test_item9_the_default_database_is_one_absolute_file_whatever_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bccd.config import Settings

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith("BCCD_"):
            monkeypatch.delenv(name)
    urls = set()
    for where in (tmp_path, tmp_path / "elsewhere"):
        where.mkdir(exist_ok=True)
        monkeypatch.chdir(where)
        urls.add(Settings().database.url.get_secret_value())
    [url] = urls
    assert url == f"sqlite+aiosqlite:///{tmp_path / 'home' / '.local/share/bccd/bccd.sqlite3'}"
    monkeypatch.setenv("BCCD_DATABASE__DATA_DIR", str(tmp_path / "data"))
    assert Settings().database.url.get_secret_value().endswith(f"{tmp_path}/data/bccd.sqlite3")


def test_item8_unmigrated_database_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "empty.sqlite3"
    sqlite3.connect(db).close()
    config = _config(tmp_path, f"sqlite+aiosqlite:///{db}")
    for argv in (["threads", "list"], ["serve"]):
        assert main(["--config", str(config), *argv]) == 1
        out, err = capsys.readouterr()
        assert "schema none (empty)" in err and "run `bccd db upgrade`" in err
        assert "Traceback" not in err
        event = json.loads([line for line in (out + err).splitlines() if line.startswith("{")][-1])
        assert event["event"] == "bccd_command_failed" and event["code"] == "database_not_ready"


def test_item8_unreachable_postgresql_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(tmp_path, f"postgresql+asyncpg://postgres:secretpw@127.0.0.1:{port}/bccd")
    for argv in (["threads", "list"], ["db", "upgrade"], ["serve"]):
        assert main(["--config", str(config), *argv]) == 1
        _, err = capsys.readouterr()
        assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/bccd" in err and "Traceback" not in err
        assert "secretpw" not in err


def _read_only_setup(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    config = _config(tmp_path, f"sqlite+aiosqlite:///{data / 'bccd.sqlite3'}")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    return data, config


def _serve_refuses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "serve"]) == 1
    _, err = capsys.readouterr()
    assert "read-only" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_item8_read_only_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, config = _read_only_setup(tmp_path)
    data.chmod(0o555)
    try:
        _serve_refuses(config, capsys)
    finally:
        data.chmod(0o755)


def test_item8_read_only_data_directory_as_any_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores permission bits, so also test the check with os.access answering as a user's would.
    data, config = _read_only_setup(tmp_path)
    real = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        if mode == os.W_OK and Path(path).resolve().is_relative_to(data.resolve()):
            return False
        return bool(real(path, mode, **kw))

    monkeypatch.setattr(os, "access", access)
    _serve_refuses(config, capsys)


def test_item8_port_in_use_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bccd.sqlite3"
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(
            f'[smtp]\nport = {port}\n[http]\nenabled = false\n[database]\nurl = "sqlite+aiosqlite:///{db}"\n'
        )
        assert main(["--config", str(config), "db", "upgrade"]) == 0
        assert main(["--config", str(config), "serve"]) == 1
    _, err = capsys.readouterr()
    assert f"SMTP 127.0.0.1:{port}" in err and "already in use" in err and "Traceback" not in err
