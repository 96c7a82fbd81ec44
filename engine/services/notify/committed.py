"""What a transaction wrote, handed to the outbox producers before it commits.

Every flush records the event rows and the newly ready user-task rows it
inserted; just before the commit (after a last flush, so every row has its id),
each registered producer gets them and may add rows of its own (mails, webhook
deliveries), which the commit then writes: the notification lands in the
transaction of its event or not at all.  Producers must not add event rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from engine.persistence.models import Event, UserTaskRow

_KEY = "itsm_committed_writes"


@dataclass
class Written:
    """The rows of one transaction that can cause a notification, in insert order."""

    events: list[Event] = field(default_factory=list)
    ready_tasks: list[UserTaskRow] = field(default_factory=list)


Producer = Callable[[Session, Written], None]
_PRODUCERS: list[Producer] = []


def produce_at_commit(producer: Producer) -> Producer:
    """Register a producer (as a decorator); it runs for every committing write."""
    _PRODUCERS.append(producer)
    return producer


@event.listens_for(Session, "after_flush")
def _remember(session: Session, _flush: UOWTransaction) -> None:
    new = list(session.new)
    events = [row for row in new if isinstance(row, Event)]
    tasks = [row for row in new if isinstance(row, UserTaskRow) and row.state == "ready"]
    if events or tasks:
        written = session.info.setdefault(_KEY, Written())
        written.events.extend(events)
        written.ready_tasks.extend(tasks)


@event.listens_for(Session, "before_commit")
def _produce(session: Session) -> None:
    if not _PRODUCERS:
        return
    session.flush()
    written: Written | None = session.info.pop(_KEY, None)
    if written is None:
        return
    written.events.sort(key=lambda row: row.id)
    for producer in _PRODUCERS:
        producer(session, written)


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_KEY, None)


event.listen(Session, "after_rollback", _forget)
event.listen(Session, "after_soft_rollback", _forget)
