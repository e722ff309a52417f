"""The `bccd` command: serve, migrate, manage users and the directory, read and link threads."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bccd.config import ConfigError, Settings, load_settings
from bccd.errors import AlreadyLinked, ConfirmationFailed, Conflict, NotFound, PermissionDenied
from bccd.logs import configure_logging, get_logger
from bccd.outbound import Mailer, mailer_from_settings
from bccd.progress import terminal_progress
from bccd.records import ITEM_CLI_NAMES, record_type
from bccd.services import aliases, companies, directory, tokens, users, webhooks
from bccd.services import threads as thread_reads
from bccd.services.companies import AmbiguousCompany
from bccd.services.content import thread_body
from bccd.services.directory import ImportError_, ImportFailed
from bccd.services.links import link_item, unlink_item
from bccd.services.runtime import Database, DatabaseNotReady, check_database, open_database, upgrade_schema
from bccd.services.threads import MAX_PAGE
from bccd.services.users import User
from bccd.textsafe import escape_terminal as safe_text
from bccd.vocabulary import ROLES, SENDER_AUTH_MODES, SENDER_POLICIES
from bccd.webhooks.events import EVENT_TYPES

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
    (ConfirmationFailed, EXIT_USAGE, ""),
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


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bccd")
    except PackageNotFoundError:
        return "unknown"


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[None]]) -> None:
    db = open_database(settings.database.url.get_secret_value())
    try:
        await fn(db)
    finally:
        await db.close()


def _bcc_domain(settings: Settings) -> str:
    return settings.smtp.bcc_domains[0]


def _mailer(settings: Settings) -> Mailer | None:
    """`[outbound]`'s relay for alias confirmation codes; None when no host is configured."""
    return mailer_from_settings(settings.outbound, settings.smtp.hostname)


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
    upgrade_schema(settings.database.url.get_secret_value(), args.revision, create=True)
    _emit(args, {"upgraded_to": args.revision}, f"database upgraded to {args.revision}")


