"""Is the service well? The database answers, and a timer worker has beaten lately.

Each timer worker (`itsm serve`'s thread or a separate `itsm worker`, on any host)
rewrites its row of `worker_heartbeats` every few seconds in a transaction of its
own; a worker is alive while its last beat is younger than three of its periods.

`check_health` reads the schema revision and the newest heartbeats in one short
read on a background thread and waits for it at most `PROBE_TIMEOUT_SECONDS`: a
database that hangs (an unreachable host, a lock) makes the check answer
"unavailable" in time instead of holding the caller. Checks that arrive while a
probe is still running wait for that same probe, so a hung database holds one
thread per process, not one per health check.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import delete, select, text

from engine.persistence.db import Database
from engine.persistence.models import WorkerHeartbeat
from engine.services.context import ServiceContext
from engine.services.telemetry.metrics import StateReadings

log = logging.getLogger("itsm.health")

HEARTBEAT_EVERY_SECONDS = 5  # a worker beats at most this often (one tiny write)
STALE_AFTER_BEATS = 3
FORGET_AFTER = timedelta(days=1)  # rows of workers that died without saying so
PROBE_TIMEOUT_SECONDS = 2.0
HEARTBEATS_READ = 20  # the newest rows are all a check needs
_NAME_LENGTH = 255


def worker_name(serial: int) -> str:
    """This process's name for its `serial`-th worker: host:pid:serial (column-sized)."""
    suffix = f":{os.getpid()}:{serial}"
    return socket.gethostname()[: _NAME_LENGTH - len(suffix)] + suffix


def beat_period(interval: float) -> int:
    """The whole seconds between a worker's beats: it beats when a pass begins, and
    passes begin at most `interval` seconds apart."""
    return max(HEARTBEAT_EVERY_SECONDS, int(interval + 0.999))


