"""Heavy reads run bounded: what-if replays (and, later, reports) may take seconds.

A security test sent 8 what-if requests on a slow draft and the server answered
nobody for 280 s: every worker thread was replaying. So a heavy read needs a
slot: at most one per user at a time and a few per process (the others get 429
with a Retry-After), and it runs on a budget of wall-clock time and engine
steps, past which it stops and reports what it did so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.services.errors import TooBusy

# Worker threads default to 8: two heavy reads leave most of them to everyone else.
HEAVY_PER_PROCESS = 2
RETRY_AFTER_SECONDS = 5


@dataclass
class Budget:
    """How much a heavy read may still do; `spend` counts work, `left` checks both."""

    seconds: float
    steps: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    spent_steps: int = field(default=0, init=False)
    exhausted: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def spend(self, steps: int = 1) -> None:
        self.spent_steps += steps

    def left(self) -> bool:
        """False (and `exhausted` says why) once the time or the steps are used up."""
        if self.exhausted is None and self.spent_steps >= self.steps:
            self.exhausted = f"stopped after {self.steps} engine steps"
        if self.exhausted is None and self.clock() - self.started >= self.seconds:
            self.exhausted = f"stopped after {self.seconds:g} s"
        return self.exhausted is None


class HeavyReads:
    """The slots of one process (the service context holds one)."""

    def __init__(self, per_process: int = HEAVY_PER_PROCESS) -> None:
        self.per_process = per_process
        self._guard = threading.Lock()
        self._running: set[str] = set()

    @contextmanager
    def slot(self, kind: str, username: str) -> Iterator[None]:
        with self._guard:
            if username in self._running:
                raise TooBusy(
                    f"your previous {kind} is still running; wait for it",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            if len(self._running) >= self.per_process:
                raise TooBusy(
                    f"{len(self._running)} heavy reads are running; try the {kind} again soon",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            self._running.add(username)
        try:
            yield
        finally:
            with self._guard:
                self._running.discard(username)
