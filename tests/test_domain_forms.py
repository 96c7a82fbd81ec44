from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.expressions import ExpressionError, compile_condition
from engine.domain.forms import (
    ALLOWED_CONSTRAINTS,
    ALLOWED_FIELD_PROPERTIES,
    ALLOWED_FIELD_TYPES,
    LONG_MAX,
    LONG_MIN,
    FieldOption,
    FieldSpec,
    FormSpec,
    FormValidationError,
    check_field_spec,
    check_form_spec,
    default_value,
    validate_submission,
)


def options(*ids: str) -> tuple[FieldOption, ...]:
    return tuple(FieldOption(option_id, option_id.replace("_", " ").title()) for option_id in ids)


CODES = options("fixed", "workaround", "no_fault_found")


def one(field: FieldSpec) -> FormSpec:
    return FormSpec((field,))


def clean(field: FieldSpec, value: object, *, from_text: bool = False) -> object:
    """The cleaned value of a one-field form given one submitted value."""
    return validate_submission(one(field), {field.id: value}, from_text=from_text)[field.id]


def error(field: FieldSpec, submitted: dict[str, object], *, from_text: bool = False) -> str:
    with pytest.raises(FormValidationError) as caught:
        validate_submission(one(field), submitted, from_text=from_text)
    return caught.value.errors[field.id]


def test_allowed_names_match_the_contract():
    assert ALLOWED_FIELD_TYPES == ("string", "long", "boolean", "date", "enum")
    assert ALLOWED_CONSTRAINTS == ("required", "minlength", "maxlength", "min", "max", "readonly")
    assert ALLOWED_FIELD_PROPERTIES == ("required_if", "multiline")


# --- expressions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("resolved_at_desk", {"resolved_at_desk": True}, True),
        ("resolved_at_desk", {"resolved_at_desk": False}, False),
        ("resolved_at_desk", {}, False),  # missing names are None
        ('level2_outcome == "reassign"', {"level2_outcome": "reassign"}, True),
        ('level2_outcome == "reassign"', {"level2_outcome": "solved"}, False),
        ('level2_outcome != "reassign"', {}, True),
        ("x < 3", {"x": 2}, True),
        ("x <= 3", {"x": 3}, True),
        ("x > 3", {"x": 3}, False),
        ("x >= -3", {"x": -3}, True),
        ("1 < x < 3", {"x": 2}, True),
        ("1 < x < 3", {"x": 3}, False),
        ("x > 2", {}, False),  # None is not ordered against numbers: the condition fails
        ("x in ('a', 'b')", {"x": "b"}, True),
        ("x in ['a', 'b']", {"x": "c"}, False),
        ("x not in ('a', 'b')", {"x": "c"}, True),
        ("x in (1, 2.5, None, True)", {}, True),
        ("'a' in x", {"x": "cat"}, True),
        ("'a' in x", {}, False),  # `in None` cannot hold
        ("a and b", {"a": True, "b": True}, True),
        ("a and b", {"a": True, "b": False}, False),
        ("a or b", {"a": False, "b": True}, True),
        ("not a", {"a": False}, True),
        ("not (a or b) and c == 1", {"c": 1}, True),
        ("x == None", {}, True),
        ("True", {}, True),
    ],
)
def test_conditions_evaluate(source: str, values: dict[str, object], expected: bool):
    assert compile_condition(source).evaluate(values) is expected


def test_condition_names_are_the_fields_it_reads():
    condition = compile_condition('a == "x" and not b or c in (1, 2) or 1 < d')
    assert condition.names == frozenset({"a", "b", "c", "d"})
    assert compile_condition("True").names == frozenset()


def test_condition_allows_surrounding_whitespace():
    assert compile_condition("  resolved_at_desk ").evaluate({"resolved_at_desk": True})


def test_conditions_with_equal_source_are_equal():
    assert compile_condition("a == 1") == compile_condition("a == 1")


