"""Checking every audit chain against its key (`itsm audit verify`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.audit import (
    CONTENT_CHANGED,
    ChainBreak,
    ChainHead,
    ChainVerifier,
    StoredEvent,
    VerifiedCount,
)
from engine.persistence.models import AdminEvent, AuditChainHead, Event
from engine.services.audit.chains import ChainedRow, chain_of, content_of
from engine.services.context import ServiceContext

# Rows are streamed in chunks of this many: a verification reads every event.
READ_CHUNK = 1000
_Row = TypeVar("_Row", Event, AdminEvent)


@dataclass(frozen=True)
class Verification:
    count: VerifiedCount
    failure: ChainBreak | None


def verify_all(ctx: ServiceContext) -> Verification:
    """Every chain of both event tables, in one read transaction (one snapshot)."""
    with ctx.db.read() as session:
        if session.get_bind().dialect.name == "postgresql":
            # READ COMMITTED gives each statement its own snapshot: an event committed
            # between reading the heads and reading the events would look like tampering.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        heads = {
            head.chain: ChainHead(head.chain, head.sequence, head.hash)
            for head in session.scalars(select(AuditChainHead))
        }
        verifier = ChainVerifier(ctx.audit_key, heads)
        for stored in _stored_events(session):
            if isinstance(stored, ChainBreak):
                return Verification(verifier.count, stored)
            if (failure := verifier.feed(stored)) is not None:
                return Verification(verifier.count, failure)
        return Verification(verifier.count, verifier.finish())


def _stored_events(session: Session) -> Iterator[StoredEvent | ChainBreak]:
    for event in _in_chain_order(session, Event):
        yield _checked_row(event)
    for admin_event in _in_chain_order(session, AdminEvent):
        yield _checked_row(admin_event)


def _in_chain_order(session: Session, model: type[_Row]) -> Iterator[_Row]:
    statement = select(model).order_by(model.chain, model.sequence)
    yield from session.scalars(statement.execution_options(yield_per=READ_CHUNK))


def _checked_row(row: ChainedRow) -> StoredEvent | ChainBreak:
    # The incident id is not hashed: its chain is, and the two must agree.
    if chain_of(row) != row.chain:
        return ChainBreak(
            row.chain, row.id, CONTENT_CHANGED, "the event was moved to another incident"
        )
    return StoredEvent(row.id, content_of(row, row.sequence), row.previous_hash, row.hash)
