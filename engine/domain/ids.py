"""Row ids and versions: what the database's 64-bit integer columns hold."""

from __future__ import annotations

from typing import TypeGuard

MAX_ID = 2**63 - 1


def is_row_id(value: object) -> TypeGuard[int]:
    """An int a BIGINT column can hold (True/False are not ids). Anything else is
    an unknown id, never a database error."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
