"""The one parse of a message and its forward detection, as a job a parse process can run.

Kept free of the store, the config and logging so a parse process imports only `bccd.mail`; the result
it sends back is plain data (the parsed `email.message.Message` tree stays behind: nothing after the
parse reads it, and for a 20 MB message it would be 20 MB more to pickle).
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import time
from email.message import Message

from bccd.mail.forwards import ForwardDetection, detect_forward
from bccd.mail.message import ParsedMessage, parse_message


def parse_and_detect(raw: bytes) -> tuple[ParsedMessage, ForwardDetection | None]:
    """The one parse of a message (S6: never raises) and its forward detection (F1)."""
    parsed = parse_message(raw)
    return parsed, detect_forward(parsed.message, parsed.text_body, parsed.html_body)


def parse_and_detect_detached(raw: bytes) -> tuple[ParsedMessage, ForwardDetection | None]:
    """`parse_and_detect` without the MIME tree in the result, for sending across processes."""
    parsed, forward = parse_and_detect(raw)
    return dataclasses.replace(parsed, message=Message()), forward


def exit_with(parent: int) -> None:
    """Pool initializer: end this worker when the bccd process `parent` ends, however it ends.

    After a SIGKILL of `bccd serve` (the OOM killer, `kill -9`) nothing shuts the pool down, and the
    worker, which holds the fork server's own liveness pipe, kept itself and the fork server alive for
    good (~75 MB each per crash). A daemon thread waits on a pidfd of the parent (no pid-reuse race) and
    exits the worker when it becomes readable; where pidfds are missing it polls once a second."""
    threading.Thread(target=_wait_for_exit, args=(parent,), name="bccd-parse-parent", daemon=True).start()


def _wait_for_exit(parent: int) -> None:
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd_open (not Linux, or a kernel before 5.3)
        while _alive(parent):
            time.sleep(1.0)
        os._exit(0)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not poller.poll():
        pass
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
