"""config/bccd.toml documents every setting of bccd/config.py, with the defaults as its values."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from bccd.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "bccd.toml"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # BCCD_* variables win over the file; the test is about the file alone.
    for name in list(os.environ):
        if name.startswith("BCCD_"):
            monkeypatch.delenv(name)


def _sections() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), name
        out[name] = model
    return out


def _keys_by_section(text: str) -> dict[str, set[str]]:
    """Keys set or shown commented out (`# key = …`) in each [section] of the file."""
    found: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]\s*", line)
        if header:
            section = header.group(1)
            found.setdefault(section, set())
            continue
        key = re.match(r"#?\s?(\w+)\s*=", line)
        if key and section:
            found[section].add(key.group(1))
    return found


def test_example_loads_and_equals_the_defaults() -> None:
    # If a default changes in config.py, the example must change with it (and vice versa).
    assert load_settings(EXAMPLE) == Settings()


def test_example_names_every_setting() -> None:
    keys = _keys_by_section(EXAMPLE.read_text(encoding="utf-8"))
    sections = _sections()
    assert set(keys) == set(sections)
    for name, model in sections.items():
        names = {field.alias or key for key, field in model.model_fields.items()}  # `from` is `from_`
        assert keys[name] == names, f"[{name}] in {EXAMPLE.name}"


def test_every_setting_has_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#?\s?\w+\s*=", line) and not line.startswith("#"):
            previous = lines[i - 1]
            assert previous.startswith("#") or "#" in line, f"undocumented: {line}"