@pytest.mark.parametrize(
    ("source", "construct"),
    [
        ("a.b", "attribute access"),
        ("().__class__", "attribute access"),
        ("len(a)", "function call"),
        ("a[0]", "subscript"),
        ("a[1:2]", "subscript"),
        ("lambda: 1", "lambda"),
        ("__import__", "'__import__'"),
        ("__builtins__", "'__builtins__'"),
        ("[x for x in a]", "comprehension"),
        ("{x for x in a}", "comprehension"),
        ("{x: 1 for x in a}", "comprehension"),
        ("any(x for x in a)", "function call"),
        ("(x for x in a)", "generator"),
        ("a + 1", "arithmetic"),
        ("a if b else c", "conditional"),
        ("(a := 1)", "assignment"),
        ("{'a': 1}", "dict"),
        ("{1, 2}", "set"),
        ("f'{a}'", "f-string"),
        ("a is None", "'is'"),
        ("a is not None", "'is not'"),
        ("-a", "'-'"),
        ("~a", "'~'"),
        ("b'x' == a", "bytes"),
        ("a == 1j", "complex"),
        ("...", "ellipsis"),
        ("(1, 2)", "only after 'in'"),
        ("a == [1]", "only after 'in'"),
        ("a in (b, 1)", "only constants"),
        ("a in [len(b)]", "only constants"),
    ],
)
def test_disallowed_constructs_are_rejected_by_name(source: str, construct: str):
    with pytest.raises(ExpressionError, match="not allowed|only") as caught:
        compile_condition(source)
    assert construct in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("source", ["", "   ", "a ==", "a = 1", "import os", "x" * 1001])
def test_invalid_or_oversized_sources_are_rejected(source: str):
    with pytest.raises(ExpressionError):
        compile_condition(source)


def test_deeply_nested_source_is_rejected_cleanly():
    with pytest.raises(ExpressionError):
        compile_condition("(" * 400 + "a" + ")" * 400)


# --- FormSpec --------------------------------------------------------------------------------


def test_form_field_lookup():
    form = FormSpec((FieldSpec("a", "A", "string"), FieldSpec("b", "B", "long")))
    assert form.field("b").type == "long"
    with pytest.raises(KeyError):
        form.field("c")


def test_form_rejects_duplicate_field_ids():
    with pytest.raises(ValueError, match="duplicate field ids in form: a"):
        FormSpec((FieldSpec("a", "A", "string"), FieldSpec("a", "A again", "long")))


def test_validation_error_carries_every_message():
    problem = FormValidationError({"a": "is required", "b": "must be a whole number"})
    assert problem.errors == {"a": "is required", "b": "must be a whole number"}
    assert "a is required" in str(problem)
    assert isinstance(problem, ValueError)


# --- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (FieldSpec("f", "F", "boolean", default="true"), True),
        (FieldSpec("f", "F", "boolean", default="false"), False),
        (FieldSpec("f", "F", "boolean"), False),  # an optional box starts unticked
        (FieldSpec("f", "F", "boolean", required=True), None),
        (FieldSpec("f", "F", "boolean", default=""), False),
        (FieldSpec("f", "F", "long", default="42"), 42),
        (FieldSpec("f", "F", "long", default="-7"), -7),
        (FieldSpec("f", "F", "long"), None),
        (FieldSpec("f", "F", "long", default=""), None),
        (FieldSpec("f", "F", "string", default="hello"), "hello"),
        (FieldSpec("f", "F", "string", default=""), ""),
        (FieldSpec("f", "F", "string"), None),
        (FieldSpec("f", "F", "date", default="2024-02-29"), "2024-02-29"),
        (FieldSpec("f", "F", "enum", default="fixed", options=CODES), "fixed"),
        (FieldSpec("f", "F", "enum", options=CODES), None),
    ],
)
def test_default_value(field: FieldSpec, expected: object):
    assert default_value(field) == expected
    assert type(default_value(field)) is type(expected)


@pytest.mark.parametrize(
    "field",
    [
        FieldSpec("f", "F", "boolean", default="on"),
        FieldSpec("f", "F", "boolean", default="True"),
        FieldSpec("f", "F", "long", default="4.5"),
        FieldSpec("f", "F", "long", default="x"),
        FieldSpec("f", "F", "date", default="2023-02-29"),
        FieldSpec("f", "F", "enum", default="broken", options=CODES),
    ],
)
def test_invalid_default_raises(field: FieldSpec):
    with pytest.raises(ValueError, match="default"):
        default_value(field)


# --- string ----------------------------------------------------------------------------------


