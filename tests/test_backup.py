"""`itsm backup` and `itsm restore`, run as the operator runs them.

The round trip fills a database through the API, backs it up, restores it into
a new empty database and compares every table of the models, row by row:
tables other people add later are compared without anyone touching this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from engine.persistence.backup import known_revisions
from engine.persistence.db import Database
from engine.persistence.models import Base, Event, Incident, Note
from engine.services.audit.verify import verify_all
from engine.services.context import ServiceContext
from engine.services.incidents import commands
from engine.services.ops.backup import shown_url
from engine.services.people import users
from engine.services.process.definitions import BUNDLED_PROCESS
from tests.conftest import PASSWORD, PG_URL, Api
from tests.scenario import Scenario
from tests.servers import ROOT

HOUR = 3600


def itsm(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=ROOT,
        env={**os.environ, "ITSM_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextmanager
def empty_database(tmp_path: Path, name: str) -> Iterator[str]:
    """A database nobody has used. SQLite: beside the test's own, so that it shares
    the installation's audit key file; PostgreSQL: a new database on the server."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / name}.db"
        return
    database = f"itsm_r_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield make_url(PG_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def every_table(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Each model table's rows, in primary-key order, as the models read them."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def schema_of(engine: Engine) -> tuple[set[str], str | None]:
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        revision = connection.scalar(text("SELECT version_num FROM alembic_version"))
    return names, revision


def fill(api: Api, ctx: ServiceContext) -> list[Scenario]:
    """Incidents at several steps, notes, a suspension, a new user, changed SLA policies,
    a calendar, a draft and a second process version."""
    closed = Scenario(api)
    closed.record()
    closed.desk_resolves()
    closed.confirm()
    closed.feedback()
    escalated = Scenario(api, channel="phone")
    escalated.record(impact="1", urgency="1", category="network")
    escalated.desk_passes_on()
    escalated.level2("escalate_level3")
    suspended = Scenario(api, reporter="reporter2")
    suspended.record(impact="2", urgency="2")
    api.ok(
        api.post(
            "desk", f"/incidents/{suspended.id}/notes", {"text": "工作記錄", "internal": True}
        ),
        201,
    )
    api.ok(api.post("reporter2", f"/incidents/{suspended.id}/notes", {"text": "still broken"}), 201)
    api.ok(
        api.post(
            "desk",
            f"/incidents/{suspended.id}/suspend",
            {"reason": "waiting for the caller", "category": "awaiting_reporter"},
        )
    )
    users.create_user(ctx, "restored_engineer", PASSWORD, ["level2", "level3"])
    api.ok(api.call("manager", "PUT", "/sla/policies/2", {"resolution_seconds": 8 * HOUR}))
    api.ok(api.call("manager", "PUT", "/sla/policies/4", {"response_seconds": 3 * HOUR}))
    week = {day: [{"start": "09:00", "end": "18:00"}] for day in ("mon", "tue", "wed")}
    calendar = {"name": "backup_hours", "timezone": "Asia/Taipei", "weekly": week}
    created = api.post("manager", "/sla/calendars", calendar)
    assert created.status_code == 201, created.get_json()
    headers = {"Authorization": f"Bearer {api.tokens['designer']}"}
    draft = api.client.post("/api/v1/process-drafts", headers=headers)
    assert draft.status_code == 201, draft.get_json()
    deployed = api.client.post(
        "/api/v1/process-definitions?note=second",
        data=BUNDLED_PROCESS.read_bytes(),
        headers={**headers, "Content-Type": "application/xml"},
    )
    assert deployed.status_code == 201, deployed.get_json()
    Scenario(api).record()  # on version 2
    return [closed, escalated, suspended]


