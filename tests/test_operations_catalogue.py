"""Issue 12 item 22: docs/operations.md lists every log event, metric and error code the code has, and
nothing the code does not have. Events are collected from the source (every `log.<level>("name", …)`
call), metrics from a live registry, error codes from bccd.error_codes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bccd.error_codes import CODES
from bccd.logs import LIBRARY_EVENT
from bccd.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
LOGGER_NAMES = {"log", "logger"}


def _section_names(heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading`."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    following = re.search(r"^#{2,3} ", rest, re.M)
    body = rest[: following.start()] if following else rest
    return set(re.findall(r"^\| `([a-z0-9_*]+)`", body, re.M))


def code_events() -> tuple[dict[str, set[str]], list[str]]:
    """Event name → files that log it; plus the calls whose event name is not a literal."""
    events: dict[str, set[str]] = {LIBRARY_EVENT: {"bccd/logs.py"}}
    dynamic: list[str] = []
    for path in sorted((ROOT / "bccd").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in LOGGER_NAMES
                and node.args
            ):
                continue
            first = node.args[0]
            options = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
            for option in options:
                if isinstance(option, ast.Constant) and isinstance(option.value, str):
                    events.setdefault(option.value, set()).add(str(path.relative_to(ROOT)))
                else:
                    dynamic.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return events, dynamic


def test_every_event_name_is_a_literal() -> None:
    _, dynamic = code_events()
    assert not dynamic, f"log calls whose event name is computed (the catalogue cannot see them): {dynamic}"


def test_every_logged_event_is_in_the_catalogue() -> None:
    events, _ = code_events()
    listed = _section_names("### Log events")
    missing = {name: sorted(files) for name, files in events.items() if name not in listed}
    assert not missing, f"add these events to docs/operations.md (Log events): {missing}"


def test_every_catalogued_event_is_logged_somewhere() -> None:
    events, _ = code_events()
    stale = _section_names("### Log events") - set(events)
    assert not stale, f"docs/operations.md lists events no code logs any more: {sorted(stale)}"


def test_metrics_catalogue_matches_the_registry() -> None:
    families = {family.name for family in Metrics().registry.collect()}
    ours = {name for name in families if name.startswith("bccd_")}
    listed = _section_names("## Metrics")
    assert ours - listed == set(), f"add these metrics to docs/operations.md: {sorted(ours - listed)}"
    stale = {name for name in listed if name.startswith("bccd_")} - ours
    assert not stale, f"docs/operations.md lists metrics that no longer exist: {sorted(stale)}"
    for prefix in ("process_", "python_gc_"):  # the standard collectors, listed as one row each
        assert any(name.startswith(prefix) for name in families), prefix
        assert f"{prefix}*" in listed, prefix


def test_error_codes_catalogue_matches() -> None:
    assert _section_names("### Error codes") == set(CODES)