def test_string_kept_exactly():
    assert clean(FieldSpec("s", "S", "string"), "  spaced  ") == "  spaced  "


@pytest.mark.parametrize("value", [5, True, 1.5, ["a"], {"a": 1}])
def test_string_rejects_non_text_from_json(value: object):
    assert error(FieldSpec("s", "S", "string"), {"s": value}) == "must be text"


def test_string_required():
    field = FieldSpec("s", "S", "string", required=True)
    assert error(field, {}) == "is required"
    assert error(field, {"s": None}) == "is required"
    assert error(field, {"s": ""}) == "is required"
    assert error(field, {"s": ""}, from_text=True) == "is required"
    assert clean(field, " ") == " "


def test_optional_string_absent_or_empty():
    field = FieldSpec("s", "S", "string", default="dflt")
    assert validate_submission(one(field), {}) == {"s": "dflt"}
    assert clean(field, None) == "dflt"
    assert clean(field, "") == ""  # an explicit empty text is a value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ab", "must be at least 3 characters long"),
        ("abcdef", "must be at most 5 characters long"),
    ],
)
def test_string_length_limits(value: str, message: str):
    field = FieldSpec("s", "S", "string", minlength=3, maxlength=5)
    assert error(field, {"s": value}) == message
    assert clean(field, "abc") == "abc"
    assert clean(field, "abcde") == "abcde"


def test_optional_empty_string_ignores_minlength():
    # As in HTML: an optional field left empty is not "too short".
    assert clean(FieldSpec("s", "S", "string", minlength=3), "") == ""


def test_length_counts_characters_not_bytes():
    assert clean(FieldSpec("s", "S", "string", maxlength=2), "日本") == "日本"


@settings(max_examples=200, deadline=None)
@given(
    minlength=st.integers(min_value=0, max_value=8),
    span=st.integers(min_value=0, max_value=8),
    text=st.text(max_size=20),
)
def test_string_length_property(minlength: int, span: int, text: str):
    maxlength = minlength + span
    field = FieldSpec("s", "S", "string", required=True, minlength=minlength, maxlength=maxlength)
    if text and minlength <= len(text) <= maxlength:
        assert clean(field, text) == text
    else:
        with pytest.raises(FormValidationError):
            validate_submission(one(field), {"s": text})


# --- long ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(3, 3), (-2, -2), (0, 0), (4.0, 4)])
def test_long_from_json(value: object, expected: int):
    result = clean(FieldSpec("n", "N", "long"), value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [True, False, 2.5, float("nan"), float("inf"), "3", [3]])
def test_long_rejects_from_json(value: object):
    assert error(FieldSpec("n", "N", "long"), {"n": value}) == "must be a whole number"


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("-12", -12), ("+5", 5), (" 7 ", 7)])
def test_long_from_text(value: str, expected: int):
    assert clean(FieldSpec("n", "N", "long"), value, from_text=True) == expected


@pytest.mark.parametrize("value", ["3.5", "3.0", "abc", "1_000", "١٢", "1e3", " "])
def test_long_rejects_from_text(value: str):
    field = FieldSpec("n", "N", "long")
    assert error(field, {"n": value}, from_text=True) == "must be a whole number"


def test_long_empty_text_is_absent():
    assert clean(FieldSpec("n", "N", "long", default="9"), "", from_text=True) == 9
    assert error(FieldSpec("n", "N", "long", required=True), {"n": ""}, from_text=True) == (
        "is required"
    )


def test_long_outside_64_bits():
    field = FieldSpec("n", "N", "long")
    assert clean(field, LONG_MAX) == LONG_MAX
    assert clean(field, LONG_MIN) == LONG_MIN
    assert error(field, {"n": LONG_MAX + 1}).startswith("must be between")
    assert error(field, {"n": "9" * 40}, from_text=True) == "must be a whole number"


def test_long_required():
    field = FieldSpec("n", "N", "long", required=True)
    assert error(field, {}) == "is required"
    assert error(field, {"n": None}) == "is required"
    assert clean(field, 0) == 0


def test_long_min_max():
    field = FieldSpec("n", "N", "long", min="1", max="5")
    assert error(field, {"n": 0}) == "must be at least 1"
    assert error(field, {"n": 6}) == "must be at most 5"
    assert error(field, {"n": "6"}, from_text=True) == "must be at most 5"
    assert clean(field, 1) == 1
    assert clean(field, 5) == 5


