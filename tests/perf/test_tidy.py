"""Issue 8 "Tidy": the store modules import each other in one direction only."""

from __future__ import annotations

import ast
from pathlib import Path

import bccd.store

STORE = Path(bccd.store.__file__).parent


def _imports(module: str) -> set[str]:
    tree = ast.parse((STORE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):  # function-level (lazy) imports count too: they hide a cycle
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_threads_and_thread_batch_import_in_one_direction() -> None:
    assert "bccd.store.threads" in _imports("thread_batch")
    assert "bccd.store.thread_batch" not in _imports("threads")
