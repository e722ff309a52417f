"""The `bccd` command: serve, migrate, manage users and the directory, read and link threads."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bccd.config import ConfigError, Settings, load_settings
from bccd.errors import AlreadyLinked, Conflict, NotFound, PermissionDenied
from bccd.logs import configure_logging
from bccd.records import ITEM_CLI_NAMES, record_type
from bccd.services import companies, directory, users
from bccd.services import threads as thread_reads
from bccd.services.companies import AmbiguousCompany
from bccd.services.directory import ImportError_
from bccd.services.links import link_item, unlink_item
from bccd.services.runtime import Database, open_database, upgrade_schema
from bccd.services.users import User
from bccd.vocabulary import ROLES, SENDER_POLICIES

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_FORBIDDEN = 5


# Domain errors → exit status and message prefix (checked in order).
ERROR_EXITS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, EXIT_NOT_FOUND, ""),
    (PermissionDenied, EXIT_FORBIDDEN, "forbidden: "),
    (Conflict, EXIT_CONFLICT, ""),
    (ValueError, EXIT_USAGE, ""),
)


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _on_off(value: str) -> bool:
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError("expected on or off")


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[None]]) -> None:
    db = open_database(settings.database.url.get_secret_value())
    try:
        await fn(db)
    finally:
        await db.close()


def _bcc_domain(settings: Settings) -> str:
    return settings.smtp.bcc_domains[0]


# -- commands ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    if args.workers > 1:
        from bccd.workers import run_workers

        code = run_workers(args.workers, args.config)
        if code:
            raise CliError("a worker exited with an error", code)
        return
    from bccd.app import BccdApp

    asyncio.run(BccdApp(settings).serve_forever())


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    upgrade_schema(settings.database.url.get_secret_value(), args.revision)
    _emit(args, {"upgraded_to": args.revision}, f"database upgraded to {args.revision}")


async def cmd_company_create(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    company = await companies.create_company(
        db, args.name, sender_policy=args.sender_policy, never_log=args.never_log or ()
    )
    data = {"id": company.id, "name": company.name, "sender_policy": company.sender_policy}
    _emit(args, data, f"company {company.id} created: {company.name}")


async def cmd_user_create(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    user, token = await users.create_user(
        db,
        actor=None,
        company=args.company,
        email=args.email,
        name=args.name,
        admin=args.admin,
        aliases=args.alias or (),
        autolink=args.autolink,
        token=args.token,
    )
    data = user.as_json(_bcc_domain(settings))
    if token:
        data["api_token"] = token
    text = f"user {user.id} created\nsmart_bcc_address: {data['smart_bcc_address']}"
    if token:
        text += f"\napi_token (shown once): {token}"
    _emit(args, data, text)


async def cmd_user_rotate(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    user = await users.rotate_address(db, args.user, actor=None)
    data = user.as_json(_bcc_domain(settings))
    _emit(args, data, f"smart_bcc_address: {data['smart_bcc_address']} (the old address is now refused)")


async def cmd_user_set(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    # The operator has every right, but the rules of the data hold here too (the last admin stays).
    user = await users.update_user(
        db, args.user, actor=None, autolink=args.autolink, role=args.role, aliases=args.alias
    )
    data = user.as_json(_bcc_domain(settings))
    _emit(args, data, json.dumps(data, indent=2))


async def cmd_user_token(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    user, token = await users.issue_token(db, args.user, actor=None)
    _emit(args, {"user": user.id, "api_token": token}, f"api_token (shown once): {token}")


async def cmd_import(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    path = Path(args.file)
    try:
        data = path.read_bytes()  # noqa: ASYNC240 - a one-shot CLI read before any concurrency
        result = await directory.import_records(db, data.splitlines(), actor=None)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", EXIT_USAGE) from None
    except ImportError_ as exc:
        raise CliError(f"{path}: {exc}; nothing was imported", EXIT_USAGE) from None
    _emit(args, result.as_json(), f"imported {result.created} new and {result.updated} updated records")


def _thread_line(t: dict[str, Any]) -> str:
    item = f"{t['item']['type']}:{t['item']['id']}" if t["item"] else "-"
    reason = t["decision"]["reason"]
    when = t["created_at"][:19]
    return f"{t['id']:>6}  {when}  owner={t['owner']}  item={item:<16} {reason:<24} {t['subject']}"


async def cmd_threads_list(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    owner = await users.find_user(db, args.owner) if args.owner else None
    if args.company:
        company_id = (await companies.get_company(db, args.company)).id
    elif owner is not None:
        company_id = owner.company_id
    else:
        # Without a filter the one company of a single-tenant install is meant; never mix companies (T1).
        try:
            company_id = await companies.sole_company_id(db)
        except AmbiguousCompany as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    records: dict[str, str] = {}
    if args.item:
        kind, _, ext = args.item.partition(":")
        if kind not in ITEM_CLI_NAMES or not ext:
            raise CliError("--item takes TYPE:EXTERNAL_ID, e.g. deal:42", EXIT_USAGE)
        records[record_type(kind).kind] = ext
    found = await thread_reads.list_visible(
        db,
        actor=None,
        company_id=company_id,
        owner_id=owner.id if owner else None,
        unlinked=args.unlinked,
        records=records,
        limit=args.limit,
    )
    listed = [t.as_json() for t in found]
    _emit(args, {"threads": listed}, "\n".join(_thread_line(t) for t in listed) or "no threads")


def _explain(t: dict[str, Any]) -> str:
    d = t["decision"]
    lines = [
        f"thread {t['id']}: {t['subject']}",
        f"owner {t['owner']}, accepted {t['created_at']}, {t['visibility']}",
        "item: " + (f"{t['item']['type']} {t['item']['id']}" if t["item"] else "none"),
        f"decision: {d['outcome']} — {d['reason']} (rule {d['rule']})",
    ]
    if d.get("candidates"):
        lines.append("candidates: " + ", ".join(f"{c['type']} {c['id']}" for c in d["candidates"]))
    if d.get("fallback_reason"):
        lines.append(f"explicit target not found; the rules said: {d['fallback_reason']}")
    lines.append("persons: " + (", ".join(t["persons"]) or "none"))
    lines.append("organizations: " + (", ".join(t["organizations"]) or "none"))
    for p in t["participants"]:
        lines.append(f"  {p['role']:<14} {p['address']}" + (f" ({p['name']})" if p["name"] else ""))
    for h in t["history"]:
        lines.append(f"  {h['at'][:19]} {h['actor']:<10} {h['action']:<14} {h['reason']}")
    return "\n".join(lines)


async def cmd_threads_show(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    thread = (await thread_reads.show_thread(db, args.thread, actor=None)).as_json()
    _emit(args, thread, _explain(thread))


async def _actor(db: Database, ref: str | None) -> User | None:
    if ref is None:
        return None
    return await users.find_user(db, ref)


async def cmd_link(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    actor = await _actor(db, args.as_user)
    try:
        result, thread = await link_item(
            db, args.thread, args.type, args.id, actor=actor, replace=args.replace
        )
    except AlreadyLinked as exc:
        raise CliError(
            f"thread {args.thread} is already linked to {exc.current['type']} {exc.current['id']}; "
            "use --replace, or forward the mail to your Smart Bcc address to duplicate it and link the copy",
            EXIT_CONFLICT,
        ) from None
    _emit(
        args,
        {"result": result, "thread": thread.as_json()},
        f"{result}: thread {args.thread} → {args.type} {args.id}",
    )


async def cmd_unlink(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    actor = await _actor(db, args.as_user)
    changed, thread = await unlink_item(db, args.thread, actor=actor)
    _emit(
        args,
        {"result": "unlinked" if changed else "unchanged", "thread": thread.as_json()},
        f"thread {args.thread} " + ("unlinked" if changed else "had no item"),
    )


# -- parser ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML config file (BCCD_* environment overrides it)")
    common.add_argument("--json", action="store_true", help="print one JSON document")

    parser = argparse.ArgumentParser(
        prog="bccd", description="Smart Bcc inbound mail server", parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the SMTP and HTTP servers")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the ports (SO_REUSEPORT), e.g. one per core",
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", parents=[common], help="migrate the database to the newest schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    company = sub.add_parser("company").add_subparsers(dest="company_command", required=True)
    cc = company.add_parser("create", parents=[common])
    cc.add_argument("--name", required=True)
    cc.add_argument("--sender-policy", choices=SENDER_POLICIES, default="owner")
    cc.add_argument("--never-log", action="append", metavar="ADDRESS_OR_DOMAIN")
    cc.set_defaults(func=cmd_company_create, needs_db=True)

    user = sub.add_parser("user").add_subparsers(dest="user_command", required=True)
    uc = user.add_parser("create", parents=[common])
    uc.add_argument("--company", required=True, help="company id or name")
    uc.add_argument("--email", required=True)
    uc.add_argument("--name", required=True)
    uc.add_argument("--admin", action="store_true")
    uc.add_argument("--alias", action="append", metavar="EMAIL", help="alternative sender address")
    uc.add_argument("--autolink", type=_on_off, default=True, metavar="on|off")
    uc.add_argument(
        "--token",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create the user's first API token, shown once (default; --no-token to skip)",
    )
    uc.set_defaults(func=cmd_user_create, needs_db=True)
    ur = user.add_parser("rotate-address", parents=[common])
    ur.add_argument("user", help="user id or login email")
    ur.set_defaults(func=cmd_user_rotate, needs_db=True)
    us = user.add_parser("set", parents=[common])
    us.add_argument("user")
    us.add_argument("--autolink", type=_on_off, metavar="on|off")
    us.add_argument("--role", choices=ROLES)
    us.add_argument("--alias", action="append", metavar="EMAIL", help="replaces the alternative addresses")
    us.set_defaults(func=cmd_user_set, needs_db=True)
    ut = user.add_parser("token", parents=[common])
    ut.add_argument("user")
    ut.set_defaults(func=cmd_user_token, needs_db=True)

    imp = sub.add_parser("import", parents=[common], help="import directory records from a JSON lines file")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import, needs_db=True)

    threads = sub.add_parser("threads").add_subparsers(dest="threads_command", required=True)
    tl = threads.add_parser("list", parents=[common])
    tl.add_argument("--owner", help="user id or login email")
    tl.add_argument("--company", help="company id or name (when no --owner)")
    tl.add_argument("--unlinked", action="store_true", help="only threads without an item (M7)")
    tl.add_argument("--item", metavar="TYPE:EXTERNAL_ID")
    tl.add_argument("--limit", type=int, default=50)
    tl.set_defaults(func=cmd_threads_list, needs_db=True)
    ts = threads.add_parser("show", parents=[common])
    ts.add_argument("thread", type=int)
    ts.set_defaults(func=cmd_threads_show, needs_db=True)

    link = sub.add_parser("link", parents=[common], help="link a thread to a deal, lead or project")
    link.add_argument("thread", type=int)
    link.add_argument("--type", required=True, choices=ITEM_CLI_NAMES)
    link.add_argument("--id", required=True, help="the item's external id")
    link.add_argument("--as", dest="as_user", help="act as this user (permissions apply)")
    link.add_argument("--replace", action="store_true", help="replace an existing item link")
    link.set_defaults(func=cmd_link, needs_db=True)
    unlink = sub.add_parser("unlink", parents=[common])
    unlink.add_argument("thread", type=int)
    unlink.add_argument("--as", dest="as_user")
    unlink.set_defaults(func=cmd_unlink, needs_db=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"bccd: {exc}\n")
        return EXIT_USAGE
    configure_logging(
        settings.log.level, settings.log.format, stream=sys.stdout if args.command == "serve" else sys.stderr
    )
    try:
        if getattr(args, "needs_db", False):
            asyncio.run(_with_db(settings, lambda db: args.func(args, settings, db)))
        else:
            args.func(args, settings)
    except CliError as exc:
        sys.stderr.write(f"bccd: {exc}\n")
        return exc.code
    except (NotFound, PermissionDenied, Conflict, ValueError) as exc:
        code, prefix = next((c, p) for kind, c, p in ERROR_EXITS if isinstance(exc, kind))
        sys.stderr.write(f"bccd: {prefix}{exc}\n")
        return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