def test_long_bounds_compare_as_numbers_not_text():
    assert clean(FieldSpec("n", "N", "long", max="10"), 9) == 9  # "9" > "10" as text


# --- boolean ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_boolean_from_json(value: bool):
    assert clean(FieldSpec("b", "B", "boolean"), value) is value


@pytest.mark.parametrize("value", ["true", "on", 1, 0, "", "false"])
def test_boolean_rejects_non_booleans_from_json(value: object):
    assert error(FieldSpec("b", "B", "boolean"), {"b": value}) == "must be true or false"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("on", True), ("1", True), ("false", False), ("0", False), ("", False)],
)
def test_boolean_from_text(value: str, expected: bool):
    assert clean(FieldSpec("b", "B", "boolean"), value, from_text=True) is expected


@pytest.mark.parametrize("value", ["yes", "TRUE", "2", "off"])
def test_boolean_rejects_other_text(value: str):
    field = FieldSpec("b", "B", "boolean")
    assert error(field, {"b": value}, from_text=True) == "must be true or false"


def test_required_boolean_needs_the_key_in_json():
    field = FieldSpec("b", "B", "boolean", required=True)
    assert error(field, {}) == "is required"
    assert error(field, {"b": None}) == "is required"
    assert clean(field, False) is False


def test_missing_optional_checkbox_is_false():
    field = FieldSpec("b", "B", "boolean", default="true")
    assert validate_submission(one(field), {}, from_text=True) == {"b": False}


def test_required_boolean_from_a_browser_needs_a_choice():
    # A required boolean is a yes / no pair on the page (issue 10): nothing chosen is missing.
    field = FieldSpec("b", "B", "boolean", required=True, default="true")
    assert error(field, {}, from_text=True) == "is required"


def test_optional_boolean_absent_from_json_takes_default():
    assert validate_submission(one(FieldSpec("b", "B", "boolean")), {}) == {"b": False}
    ticked = FieldSpec("b", "B", "boolean", default="true")
    assert validate_submission(one(ticked), {}) == {"b": True}


# --- date ------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_text", [False, True])
def test_date_valid(from_text: bool):
    assert clean(FieldSpec("d", "D", "date"), "2024-02-29", from_text=from_text) == "2024-02-29"


def test_date_object_accepted():
    assert clean(FieldSpec("d", "D", "date"), date(2024, 5, 6)) == "2024-05-06"


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29",
        "2024-13-01",
        "20240101",
        "2024-1-1",
        "2024-W05-3",
        "2024-01-01T10:00",
        "01/02/2024",
        20240101,
        datetime(2024, 1, 1, 10, 0),
        True,
    ],
)
def test_date_invalid(value: object):
    assert error(FieldSpec("d", "D", "date"), {"d": value}) == "must be a date YYYY-MM-DD"


def test_date_required():
    field = FieldSpec("d", "D", "date", required=True)
    assert error(field, {}) == "is required"
    assert error(field, {"d": ""}, from_text=True) == "is required"
    assert error(field, {"d": ""}) == "is required"


def test_date_min_max_compare_as_dates():
    field = FieldSpec("d", "D", "date", min="2024-01-10", max="2024-12-31")
    assert error(field, {"d": "2024-01-09"}) == "must be on or after 2024-01-10"
    assert error(field, {"d": "2025-01-01"}) == "must be on or before 2024-12-31"
    assert clean(field, "2024-01-10") == "2024-01-10"
    assert clean(field, "2024-12-31") == "2024-12-31"


# --- enum ------------------------------------------------------------------------------------


def test_enum_accepts_option_ids():
    assert clean(FieldSpec("e", "E", "enum", options=CODES), "workaround") == "workaround"


def test_enum_accepts_ints_whose_text_is_an_option_id():
    field = FieldSpec("e", "E", "enum", options=options("1", "2", "3"))
    assert clean(field, 2) == "2"
    assert clean(field, "3", from_text=True) == "3"


