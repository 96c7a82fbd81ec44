"""User-task forms: the contract's field types, constraints and coercions as pure code.

A `FormSpec` mirrors a Camunda generated form (`camunda:formData`) as parsed from BPMN; the
same validation serves the JSON API (`from_text=False`) and HTML form posts
(`from_text=True`, where every value arrives as a string and unchecked boxes are omitted:
an optional boolean left out is False, a required one (two choices, yes / no) is missing).
"""

from __future__ import annotations

import keyword
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TypeVar

from engine.domain.expressions import Condition, ExpressionError, compile_condition

ALLOWED_FIELD_TYPES: tuple[str, ...] = ("string", "long", "boolean", "date", "enum")
ALLOWED_CONSTRAINTS: tuple[str, ...] = (
    "required",
    "minlength",
    "maxlength",
    "min",
    "max",
    "readonly",
)
ALLOWED_FIELD_PROPERTIES: tuple[str, ...] = ("required_if", "multiline")

# `long` is stored as a 64-bit integer in the database and in Camunda.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TEXT_BOOLEANS: Mapping[str, bool] = {
    "true": True,
    "on": True,  # what a browser sends for a checked checkbox without a value attribute
    "1": True,
    "false": False,
    "0": False,
    "": False,
}


@dataclass(frozen=True)
class FieldOption:
    id: str
    name: str


@dataclass(frozen=True)
class FieldSpec:
    id: str
    label: str
    type: str
    default: str | None = None  # raw, as written in the BPMN
    required: bool = False
    readonly: bool = False
    minlength: int | None = None
    maxlength: int | None = None
    min: str | None = None  # raw; compared as a number (long) or a date (date)
    max: str | None = None
    required_if: str | None = None
    multiline: bool = False
    options: tuple[FieldOption, ...] = ()

    @property
    def option_ids(self) -> tuple[str, ...]:
        return tuple(option.id for option in self.options)


