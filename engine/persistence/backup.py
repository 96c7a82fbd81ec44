"""The database side of `itsm backup` and `itsm restore`.

A backup holds the rows only; the schema of the database restored into comes from
our own migrations, brought to the backup's revision first (and to the newest
after loading, the usual way). So a backup taken by an older version restores
under a newer one, and the rows always meet the constraints and triggers the
migrations made. Three ways the rows leave and come back:

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies the live
  file in one step, inside one read transaction, so a running server keeps
  writing (WAL) and the copy is the database as of one instant. Restoring copies
  every table of that file with INSERT ... SELECT.
- PostgreSQL with `pg_dump` on PATH: a data-only archive in pg_dump's custom
  format, dumped in a snapshot exported from our own REPEATABLE READ
  transaction, which reads the row counts too; `pg_restore --data-only
  --single-transaction` loads it (data-only dumps are ordered by foreign key).
- PostgreSQL without pg_dump: every table as JSON lines (a header naming the
  columns and how their values are written, then one array per row), read in
  one REPEATABLE READ transaction and loaded by inserts.

Tables are loaded in foreign-key order and rows as they were: nothing is
re-computed (the event log's hashes included) and no trigger is disabled.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg.conninfo
import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SAWarning

from engine.persistence.db import make_engine
from engine.persistence.migrate import alembic_config

ALEMBIC_TABLE = "alembic_version"
SQLITE_BUSY_TIMEOUT_S = 30
INSERT_BATCH_ROWS = 500


class DatabaseCopyError(Exception):
    """A backup or restore step failed; the message says where and why."""


@dataclass
class Snapshot:
    """What one consistent read of a database found."""

    revision: str | None
    counts: dict[str, int]


# -- schema revisions --------------------------------------------------------------


def known_revisions() -> list[str]:
    """This code's migrations, oldest first (the history is linear)."""
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate_to(engine: Engine, revision: str) -> None:
    """Bring an (empty) database to `revision`, up or down."""
    order = known_revisions()
    config = alembic_config()
    with engine.begin() as connection:
        current = current_revision(connection)
        if current is not None and current not in order:
            raise DatabaseCopyError(
                f"the database is at schema revision {current}, unknown to this version"
            )
        config.attributes["connection"] = connection
        if current is not None and order.index(current) > order.index(revision):
            command.downgrade(config, revision)
        elif current != revision:
            command.upgrade(config, revision)


# -- tables ------------------------------------------------------------------------


def user_tables(connection: Connection) -> list[Table]:
    """Every table but Alembic's, parents before children (foreign-key order)."""
    metadata = MetaData()
    with warnings.catch_warnings():
        # Expression indexes are not reflected; only columns and foreign keys are needed.
        warnings.simplefilter("ignore", SAWarning)
        metadata.reflect(connection)
    return [t for t in metadata.sorted_tables if t.name != ALEMBIC_TABLE]


def row_counts(connection: Connection, tables: Iterable[Table]) -> dict[str, int]:
    return {
        t.name: int(connection.scalar(select(func.count()).select_from(t)) or 0) for t in tables
    }


def seed_counts(revision: str | None) -> dict[str, int]:
    """How many rows the migrations up to `revision` write themselves (the default
    calendars, priority matrix, SLA policies, ...), found on a scratch database."""
    if revision is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="itsm-seed-") as work:
        scratch = make_engine(f"sqlite:///{Path(work) / 'seed.db'}")
        try:
            migrate_to(scratch, revision)
            with scratch.connect() as connection:
                return row_counts(connection, user_tables(connection))
        finally:
            scratch.dispose()


def rows_beyond_seed(engine: Engine) -> dict[str, int]:
    """The tables holding more than their migrations wrote: a database without any is
    empty, whether it has its schema already or not."""
    with engine.connect() as connection:
        counts = row_counts(connection, user_tables(connection))
        seeded = seed_counts(current_revision(connection))
    return {name: count for name, count in counts.items() if count > seeded.get(name, 0)}


def clear_seed_rows(connection: Connection, tables: list[Table]) -> None:
    """Delete what the migrations wrote (the backup has its own), children first; tables
    already empty are left alone (the event tables' triggers refuse any DELETE)."""
    for table in reversed(tables):
        if connection.scalar(select(func.count()).select_from(table)):
            connection.execute(table.delete())


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- SQLite ------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise DatabaseCopyError(f"{url}: only a SQLite database file can be backed up")
    return Path(database)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def sqlite_snapshot(url: str, target: Path) -> Snapshot:
    """Copy the live database file at `url` into `target`, consistently."""
    path = sqlite_path(url)
    if not path.is_file():
        raise DatabaseCopyError(f"{path}: no such database file")
    source = _sqlite_connect(path)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        # pages=-1: all pages in one step, i.e. one read transaction; stepping page by
        # page would restart whenever another connection writes, and might never end.
        source.backup(copy, pages=-1)
        # One self-contained file: no -wal beside it.
        copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise DatabaseCopyError(f"{path}: {exc}") from exc
    finally:
        copy.close()
        source.close()
    try:
        return sqlite_file_contents(target)
    except DatabaseCopyError as exc:
        raise DatabaseCopyError(f"{path}: {exc}") from exc