@pytest.mark.parametrize("value", ["broken", "Fixed", True, 1, 1.0, ["fixed"]])
def test_enum_rejects_other_values(value: object):
    message = error(FieldSpec("e", "E", "enum", options=CODES), {"e": value})
    assert message == "must be one of: fixed, workaround, no_fault_found"


def test_enum_rejects_bool_even_when_1_is_an_option():
    field = FieldSpec("e", "E", "enum", options=options("1", "2"))
    assert error(field, {"e": True}) == "must be one of: 1, 2"


def test_enum_required_and_default():
    assert error(FieldSpec("e", "E", "enum", required=True, options=CODES), {"e": ""}) == (
        "is required"
    )
    defaulted = FieldSpec("e", "E", "enum", default="fixed", options=CODES)
    assert validate_submission(one(defaulted), {}) == {"e": "fixed"}
    assert validate_submission(one(defaulted), {"e": ""}, from_text=True) == {"e": "fixed"}


# --- whole forms -----------------------------------------------------------------------------

INITIAL_HANDLING = FormSpec(
    (
        FieldSpec("resolved_at_desk", "Resolved at the desk", "boolean", required=True),
        FieldSpec(
            "resolution", "Resolution", "string", required_if="resolved_at_desk", multiline=True
        ),
        FieldSpec("create_problem", "Create a problem", "boolean"),
        FieldSpec("create_knowledge_article", "Create a knowledge article", "boolean"),
    )
)

LEVEL2 = FormSpec(
    (
        FieldSpec(
            "level2_outcome",
            "Outcome",
            "enum",
            required=True,
            options=options("solved", "reassign", "escalate_level3", "escalate_vendor"),
        ),
        FieldSpec(
            "reassign_reason", "Reason", "string", required_if='level2_outcome == "reassign"'
        ),
        FieldSpec("title", "Title", "string", readonly=True),
    )
)


def test_required_if_true_requires_the_field():
    with pytest.raises(FormValidationError) as caught:
        validate_submission(INITIAL_HANDLING, {"resolved_at_desk": True})
    assert caught.value.errors == {"resolution": "is required"}
    with pytest.raises(FormValidationError):
        validate_submission(LEVEL2, {"level2_outcome": "reassign", "reassign_reason": ""})


def test_required_if_false_leaves_the_field_optional():
    assert validate_submission(INITIAL_HANDLING, {"resolved_at_desk": False}) == {
        "resolved_at_desk": False,
        "resolution": None,
        "create_problem": False,
        "create_knowledge_article": False,
    }
    assert validate_submission(LEVEL2, {"level2_outcome": "solved"}) == {
        "level2_outcome": "solved",
        "reassign_reason": None,
    }


def test_required_if_sees_coerced_values():
    # From a browser the checkbox arrives as "on"; the condition must see True.
    with pytest.raises(FormValidationError) as caught:
        validate_submission(INITIAL_HANDLING, {"resolved_at_desk": "on"}, from_text=True)
    assert caught.value.errors == {"resolution": "is required"}
    # And "no" is False, so no resolution is needed.
    cleaned = validate_submission(INITIAL_HANDLING, {"resolved_at_desk": "false"}, from_text=True)
    assert cleaned["resolved_at_desk"] is False


def test_required_if_satisfied():
    cleaned = validate_submission(
        INITIAL_HANDLING, {"resolved_at_desk": True, "resolution": "Restarted the router"}
    )
    assert cleaned["resolution"] == "Restarted the router"


def test_unknown_field_is_an_error():
    with pytest.raises(FormValidationError) as caught:
        validate_submission(LEVEL2, {"level2_outcome": "solved", "priority": 1})
    assert caught.value.errors == {"priority": "is not a field of this form"}