@dataclass(frozen=True)
class FormSpec:
    fields: tuple[FieldSpec, ...] = ()

    def __post_init__(self) -> None:
        # Two fields with one id would make the submission ambiguous.
        counts = Counter(spec.id for spec in self.fields)
        duplicates = sorted(field_id for field_id, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate field ids in form: {', '.join(duplicates)}")

    def field(self, field_id: str) -> FieldSpec:
        """The field with this id; KeyError if the form has none."""
        for spec in self.fields:
            if spec.id == field_id:
                return spec
        raise KeyError(field_id)


class FormValidationError(ValueError):
    """Invalid submitted values; `errors` maps field id to a short message (the API's 422)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        summary = "; ".join(f"{field_id} {message}" for field_id, message in self.errors.items())
        super().__init__(f"invalid form submission: {summary}")


class _Invalid(Exception):
    """A value cannot be used for its field; the message goes to the user as is."""


# --- parsing raw values ----------------------------------------------------------------------


def _parse_long_text(text: str) -> int:
    # int() alone would also take "1_000", " ٣ " (Arabic-Indic digits) and 4000-digit strings.
    if not _INTEGER_TEXT.fullmatch(text):
        raise _Invalid("must be a whole number")
    return _in_long_range(int(text))


def _in_long_range(value: int) -> int:
    if not LONG_MIN <= value <= LONG_MAX:
        raise _Invalid(f"must be between {LONG_MIN} and {LONG_MAX}")
    return value


def _parse_date_text(text: str) -> date:
    # date.fromisoformat alone would also take "20240131" and week dates like "2024-W05-3".
    if not _DATE_TEXT.fullmatch(text):
        raise _Invalid("must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Invalid("must be a date YYYY-MM-DD") from None


# --- coercion of one submitted value ---------------------------------------------------------


def _coerce_string(field: FieldSpec, raw: object, from_text: bool) -> object:
    if isinstance(raw, str):
        return raw
    raise _Invalid("must be text")


def _coerce_long(field: FieldSpec, raw: object, from_text: bool) -> object:
    if isinstance(raw, bool):
        raise _Invalid("must be a whole number")
    if isinstance(raw, int):
        return _in_long_range(raw)
    if isinstance(raw, float):
        # JSON numbers may arrive as 3.0; a fraction would be silently lost.
        if not raw.is_integer():
            raise _Invalid("must be a whole number")
        return _in_long_range(int(raw))
    if from_text and isinstance(raw, str):
        return _parse_long_text(raw.strip())
    raise _Invalid("must be a whole number")


def _coerce_boolean(field: FieldSpec, raw: object, from_text: bool) -> object:
    if isinstance(raw, bool):
        return raw
    if from_text and isinstance(raw, str) and raw in _TEXT_BOOLEANS:
        return _TEXT_BOOLEANS[raw]
    raise _Invalid("must be true or false")


def _coerce_date(field: FieldSpec, raw: object, from_text: bool) -> object:
    # datetime is a date subclass, but a time part would be silently dropped.
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, str):
        return _parse_date_text(raw).isoformat()
    raise _Invalid("must be a date YYYY-MM-DD")


def _coerce_enum(field: FieldSpec, raw: object, from_text: bool) -> object:
    # bool is an int subclass; True must not select option "1".
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if isinstance(raw, str) and raw in field.option_ids:
        return raw
    raise _Invalid(f"must be one of: {', '.join(field.option_ids)}")


_COERCERS: Mapping[str, Callable[[FieldSpec, object, bool], object]] = {
    "string": _coerce_string,
    "long": _coerce_long,
    "boolean": _coerce_boolean,
    "date": _coerce_date,
    "enum": _coerce_enum,
}


def _coerce(field: FieldSpec, raw: object, from_text: bool) -> object:
    coercer = _COERCERS.get(field.type)
    if coercer is None:
        raise ValueError(f"field {field.id!r} has unsupported type {field.type!r}")
    return coercer(field, raw, from_text)


# --- constraints -----------------------------------------------------------------------------


def _long_bound(field: FieldSpec, raw: str) -> int:
    try:
        return _parse_long_text(raw.strip())
    except _Invalid:
        raise ValueError(f"field {field.id!r}: bound {raw!r} is not a whole number") from None


def _date_bound(field: FieldSpec, raw: str) -> date:
    try:
        return _parse_date_text(raw.strip())
    except _Invalid:
        raise ValueError(f"field {field.id!r}: bound {raw!r} is not a date YYYY-MM-DD") from None


def _check_length(field: FieldSpec, value: str) -> None:
    if field.minlength is not None and len(value) < field.minlength:
        raise _Invalid(f"must be at least {field.minlength} characters long")
    if field.maxlength is not None and len(value) > field.maxlength:
        raise _Invalid(f"must be at most {field.maxlength} characters long")


def _check_long_range(field: FieldSpec, value: int) -> None:
    if field.min is not None and value < _long_bound(field, field.min):
        raise _Invalid(f"must be at least {_long_bound(field, field.min)}")
    if field.max is not None and value > _long_bound(field, field.max):
        raise _Invalid(f"must be at most {_long_bound(field, field.max)}")


def _check_date_range(field: FieldSpec, value: str) -> None:
    day = date.fromisoformat(value)
    if field.min is not None and day < _date_bound(field, field.min):
        raise _Invalid(f"must be on or after {_date_bound(field, field.min).isoformat()}")
    if field.max is not None and day > _date_bound(field, field.max):
        raise _Invalid(f"must be on or before {_date_bound(field, field.max).isoformat()}")


def _check_constraints(field: FieldSpec, value: object) -> None:
    """Raise _Invalid if a non-empty cleaned value breaks a length or range constraint."""
    # Emptiness is `required`'s business; an optional field left empty is fine (as in HTML).
    if value is None or value == "":
        return
    if field.type == "string" and isinstance(value, str):
        _check_length(field, value)
    elif field.type == "long" and isinstance(value, int):
        _check_long_range(field, value)
    elif field.type == "date" and isinstance(value, str):
        _check_date_range(field, value)


# --- defaults and submissions ----------------------------------------------------------------


def _parse_default(field: FieldSpec) -> object:
    raw = field.default
    # Modelers write an empty attribute for "no default"; only text can be meaningfully empty.
    if raw is None or (raw == "" and field.type != "string"):
        return False if field.type == "boolean" and not field.required else None
    if field.type == "boolean":
        # Camunda writes exactly these; "on"/"1" are browser artefacts, not BPMN.
        if raw not in ("true", "false"):
            raise _Invalid("must be true or false")
        return raw == "true"
    return _coerce(field, raw, True)


def default_value(field: FieldSpec) -> object:
    """The field's BPMN default as a contract value; ValueError if the default is invalid.

    Without a default: False for an optional boolean (an unticked box), otherwise None.
    """
    try:
        return _parse_default(field)
    except _Invalid as problem:
        raise ValueError(f"field {field.id!r}: default {field.default!r} {problem}") from None


_MISSING: object = object()


def _is_empty(field: FieldSpec, raw: object) -> bool:
    """Whether a submitted value means "nothing given" (then the default applies)."""
    if raw is _MISSING or raw is None:
        return True
    # Browsers send "" for empty inputs; for text "" is a value (though not enough for required).
    return raw == "" and field.type not in ("string", "boolean")


def _clean_one(field: FieldSpec, raw: object, from_text: bool) -> tuple[object, bool]:
    """The cleaned value and whether a value was provided (what `required` asks for)."""
    if field.type == "boolean" and from_text and field.required and raw in (_MISSING, ""):
        # A required boolean is a pair of yes/no choices on the page: nothing chosen means
        # nobody decided, never "false" (an unticked box once silently reopened incidents).
        return default_value(field), False
    if field.type == "boolean" and from_text and raw is _MISSING:
        # Browsers omit unchecked boxes, so absence is an explicit False.
        return False, True
    if _is_empty(field, raw):
        return default_value(field), False
    value = _coerce(field, raw, from_text)
    return value, value != "" or field.type != "string"


@lru_cache(maxsize=256)
def _condition(source: str) -> Condition:
    return compile_condition(source)


def _is_required(field: FieldSpec, cleaned: Mapping[str, object]) -> bool:
    if field.required:
        return True
    return field.required_if is not None and _condition(field.required_if).evaluate(cleaned)


def validate_submission(
    form: FormSpec, submitted: Mapping[str, object], *, from_text: bool = False
) -> dict[str, object]:
    """Clean a submission: every non-readonly field of the form, coerced, defaults filled.

    Raises FormValidationError listing every problem at once. Read-only fields are ignored
    (a submitted value is dropped). ValueError/ExpressionError mean the form spec is broken.
    """
    editable = [field for field in form.fields if not field.readonly]
    known = {field.id for field in form.fields}
    errors: dict[str, str] = {
        str(key): "is not a field of this form" for key in submitted if key not in known
    }
    cleaned: dict[str, object] = {}
    provided: dict[str, bool] = {}
    for field in editable:
        try:
            cleaned[field.id], provided[field.id] = _clean_one(
                field, submitted.get(field.id, _MISSING), from_text
            )
        except _Invalid as problem:
            errors[field.id] = str(problem)
    # Second pass: required_if reads other fields' cleaned values, so all must be coerced first.
    for field in editable:
        if field.id not in cleaned:
            continue
        if not provided[field.id] and _is_required(field, cleaned):
            errors[field.id] = "is required"
        elif provided[field.id]:
            try:
                _check_constraints(field, cleaned[field.id])
            except _Invalid as problem:
                errors[field.id] = str(problem)
    if errors:
        raise FormValidationError(_in_form_order(errors, form))
    return {field.id: cleaned[field.id] for field in editable}


def _in_form_order(errors: Mapping[str, str], form: FormSpec) -> dict[str, str]:
    # Stable, readable order for people and tests: form order, then unknown keys.
    order = {field.id: index for index, field in enumerate(form.fields)}
    return dict(sorted(errors.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


# --- linting a field spec --------------------------------------------------------------------


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_id(field: FieldSpec) -> list[str]:
    # Field values become process variables that gateways read as Python names.
    if not isinstance(field.id, str) or not field.id.isidentifier() or keyword.iskeyword(field.id):
        return [f"id {field.id!r} must be a Python identifier"]
    return []


def _check_options(field: FieldSpec) -> list[str]:
    if field.type != "enum":
        return ["options apply only to enum fields"] if field.options else []
    if not field.options:
        return ["an enum field needs at least one option"]
    problems: list[str] = []
    ids = field.option_ids
    if any(not option_id for option_id in ids):
        problems.append("option ids must not be empty")
    duplicates = sorted({option_id for option_id in ids if ids.count(option_id) > 1})
    if duplicates:
        problems.append(f"duplicate option ids: {', '.join(duplicates)}")
    return problems


def _check_lengths(field: FieldSpec) -> list[str]:
    problems: list[str] = []
    for name, value in (("minlength", field.minlength), ("maxlength", field.maxlength)):
        if value is None:
            continue
        if not _is_count(value):
            problems.append(f"{name} must be a whole number of at least 0, got {value!r}")
        elif field.type != "string":
            problems.append(f"{name} applies only to string fields")
    low, high = field.minlength, field.maxlength
    if _is_count(low) and _is_count(high) and low is not None and high is not None and low > high:
        problems.append("minlength is greater than maxlength")
    return problems


_Bound = TypeVar("_Bound", int, date)


def _bound_problems(
    field: FieldSpec, parse: Callable[[FieldSpec, str], _Bound], kind: str
) -> list[str]:
    problems: list[str] = []
    bounds: dict[str, _Bound] = {}
    for name, raw in (("min", field.min), ("max", field.max)):
        if raw is None:
            continue
        try:
            if not isinstance(raw, str):
                raise ValueError(raw)
            bounds[name] = parse(field, raw)
        except ValueError:
            problems.append(f"{name} must be {kind}, got {raw!r}")
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problems.append("min is greater than max")
    return problems


def _check_bounds(field: FieldSpec) -> list[str]:
    if field.min is None and field.max is None:
        return []
    if field.type == "long":
        return _bound_problems(field, _long_bound, "a whole number")
    if field.type == "date":
        return _bound_problems(field, _date_bound, "a date YYYY-MM-DD")
    return ["min and max apply only to long and date fields"]


def _check_default(field: FieldSpec) -> list[str]:
    try:
        value = _parse_default(field)
        if field.default is not None:
            _check_constraints(field, value)
    except _Invalid as problem:
        return [f"default {field.default!r} {problem}"]
    return []


def _check_properties(field: FieldSpec) -> list[str]:
    problems: list[str] = []
    if field.multiline and field.type != "string":
        problems.append("multiline applies only to string fields")
    if field.required_if is not None:
        try:
            _condition(field.required_if)
        except ExpressionError as problem:
            problems.append(f"required_if is not valid: {problem}")
    return problems


def check_field_spec(field: FieldSpec) -> list[str]:
    """Problems with the field definition itself (for the BPMN linter); empty when fine."""
    if field.type not in ALLOWED_FIELD_TYPES:
        allowed = ", ".join(ALLOWED_FIELD_TYPES)
        return [*_check_id(field), f"type {field.type!r} is not allowed; use one of: {allowed}"]
    shape = _check_options(field) + _check_lengths(field) + _check_bounds(field)
    # A default can only be judged once its options and bounds are known to be sound.
    default = [] if shape else _check_default(field)
    return _check_id(field) + shape + default + _check_properties(field)


def check_form_spec(form: FormSpec) -> dict[str, list[str]]:
    """Problems per field id, including required_if conditions naming no field of the form."""
    known = {field.id for field in form.fields}
    report: dict[str, list[str]] = {}
    for field in form.fields:
        problems = check_field_spec(field)
        if field.required_if is not None and not problems:
            unknown = sorted(_condition(field.required_if).names - known)
            if unknown:
                problems.append(f"required_if names unknown fields: {', '.join(unknown)}")
        if problems:
            report[field.id] = problems
    return report
