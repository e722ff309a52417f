"""Regenerate the README's screenshots (docs/img/inbox.png, docs/img/thread.png) from the browser test that
takes them: `.venv/bin/python -m tests.web.screenshots` (needs chromium and chromedriver).

The browser tests save every screenshot under tests/web/screenshots/ (git-ignored); this copies the two the
README shows into docs/img/, and fails when the test did not run or did not take them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "web" / "screenshots"
TARGET = ROOT / "docs" / "img"
TEST = "tests/web/test_browser.py::test_salesperson_links_replaces_and_unlinks_an_ambiguous_thread"
NAMES = ("inbox", "thread")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def main() -> int:
    for name in NAMES:
        (SCREENSHOTS / f"{name}.png").unlink(missing_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly", "-rs", TEST], cwd=ROOT
    )
    if run.returncode != 0:
        print("screenshots: the browser test failed or was skipped; docs/img unchanged", file=sys.stderr)
        return run.returncode or 1
    for name in NAMES:
        source = SCREENSHOTS / f"{name}.png"
        if not source.is_file() or not source.read_bytes().startswith(PNG_SIGNATURE):
            print(f"screenshots: {source} was not taken", file=sys.stderr)
            return 1
        shutil.copyfile(source, TARGET / f"{name}.png")
        print(f"{TARGET / name}.png: {source.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
