"""Issue 8 "services are the only way in": the interfaces (bccd/api, bccd/cli.py, bccd/web) import no
module of bccd.store — they reach the data through bccd.services only. Checked by walking their imports."""

from __future__ import annotations

import ast
from pathlib import Path

import bccd

PACKAGE = Path(bccd.__file__).parent
INTERFACES = [PACKAGE / "api", PACKAGE / "cli.py", PACKAGE / "web"]
FORBIDDEN = "bccd.store"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every module an import statement names (relative imports resolved against `module`)."""
    found: list[str] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append(base)
            # `from bccd import store` imports the module bccd.store
            found.extend(f"{base}.{alias.name}" for alias in node.names)
    return found


def _violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    return sorted(
        {
            name
            for name in _imported(source, module, is_package=is_package)
            if name == FORBIDDEN or name.startswith(FORBIDDEN + ".")
        }
    )


def _interface_files() -> list[Path]:
    files: list[Path] = []
    for target in INTERFACES:
        if target.is_dir():
            files.extend(sorted(target.rglob("*.py")))
        elif target.exists():
            files.append(target)
    return files


def test_interfaces_import_no_store_module() -> None:
    files = _interface_files()
    assert PACKAGE / "cli.py" in files and any(f.parent.name == "api" for f in files)
    bad = {}
    for path in files:
        found = _violations(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")
        if found:
            bad[str(path.relative_to(PACKAGE.parent))] = found
    assert bad == {}, "interfaces must go through bccd.services, not the store"


def test_the_walker_sees_every_form_of_import() -> None:
    # The check above is only as good as this: each spelling of a store import is caught.
    caught = [
        "import bccd.store.users",
        "from bccd.store.users import get_user",
        "from bccd.store import users",
        "from bccd import store",
        "def f():\n    from bccd.store.database import Database",
        "if True:\n    import bccd.store as s",
    ]
    for source in caught:
        assert _violations(source, "bccd.api.users"), source
    assert _violations("from ..store import users", "bccd.api.users") == ["bccd.store", "bccd.store.users"]
    assert _violations("from . import store", "bccd.cli") == ["bccd.store"]
    assert _violations("from bccd.services.users import User\nimport bccd.storefront", "bccd.cli") == []
