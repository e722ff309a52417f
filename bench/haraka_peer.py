"""The peer a user would otherwise pick: Haraka (Node.js), one process, each message written to its own file
and fsync'd before the 250 (bench/haraka/bench_fsync.js), driven by the same client as bccd and the sink.

Haraka comes from the npm registry on first use (`npm install Haraka@HARAKA_VERSION` into a cache folder
outside the repository); without Node.js and npm the row is reported as not run.

    python -m bench.haraka_peer [--messages 2000] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench import ingest
from tests.processes import free_port

HARAKA_VERSION = "3.3.4"
_CACHE_ROOT = Path(os.environ.get("BCCD_BENCH_CACHE", Path.home() / ".cache" / "bccd-bench"))
CACHE = _CACHE_ROOT / f"haraka-{HARAKA_VERSION}"
PLUGIN = Path(__file__).parent / "haraka" / "bench_fsync.js"


def haraka_bin() -> Path | None:
    """The haraka executable, installed into the cache on first use; None without node and npm."""
    binary = CACHE / "node_modules" / ".bin" / "haraka"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"Haraka@{HARAKA_VERSION}"],
        cwd=CACHE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return binary if done.returncode == 0 and binary.exists() else None


def _config(binary: Path, root: Path, port: int) -> Path:
    server = root / "haraka"
    # Haraka's own skeleton (connection.ini and friends), then our plugin list, port and log level.
    subprocess.run([str(binary), "-i", str(server)], check=True, capture_output=True, timeout=120)
    shutil.copy(PLUGIN, server / "plugins" / PLUGIN.name)
    (server / "config" / "plugins").write_text("bench_fsync\n")
    # nodes=0: one process, no cluster — the same footing as one bccd serve process.
    (server / "config" / "smtp.ini").write_text(f"[main]\nlisten=127.0.0.1:{port}\nnodes=0\n")
    (server / "config" / "log.ini").write_text("[main]\nlevel=warn\n")
    (server / "config" / "me").write_text("bench.haraka.test\n")
    return server


def run(mails: list[bytes], clients: int) -> dict[str, Any] | None:
    """Haraka's figures for `mails` at `clients` concurrent connections, or None when it cannot run here."""
    binary = haraka_bin()
    if binary is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bccd-haraka-") as tmp:
        port = free_port()
        server = _config(binary, Path(tmp), port)
        spool = Path(tmp) / "spool"
        spool.mkdir()
        env = {**os.environ, "BENCH_SPOOL": str(spool)}
        proc = subprocess.Popen(
            [str(binary), "-c", str(server)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            result = asyncio.run(ingest.drive(port, "x@bcc.test", mails, clients, proc.pid))
        finally:
            proc.terminate()
            proc.wait()
        stored = len(list(spool.iterdir()))
    if stored < len(mails):  # every 250 must have left a file behind, or the row measures nothing
        raise RuntimeError(f"Haraka stored {stored} of {len(mails)} messages")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    mails = ingest.corpus(args.messages, 1000, 200)
    sink = ingest.sink(mails, args.clients)
    peer = run(mails, args.clients)
    print(json.dumps({"sink": sink, "haraka": peer}, indent=2))


if __name__ == "__main__":
    main()
