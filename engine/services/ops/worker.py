"""The timer worker: fires due SLA thresholds and BPMN timers, then sleeps until
the next one (at most `interval` seconds, so new work is picked up promptly)."""

from __future__ import annotations

import logging
import threading

from engine.services.context import ServiceContext
from engine.services.incidents.timers import fire_due, next_due

log = logging.getLogger("itsm.worker")


class TimerWorker:
    def __init__(self, ctx: ServiceContext, interval: float = 1.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.stopping = threading.Event()

    def run_once(self) -> int:
        fired = 0
        while True:
            batch = fire_due(self.ctx)
            fired += batch
            if batch == 0:
                return fired

    def run_forever(self) -> None:
        log.info("timer worker started")
        while not self.stopping.is_set():
            try:
                self.run_once()
                wait = self.interval
                upcoming = next_due(self.ctx)
                if upcoming is not None:
                    wait = min(wait, max((upcoming - self.ctx.now()).total_seconds(), 0.0))
            except Exception:  # a bad incident must not stop the worker for everyone
                log.exception("timer worker pass failed")
                wait = self.interval
            self.stopping.wait(wait)
        log.info("timer worker stopped")

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="itsm-timer-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
