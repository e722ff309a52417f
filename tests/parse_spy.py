"""Watch where bccd parses a message: on the loop (ingest.parse_and_detect) or in the parse process."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from bccd import parse_cost
from bccd.mail import parse_job

T = TypeVar("T")


def with_pid(func: Callable[[bytes], T], raw: bytes) -> tuple[int, T]:
    """Run in the parse process: the job's result and the id of the process that ran it."""
    return os.getpid(), func(raw)


class ParseSpy:
    """Installed over ingest's parse paths; records the thread of every inline parse and the process id of
    every parse sent to the parse process (which is real: the job runs there)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inline_threads: list[str] = []
        self.process_pids: list[int] = []
        self._real_process = parse_cost.parse_process
        real_inline = parse_job.parse_and_detect

        def inline(raw: bytes) -> object:
            self.inline_threads.append(threading.current_thread().name)
            return real_inline(raw)

        monkeypatch.setattr("bccd.ingest.parse_and_detect", inline)
        monkeypatch.setattr("bccd.ingest.parse_process", self)

    async def run(self, func: Callable[[bytes], T], raw: bytes) -> T:
        pid, result = await self._real_process.run(functools.partial(with_pid, func), raw)
        self.process_pids.append(pid)
        return result
