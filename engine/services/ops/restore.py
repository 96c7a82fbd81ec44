"""`itsm restore FILE`: a backup (engine.services.ops.backup says what is in one)
checked whole - the manifest, every member's checksum, the schema revision, an empty
database - before anything is written, then loaded and migrated to this version."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from engine.persistence import backup as db_backup
from engine.persistence import backup_blobs
from engine.persistence.backup import DatabaseCopyError
from engine.persistence.migrate import migrate
from engine.services.context import ServiceContext
from engine.services.errors import Conflict, Invalid
from engine.services.ops.backup import (
    ATTACHMENTS_PREFIX,
    CHUNK_BYTES,
    DAMAGED,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    METHODS,
    PG_DUMP_MEMBER,
    ROWS_PREFIX,
    SQLITE_MEMBER,
    blob_store,
    first_line,
    shown_url,
)


@dataclass(frozen=True)
class RestoreSummary:
    database: str
    method: str
    revision: str
    tables: dict[str, int]
    attachments: int
    head: str
    blobs: int = 0


# -- reading a backup --------------------------------------------------------------


@contextmanager
def _open_archive(source: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(source)
    except OSError as exc:
        raise Invalid(f"{source}: cannot read ({exc.strerror or exc})", {}) from exc
    except DAMAGED as exc:
        raise Invalid(f"{source}: not an itsm backup (truncated or damaged: {exc})", {}) from exc
    with archive:
        yield archive


def _manifest(source: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    names = archive.namelist()
    if MANIFEST not in names:
        raise Invalid(f"{source}: not an itsm backup (no {MANIFEST})", {})
    if len(set(names)) != len(names):
        raise Invalid(f"{source}: damaged (a member name appears twice)", {})
    if archive.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise Invalid(f"{source}: {MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes", {})
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except json.JSONDecodeError as exc:
        raise Invalid(f"{source}: {MANIFEST} line {exc.lineno}: {exc.msg}", {}) from exc
    except (*DAMAGED, UnicodeDecodeError) as exc:
        raise Invalid(f"{source}: {MANIFEST}: damaged ({exc})", {}) from exc
    problem = _manifest_problem(manifest)
    if problem:
        raise Invalid(f"{source}: {MANIFEST}: {problem}", {})
    unlisted = sorted(set(names) - set(manifest["members"]) - {MANIFEST})
    if unlisted:
        raise Invalid(f"{source}: member {unlisted[0]} is not in {MANIFEST}", {})
    return manifest  # type: ignore[no-any-return]


def _manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"not an itsm backup (format is not {FORMAT!r})"
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return "format_version: must be a positive whole number"
    if version > FORMAT_VERSION:
        return (
            f"format version {version} is newer than this version of itsm reads "
            f"({FORMAT_VERSION}); restore with itsm {manifest.get('itsm_version', '?')}"
        )
    if manifest.get("method") not in METHODS:
        return f"method: must be one of {', '.join(METHODS)}"
    if not isinstance(manifest.get("schema_revision"), str):
        return "schema_revision: missing"
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not all(
        isinstance(n, int) and n >= 0 for n in tables.values()
    ):
        return "tables: must map each table to its row count"
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
        isinstance(m, dict) and isinstance(m.get("size"), int) and isinstance(m.get("sha256"), str)
        for m in members.values()
    ):
        return "members: must map each member to its size and sha256"
    return None


def _check_member(
    source: Path,
    archive: zipfile.ZipFile,
    name: str,
    expected: dict[str, Any],
    copy_to: Path | None = None,
) -> None:
    """Read the member through (its CRC is checked at the end) and compare its checksum."""
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as stream, (copy_to or Path(os.devnull)).open("wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except KeyError:
        raise Invalid(f"{source}: member {name} is missing (truncated?)", {}) from None
    except DAMAGED as exc:
        raise Invalid(f"{source}: member {name}: damaged ({exc})", {}) from exc
    if size != expected["size"] or digest.hexdigest() != expected["sha256"]:
        raise Invalid(f"{source}: member {name}: damaged (its checksum differs)", {})


def _attachment_targets(source: Path, names: list[str], directory: Path | None) -> dict[str, Path]:
    if not names:
        return {}
    if directory is None:
        raise Invalid(
            f"{source} holds {len(names)} attachment files: set ITSM_ATTACHMENT_DIR "
            "to the directory to restore them into",
            {},
        )
    targets = {}
    for name in names:
        relative = PurePosixPath(name[len(ATTACHMENTS_PREFIX) :])
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise Invalid(f"{source}: member {name}: not a path inside the attachment folder", {})
        target = directory.joinpath(*relative.parts)
        if target.exists():
            raise Conflict(f"{target} exists: attachments are restored into an empty folder")
        targets[name] = target
    return targets


# -- restore -----------------------------------------------------------------------


def restore_backup(
    ctx: ServiceContext, source: Path, attachment_dir: Path | None
) -> RestoreSummary:
    engine = ctx.db.engine
    database = shown_url(ctx.db.url)
    with _open_archive(source) as archive, tempfile.TemporaryDirectory(prefix="itsm-") as work:
        manifest = _manifest(source, archive)
        method, revision = manifest["method"], manifest["schema_revision"]
        if METHODS[method] != engine.dialect.name:
            raise Invalid(
                f"{source} holds a {method} backup, which restores into a {METHODS[method]} "
                f"database; {database} is {engine.dialect.name}",
                {},
            )
        known = db_backup.known_revisions()
        if revision not in known:
            raise Conflict(
                f"{source}: the backup is of schema revision {revision}, which this version "
                f"of itsm does not know (its newest is {known[-1]}); restore it with itsm "
                f"{manifest.get('itsm_version', '?')}"
            )
        try:
            filled = db_backup.rows_beyond_seed(engine)
        except SQLAlchemyError as exc:
            raise Invalid(f"{database}: cannot open ({first_line(exc)})", {}) from exc
        if filled:
            rows = ", ".join(f"{name}: {count} rows" for name, count in sorted(filled.items()))
            raise Conflict(
                f"{database} is not empty ({rows}); itsm restore only fills an empty database"
            )
        copies = {SQLITE_MEMBER: Path(work) / SQLITE_MEMBER, PG_DUMP_MEMBER: Path(work) / "dump"}
        for name, expected in manifest["members"].items():
            _check_member(source, archive, name, expected, copies.get(name))
        attachments = sorted(n for n in manifest["members"] if n.startswith(ATTACHMENTS_PREFIX))
        targets = _attachment_targets(source, attachments, attachment_dir)
        try:
            blob_members = backup_blobs.blob_members(manifest["members"])
        except backup_blobs.BlobRestoreError as exc:
            raise Invalid(f"{source}: {exc}", {}) from exc
        try:
            _load(ctx, source, archive, manifest, copies)
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: restore into {database} failed: {exc}", {}) from exc
        except SQLAlchemyError as exc:
            raise Invalid(
                f"{source}: restore into {database} failed: {first_line(exc)}", {}
            ) from exc
        for name, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as stream, target.open("xb") as out:
                shutil.copyfileobj(stream, out, CHUNK_BYTES)
        store = blob_store(ctx, attachment_dir)
        for name, digest in blob_members.items():
            with archive.open(name) as stream:
                try:
                    backup_blobs.restore_blob(store, digest, stream)
                except backup_blobs.BlobRestoreError as exc:
                    raise Invalid(f"{source}: {exc}", {}) from exc
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        raise Invalid(
            f"{database}: restored at schema revision {revision}, but the migration to "
            f"{known[-1]} failed: {first_line(exc)}",
            {},
        ) from exc
    return RestoreSummary(
        database,
        method,
        revision,
        manifest["tables"],
        len(targets),
        known[-1],
        blobs=len(blob_members),
    )


def _matches_manifest(
    source: Path, member: str, found: dict[str, int], tables: dict[str, int]
) -> None:
    try:
        db_backup.check_counts(found, tables)
    except DatabaseCopyError as exc:
        raise Invalid(f"{source}: member {member} does not match {MANIFEST}: {exc}", {}) from exc


def _load(
    ctx: ServiceContext,
    source: Path,
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    copies: dict[str, Path],
) -> None:
    engine = ctx.db.engine
    method, revision, tables = manifest["method"], manifest["schema_revision"], manifest["tables"]
    if method == "sqlite":
        copy = copies[SQLITE_MEMBER]
        try:
            found = db_backup.sqlite_file_contents(copy)
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: member {SQLITE_MEMBER}: {exc}", {}) from exc
        _matches_manifest(source, SQLITE_MEMBER, found.counts, tables)
        if found.revision != revision:
            raise Invalid(
                f"{source}: member {SQLITE_MEMBER} is of schema revision {found.revision}, "
                f"{MANIFEST} says {revision}",
                {},
            )
        db_backup.migrate_to(engine, revision)
        db_backup.load_sqlite_file(engine, copy, tables)
    elif method == "pg_dump":
        pg_restore = shutil.which("pg_restore")
        if pg_restore is None:
            raise Invalid(f"{source} is a pg_dump archive: put pg_restore on PATH", {})
        try:
            archived = db_backup.pg_archive_counts(pg_restore, copies[PG_DUMP_MEMBER])
        except DatabaseCopyError as exc:
            raise Invalid(f"{source}: member {PG_DUMP_MEMBER}: {exc}", {}) from exc
        _matches_manifest(source, PG_DUMP_MEMBER, archived, tables)
        db_backup.migrate_to(engine, revision)
        db_backup.run_pg_restore(pg_restore, engine, copies[PG_DUMP_MEMBER], tables)
    else:
        db_backup.migrate_to(engine, revision)
        with engine.begin() as connection:
            schema_tables = db_backup.user_tables(connection)
            db_backup.clear_seed_rows(connection, schema_tables)
            wanted = {f"{ROWS_PREFIX}{t.name}.jsonl" for t in schema_tables}
            listed = {n for n in manifest["members"] if n.startswith(ROWS_PREFIX)}
            if wanted != listed:
                raise DatabaseCopyError(
                    f"the backup's tables differ from this schema's: {sorted(wanted ^ listed)}"
                )
            for table in schema_tables:
                name = f"{ROWS_PREFIX}{table.name}.jsonl"
                try:
                    with archive.open(name) as lines:
                        count = db_backup.load_table_lines(connection, table, lines)
                except DatabaseCopyError as exc:
                    raise Invalid(f"{source}: {name} {exc}", {}) from exc
                if count != tables.get(table.name):
                    raise DatabaseCopyError(
                        f"table {table.name}: {count} rows, the manifest says "
                        f"{tables.get(table.name)}"
                    )
            db_backup.reset_pg_sequences(connection, schema_tables)
