"""Linking new event rows into their chains as they are flushed.

Every flush that inserts incident or administration events links them, in the
order they were added, behind their chain's head row, which it locks first
(SELECT ... FOR UPDATE on PostgreSQL; SQLite writers are serialized by BEGIN
IMMEDIATE already): two transactions never extend the same link.  Doing this
at flush time, not when an event is built, keeps read transactions that build
events they never write (engine steps on a draft, what-if) away from the heads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Insert, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from engine.domain.audit import (
    GENESIS_HASH,
    ChainContent,
    ChainHead,
    incident_chain,
    next_link,
)
from engine.persistence.audit_key import audit_key_of
from engine.persistence.models import AdminEvent, AuditChainHead, Event

ChainedRow = Event | AdminEvent


def chain_of(row: ChainedRow) -> str:
    if isinstance(row, Event):
        return incident_chain(row.incident_id)
    return row.chain


def content_of(row: ChainedRow, sequence: int) -> ChainContent:
    task = row.task if isinstance(row, Event) else None
    return ChainContent(row.chain, sequence, row.at, row.actor, row.type, task, row.data)


def stage(session: Session, row: ChainedRow) -> None:
    """Add an event row to the session: it is linked into its chain when flushed."""
    session.add(row)


@event.listens_for(Session, "before_flush")
def _link_new_events(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    pending = [r for r in session.new if isinstance(r, Event | AdminEvent) and r.hash is None]
    if pending:
        link(session, pending)


def link(session: Session, rows: Iterable[ChainedRow]) -> None:
    """Give each row its chain, sequence and hashes; rows of a chain in insert order."""
    ordered = sorted(rows, key=lambda row: instance_state(row).insert_order or 0)
    for row in ordered:
        row.chain = chain_of(row)
        if row.data is None:
            row.data = {}
    heads = _locked_heads(session, sorted({row.chain for row in ordered}))
    key = audit_key_of(session.get_bind().engine)
    for row in ordered:
        head = heads[row.chain]
        current = ChainHead(head.chain, head.sequence, head.hash)
        linked = next_link(key, current, content_of(row, head.sequence + 1))
        row.sequence, row.previous_hash, row.hash = linked.sequence, current.hash, linked.hash
        head.sequence, head.hash = linked.sequence, linked.hash


def _locked_heads(session: Session, chains: list[str]) -> dict[str, AuditChainHead]:
    def lock(names: list[str]) -> dict[str, AuditChainHead]:
        statement = (
            select(AuditChainHead)
            .where(AuditChainHead.chain.in_(names))
            .order_by(AuditChainHead.chain)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {head.chain: head for head in session.scalars(statement)}

    heads = lock(chains)
    missing = [chain for chain in chains if chain not in heads]
    if missing:
        # A new chain: of two transactions starting it at once, one inserts the head
        # and the other waits for it, then both lock it like any other.
        session.execute(_insert_absent_heads(session, missing))
        heads.update(lock(missing))
    return heads


def _insert_absent_heads(session: Session, chains: list[str]) -> Insert:
    rows = [{"chain": chain, "sequence": 0, "hash": GENESIS_HASH} for chain in chains]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(AuditChainHead).values(rows).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(AuditChainHead).values(rows).on_conflict_do_nothing()
    raise RuntimeError(f"audit chains: no head insert for the {dialect} dialect")
