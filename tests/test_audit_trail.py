"""The tamper-evident audit trail in the database: events chained as they are
written, triggers refusing UPDATE and DELETE, `itsm audit verify` naming the
first broken link, migration 0009 both ways, concurrent appends, the key."""

from __future__ import annotations

import shutil
import threading

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from engine.domain.audit import (
    ADMIN_CHAIN,
    CONTENT_CHANGED,
    MISSING_SEQUENCE,
    incident_chain,
)
from engine.persistence.audit_key import (
    key_file_for,
)
from engine.persistence.db import Database
from engine.persistence.migrate import alembic_config
from engine.persistence.models import AdminEvent, AuditChainHead, Event
from engine.services.audit import admin_events
from engine.services.audit.verify import verify_all
from engine.services.context import ServiceContext
from tests.conftest import Template
from tests.scenario import Scenario
from tests.test_definitions_api_and_cli import itsm


@pytest.fixture(autouse=True)
def template_audit_key(template: Template, database_url: str) -> None:
    """A SQLite test database is a copy of the template's file: its key file goes too
    (the template's administration events were signed with it)."""
    source, target = key_file_for(template.url), key_file_for(database_url)
    if source != target and source.exists() and not target.exists():
        shutil.copy2(source, target)


def _drop_triggers(engine: Engine) -> None:
    """What someone with database access would do before editing events."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER events_append_only ON events"))
        else:
            connection.execute(text("DROP TRIGGER events_no_update"))
            connection.execute(text("DROP TRIGGER events_no_delete"))


def _incident_events(ctx: ServiceContext, incident_id: int) -> list[Event]:
    with ctx.db.read() as session:
        events = list(
            session.scalars(
                select(Event).where(Event.incident_id == incident_id).order_by(Event.id)
            )
        )
        session.expunge_all()  # what was read stays readable after the transaction
        return events


def test_events_are_chained_per_incident_and_verify(api, ctx):
    first, second = Scenario(api), Scenario(api)
    first.record()
    first.desk_resolves()
    second.record()
    events = _incident_events(ctx, first.id)
    assert {e.chain for e in events} == {incident_chain(first.id)}
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].previous_hash == "0" * 64
    assert all(b.previous_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    with ctx.db.read() as session:
        head = session.get_one(AuditChainHead, incident_chain(first.id))
        assert (head.sequence, head.hash) == (events[-1].sequence, events[-1].hash)
    result = verify_all(ctx)
    assert result.failure is None
    # Two incidents and the administration chain (the test users and their tokens).
    assert result.count.chains == 3
    with ctx.db.read() as session:
        admin_count = len(session.scalars(select(AdminEvent.id)).all())
    second_count = len(_incident_events(ctx, second.id))
    assert result.count.events == len(events) + second_count + admin_count

    ok = itsm("audit", "verify", database_url=ctx.db.url)
    assert ok.returncode == 0, ok.stderr
    assert "3 chains" in ok.stdout and f"{result.count.events} events" in ok.stdout


@pytest.mark.parametrize("table", ["events", "admin_events"])
def test_the_database_refuses_to_change_or_delete_an_event(api, ctx, table):
    Scenario(api).record()
    with ctx.db.read() as session:
        event_id = session.scalar(text(f"SELECT max(id) FROM {table}"))
    for statement in (
        f"UPDATE {table} SET actor = 'mallory' WHERE id = :id",
        f"DELETE FROM {table} WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"), ctx.db.engine.begin() as connection:
            connection.execute(text(statement), {"id": event_id})
    if ctx.db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), ctx.db.engine.begin() as connection:
            # CASCADE: the outbox and the webhook deliveries reference events; without
            # it PostgreSQL refuses for that reason before the trigger is asked.
            connection.execute(text(f"TRUNCATE {table} CASCADE"))
    assert verify_all(ctx).failure is None


def test_verify_names_an_event_whose_data_was_changed(api, ctx):
    s = Scenario(api)
    s.record()
    victim = _incident_events(ctx, s.id)[1]
    _drop_triggers(ctx.db.engine)
    with ctx.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET data = :data WHERE id = :id"),
            {"data": '{"impact": "1"}', "id": victim.id},
        )
    failure = verify_all(ctx).failure
    assert failure is not None
    assert (failure.chain, failure.event_id, failure.problem) == (
        incident_chain(s.id),
        victim.id,
        CONTENT_CHANGED,
    )
    broken = itsm("audit", "verify", database_url=ctx.db.url)
    assert broken.returncode == 1
    assert f"chain {incident_chain(s.id)}, event {victim.id}: content changed" in broken.stderr


def test_verify_names_an_event_moved_to_another_incident(api, ctx):
    a, b = Scenario(api), Scenario(api)
    moved = _incident_events(ctx, a.id)[0]
    _drop_triggers(ctx.db.engine)
    with ctx.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET incident_id = :b WHERE id = :id"), {"b": b.id, "id": moved.id}
        )
    failure = verify_all(ctx).failure
    assert failure is not None
    assert (failure.event_id, failure.problem) == (moved.id, CONTENT_CHANGED)


def test_verify_names_the_gap_a_deleted_event_leaves(api, ctx):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    events = _incident_events(ctx, s.id)
    _drop_triggers(ctx.db.engine)
    with ctx.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id = :id"), {"id": events[2].id})
    failure = verify_all(ctx).failure
    assert failure is not None
    assert (failure.chain, failure.event_id, failure.problem) == (
        incident_chain(s.id),
        events[3].id,
        MISSING_SEQUENCE,
    )
    assert "expected sequence 3, found 4" in failure.detail
    broken = itsm("audit", "verify", database_url=ctx.db.url)
    assert broken.returncode == 1 and "missing sequence" in broken.stderr


def test_verify_notices_the_newest_event_deleted(api, ctx):
    s = Scenario(api)
    newest = _incident_events(ctx, s.id)[-1]
    _drop_triggers(ctx.db.engine)
    with ctx.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id = :id"), {"id": newest.id})
    failure = verify_all(ctx).failure
    assert failure is not None
    assert (failure.chain, failure.event_id, failure.problem) == (
        incident_chain(s.id),
        None,
        MISSING_SEQUENCE,
    )


def test_events_added_in_one_transaction_chain_in_the_order_added(ctx):
    with ctx.db.write() as session:
        for n in range(3):
            admin_events.record(session, "admin", admin_events.USER_ACTIVATED, ctx.now(), n=n)
        session.flush()
        admin_events.record(session, "admin", admin_events.USER_DEACTIVATED, ctx.now(), n=3)
    with ctx.db.read() as session:
        rows = session.scalars(
            select(AdminEvent).order_by(AdminEvent.sequence.desc()).limit(4)
        ).all()
        session.expunge_all()
    rows = rows[::-1]
    assert [r.data["n"] for r in rows] == [0, 1, 2, 3]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert [r.sequence for r in rows] == list(range(rows[0].sequence, rows[0].sequence + 4))
    assert verify_all(ctx).failure is None


def test_concurrent_appends_never_fork_the_chain(ctx, database_url):
    """Writers in their own transactions on the admin chain at once: each locks the
    head, so the sequence stays gapless and every link verifies."""
    with ctx.db.read() as session:
        before = session.get_one(AuditChainHead, ADMIN_CHAIN).sequence
    contexts = [ServiceContext(db=Database(database_url), now=ctx.now) for _ in range(4)]
    start = threading.Barrier(len(contexts))
    failures: list[BaseException] = []

    def append(worker: ServiceContext, number: int) -> None:
        try:
            start.wait()
            for round_ in range(5):
                with worker.db.write() as session:
                    admin_events.record(
                        session,
                        "admin",
                        admin_events.USER_ACTIVATED,
                        worker.now(),
                        worker=number,
                        round=round_,
                    )
        except BaseException as exc:  # reported below: a thread's failure fails the test
            failures.append(exc)

    threads = [threading.Thread(target=append, args=(c, n)) for n, c in enumerate(contexts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for worker in contexts:
        worker.db.dispose()
    assert failures == []
    with ctx.db.read() as session:
        sequences = session.scalars(
            select(AdminEvent.sequence)
            .where(AdminEvent.sequence > before)
            .order_by(AdminEvent.sequence)
        ).all()
    assert sequences == list(range(before + 1, before + 21))
    assert verify_all(ctx).failure is None


def _migrate(ctx: ServiceContext, direction: str, revision: str) -> None:
    config = alembic_config()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)


def test_migration_0009_chains_existing_events_and_downgrades(api, ctx):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    contents = [(e.id, e.type, e.data) for e in _incident_events(ctx, s.id)]
    _migrate(ctx, "downgrade", "0008")
    with ctx.db.engine.begin() as connection:
        tables = set(
            connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    if ctx.db.engine.dialect.name == "sqlite"
                    else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ).scalars()
        )
        # Without the triggers an event can be changed again (and no chain says so).
        connection.execute(
            text("UPDATE events SET actor = actor WHERE id = :id"), {"id": contents[0][0]}
        )
        row = connection.execute(text("SELECT * FROM events LIMIT 1")).mappings().one()
    assert "audit_chain_heads" not in tables and "admin_events" not in tables
    assert "hash" not in row and "chain" not in row

    _migrate(ctx, "upgrade", "head")
    events = _incident_events(ctx, s.id)
    assert [(e.id, e.type, e.data) for e in events] == contents
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    result = verify_all(ctx)
    assert result.failure is None and result.count.events >= len(events)
    with pytest.raises(DBAPIError, match="append-only"), ctx.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id = :id"), {"id": events[0].id})


def test_verify_refuses_a_database_before_0009(ctx):
    _migrate(ctx, "downgrade", "0008")
    result = itsm("audit", "verify", database_url=ctx.db.url)
    assert result.returncode == 2 and "before 0009" in result.stderr


def test_verify_reads_one_snapshot_while_others_append(ctx, database_url, monkeypatch):
    """Found in review: on PostgreSQL each statement of a READ COMMITTED read sees its
    own snapshot, so an event committed between reading the heads and the events
    looked like a broken chain."""
    from engine.services.audit import verify as verify_module

    real = verify_module._stored_events
    writer = ServiceContext(db=Database(database_url), now=ctx.now)

    def append_meanwhile(session):
        with writer.db.write() as other:  # committed after the heads were read
            admin_events.record(other, "admin", admin_events.USER_ACTIVATED, writer.now())
        yield from real(session)

    monkeypatch.setattr(verify_module, "_stored_events", append_meanwhile)
    result = verify_all(ctx)
    writer.db.dispose()
    assert result.failure is None, result.failure
