"""Engine and transactions.

One use case is one transaction.  On SQLite a writing transaction starts with
BEGIN IMMEDIATE: writers queue on the database lock (busy timeout) and then
read fresh rows, instead of failing late with SQLITE_BUSY_SNAPSHOT.  Writers
of one process also queue on an in-process lock first: SQLite's busy handler
retries by sleeping with growing back-off, so a thread that writes often (web
requests) can starve another (the timer worker) for seconds.  On PostgreSQL
the incident's row version turns a lost race into a conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# One writer lock per SQLite file in this process, shared by every Database on it.
_sqlite_write_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url.database)
    with _locks_guard:
        return _sqlite_write_locks.setdefault(key, threading.Lock())


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # a single read needs no transaction of its own
        mode = "IMMEDIATE" if options.get("itsm_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def default_sqlite_url(instance_dir: Path) -> str:
    instance_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance_dir / 'itsm.db'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = _writer_lock(self.engine)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A writing unit of work: commit on success, roll back on any error."""
        with self._writer, self._sessions() as session:
            session.connection(execution_options={"itsm_write": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection in autocommit mode, for a single hot read."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
