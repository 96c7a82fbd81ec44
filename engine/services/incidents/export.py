"""The incident list as a CSV file: the list's filters, sort and visibility, every
matching incident (not one page of it), written with the stdlib `csv` module.

The rows come from one query, fetched and written 500 at a time, so that a large
export never sits in memory whole; the read transaction lasts as long as the
download, and the file is the list as of one moment.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from engine.persistence.models import Incident, User
from engine.services.context import Actor, ServiceContext
from engine.services.incidents.pages import SORT_COLUMNS, IncidentQuery
from engine.services.incidents.visibility import visible_condition

FILENAME = "incidents.csv"
COLUMNS = (
    "number",
    "title",
    "status",
    "phase",
    "priority",
    "impact",
    "urgency",
    "major",
    "category",
    "channel",
    "caller",
    "created_at",
    "resolved_at",
    "closed_at",
    "response_due",
    "resolution_due",
    "breached",
)
BATCH_ROWS = 500
# A spreadsheet runs a cell starting with one of these as a formula (a title like
# `=HYPERLINK(...)` typed by a caller would run on the desk's machine); a leading
# apostrophe makes it text, which Excel and LibreOffice then show without it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV file without a byte-order mark in the machine's ANSI code page
# (cp950 on a Traditional Chinese Windows, cp1252 elsewhere), which garbles every
# zh-Hant title; the UTF-8 BOM makes it read UTF-8. Other programs skip it.
BOM = "\ufeff"


def matching_conditions(actor: Actor, query: IncidentQuery) -> list[ColumnElement[bool]]:
    """The incident list's rule of which incidents match: visibility, then each filter."""
    conditions = []
    visible = visible_condition(actor)
    if visible is not None:
        conditions.append(visible)
    if query.q:
        conditions.append(
            Incident.number.icontains(query.q, autoescape=True)
            | Incident.title.icontains(query.q, autoescape=True)
            | Incident.contact.icontains(query.q, autoescape=True)
        )
    if query.status:
        conditions.append(Incident.status == query.status)
    if query.priority:
        conditions.append(Incident.priority == int(query.priority))
    if query.phase:
        conditions.append(Incident.phase == query.phase)
    if query.category:
        conditions.append(Incident.category == query.category)
    if query.channel:
        conditions.append(Incident.channel == query.channel)
    if query.major:
        conditions.append(Incident.major.is_(query.major == "yes"))
    return conditions


def export_query(actor: Actor, query: IncidentQuery) -> Select[*tuple[Any, ...]]:
    column = SORT_COLUMNS[query.sort]
    ordered = column.asc() if query.direction == "asc" else column.desc()
    tie = Incident.id.asc() if query.direction == "asc" else Incident.id.desc()
    return (
        select(
            Incident.number,
            Incident.title,
            Incident.status,
            Incident.phase,
            Incident.priority,
            Incident.impact,
            Incident.urgency,
            Incident.major,
            Incident.category,
            Incident.channel,
            func.coalesce(User.username, Incident.caller_email),
            Incident.created_at,
            Incident.resolved_at,
            Incident.closed_at,
            Incident.response_due,
            Incident.resolution_due,
            Incident.breached,
        )
        .outerjoin(User, User.id == Incident.caller_id)
        .where(*matching_conditions(actor, query))
        .order_by(ordered.nulls_last(), tie)
    )


def cell(value: Any) -> str:
    """One value as the file shows it: ISO 8601 in UTC, true/false, empty for none,
    and text that a spreadsheet would take for a formula made plain text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _lines(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def incidents_csv(ctx: ServiceContext, actor: Actor, query: IncidentQuery) -> Iterator[str]:
    """The file, in pieces: the BOM and header, then one piece per batch of rows.

    Nothing is read before the first piece is asked for; the caller checks the
    query (`pages.parse_query`) before, so that a bad filter is a 422, not a
    broken download."""
    yield BOM + _lines([COLUMNS])
    statement = export_query(actor, query).execution_options(yield_per=BATCH_ROWS)
    with ctx.db.read() as session:
        for batch in session.execute(statement).partitions():
            yield _lines(batch)