@pytest.mark.parametrize(
    "method",
    # The portable format is PostgreSQL's fallback when pg_dump is missing.
    ["native", pytest.param("portable", marks=pytest.mark.only_on("postgresql"))],
)
def test_round_trip_restores_every_table_row_by_row(
    method: str, api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    fill(api, ctx)
    files = tmp_path / "files"
    (files / "2026" / "12").mkdir(parents=True)
    (files / "2026" / "12" / "螢幕截圖.png").write_bytes(bytes(range(256)) * 40)
    (files / "log.txt").write_text("a log\n")
    backup_file = tmp_path / "itsm-backup.zip"
    env = {"ITSM_ATTACHMENT_DIR": str(files)}
    if method == "portable":
        env["PATH"] = str(tmp_path)  # no pg_dump there
    made = itsm("backup", str(backup_file), database_url=database_url, **env)
    assert made.returncode == 0, made.stderr
    expected_method = {"native": "pg_dump" if PG_URL else "sqlite", "portable": "json-lines"}
    with zipfile.ZipFile(backup_file) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["method"] == expected_method[method]
    assert manifest["database"] == ("postgresql" if PG_URL else "sqlite")
    assert manifest["schema_revision"] == known_revisions()[-1]
    assert manifest["attachments"] == {"files": 2, "bytes": 256 * 40 + 6}
    assert {t.name for t in Base.metadata.sorted_tables} <= set(manifest["tables"])
    assert (backup_file.stat().st_mode & 0o777) == 0o600

    source = every_table(ctx.db.engine)
    assert len(source["process_definitions"]) == 2
    assert len(source["incidents"]) == 4
    assert source["notes"] and source["process_drafts"] and source["user_tasks"]
    assert len(source["sla_policy_versions"]) == 7
    assert manifest["tables"]["events"] == len(source["events"]) > 20

    restored_files = tmp_path / "restored-files"
    with empty_database(tmp_path, "restored") as target_url:
        env["ITSM_ATTACHMENT_DIR"] = str(restored_files)
        done = itsm("restore", str(backup_file), database_url=target_url, **env)
        assert done.returncode == 0, done.stderr
        target = Database(target_url)
        try:
            assert every_table(target.engine) == source
            assert schema_of(target.engine) == schema_of(ctx.db.engine)
            # The audit chains come back as they were: same verdict, same count.
            again = ServiceContext(db=target, now=ctx.now, audit_key=ctx.audit_key)
            assert verify_all(again) == verify_all(ctx)
            # The restored database works on: ids and numbers go on after the last.
            reporter = users.actor_for_token(again, api.tokens["reporter"])
            body = {"title": "after restore", "description": "", "contact": "", "channel": "web"}
            new = commands.create_incident(again, reporter, body)
            assert new["id"] > max(row[0] for row in source["incidents"])
        finally:
            target.dispose()
    restored = [p for p in restored_files.rglob("*") if p.is_file()]
    assert sorted(p.relative_to(restored_files).as_posix() for p in restored) == [
        "2026/12/螢幕截圖.png",
        "log.txt",
    ]
    assert (restored_files / "2026" / "12" / "螢幕截圖.png").read_bytes() == bytes(range(256)) * 40


def test_restore_into_a_database_with_rows_is_refused(
    api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    Scenario(api).record()
    backup_file = tmp_path / "b.zip"
    assert itsm("backup", str(backup_file), database_url=database_url).returncode == 0
    before = every_table(ctx.db.engine)
    refused = itsm("restore", str(backup_file), database_url=database_url)
    assert refused.returncode == 2
    assert shown_url(database_url) in refused.stderr
    assert "is not empty" in refused.stderr and "incidents: 1 rows" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert every_table(ctx.db.engine) == before


def _rewritten(source: Path, target: Path, change: Any) -> Path:
    """A copy of the archive whose manifest `change(manifest)` edits (checksums kept)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            new.writestr(info, data)
    return target


def _flipped(source: Path, target: Path) -> Path:
    """A copy with one byte changed in the middle of the database member's data."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = next(i for i in archive.infolist() if i.filename.startswith("database"))
    name_length, extra_length = (
        int.from_bytes(data[info.header_offset + at : info.header_offset + at + 2], "little")
        for at in (26, 28)
    )
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_a_damaged_or_foreign_file_is_refused_naming_it(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    Scenario(api).record()
    good = tmp_path / "good.zip"
    assert itsm("backup", str(good), database_url=database_url).returncode == 0
    size = good.stat().st_size
    other_method = "json-lines" if not PG_URL else "sqlite"
    (tmp_path / "notes.txt").write_text("not a backup\n")
    cases = {
        "truncated": (tmp_path / "truncated.zip", "truncated or damaged"),
        "flipped byte": (_flipped(good, tmp_path / "flipped.zip"), "damaged"),
        "not a zip": (tmp_path / "notes.txt", "not an itsm backup"),
        "missing": (tmp_path / "nowhere.zip", "cannot read"),
        "foreign zip": (
            _rewritten(good, tmp_path / "foreign.zip", lambda m: m.update(format="other")),
            "not an itsm backup",
        ),
        "newer revision": (
            _rewritten(good, tmp_path / "newer.zip", lambda m: m.update(schema_revision="9999")),
            "schema revision 9999",
        ),
        "newer format": (
            _rewritten(good, tmp_path / "format.zip", lambda m: m.update(format_version=99)),
            "format version 99",
        ),
        "other database kind": (
            _rewritten(good, tmp_path / "kind.zip", lambda m: m.update(method=other_method)),
            "restores into",
        ),
        "counts do not match": (
            _rewritten(good, tmp_path / "counts.zip", lambda m: m["tables"].update(incidents=7)),
            "incidents",
        ),
    }
    (tmp_path / "truncated.zip").write_bytes(good.read_bytes()[: size // 2])
    with empty_database(tmp_path, "target") as target_url:
        for case, (path, message) in cases.items():
            refused = itsm("restore", str(path), database_url=target_url)
            assert refused.returncode == 2, (case, refused.stderr)
            assert str(path) in refused.stderr, (case, refused.stderr)
            assert message in refused.stderr, (case, refused.stderr)
            assert "Traceback" not in refused.stderr, (case, refused.stderr)
            engine = create_engine(target_url)
            with engine.connect() as connection:
                names = inspect(connection).get_table_names()
                filled = names and connection.scalar(select(func.count()).select_from(Incident))
            engine.dispose()
            assert not filled, case
        # Still empty: the good file restores.
        assert itsm("restore", str(good), database_url=target_url).returncode == 0


@pytest.mark.only_on("postgresql")  # pg_dump archives are PostgreSQL's
def test_a_pg_dump_archive_needs_pg_restore(api: Api, database_url: str, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    assert itsm("backup", str(good), database_url=database_url).returncode == 0
    with empty_database(tmp_path, "target") as target_url:
        refused = itsm("restore", str(good), database_url=target_url, PATH=str(tmp_path))
        assert refused.returncode == 2
        assert "pg_restore" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.only_on("sqlite")  # the SQLite online backup
def test_backup_of_a_live_sqlite_database_is_one_instant(
    api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    """A writer adds notes (a note and its event in one transaction) all through the
    backup; the copy holds each note with its event, and as many as the manifest says."""
    scenario = Scenario(api)
    with ctx.db.write() as session:  # some bulk, so that the copy takes a while
        for n in range(4000):
            session.add(
                Note(
                    incident_id=scenario.id, author="desk", at=ctx.now(), text=f"{n} " + "x" * 2000
                )
            )
    desk = users.actor_for_token(ctx, api.tokens["desk"])
    written: list[int] = []
    stop = threading.Event()

    def write_notes() -> None:
        while not stop.is_set():
            commands.add_note(ctx, desk, scenario.id, {"text": "live", "internal": True})
            written.append(1)

    writer = threading.Thread(target=write_notes)
    writer.start()
    try:
        while len(written) < 5:
            stop.wait(0.01)
        before = len(written)
        made = itsm("backup", str(tmp_path / "live.zip"), database_url=database_url)
        after = len(written)
    finally:
        stop.set()
        writer.join()
    assert made.returncode == 0, made.stderr
    assert after > before  # the writer went on during the backup
    with zipfile.ZipFile(tmp_path / "live.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        archive.extract("database.sqlite", tmp_path)
    copy = create_engine(f"sqlite:///{tmp_path / 'database.sqlite'}")
    with copy.connect() as connection:
        assert connection.scalar(text("PRAGMA integrity_check")) == "ok"
        live_notes = connection.scalar(
            select(func.count()).select_from(Note).where(Note.text == "live")
        )
        live_events = connection.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.incident_id == scenario.id, Event.type == "note_added")
        )
        for table, count in manifest["tables"].items():
            assert connection.scalar(text(f'SELECT count(*) FROM "{table}"')) == count, table
    copy.dispose()
    assert live_notes == live_events
    assert before <= live_notes <= after