def test_readonly_field_is_dropped_not_an_error():
    cleaned = validate_submission(LEVEL2, {"level2_outcome": "solved", "title": "changed!"})
    assert "title" not in cleaned


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (FieldSpec("f", "F", "string", readonly=True), "x"),
        (FieldSpec("f", "F", "long", readonly=True, max="1"), 99),
        (FieldSpec("f", "F", "boolean", readonly=True, required=True), "maybe"),
        (FieldSpec("f", "F", "date", readonly=True), "2024-01-01"),
        (FieldSpec("f", "F", "enum", readonly=True, options=CODES), "broken"),
    ],
)
def test_readonly_fields_of_every_type_are_dropped(field: FieldSpec, value: object):
    assert validate_submission(one(field), {"f": value}) == {}
    assert validate_submission(one(field), {"f": value}, from_text=True) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (FieldSpec("f", "F", "long", minlength=9, maxlength=1), 12345),
        (FieldSpec("f", "F", "enum", options=CODES, maxlength=1), "workaround"),
        (FieldSpec("f", "F", "string", min="5", max="1"), "abc"),
        (FieldSpec("f", "F", "boolean", min="1"), True),
    ],
)
def test_constraints_that_do_not_apply_to_a_type_are_ignored(field: FieldSpec, value: object):
    # check_field_spec reports them; a submission is not blamed for the designer's mistake.
    assert clean(field, value) == value


def test_required_if_on_a_boolean():
    form = FormSpec(
        (
            FieldSpec("a", "A", "boolean"),
            FieldSpec("confirmed", "Confirmed", "boolean", required_if="a"),
        )
    )
    with pytest.raises(FormValidationError) as caught:
        validate_submission(form, {"a": True})
    assert caught.value.errors == {"confirmed": "is required"}
    assert validate_submission(form, {"a": False}) == {"a": False, "confirmed": False}
    # From a browser the unticked box is an answer (False).
    assert validate_submission(form, {"a": "on"}, from_text=True) == {"a": True, "confirmed": False}


def test_readonly_field_is_never_validated():
    form = FormSpec((FieldSpec("n", "N", "long", required=True, readonly=True),))
    assert validate_submission(form, {"n": "not a number"}) == {}


def test_every_problem_is_reported_at_once():
    form = FormSpec(
        (
            FieldSpec("category", "Category", "enum", required=True, options=options("hardware")),
            FieldSpec("impact", "Impact", "long", required=True, min="1", max="3"),
            FieldSpec("note", "Note", "string", maxlength=3),
            FieldSpec("day", "Day", "date"),
            FieldSpec("flag", "Flag", "boolean", required=True),
        )
    )
    with pytest.raises(FormValidationError) as caught:
        validate_submission(
            form, {"impact": 4, "note": "long", "day": "tomorrow", "zzz": 1, "aaa": 2}
        )
    assert caught.value.errors == {
        "category": "is required",
        "impact": "must be at most 3",
        "note": "must be at most 3 characters long",
        "day": "must be a date YYYY-MM-DD",
        "flag": "is required",
        "aaa": "is not a field of this form",
        "zzz": "is not a field of this form",
    }
    assert list(caught.value.errors) == ["category", "impact", "note", "day", "flag", "aaa", "zzz"]


def test_result_holds_every_editable_field_with_defaults():
    form = FormSpec(
        (
            FieldSpec("resolution", "Resolution", "string", required=True),
            FieldSpec("resolution_code", "Code", "enum", default="fixed", options=CODES),
            FieldSpec("create_problem", "Problem", "boolean"),
            FieldSpec("count", "Count", "long"),
            FieldSpec("shown", "Shown", "string", readonly=True, default="x"),
        )
    )
    assert validate_submission(form, {"resolution": "done"}) == {
        "resolution": "done",
        "resolution_code": "fixed",
        "create_problem": False,
        "count": None,
    }


def test_text_mode_submission_of_a_whole_form():
    form = FormSpec(
        (
            FieldSpec("satisfaction", "Satisfaction", "enum", options=options(*"12345")),
            FieldSpec("count", "Count", "long"),
            FieldSpec("when", "When", "date"),
            FieldSpec("ok", "OK", "boolean"),
            FieldSpec("feedback", "Feedback", "string"),
        )
    )
    submitted = {"satisfaction": "4", "count": "12", "when": "2024-06-01", "feedback": ""}
    assert validate_submission(form, submitted, from_text=True) == {
        "satisfaction": "4",
        "count": 12,
        "when": "2024-06-01",
        "ok": False,
        "feedback": "",
    }


def test_broken_required_if_is_a_spec_error_not_a_user_error():
    form = FormSpec((FieldSpec("s", "S", "string", required_if="len(x) > 1"),))
    with pytest.raises(ExpressionError):
        validate_submission(form, {})


