"""One page of a list query and its total (contract Part 2, "Lists"), shared by
every area: the count stops at EXACT_TOTAL_UP_TO + 1 rows, so a huge table is
never counted in full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.domain.paging import EXACT_TOTAL_UP_TO, Page, shown_total

AnySelect = Select[*tuple[Any, ...]]
S = TypeVar("S", bound=AnySelect)


@dataclass(frozen=True)
class Total:
    shown: int
    exact: bool

    def fields(self) -> dict[str, Any]:
        """`total` (and `total_exact: false` above the exact range) of a `{items, total}`."""
        return {"total": self.shown} if self.exact else {"total": self.shown, "total_exact": False}


def counted(session: Session, statement: AnySelect) -> Total:
    """The total of a list query (without its ordering, limit and offset)."""
    capped = statement.order_by(None).limit(EXACT_TOTAL_UP_TO + 1).subquery()
    number = session.scalar(select(func.count()).select_from(capped))
    return Total(*shown_total(int(number or 0)))


def paged(statement: S, page: Page) -> S:
    return statement.limit(page.limit).offset(page.offset)
