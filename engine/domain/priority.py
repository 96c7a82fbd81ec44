"""Priority from impact and urgency, and the escalation rules that follow from it.

Pure functions over plain values so that BPMN script tasks, the API and tests share one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PriorityMatrix = Mapping[tuple[int, int], int]
"""Priority (1 highest .. 5 lowest) keyed by (impact, urgency), both 1 high .. 3 low."""

LEVELS: tuple[int, ...] = (1, 2, 3)
PRIORITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Read-only so that a caller editing "its" matrix can never change the shipped default.
DEFAULT_PRIORITY_MATRIX: PriorityMatrix = MappingProxyType(
    {
        (1, 1): 1,
        (1, 2): 2,
        (1, 3): 3,
        (2, 1): 2,
        (2, 2): 3,
        (2, 3): 4,
        (3, 1): 3,
        (3, 2): 4,
        (3, 3): 5,
    }
)


def to_priority(value: object) -> int:
    """A priority 1..5 from an int or its digit string (a script's result)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    if isinstance(value, str) and value in {"1", "2", "3", "4", "5"}:
        return int(value)
    raise ValueError(f"priority must be 1 to 5, got {str(value)[:40]!r}")


def to_level(value: object, name: str) -> int:
    """Return an impact/urgency level 1..3 from an int or an enum option id string.

    The BPMN engine hands enum values over as option id strings ("1"), the API may send ints.
    """
    # bool is an int subclass; True must not silently mean "1 high".
    if isinstance(value, int) and not isinstance(value, bool) and value in LEVELS:
        return value
    if isinstance(value, str) and value in {str(level) for level in LEVELS}:
        return int(value)
    raise ValueError(f"{name} must be 1, 2 or 3, got {value!r}")


def _check_priority(priority: object) -> int:
    if isinstance(priority, int) and not isinstance(priority, bool) and priority in PRIORITIES:
        return priority
    raise ValueError(f"priority must be an integer 1..5, got {priority!r}")


def priority_for(matrix: PriorityMatrix, impact: object, urgency: object) -> int:
    """Look up the priority for an impact and urgency (ints or option id strings)."""
    key = (to_level(impact, "impact"), to_level(urgency, "urgency"))
    try:
        priority = matrix[key]
    except KeyError:
        raise ValueError(f"priority matrix has no cell for impact/urgency {key}") from None
    return _check_priority(priority)


def is_major(impact: object, priority: int) -> bool:
    """A major incident has high impact or the top priority (seed term 3)."""
    # Validate both first: a bad priority must not hide behind a high impact.
    level, checked = to_level(impact, "impact"), _check_priority(priority)
    return level == 1 or checked == 1


def needs_management_escalation(priority: int, major: bool) -> bool:
    """The incident manager reviews P1/P2 and major incidents."""
    return _check_priority(priority) <= 2 or major


def validate_matrix(matrix: Mapping[tuple[int, int], object]) -> None:
    """Raise ValueError unless the matrix has exactly the 9 cells, each a priority 1..5."""
    expected = {(impact, urgency) for impact in LEVELS for urgency in LEVELS}
    problems: list[str] = []
    missing = sorted(expected - set(matrix))
    if missing:
        problems.append(f"missing cells {missing}")
    unexpected = sorted(set(matrix) - expected, key=repr)
    if unexpected:
        problems.append(f"unexpected cells {unexpected}")
    for key in sorted(expected & set(matrix)):
        value = matrix[key]
        if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
            problems.append(f"cell {key} must be a priority 1..5, got {value!r}")
    if problems:
        raise ValueError("invalid priority matrix: " + "; ".join(problems))
