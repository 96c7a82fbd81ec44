from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.priority import (
    DEFAULT_PRIORITY_MATRIX,
    is_major,
    needs_management_escalation,
    priority_for,
    to_level,
    validate_matrix,
)

# The contract's table, written out cell by cell: (impact, urgency) -> priority.
CONTRACT_TABLE = [
    (1, 1, 1),
    (1, 2, 2),
    (1, 3, 3),
    (2, 1, 2),
    (2, 2, 3),
    (2, 3, 4),
    (3, 1, 3),
    (3, 2, 4),
    (3, 3, 5),
]


@pytest.mark.parametrize(("impact", "urgency", "expected"), CONTRACT_TABLE)
def test_default_matrix_matches_contract_with_ints(impact: int, urgency: int, expected: int):
    assert priority_for(DEFAULT_PRIORITY_MATRIX, impact, urgency) == expected


@pytest.mark.parametrize(("impact", "urgency", "expected"), CONTRACT_TABLE)
def test_default_matrix_matches_contract_with_option_ids(impact: int, urgency: int, expected: int):
    assert priority_for(DEFAULT_PRIORITY_MATRIX, str(impact), str(urgency)) == expected


def test_default_matrix_has_exactly_the_nine_cells():
    assert sorted(DEFAULT_PRIORITY_MATRIX.items()) == [((i, u), p) for i, u, p in CONTRACT_TABLE]
    validate_matrix(DEFAULT_PRIORITY_MATRIX)


def test_default_matrix_cannot_be_modified():
    with pytest.raises(TypeError):
        DEFAULT_PRIORITY_MATRIX[(1, 1)] = 5  # type: ignore[index]


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (2, 2), (3, 3), ("1", 1), ("3", 3)])
def test_to_level_accepts_ints_and_option_ids(value: object, expected: int):
    assert to_level(value, "impact") == expected


@pytest.mark.parametrize(
    "value", [0, 4, -1, "0", "4", "x", "", " 1", "1.0", 1.0, True, False, None, [1]]
)
def test_to_level_rejects_anything_else_naming_the_field(value: object):
    with pytest.raises(ValueError, match="urgency"):
        to_level(value, "urgency")


@pytest.mark.parametrize(("impact", "urgency"), [(0, 1), (1, 4), ("x", 1), (True, 1), (1, None)])
def test_priority_for_rejects_bad_levels(impact: object, urgency: object):
    with pytest.raises(ValueError):
        priority_for(DEFAULT_PRIORITY_MATRIX, impact, urgency)


def test_priority_for_uses_the_given_matrix():
    custom = dict(DEFAULT_PRIORITY_MATRIX)
    custom[(3, 3)] = 4
    assert priority_for(custom, "3", "3") == 4


def test_priority_for_rejects_incomplete_matrix():
    with pytest.raises(ValueError, match="no cell"):
        priority_for({(1, 1): 1}, 2, 2)


@pytest.mark.parametrize(
    ("impact", "priority", "expected"),
    [
        (1, 3, True),  # high impact is major whatever the priority
        ("1", 1, True),
        (2, 1, True),  # top priority is major whatever the impact
        (3, 1, True),
        (2, 2, False),
        ("2", 3, False),
        (3, 5, False),
    ],
)
def test_is_major(impact: object, priority: int, expected: bool):
    assert is_major(impact, priority) is expected


@pytest.mark.parametrize(("impact", "priority"), [(4, 2), (1, 0), (1, 6), (1, True), (2, "1")])
def test_is_major_rejects_bad_values(impact: object, priority: object):
    with pytest.raises(ValueError):
        is_major(impact, priority)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("priority", "major", "expected"),
    [(1, False, True), (2, False, True), (3, False, False), (5, False, False), (3, True, True)],
)
def test_needs_management_escalation(priority: int, major: bool, expected: bool):
    assert needs_management_escalation(priority, major) is expected


def test_needs_management_escalation_rejects_bad_priority():
    with pytest.raises(ValueError):
        needs_management_escalation(0, False)


def test_validate_matrix_rejects_missing_cell():
    matrix = dict(DEFAULT_PRIORITY_MATRIX)
    del matrix[(2, 3)]
    with pytest.raises(ValueError, match=r"missing cells \[\(2, 3\)\]"):
        validate_matrix(matrix)


@pytest.mark.parametrize("bad", [0, 6, -1, True, "2", 2.0, None])
def test_validate_matrix_rejects_values_outside_1_to_5(bad: object):
    matrix: dict[tuple[int, int], object] = dict(DEFAULT_PRIORITY_MATRIX)
    matrix[(1, 1)] = bad
    with pytest.raises(ValueError, match=r"cell \(1, 1\)"):
        validate_matrix(matrix)


def test_validate_matrix_rejects_extra_cells():
    matrix = dict(DEFAULT_PRIORITY_MATRIX)
    matrix[(4, 1)] = 1
    with pytest.raises(ValueError, match="unexpected"):
        validate_matrix(matrix)


levels = st.integers(min_value=1, max_value=3)


@given(impact=levels, urgency=levels, raise_impact=st.booleans())
def test_default_matrix_is_monotone(impact: int, urgency: int, raise_impact: bool):
    # A larger level number means less impact/urgency, so the priority number never drops.
    base = priority_for(DEFAULT_PRIORITY_MATRIX, impact, urgency)
    if raise_impact:
        impact = min(impact + 1, 3)
    else:
        urgency = min(urgency + 1, 3)
    assert priority_for(DEFAULT_PRIORITY_MATRIX, impact, urgency) >= base


@given(a=st.tuples(levels, levels), b=st.tuples(levels, levels))
def test_default_matrix_is_monotone_in_both_levels_together(a: tuple[int, int], b: tuple[int, int]):
    if a[0] <= b[0] and a[1] <= b[1]:
        assert DEFAULT_PRIORITY_MATRIX[a] <= DEFAULT_PRIORITY_MATRIX[b]
