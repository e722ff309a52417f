"""`bccd serve --workers N`: one server process per core, sharing the SMTP and HTTP ports (SO_REUSEPORT).

The parent only supervises: it starts N `bccd serve` children with reuse_port forced on, forwards SIGTERM
and SIGINT to them (each drains its own sessions), and if one child dies unexpectedly it stops the others
and exits non-zero, so the service manager restarts the whole set. The children share nothing but the
database, which is what DESIGN's "scale: processes" asks for.

Workers die with their supervisor (issue 12 item 10): on Linux each child asks the kernel, before it
runs bccd, for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), so a SIGKILLed supervisor does not
leave orphans serving the port (a restart would add a second set of listeners). SIGTERM, not SIGKILL:
the orphans still drain their sessions like any stop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bccd.logs import get_logger

log = get_logger("bccd.workers")
STOP_GRACE_SECONDS = 60.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when its parent dies; None where Linux's prctl
    is unavailable. Runs in the forked child before exec: no logging, no locks."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def preexec() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(70)  # EX_SOFTWARE: a worker that could outlive its supervisor does not start
        if os.getppid() != parent_pid:  # the supervisor died between fork and prctl
            os._exit(70)

    return preexec


def run_workers(count: int, config: Path | None) -> int:
    env = {**os.environ, "BCCD_SMTP__REUSE_PORT": "true", "BCCD_HTTP__REUSE_PORT": "true"}
    command = [sys.executable, "-m", "bccd.cli", "serve"] + (["--config", str(config)] if config else [])
    preexec = die_with_parent(os.getpid())
    if preexec is None:
        log.warning("workers_not_tied_to_supervisor", platform=sys.platform)
    children: list[subprocess.Popen[bytes]] = []
    asked_to_stop = False  # SIGTERM/SIGINT from outside, as opposed to a worker dying on its own
    stopping = False

    def forward(signum: int) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal asked_to_stop
        asked_to_stop = True
        forward(signum)

    # The handlers go in before the first child starts: a stop that arrives while workers are starting
    # reaches every child already running, and the rest are never started.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Our own interpreter and module, no shell: nothing untrusted reaches the command line. preexec_fn is
    # safe here: the supervisor has started no threads.
    for _ in range(count):
        if stopping:
            break
        children.append(subprocess.Popen(command, env=env, preexec_fn=preexec))  # noqa: S603
    log.info("workers_started", workers=len(children), pids=[c.pid for c in children])
    while not stopping:
        dead = [c for c in children if c.poll() is not None]
        if dead:
            log.error("worker_died", pid=dead[0].pid, returncode=dead[0].returncode)
            forward(signal.SIGTERM)
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
    return 0 if asked_to_stop and all(_stopped_cleanly(code) for code in codes) else 1


def _stopped_cleanly(code: int) -> bool:
    """0, or killed by the stop signal we forwarded before the worker had installed its own handler
    (it was still starting: it had accepted nothing, so there was nothing to drain)."""
    return code in (0, -signal.SIGTERM, -signal.SIGINT)