async def cmd_company_create(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    company = await companies.create_company(
        db, args.name, sender_policy=args.sender_policy, never_log=args.never_log or ()
    )
    data = {
        "id": company.id,
        "name": company.name,
        "sender_policy": company.sender_policy,
        "sender_auth": company.sender_auth,
    }
    _emit(args, data, f"company {company.id} created: {company.name}")


def _company_text(c: companies.Company) -> str:
    never = ",".join(c.never_log) or "-"
    settings = f"sender_policy={c.sender_policy}  sender_auth={c.sender_auth}  never_log={never}"
    return safe_text(f"{c.id:>4}  {c.name}  {settings}")


async def cmd_company_list(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    found = await companies.list_companies(db)
    text = "\n".join(_company_text(c) for c in found)
    _emit(args, {"companies": [c.as_json() for c in found]}, text or "no companies")


async def cmd_company_set(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    company = await companies.get_company(db, args.company)
    never_log: list[str] | None = None
    if args.clear_never_log or args.never_log:
        never_log = [] if args.clear_never_log else list(company.never_log)
        never_log += args.never_log or []
    changed = await companies.update_settings(
        db,
        company.id,
        sender_policy=args.sender_policy,
        sender_auth=args.sender_auth,
        never_log=never_log,
    )
    _emit(args, changed.as_json(), _company_text(changed))


async def cmd_user_list(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    company_id = (await companies.get_company(db, args.company)).id if args.company else None
    found = await users.list_users(db, actor=None, company_id=company_id)
    data = [u.as_json(_bcc_domain(settings)) for u in found]
    text = "\n".join(
        safe_text(f"{u['id']:>5}  company={u['company']}  {u['role']:<7}  {u['email']}  {u['name']}")
        for u in data
    )
    _emit(args, {"users": data}, text or "no users")


async def cmd_user_show(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    data = (await users.find_user(db, args.user)).as_json(_bcc_domain(settings))
    _emit(args, data, "\n".join(f"{k}: {safe_text(str(v))}" for k, v in sorted(data.items())))


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
        mailer=_mailer(settings),
        web_url=settings.http.public_url,
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
        db,
        args.user,
        actor=None,
        autolink=args.autolink,
        role=args.role,
        aliases=args.alias,
        mailer=_mailer(settings),
        web_url=settings.http.public_url,
    )
    data = user.as_json(_bcc_domain(settings))
    _emit(args, data, json.dumps(data, indent=2))


def _alias_line(alias: aliases.Alias) -> str:
    if alias.confirmed:
        by = f" by {alias.confirmed_by}" if alias.confirmed_by else ""
        return safe_text(f"{alias.address}  confirmed{by}")
    until = f", code good until {alias.expires_at:%Y-%m-%d %H:%M} UTC" if alias.expires_at else ""
    return safe_text(f"{alias.address}  not confirmed{until}")


async def cmd_user_aliases(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    found = await aliases.list_aliases(db, args.user, actor=None)
    text = "\n".join(_alias_line(a) for a in found) or "no alternative addresses"
    _emit(args, {"aliases": [a.as_json() for a in found]}, text)


async def cmd_user_add_alias(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    added = await aliases.add_alias(
        db, args.user, args.address, actor=None, mailer=_mailer(settings), web_url=settings.http.public_url
    )
    sent = (
        "a confirmation code was mailed to it"
        if added.confirmation_sent
        else "no code was mailed (no [outbound] relay, or it failed): `bccd user confirm-alias` confirms it"
    )
    _emit(args, added.as_json(), f"{_alias_line(added.alias)}\n{sent}")


async def cmd_user_confirm_alias(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    alias = await aliases.confirm_alias(db, args.user, args.address, actor=None, code=args.code)
    _emit(args, alias.as_json(), _alias_line(alias))


async def cmd_user_token(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    expires_at = tokens.expiry(expires_in_days=args.expires_in_days)
    raw, issued = await tokens.issue_token(db, args.user, actor=None, expires_at=expires_at)
    data = {**issued.as_json(), "api_token": raw}
    until = f" (expires {data['expires_at']})" if expires_at else ""
    _emit(args, data, f"api_token (shown once): {raw}{until}")


async def cmd_user_tokens(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    user, found = await tokens.list_tokens(db, args.user, actor=None)
    data = [t.as_json() for t in found]
    text = "\n".join(
        f"{t['id']:>5}  {t['prefix']}…  created {t['created_at']}  last used {t['last_used_at'] or 'never'}"
        f"  expires {t['expires_at'] or 'never'}"
        for t in data
    )
    _emit(args, {"user": user.id, "tokens": data}, text or f"user {user.id} has no API tokens")


async def cmd_user_revoke_token(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    token = await tokens.revoke_token(db, args.token, actor=None)
    data = {"revoked": token.id, "user": token.user_id}
    _emit(args, data, f"token {token.id} of user {token.user_id} revoked: refused from now on")


async def cmd_user_login_link(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    from bccd.services.web_auth import issue_login_link

    link = await issue_login_link(db, args.user, actor=None, public_url=settings.http.base_url())
    _emit(
        args,
        link.as_json(),
        f"{link.url}\n(sign-in link for user {link.user.id}: works once, until {link.expires_at:%H:%M} UTC)",
    )


async def cmd_import(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    path = Path(args.file)
    progress, clear = terminal_progress(sys.stderr)  # issue 12 item 18: a bar on a terminal only
    try:
        # Streamed, never read whole; the blocking reads are the CLI's only work, nothing else waits.
        stream = sys.stdin.buffer if args.file == "-" else path.open("rb")  # noqa: ASYNC230
        with stream:
            size = None if args.file == "-" else path.stat().st_size  # noqa: ASYNC240
            result = await directory.import_records(
                db, stream, actor=None, progress=progress, bytes_total=size
            )
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", EXIT_USAGE) from None
    except IsADirectoryError:
        raise CliError(
            f"{path} is a directory: give a JSON lines file (or - for standard input)", EXIT_USAGE
        ) from None
    except PermissionError:
        raise CliError(f"{path}: permission denied", EXIT_USAGE) from None
    except ImportError_ as exc:
        others = "".join(f"\n{path}: line {n}: {d}" for n, d in exc.errors[1:])
        cut = f"\n(only the first {len(exc.errors)} bad lines are shown)" if exc.truncated else ""
        raise CliError(f"{path}: {exc}; nothing was imported{others}{cut}", EXIT_USAGE) from None
    except ImportFailed as exc:
        raise CliError(f"{path}: {exc}", 1) from None
    finally:
        clear()
    _emit(args, result.as_json(), f"imported {result.created} new and {result.updated} updated records")


def _thread_line(t: dict[str, Any], owners: dict[int, str]) -> str:
    item = f"{t['item']['type']}:{t['item']['id']}" if t["item"] else "-"
    reason = t["decision"]["reason"]
    when = t["created_at"][:19]
    owner = owners.get(t["owner"], str(t["owner"]))
    return safe_text(f"{t['id']:>6}  {when}  {owner}  item={item:<16} {reason:<24} {t['subject']}")


async def _owner_emails(db: Database, ids: set[int]) -> dict[int, str]:
    return {uid: (await users.find_user(db, uid)).email for uid in ids}


async def cmd_threads_list(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    if args.limit > MAX_PAGE:
        raise CliError(f"--limit is at most {MAX_PAGE}; use --all or --cursor for more", EXIT_USAGE)
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

    async def page(limit: int, *, before: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        found = await thread_reads.list_visible(
            db,
            actor=None,
            company_id=company_id,
            owner_id=owner.id if owner else None,
            unlinked=args.unlinked,
            records=records,
            limit=limit,
            before_id=before,
            query=args.query,
            offset=offset,
        )
        return [t.as_json() for t in found]

    if args.query is not None:
        # Issue 9 search: best match first, so pages follow the ranking (--all reads every match).
        listed: list[dict[str, Any]] = []
        while True:
            hits = await page(args.limit, offset=len(listed))
            listed += hits
            if len(hits) < args.limit or not args.all:
                break
        owners = await _owner_emails(db, {t["owner"] for t in listed})
        text = "\n".join(_thread_line(t, owners) for t in listed) or "no threads"
        _emit(args, {"threads": listed, "next_cursor": None}, text)
        return

    listed = []
    cursor: int | None = args.cursor
    while True:
        got = await page(args.limit, before=cursor)
        listed += got
        cursor = got[-1]["id"] if len(got) == args.limit else None
        if cursor is not None and not await page(1, before=cursor):
            cursor = None  # a full page that happened to be the last one
        if cursor is None or not args.all:
            break
    data: dict[str, Any] = {"threads": listed, "next_cursor": cursor}
    owners = await _owner_emails(db, {t["owner"] for t in listed})
    text = "\n".join(_thread_line(t, owners) for t in listed) or "no threads"
    if cursor is not None:
        text += f"\n(more threads: --cursor {cursor}, or --all)"
    _emit(args, data, text)


def _explain(t: dict[str, Any], owner: str) -> str:
    d = t["decision"]
    said = d["outcome"] if d["reason"] == d["outcome"] else f"{d['outcome']} — {d['reason']}"
    lines = [
        f"thread {t['id']}: {t['subject']}",
        f"owner {owner}, accepted {t['created_at']}, {t['visibility']}",
        "item: " + (f"{t['item']['type']} {t['item']['id']}" if t["item"] else "none"),
        f"decision: {said} (rule {d['rule']})",
    ]
    if d.get("candidates"):
        lines.append("candidates: " + ", ".join(f"{c['type']} {c['id']}" for c in d["candidates"]))
    if d.get("fallback_reason"):
        lines.append(f"explicit target not found; the rules said: {d['fallback_reason']}")
    lines.append("persons: " + (", ".join(t["persons"]) or "none"))
    lines.append("organizations: " + (", ".join(t["organizations"]) or "none"))
    lines.append("sender authentication: " + _authentication_text(t.get("authentication")))
    for p in t["participants"]:
        lines.append(f"  {p['role']:<14} {p['address']}" + (f" ({p['name']})" if p["name"] else ""))
    for h in t["history"]:
        lines.append(f"  {h['at'][:19]} {h['actor']:<10} {h['action']:<14} {h['reason']}")
    return "\n".join(safe_text(line) for line in lines)


def _authentication_text(auth: dict[str, Any] | None) -> str:
    """`pass (spf pass acme.example; dkim pass acme.example/s1; dmarc pass, p=reject, aligned spf+dkim)`."""
    if auth is None:
        return "not checked (sender_auth off)"
    spf, dmarc = auth["spf"], auth["dmarc"]
    parts = [f"spf {spf['result']}" + (f" {spf['domain']}" if spf["domain"] else "")]
    signatures = [f"dkim {d['result']} {d['domain'] or '?'}/{d['selector'] or '?'}" for d in auth["dkim"]]
    parts += signatures or ["no dkim"]
    said = f"dmarc {dmarc['result']}" + (f", p={dmarc['policy']}" if dmarc["policy"] else "")
    if dmarc["aligned"]:
        said += ", aligned " + "+".join(dmarc["aligned"])
    return f"{auth['verdict']} ({'; '.join([*parts, said])})"


async def cmd_threads_show(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    thread = (await thread_reads.show_thread(db, args.thread, actor=None)).as_json()
    owner = (await _owner_emails(db, {thread["owner"]}))[thread["owner"]]
    text = _explain(thread, owner)
    if args.body:
        body = await thread_body(db, args.thread, actor=None)
        thread["body"] = body.as_json()
        # Mail may carry terminal controls; lines and tabs stay.
        shown = safe_text(body.text, keep_newlines=True) if body.text else "(no text)"
        text += "\n\n" + shown + ("\n[body truncated]" if body.truncated else "")
    _emit(args, thread, text)


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


async def cmd_webhook_add(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    endpoint, secret = await webhooks.create_endpoint(
        db,
        actor=None,
        company=args.company,
        url=args.url,
        events=args.event or (),
        description=args.description,
        allow_private=settings.webhooks.allow_private,
    )
    data = {**endpoint.as_json(), "secret": secret}
    _emit(args, data, f"webhook {endpoint.id} added: {endpoint.url}\nsecret (shown once): {secret}")


async def cmd_webhook_list(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    found = await webhooks.list_endpoints(db, actor=None, company=args.company)
    lines = [
        f"{e.id}\tcompany {e.company_id}\t{'enabled' if e.enabled else 'disabled'}\t{e.url}\t"
        + ",".join(e.events)
        for e in found
    ]
    _emit(args, [e.as_json() for e in found], "\n".join(lines) or "no webhooks")


async def cmd_webhook_remove(args: argparse.Namespace, settings: Settings, db: Database) -> None:
    await webhooks.delete_endpoint(db, args.webhook, actor=None)
    _emit(args, {"removed": args.webhook}, f"webhook {args.webhook} removed")


# -- parser ------------------------------------------------------------------------------------------


EXAMPLES = """\
examples:
  bccd db upgrade                                   create or migrate the database
  bccd company create --name Acme
  bccd user create --company Acme --email alice@acme.example --name Alice --admin
  bccd import directory.jsonl                       (or `-` to read standard input)
  bccd threads list --unlinked                      threads that need a person
  bccd threads show 12
  bccd link 12 --type deal --id 42
  bccd --config /etc/bccd/bccd.toml serve           global options go before or after the command
"""


def _globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands the defaults are SUPPRESS, so `bccd --json X` is not reset by X's own parser.
    default_config: Any = None if top else argparse.SUPPRESS
    default_json: Any = False if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config,
        metavar="FILE",
        help="TOML config file (BCCD_<SECTION>__<KEY> environment variables override it)",
    )
    parser.add_argument("--json", action="store_true", default=default_json, help="print one JSON document")


class _Parsers:
    """Adds subcommands that all take the global options, with help text and examples."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def add(self, name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = self.group.add_parser(
            name, help=help_text, description=help_text, **kwargs
        )
        _globals(p, top=False)
        return p

    def nest(self, name: str, help_text: str, dest: str) -> _Parsers:
        p = self.add(name, help_text)
        return _Parsers(p.add_subparsers(dest=dest, required=True, metavar="COMMAND"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bccd",
        description="Smart Bcc inbound mail server for CRMs",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _globals(parser, top=True)
    parser.add_argument("--version", action="version", version=f"bccd {_version()}")
    sub = _Parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))

    serve = sub.add("serve", "run the SMTP and HTTP servers (until SIGTERM)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the ports (SO_REUSEPORT), e.g. one per core",
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.nest("db", "database schema", "db_command")
    up = db.add("upgrade", "create the database, or migrate it to the newest schema")
    up.add_argument("revision", nargs="?", default="head", help="Alembic revision (default: head)")
    up.set_defaults(func=cmd_db_upgrade)

    company = sub.nest("company", "companies (tenants)", "company_command")
    cc = company.add("create", "create a company")
    cc.add_argument("--name", required=True, help="the company's name (unique)")
    cc.add_argument(
        "--sender-policy",
        choices=SENDER_POLICIES,
        default="owner",
        help="who may send to a Smart Bcc address: owner (default), company or any",
    )
    cc.add_argument(
        "--never-log",
        action="append",
        metavar="ADDRESS_OR_DOMAIN",
        help="an address or domain never stored as a participant (repeatable)",
    )
    cc.set_defaults(func=cmd_company_create, needs_db=True)
    cl = company.add("list", "list the companies")
    cl.set_defaults(func=cmd_company_list, needs_db=True)
    cs = company.add("set", "change a company's sender policy, sender authentication or never-log list")
    cs.add_argument("company", help="company id or name")
    cs.add_argument("--sender-policy", choices=SENDER_POLICIES, help="who may send: owner, company or any")
    cs.add_argument(
        "--sender-auth",
        choices=SENDER_AUTH_MODES,
        help="SPF/DKIM/DMARC: off, record (keep the results) or require (refuse unauthenticated mail)",
    )
    cs.add_argument(
        "--never-log",
        action="append",
        metavar="ADDRESS_OR_DOMAIN",
        help="add an address or domain never stored as a participant (repeatable)",
    )
    cs.add_argument(
        "--clear-never-log",
        action="store_true",
        help="empty the never-log list first (with --never-log: replace it)",
    )
    cs.set_defaults(func=cmd_company_set, needs_db=True)

    user = sub.nest("user", "CRM users and their Smart Bcc addresses", "user_command")
    uc = user.add("create", "create a user; prints the Smart Bcc address and a first API token")
    uc.add_argument("--company", required=True, help="company id or name")
    uc.add_argument("--email", required=True, help="the user's login email address")
    uc.add_argument("--name", required=True, help="the user's display name")
    uc.add_argument("--admin", action="store_true", help="make the user a company admin")
    uc.add_argument(
        "--alias", action="append", metavar="EMAIL", help="alternative sender address (repeatable)"
    )
    uc.add_argument(
        "--autolink", type=_on_off, default=True, metavar="on|off", help="link threads automatically"
    )
    uc.add_argument(
        "--token",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create the user's first API token, shown once (default; --no-token to skip)",
    )
    uc.set_defaults(func=cmd_user_create, needs_db=True)
    ul = user.add("list", "list users")
    ul.add_argument("--company", help="company id or name (default: every company)")
    ul.set_defaults(func=cmd_user_list, needs_db=True)
    ush = user.add("show", "show one user")
    ush.add_argument("user", help="user id or login email")
    ush.set_defaults(func=cmd_user_show, needs_db=True)
    ur = user.add("rotate-address", "give the user a new Smart Bcc address; the old one is refused")
    ur.add_argument("user", help="user id or login email")
    ur.set_defaults(func=cmd_user_rotate, needs_db=True)
    us = user.add("set", "change a user's settings")
    us.add_argument("user", help="user id or login email")
    us.add_argument("--autolink", type=_on_off, metavar="on|off", help="link threads automatically")
    us.add_argument("--role", choices=ROLES, help="admin or regular (a company keeps one admin)")
    us.add_argument("--alias", action="append", metavar="EMAIL", help="replaces the alternative addresses")
    us.set_defaults(func=cmd_user_set, needs_db=True)
    ual = user.add("aliases", "list the user's alternative sender addresses, confirmed or not")
    ual.add_argument("user", help="user id or login email")
    ual.set_defaults(func=cmd_user_aliases, needs_db=True)
    uaa = user.add(
        "add-alias", "add an alternative sender address: mailed a one-time code, counts once confirmed"
    )
    uaa.add_argument("user", help="user id or login email")
    uaa.add_argument("address", help="the alternative sender address")
    uaa.set_defaults(func=cmd_user_add_alias, needs_db=True)
    uca = user.add(
        "confirm-alias", "confirm an alternative address: with --code as the user, without it on their behalf"
    )
    uca.add_argument("user", help="user id or login email")
    uca.add_argument("address", help="the alternative sender address")
    uca.add_argument("--code", help="the code mailed to the address (omitted: the operator confirms it)")
    uca.set_defaults(func=cmd_user_confirm_alias, needs_db=True)
    ut = user.add("token", "issue a new API token for the user (shown once)")
    ut.add_argument("user", help="user id or login email")
    ut.add_argument(
        "--expires-in-days", type=_positive, metavar="N", help="the token stops working after N days"
    )
    ut.set_defaults(func=cmd_user_token, needs_db=True)
    uts = user.add("tokens", "list the user's API tokens (id, prefix, created, last used, expiry)")
    uts.add_argument("user", help="user id or login email")
    uts.set_defaults(func=cmd_user_tokens, needs_db=True)
    urt = user.add("revoke-token", "revoke an API token: refused at once, on every node")
    urt.add_argument("token", type=_positive, metavar="ID", help="token id (from `bccd user tokens`)")
    urt.set_defaults(func=cmd_user_revoke_token, needs_db=True)
    ull = user.add("login-link", "print a one-time sign-in URL for the web pages (15 minutes, single use)")
    ull.add_argument("user", help="user id or login email")
    ull.set_defaults(func=cmd_user_login_link, needs_db=True)

    imp = sub.add("import", "import directory records from a JSON lines file (all or nothing)")
    imp.add_argument("file", help="the JSON lines file, or - for standard input")
    imp.set_defaults(func=cmd_import, needs_db=True)

    threads = sub.nest("threads", "read threads", "threads_command")
    tl = threads.add("list", "list threads, newest first")
    tl.add_argument("--owner", help="user id or login email")
    tl.add_argument("--company", help="company id or name (when no --owner)")
    tl.add_argument("--unlinked", action="store_true", help="only threads without an item (M7)")
    tl.add_argument(
        "--item", metavar="TYPE:EXTERNAL_ID", help="only threads linked to this item, e.g. deal:42"
    )
    tl.add_argument(
        "--limit", type=_positive, default=50, help=f"threads per page (1-{MAX_PAGE}, default 50)"
    )
    tl.add_argument("--cursor", type=_positive, metavar="THREAD_ID", help="continue below this thread id")
    tl.add_argument("--all", action="store_true", help="every page, not only the first")
    tl.add_argument(
        "--query",
        metavar="WORDS",
        help="only threads whose subject, text, participants or attachment names hold every word; best first",
    )
    tl.set_defaults(func=cmd_threads_list, needs_db=True)
    ts = threads.add("show", "show a thread and why it was (not) linked")
    ts.add_argument("thread", type=int, help="thread id")
    ts.add_argument("--body", action="store_true", help="also print the message text (JSON: text, html, …)")
    ts.set_defaults(func=cmd_threads_show, needs_db=True)

    link = sub.add("link", "link a thread to a deal, lead or project")
    link.add_argument("thread", type=int, help="thread id")
    link.add_argument("--type", required=True, choices=ITEM_CLI_NAMES, help="the item's kind")
    link.add_argument("--id", required=True, help="the item's external id")
    link.add_argument("--as", dest="as_user", help="act as this user (permissions apply)")
    link.add_argument("--replace", action="store_true", help="replace an existing item link")
    link.set_defaults(func=cmd_link, needs_db=True)
    unlink = sub.add("unlink", "remove a thread's item link")
    unlink.add_argument("thread", type=int, help="thread id")
    unlink.add_argument("--as", dest="as_user", help="act as this user (permissions apply)")
    unlink.set_defaults(func=cmd_unlink, needs_db=True)

    webhook = sub.nest("webhook", "webhook endpoints (signed HTTP posts of thread events)", "webhook_command")
    wa = webhook.add("add", "register an endpoint; prints its secret once")
    wa.add_argument("--company", required=True, help="company id or name")
    wa.add_argument("--url", required=True, help="the endpoint's https URL")
    wa.add_argument("--event", action="append", choices=EVENT_TYPES, help="repeat; default: all events")
    wa.add_argument("--description", default="", help="a note for people reading the list")
    wa.set_defaults(func=cmd_webhook_add, needs_db=True)
    wl = webhook.add("list", "list endpoints")
    wl.add_argument("--company", help="company id or name (default: all)")
    wl.set_defaults(func=cmd_webhook_list, needs_db=True)
    wr = webhook.add("remove", "delete an endpoint and its pending deliveries")
    wr.add_argument("webhook", type=int, metavar="ID", help="webhook id")
    wr.set_defaults(func=cmd_webhook_remove, needs_db=True)
    return parser


def _fail(settings: Settings | None, code: str, message: str, exit_code: int = 1) -> int:
    """One sentence on stderr, plus one JSON log line when the logs are JSON (issue 12 item 8)."""
    sys.stderr.write(f"bccd: {message}\n")
    if settings is not None and settings.log.format == "json":
        get_logger("bccd.cli").error("bccd_command_failed", code=code, reason=message)
    return exit_code


def _serve_failure(exc: OSError, settings: Settings) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"a port is already in use (SMTP {settings.smtp.host}:{settings.smtp.port}, HTTP "
            f"{settings.http.host}:{settings.http.port}): stop the other server or set smtp.port / http.port"
        )
    if exc.errno == errno.EACCES:
        return "no permission to listen on the configured port: use a port above 1023 or grant the capability"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "the configured listen address is not on this machine: fix smtp.host / http.host"
    return f"cannot start: {exc.strerror or type(exc).__name__}"


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
    url = settings.database.url.get_secret_value()
    try:
        if args.command == "serve" or getattr(args, "needs_db", False):
            check_database(url, writable=args.command == "serve")
        if getattr(args, "needs_db", False):
            asyncio.run(_with_db(settings, lambda db: args.func(args, settings, db)))
        else:
            args.func(args, settings)
    except DatabaseNotReady as exc:
        return _fail(settings, "database_not_ready", str(exc))
    except CliError as exc:
        sys.stderr.write(f"bccd: {exc}\n")
        return exc.code
    except (NotFound, PermissionDenied, Conflict, ValueError, ConfirmationFailed) as exc:
        code, prefix = next((c, p) for kind, c, p in ERROR_EXITS if isinstance(exc, kind))
        sys.stderr.write(f"bccd: {prefix}{exc}\n")
        return code
    except OSError as exc:
        if args.command != "serve":
            raise
        return _fail(settings, "listen_failed", _serve_failure(exc, settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
