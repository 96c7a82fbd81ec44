"""Row ids and versions: what the database's integer columns hold.

Every id and version column is SQLAlchemy's `Integer`: 32 bits on PostgreSQL
(SQLite stores 64). Beyond that a value is an unknown id, never a query the
database refuses (found by the API fuzzer: 2**31 made PostgreSQL answer
"integer out of range").
"""

from __future__ import annotations

from typing import TypeGuard

MAX_ID = 2**31 - 1


def is_row_id(value: object) -> TypeGuard[int]:
    """An int an id column can hold (True/False are not ids)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
