"""The timer worker: fires due SLA thresholds and BPMN timers, then sleeps until
the next one (at most `interval` seconds, so new work is picked up promptly).

It records a heartbeat (engine.services.ops.health) when a pass begins, at most
every few seconds, so that /healthz of any process sees it; its log lines carry
the id of the pass they belong to."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid

from engine.services.context import ServiceContext
from engine.services.incidents.timers import fire_due, next_due
from engine.services.ops.health import (
    HEARTBEAT_EVERY_SECONDS,
    beat_period,
    forget_heartbeat,
    record_heartbeat,
    worker_name,
)
from engine.services.telemetry import correlation

log = logging.getLogger("itsm.worker")

_serials = itertools.count(1)  # several workers of one process get distinct names


class TimerWorker:
    def __init__(self, ctx: ServiceContext, interval: float = 1.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.stopping = threading.Event()
        self.name = worker_name(next(_serials))
        self.beat_every = beat_period(interval)
        self.started_at = ctx.now()
        self._last_beat: float | None = None  # time.monotonic() of the last beat

    def beat_if_due(self) -> None:
        """Record the heartbeat unless one was recorded less than a few seconds ago."""
        now = time.monotonic()
        if self._last_beat is not None and now - self._last_beat < HEARTBEAT_EVERY_SECONDS:
            return
        record_heartbeat(self.ctx, self.name, self.started_at, self.beat_every)
        self._last_beat = now

    def run_once(self) -> int:
        fired = 0
        while True:
            self.beat_if_due()  # also between the batches of a long pass
            batch = fire_due(self.ctx)
            fired += batch
            if batch == 0:
                return fired

    def run_forever(self) -> None:
        log.info("timer worker %s started", self.name)
        while not self.stopping.is_set():
            token = correlation.bind(f"worker-{uuid.uuid4().hex[:12]}")
            try:
                self.run_once()
                wait = self.interval
                upcoming = next_due(self.ctx)
                if upcoming is not None:
                    wait = min(wait, max((upcoming - self.ctx.now()).total_seconds(), 0.0))
            except Exception:  # a bad incident must not stop the worker for everyone
                log.exception("timer worker pass failed")
                wait = self.interval
            finally:
                correlation.unbind(token)
            self.stopping.wait(wait)
        try:
            forget_heartbeat(self.ctx, self.name)
        except Exception:  # the database may be what stopped us; the row then ages out
            log.exception("timer worker %s could not remove its heartbeat", self.name)
        log.info("timer worker %s stopped", self.name)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="itsm-timer-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
