"""The script helpers as plain data (`HelperTable`), rebuilt in the child process."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.domain.priority import (
    LEVELS,
    PRIORITIES,
    PriorityMatrix,
)
from engine.domain.script_helpers import HELPER_NAMES, MAX_WORKING_DAYS, bind_helpers
from engine.domain.sla import SlaTarget
from engine.workflow.sandbox.limits import DueRow

# --- helper tables --------------------------------------------------------------------------


class _LazyDueTable(Mapping[int, DueRow]):
    """Due times per priority, computed on first use (they read the incident's clock events).

    A priority whose computation raises ValueError (no SLA policy) is absent.
    """

    def __init__(self, compute: Callable[[int], DueRow]) -> None:
        self._compute = compute
        self._rows: dict[int, DueRow | None] = {}

    def _row(self, priority: int) -> DueRow | None:
        if priority not in PRIORITIES:
            return None
        if priority not in self._rows:
            try:
                self._rows[priority] = dict(self._compute(priority))
            except ValueError:
                self._rows[priority] = None
        return self._rows[priority]

    def __getitem__(self, priority: int) -> DueRow:
        row = self._row(priority)
        if row is None:
            raise KeyError(priority)
        return row

    def __iter__(self) -> Iterator[int]:
        return (priority for priority in PRIORITIES if self._row(priority) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _LazyWorkingDays:
    """The working-day due moments (ISO) a bound `itsm_working_days_later` gives, or the
    reason it gives none; computed on first use (they read the incident's calendar)."""

    def __init__(self, helper: Callable[[int], str] | None = None) -> None:
        self._helper = helper
        self._row: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        if self._row is None:
            ends: list[str] = []
            error: str | None = None
            if self._helper is None:
                error = "no business calendar is bound: working days cannot be counted"
            else:
                try:
                    ends = [self._helper(days) for days in range(1, MAX_WORKING_DAYS + 1)]
                except ValueError as exc:
                    error = str(exc)
            self._row = {"ends": ends, "error": error}
        return self._row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class HelperTable:
    """The script helpers as plain data, from which the child rebuilds the functions.

    `matrix` is the priority matrix `itsm_priority` looks up; `sla_due` maps each priority
    that has an SLA policy to `{"response_due": iso|None, "resolution_due": iso|None}`;
    `names` are the helpers that exist (an empty table has none).
    """

    matrix: Mapping[tuple[int, int], int] = field(default_factory=dict)
    sla_due: Mapping[int, DueRow] = field(default_factory=dict)
    names: frozenset[str] = HELPER_NAMES
    working_days: _LazyWorkingDays = field(default_factory=_LazyWorkingDays)

    def __post_init__(self) -> None:
        unknown = self.names - HELPER_NAMES
        if unknown:
            raise ValueError(f"unknown script helpers {sorted(unknown)}")

    @classmethod
    def empty(cls) -> HelperTable:
        return cls(names=frozenset())

    @classmethod
    def from_policy(
        cls,
        matrix: PriorityMatrix,
        targets: Mapping[int, SlaTarget],
        due_times: Callable[[int], Mapping[str, datetime | None]],
    ) -> HelperTable:
        """The table for what `bind_helpers(matrix, targets, due_times)` binds."""

        def row(priority: int) -> DueRow:
            if priority not in targets:
                raise ValueError(f"no SLA policy for priority {priority}")
            return {name: _iso(value) for name, value in due_times(priority).items()}

        return cls(matrix=dict(matrix), sla_due=_LazyDueTable(row))

    @classmethod
    def from_helpers(cls, helpers: Mapping[str, Callable[..., Any]]) -> HelperTable:
        """Tabulate bound helpers (as `bind_helpers` returns them) for the sandbox.

        The matrix is read by calling `itsm_priority` on the nine cells; due times are
        computed only when a script calls `itsm_sla_due`.
        """
        names = HELPER_NAMES & frozenset(helpers)
        matrix: dict[tuple[int, int], int] = {}
        lookup = helpers.get("itsm_priority")
        if lookup is not None:
            for impact in LEVELS:
                for urgency in LEVELS:
                    try:
                        matrix[(impact, urgency)] = int(lookup(impact, urgency))
                    except ValueError:
                        continue
        due = helpers.get("itsm_sla_due")
        sla_due: Mapping[int, DueRow] = _LazyDueTable(due) if due is not None else {}
        working = _LazyWorkingDays(helpers.get("itsm_working_days_later"))
        return cls(matrix=matrix, sla_due=sla_due, names=names, working_days=working)

    def payload(self, used: Iterable[str] = HELPER_NAMES) -> dict[str, Any]:
        """The JSON form sent to the child: only the tables the code actually uses."""
        needed = self.names & frozenset(used)
        result: dict[str, Any] = {"names": sorted(self.names)}
        if "itsm_priority" in needed:
            result["matrix"] = [[i, u, p] for (i, u), p in sorted(self.matrix.items())]
        if "itsm_sla_due" in needed:
            result["sla_due"] = {
                str(priority): dict(self.sla_due[priority])
                for priority in PRIORITIES
                if priority in self.sla_due
            }
        if "itsm_working_days_later" in needed:
            result["working_days"] = self.working_days.row()
        return result


def build_helpers(payload: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """The helper functions a `HelperTable.payload` describes (run in the child): the same
    `bind_helpers` the runtime uses, over the tabulated matrix and due times."""
    matrix = {(int(i), int(u)): p for i, u, p in payload.get("matrix", [])}
    dues = {int(key): row for key, row in payload.get("sla_due", {}).items()}

    def due_times(priority: int) -> dict[str, datetime | None]:
        return {
            name: datetime.fromisoformat(value) if value else None
            for name, value in dues[priority].items()
        }

    working: Mapping[str, Any] = payload.get("working_days", {})

    def working_day_ends() -> list[datetime]:
        if working.get("error") or "ends" not in working:
            raise ValueError(working.get("error") or "no working days were computed")
        return [datetime.fromisoformat(value) for value in working["ends"]]

    names = frozenset(payload.get("names", ()))
    bound = bind_helpers(matrix, dues.keys(), due_times, working_day_ends)
    return {name: function for name, function in bound.items() if name in names}