def record_heartbeat(
    ctx: ServiceContext, worker: str, started_at: datetime, beat_every_seconds: int
) -> None:
    """The worker `worker` is alive now; also forget workers silent for a day."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = session.get(WorkerHeartbeat, worker)
        if row is None:
            session.add(
                WorkerHeartbeat(
                    worker=worker,
                    started_at=started_at,
                    last_beat_at=now,
                    beat_every_seconds=beat_every_seconds,
                )
            )
        else:
            row.last_beat_at = now
            row.beat_every_seconds = beat_every_seconds
        session.execute(
            delete(WorkerHeartbeat).where(
                WorkerHeartbeat.last_beat_at < now - FORGET_AFTER, WorkerHeartbeat.worker != worker
            )
        )


def forget_heartbeat(ctx: ServiceContext, worker: str) -> None:
    """The worker stopped on purpose: it is gone, not stale."""
    with ctx.db.write() as session:
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker))


@dataclass(frozen=True)
class _State:
    """What one probe read."""

    revision: str | None
    beats: list[tuple[datetime, int]]  # (last_beat_at, beat_every_seconds), newest first
    seconds: float


def _read_state(db: Database) -> _State:
    started = time.monotonic()
    with db.read() as session:
        if db.engine.dialect.name == "postgresql":
            # The server gives up too, instead of working on after we stopped waiting.
            timeout_ms = int(PROBE_TIMEOUT_SECONDS * 1000)
            session.execute(text(f"SET LOCAL statement_timeout = {timeout_ms}"))
        revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        beats = session.execute(
            select(WorkerHeartbeat.last_beat_at, WorkerHeartbeat.beat_every_seconds)
            .order_by(WorkerHeartbeat.last_beat_at.desc())
            .limit(HEARTBEATS_READ)
        ).all()
    return _State(
        revision=revision,
        beats=[(at, every) for at, every in beats],
        seconds=time.monotonic() - started,
    )


class _Probe:
    """One `_read_state` on a daemon thread (a hung one never keeps the process alive)."""

    def __init__(self, db: Database) -> None:
        self.finished = threading.Event()
        self.state: _State | None = None
        self.problem = ""  # what /healthz says: public, so the exception's class only
        self.detail = ""  # what the log says: the message may name hosts and users
        threading.Thread(
            target=self._run, args=(db,), name="itsm-health-probe", daemon=True
        ).start()

    def _run(self, db: Database) -> None:
        try:
            self.state = _read_state(db)
        except Exception as exc:  # any failure to read is the answer: unavailable
            self.problem = type(exc).__name__
            self.detail = str(exc).splitlines()[0] if str(exc) else self.problem
        finally:
            self.finished.set()


_probes: WeakKeyDictionary[Database, _Probe] = WeakKeyDictionary()
_probes_lock = threading.Lock()


def _probe(db: Database, timeout: float) -> tuple[_State | None, str, str]:
    """The state read, or the problem for /healthz and its detail for the log."""
    with _probes_lock:
        running = _probes.get(db)
        if running is None or running.finished.is_set():
            running = _probes[db] = _Probe(db)
    if not running.finished.wait(timeout):
        problem = f"no answer within {timeout:g} s"
        return None, problem, problem
    return running.state, running.problem, running.detail


@dataclass(frozen=True)
class Health:
    """The answer of /healthz: `ok`, the problems otherwise, and what was seen."""

    ok: bool
    problems: list[str]
    database: dict[str, Any]
    worker: dict[str, Any]
    readings: StateReadings

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "problems": self.problems,
            "process": {"status": "ok"},
            "database": self.database,
            "worker": self.worker,
        }


def check_health(
    ctx: ServiceContext, *, worker_expected: bool, timeout: float = PROBE_TIMEOUT_SECONDS
) -> Health:
    """The database and the workers, as seen now. `worker_expected`: a deployment
    without any timer worker says so (ITSM_HEALTH_EXPECT_WORKER=0) and is well
    without one."""
    state, problem, detail = _probe(ctx.db, timeout)
    if state is None:
        database: dict[str, Any] = {"status": "unavailable", "problem": problem}
        worker: dict[str, Any] = {"status": "unknown", "expected": worker_expected}
        problems = [f"database: {problem}"]
        readings = StateReadings(worker_heartbeat_age_seconds=None)
    else:
        database = {
            "status": "ok",
            "seconds": round(state.seconds, 4),
            "revision": state.revision,
        }
        worker, problem = _workers(state.beats, ctx.now(), worker_expected)
        problems = [f"worker: {problem}"] if problem else []
        detail = ""
        newest = worker.get("heartbeat_age_seconds")
        readings = StateReadings(worker_heartbeat_age_seconds=newest)
    _log_change(problems, detail)
    return Health(not problems, problems, database, worker, readings)


def _workers(
    beats: list[tuple[datetime, int]], now: datetime, expected: bool
) -> tuple[dict[str, Any], str]:
    """The worker part of the answer and its problem ("" when none)."""
    ages = [((now - at).total_seconds(), every * STALE_AFTER_BEATS) for at, every in beats]
    alive = [(age, stale_after) for age, stale_after in ages if age <= stale_after]
    seen: dict[str, Any] = {"expected": expected, "alive": len(alive)}
    if ages:
        newest_age, stale_after = alive[0] if alive else ages[0]
        seen["heartbeat_age_seconds"] = round(max(newest_age, 0.0), 3)
        seen["stale_after_seconds"] = stale_after
    if alive:
        return {"status": "ok", **seen}, ""
    if not expected:
        return {"status": "not_expected", **seen}, ""
    if ages:
        return {"status": "stale", **seen}, (
            f"no heartbeat within {seen['stale_after_seconds']} s "
            f"(newest {seen['heartbeat_age_seconds']:g} s ago)"
        )
    return {"status": "missing", **seen}, "no timer worker has recorded a heartbeat"


_last_problems: list[str] = []


def _log_change(problems: list[str], detail: str) -> None:
    """Say when the answer changes, not at every probe of a load balancer."""
    global _last_problems
    with _probes_lock:
        changed, _last_problems = problems != _last_problems, problems
    if changed and problems:
        log.warning("health: %s%s", "; ".join(problems), f" ({detail})" if detail else "")
    elif changed:
        log.info("health: ok again")
