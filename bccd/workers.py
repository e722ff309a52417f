"""`bccd serve --workers N`: one server process per core, sharing the SMTP and HTTP ports (SO_REUSEPORT).

The parent only supervises: it starts N `bccd serve` children with reuse_port forced on, forwards SIGTERM
and SIGINT to them (each drains its own sessions), and if one child dies unexpectedly it stops the others
and exits non-zero, so the service manager restarts the whole set. The children share nothing but the
database, which is what DESIGN's "scale: processes" asks for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from bccd.logs import get_logger

log = get_logger("bccd.workers")
STOP_GRACE_SECONDS = 60.0


def run_workers(count: int, config: Path | None) -> int:
    env = {**os.environ, "BCCD_SMTP__REUSE_PORT": "true", "BCCD_HTTP__REUSE_PORT": "true"}
    command = [sys.executable, "-m", "bccd.cli", "serve"] + (["--config", str(config)] if config else [])
    # Our own interpreter and module, no shell: nothing untrusted reaches the command line.
    children = [subprocess.Popen(command, env=env) for _ in range(count)]  # noqa: S603
    log.info("workers_started", workers=count, pids=[c.pid for c in children])
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not stopping:
        dead = [c for c in children if c.poll() is not None]
        if dead:
            log.error("worker_died", pid=dead[0].pid, returncode=dead[0].returncode)
            forward(signal.SIGTERM, None)
            break
        time.sleep(0.2)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    codes = []
    for child in children:
        try:
            codes.append(child.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    log.info("workers_stopped", returncodes=codes)
    return 0 if all(code == 0 for code in codes) else 1