# --- check_field_spec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        FieldSpec("category", "Category", "enum", required=True, options=CODES, default="fixed"),
        FieldSpec("n", "N", "long", min="1", max="5", default="3"),
        FieldSpec("d", "D", "date", min="2024-01-01", max="2024-12-31", default="2024-06-01"),
        FieldSpec("s", "S", "string", minlength=1, maxlength=5, multiline=True, default="abc"),
        FieldSpec("b", "B", "boolean", default="false", required_if="n == 1"),
        FieldSpec("r", "R", "string", readonly=True),
        FieldSpec("e", "E", "string", minlength=3, default=""),  # empty is not "too short"
    ],
)
def test_check_field_spec_accepts_sound_fields(field: FieldSpec):
    assert check_field_spec(field) == []


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        (FieldSpec("f", "F", "float"), "type 'float' is not allowed"),
        (FieldSpec("f", "F", "enum"), "an enum field needs at least one option"),
        (FieldSpec("f", "F", "enum", options=options("a", "b", "a")), "duplicate option ids: a"),
        (FieldSpec("f", "F", "enum", options=options("")), "option ids must not be empty"),
        (FieldSpec("f", "F", "string", options=CODES), "options apply only to enum fields"),
        (FieldSpec("f", "F", "enum", options=CODES, default="x"), "default 'x' must be one of"),
        (FieldSpec("f", "F", "long", default="x"), "default 'x' must be a whole number"),
        (FieldSpec("f", "F", "boolean", default="yes"), "default 'yes' must be true or false"),
        (FieldSpec("f", "F", "date", default="2024-02-30"), "default '2024-02-30' must be a date"),
        (FieldSpec("f", "F", "long", max="5", default="9"), "default '9' must be at most 5"),
        (FieldSpec("f", "F", "string", maxlength=2, default="abc"), "at most 2 characters"),
        (FieldSpec("f", "F", "long", min="x"), "min must be a whole number, got 'x'"),
        (FieldSpec("f", "F", "long", max="1.5"), "max must be a whole number"),
        (FieldSpec("f", "F", "date", min="01/01/2024"), "min must be a date YYYY-MM-DD"),
        (FieldSpec("f", "F", "long", min="5", max="1"), "min is greater than max"),
        (FieldSpec("f", "F", "date", min="2024-02-01", max="2024-01-01"), "min is greater"),
        (FieldSpec("f", "F", "string", min="1"), "min and max apply only to long and date"),
        (FieldSpec("f", "F", "string", minlength=-1), "minlength must be a whole number"),
        (FieldSpec("f", "F", "string", maxlength="5"), "maxlength must be a whole number"),  # type: ignore[arg-type]
        (FieldSpec("f", "F", "string", minlength=True), "minlength must be a whole number"),
        (FieldSpec("f", "F", "long", minlength=1), "minlength applies only to string fields"),
        (FieldSpec("f", "F", "string", minlength=5, maxlength=2), "minlength is greater"),
        (FieldSpec("f", "F", "long", multiline=True), "multiline applies only to string"),
        (FieldSpec("f", "F", "string", required_if="f("), "required_if is not valid"),
        (FieldSpec("f", "F", "string", required_if="x.y"), "attribute access"),
        (FieldSpec("2f", "F", "string"), "must be a Python identifier"),
        (FieldSpec("class", "F", "string"), "must be a Python identifier"),
    ],
)
def test_check_field_spec_reports_problems(field: FieldSpec, problem: str):
    problems = check_field_spec(field)
    assert any(problem in text for text in problems), problems


def test_check_field_spec_reports_several_problems():
    field = FieldSpec("f", "F", "enum", multiline=True, required_if="a.b", min="1")
    assert len(check_field_spec(field)) == 4


def test_check_form_spec_reports_conditions_on_unknown_fields():
    form = FormSpec(
        (
            FieldSpec("a", "A", "boolean"),
            FieldSpec("b", "B", "string", required_if="a and c"),
            FieldSpec("c2", "C", "float"),
        )
    )
    assert check_form_spec(form) == {
        "b": ["required_if names unknown fields: c"],
        "c2": ["type 'float' is not allowed; use one of: string, long, boolean, date, enum"],
    }
    assert check_form_spec(INITIAL_HANDLING) == {}
    assert check_form_spec(LEVEL2) == {}
