"""docs/rules.md stays true: every rule id of the product specification has a section there, and every test a
section names exists (issue 8, "self-contained docs"). The specification is not part of a clone, so its ids
are written out here."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"

SPEC_RULE_IDS = (
    *(f"L{i}" for i in range(1, 12)),
    *(f"M{i}" for i in range(1, 8)),
    *(f"F{i}" for i in range(1, 5)),
    *(f"S{i}" for i in range(1, 7)),
    *(f"T{i}" for i in range(1, 5)),
    *(f"A{i}" for i in range(1, 6)),  # sender authentication (issue 11): bccd's own ids, not the SPEC's
)

_HEADING = re.compile(r"^### ([A-Z]\d+) — ", re.MULTILINE)
_TEST_REF = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)*)`")


def sections(text: str) -> dict[str, str]:
    """Rule id → the text of its `### ID — title` section (up to the next heading of any level)."""
    found: dict[str, str] = {}
    heads = list(_HEADING.finditer(text))
    for head in heads:
        rest = text[head.end() :]
        stop = re.search(r"^#{1,3} ", rest, re.MULTILINE)
        body = rest[: stop.start()] if stop else rest
        assert head.group(1) not in found, f"{head.group(1)} has two sections"
        found[head.group(1)] = body
    return found


@cache
def _definitions(path: Path) -> dict[str, ast.AST]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }


def missing_test(ref_path: str, names: str) -> str | None:
    """None when `tests/x.py::Class::test` (or a whole file or class) exists, else what is missing."""
    path = ROOT / ref_path
    if not path.is_file():
        return f"{ref_path} does not exist"
    scope: dict[str, ast.AST] = _definitions(path)
    for name in [n for n in names.split("::") if n]:
        node = scope.get(name)
        if node is None:
            return f"{ref_path}{names}: no {name}"
        if isinstance(node, ast.ClassDef):
            kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            scope = {n.name: n for n in node.body if isinstance(n, kinds)}
        else:
            scope = {}
    return None


def test_every_spec_rule_has_a_section_and_nothing_else_does() -> None:
    found = sections(RULES.read_text(encoding="utf-8"))
    assert sorted(set(SPEC_RULE_IDS) - set(found)) == []
    assert sorted(set(found) - set(SPEC_RULE_IDS)) == []


@pytest.mark.parametrize("rule", SPEC_RULE_IDS)
def test_every_rule_names_tests_that_exist(rule: str) -> None:
    body = sections(RULES.read_text(encoding="utf-8")).get(rule, "")
    refs = _TEST_REF.findall(body)
    assert refs, f"{rule} names no test"
    problems = [p for p in (missing_test(path, names) for path, names in refs) if p]
    assert problems == []


def test_the_checker_notices_a_missing_test_and_a_missing_rule() -> None:
    """The two checks above can fail: a made-up test name and a dropped section are caught."""
    assert missing_test("tests/test_linker.py", "::TestL1PersonsAndOrganizations") is None
    assert missing_test("tests/test_linker.py", "::TestL1PersonsAndOrganizations::test_nope") is not None
    assert missing_test("tests/test_nope.py", "") is not None
    text = RULES.read_text(encoding="utf-8")
    without_l5 = re.sub(r"^### L5 — ", "### Lx — ", text, flags=re.MULTILINE)
    assert "L5" not in sections(without_l5)


def test_project_docs_do_not_link_outside_the_repository() -> None:
    """README.md and docs/ must stand alone: ../shared does not exist in a clone."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        if "../shared" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
