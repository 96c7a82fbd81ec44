"""The paging every list accepts (contract Part 2, "Lists")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9
# Counting is exact up to here; above, `total` says this and `total_exact` is false.
EXACT_TOTAL_UP_TO = 10_000


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def parse_page(args: Mapping[str, object]) -> tuple[Page, dict[str, str]]:
    """`limit` (1–200, default 50) and `offset` (≥ 0) from query text; errors by name."""
    errors: dict[str, str] = {}
    limit = _whole(args.get("limit"), "limit", 1, MAX_LIMIT, DEFAULT_LIMIT, errors)
    offset = _whole(args.get("offset"), "offset", 0, MAX_OFFSET, 0, errors)
    return Page(limit, offset), errors


def _whole(
    raw: object, name: str, low: int, high: int, default: int, errors: dict[str, str]
) -> int:
    if raw is None or raw == "":
        return default
    text = str(raw)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not low <= int(text) <= high:
        errors[name] = f"must be a whole number from {low} to {high}"
        return default
    return int(text)


def shown_total(counted: int) -> tuple[int, bool]:
    """The total to report and whether it is exact (counts stop at EXACT_TOTAL_UP_TO + 1)."""
    if counted > EXACT_TOTAL_UP_TO:
        return EXACT_TOTAL_UP_TO, False
    return counted, True