def sqlite_file_contents(path: Path) -> Snapshot:
    """The revision and row counts of a SQLite file, after SQLite's own quick check."""
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as connection:
            problems = list(connection.exec_driver_sql("PRAGMA quick_check").scalars())
            if problems != ["ok"]:
                raise DatabaseCopyError(f"the database is damaged: {problems[0]}")
            tables = user_tables(connection)
            return Snapshot(current_revision(connection), row_counts(connection, tables))
    except DBAPIError as exc:
        raise DatabaseCopyError(str(exc.orig)) from exc
    finally:
        engine.dispose()


def load_sqlite_file(engine: Engine, snapshot: Path, expected: dict[str, int]) -> None:
    """Copy every table of `snapshot` (holding the tables and counts `expected`) into the
    database of `engine`, in one transaction."""
    with engine.connect() as connection:
        order = [t.name for t in user_tables(connection)]
    _check_same_tables(set(order), set(expected))
    target = _sqlite_connect(sqlite_path(engine.url.render_as_string(hide_password=False)))
    try:
        # ATTACH is refused inside a transaction: before BEGIN.
        target.execute("ATTACH DATABASE ? AS snapshot", (str(snapshot),))
        target.execute("BEGIN IMMEDIATE")
        try:
            for name in reversed(order):
                if target.execute(f"SELECT 1 FROM main.{_quoted(name)} LIMIT 1").fetchone():
                    target.execute(f"DELETE FROM main.{_quoted(name)}")  # the migrations' seed
            for name in order:
                columns = _sqlite_columns(target, "main", name)
                if set(columns) != set(_sqlite_columns(target, "snapshot", name)):
                    raise DatabaseCopyError(
                        f"table {name}: the backup's columns differ from this schema's"
                    )
                names = ", ".join(_quoted(c) for c in columns)
                keys = ", ".join(_quoted(c) for c in _sqlite_primary_key(target, name)) or "rowid"
                target.execute(
                    f"INSERT INTO main.{_quoted(name)} ({names}) "
                    f"SELECT {names} FROM snapshot.{_quoted(name)} ORDER BY {keys}"
                )
            loaded = {
                name: target.execute(f"SELECT count(*) FROM main.{_quoted(name)}").fetchone()[0]
                for name in order
            }
            check_counts(loaded, expected)
            target.execute("COMMIT")
        except BaseException:
            target.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as exc:
        raise DatabaseCopyError(str(exc)) from exc
    finally:
        target.close()  # detaches the snapshot


def _sqlite_columns(connection: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA {schema}.table_info({_quoted(table)})")]


def _sqlite_primary_key(connection: sqlite3.Connection, table: str) -> list[str]:
    rows = connection.execute(f"PRAGMA main.table_info({_quoted(table)})").fetchall()
    return [row[1] for row in sorted((r for r in rows if r[5]), key=lambda r: r[5])]


def _check_same_tables(schema: set[str], backup: set[str]) -> None:
    if schema != backup:
        missing = ", ".join(sorted(schema - backup)) or "none"
        extra = ", ".join(sorted(backup - schema)) or "none"
        raise DatabaseCopyError(
            f"the backup's tables differ from this schema's (missing: {missing}; extra: {extra})"
        )


def check_counts(actual: dict[str, int], expected: dict[str, int]) -> None:
    for name, count in sorted(expected.items()):
        if actual.get(name, 0) != count:
            raise DatabaseCopyError(
                f"table {name}: {actual.get(name, 0)} rows, the manifest says {count}"
            )


# -- PostgreSQL --------------------------------------------------------------------


@dataclass
class PgSnapshot(Snapshot):
    connection: Connection
    snapshot_id: str
    schema: str
    tables: list[Table]


@contextmanager
def pg_snapshot(engine: Engine) -> Iterator[PgSnapshot]:
    """One REPEATABLE READ, read-only transaction, exported so that pg_dump reads in it too."""
    options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        snapshot_id = str(connection.scalar(text("SELECT pg_export_snapshot()")))
        schema = str(connection.scalar(text("SELECT current_schema()")))
        tables = user_tables(connection)
        yield PgSnapshot(
            revision=current_revision(connection),
            counts=row_counts(connection, tables),
            connection=connection,
            snapshot_id=snapshot_id,
            schema=schema,
            tables=tables,
        )


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for `url` and the environment that carries its password
    (never on a command line, where every user of the machine can read it)."""
    parsed = make_url(url)
    params: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "dbname": parsed.database,
    }
    params.update({k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()})
    conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = parsed.password
    return conninfo, env


def _run(program: str, arguments: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([program, *arguments], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        message = result.stderr.strip() or f"exit status {result.returncode}"
        raise DatabaseCopyError(f"{Path(program).name} failed: {message}")


def run_pg_dump(pg_dump: str, url: str, snapshot: PgSnapshot, target: Path) -> None:
    conninfo, env = _libpq(url)
    arguments = [
        "--format=custom",
        "--data-only",
        f"--snapshot={snapshot.snapshot_id}",
        f"--schema={snapshot.schema}",
        # The database restored into has its own: the migrations write it.
        f"--exclude-table-data={snapshot.schema}.{ALEMBIC_TABLE}",
        f"--file={target}",
        f"--dbname={conninfo}",
    ]
    _run(pg_dump, arguments, env)


def pg_archive_counts(pg_restore: str, archive: Path) -> dict[str, int]:
    """The rows of each table in a data-only archive, counted without loading it: the
    archive as SQL holds one `COPY ... FROM stdin;` block per table, one line per row
    (COPY's text format escapes line breaks), ended by a line `\\.`."""
    counts: dict[str, int] = {}
    process = subprocess.Popen(
        [pg_restore, "--data-only", "--file=-", str(archive)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    table: str | None = None
    for line in process.stdout:
        if table is not None:
            if line == b"\\.\n":
                table = None
            else:
                counts[table] += 1
        elif line.startswith(b"COPY ") and line.endswith(b" FROM stdin;\n"):
            qualified = line[5:].split(b" (", 1)[0].decode("utf-8")
            table = qualified.rsplit(".", 1)[-1].strip('"').replace('""', '"')
            counts.setdefault(table, 0)
    error = process.stderr.read().decode("utf-8", "replace").strip()
    if process.wait() != 0:
        raise DatabaseCopyError(f"pg_restore cannot read it: {error or process.returncode}")
    return counts


def run_pg_restore(
    pg_restore: str, engine: Engine, archive: Path, expected: dict[str, int]
) -> None:
    # pg_restore loads in its own transaction: the seed goes first, in ours. Should the
    # load fail, the database is left with its schema and no rows, i.e. empty again.
    with engine.begin() as connection:
        clear_seed_rows(connection, user_tables(connection))
    conninfo, env = _libpq(engine.url.render_as_string(hide_password=False))
    arguments = ["--data-only", "--single-transaction", "--exit-on-error"]
    _run(pg_restore, [*arguments, f"--dbname={conninfo}", str(archive)], env)
    with engine.connect() as connection:
        check_counts(row_counts(connection, user_tables(connection)), expected)


# -- JSON lines (PostgreSQL without pg_dump) ----------------------------------------


def _kind(column_type: sa.types.TypeEngine[Any]) -> str:
    """How a column's values are written in JSON (`plain`: as they are)."""
    if isinstance(column_type, sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.Date):
        return "date"
    if isinstance(column_type, sa.Time):
        return "time"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes"
    if isinstance(column_type, sa.Uuid):
        return "uuid"
    if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        return "decimal"
    return "plain"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


DECODERS: dict[str, Any] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "bytes": base64.b64decode,
    "uuid": uuid.UUID,
    "decimal": Decimal,
}


def table_lines(connection: Connection, table: Table) -> Iterator[str]:
    """The table as JSON lines: its header, then its rows in primary-key order."""
    columns = list(table.columns)
    header = {"table": table.name, "columns": [[c.name, _kind(c.type)] for c in columns]}
    yield json.dumps(header, ensure_ascii=False) + "\n"
    query = select(*columns).order_by(*table.primary_key.columns)
    rows = connection.execution_options(yield_per=INSERT_BATCH_ROWS).execute(query)
    for row in rows:
        try:
            line = json.dumps([_encode(v) for v in row], ensure_ascii=False)
        except TypeError as exc:
            raise DatabaseCopyError(f"table {table.name}: {exc}") from exc
        yield line + "\n"


def load_table_lines(connection: Connection, table: Table, lines: Iterable[bytes]) -> int:
    """Insert the rows `table_lines` wrote; errors name the line. Returns the row count."""
    numbered = enumerate(lines, start=1)
    try:
        _, first = next(numbered)
        header = json.loads(first)
        columns = [(str(name), DECODERS.get(kind)) for name, kind in header["columns"]]
    except StopIteration:
        raise DatabaseCopyError("line 1: no header") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise DatabaseCopyError(f"line 1: not a table header ({exc})") from exc
    if {name for name, _ in columns} != {c.name for c in table.columns}:
        raise DatabaseCopyError(f"line 1: the columns differ from table {table.name}'s")
    batch: list[dict[str, Any]] = []
    count = 0
    for number, line in numbered:
        try:
            values = json.loads(line)
            if not isinstance(values, list) or len(values) != len(columns):
                raise ValueError(f"expected an array of {len(columns)} values")
            batch.append(
                {
                    name: value if decode is None or value is None else decode(value)
                    for (name, decode), value in zip(columns, values, strict=True)
                }
            )
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise DatabaseCopyError(f"line {number}: {exc}") from exc
        count += 1
        if len(batch) == INSERT_BATCH_ROWS:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
    return count


def reset_pg_sequences(connection: Connection, tables: Iterable[Table]) -> None:
    """Rows came with their ids: each id sequence goes on after the highest one."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = connection.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": _quoted(table.name), "column": column.name},
            )
            if sequence is None:
                continue
            highest = connection.scalar(select(func.max(column)))
            if highest is None:
                connection.execute(text("SELECT setval(:s, 1, false)"), {"s": sequence})
            else:
                connection.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": highest})
