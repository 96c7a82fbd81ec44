"""Bounds on what a process definition may say, shared by the lint and the runtime.

A deployed diagram is attacker-controlled input twice over: its literal text (checked by the
lint at deploy time) and the values its expressions compute (checked here at run time,
before SpiffWorkflow sees them). Both use the functions of this module, so a timer the
lint accepts is exactly a timer the runtime accepts.

Timers: SpiffWorkflow expands a duration month by month (`get_timedelta_from_start`
loops once per month: "P99999999Y" is ~10^9 iterations in the request thread) and then
adds it to now, and converts dates to UTC: "P100000Y", "PT99999999999999H" or a date in
year 1 or 9999 overflow. `timer_value_problem` refuses all of that with a message.

Lengths: ids, names and texts end up in database columns (a user task's name in
`user_tasks.label`, ...) or at least in the stored spec and every page that shows it.
`text_problems` refuses what a column cannot hold and caps the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from lxml import etree

Element: TypeAlias = etree._Element

# --- timers -------------------------------------------------------------------------------------

# Ten years, measured with the longest calendar (a month of 31 days), so that every way of
# writing ten years (P10Y, P120M, P3650D, PT87600H) is allowed whatever the start date.
# Real timers are SLA reminders of hours to weeks; ten years is far beyond any of them,
# bounds SpiffWorkflow's month-by-month expansion to ~120 steps and keeps now + duration
# far from the end of the datetime range (year 9999).
MAX_TIMER_MONTHS = 10 * 12
MAX_TIMER_DURATION = timedelta(days=MAX_TIMER_MONTHS * 31)
_LONGEST_DAYS = {"years": 12 * 31, "months": 31, "weeks": 7, "days": 1}

# Timer dates must lie between the Unix epoch and 2200 (UTC). Earlier dates are surely
# mistakes and fire at once; 2200 is beyond any business need. Both are far enough from
# year 1 and 9999 that converting any time zone to UTC cannot overflow.
EARLIEST_TIMER_DATE = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMER_DATE = datetime(2200, 1, 1, tzinfo=UTC)

# The longest sensible ISO value ("2025-01-31T17:00:00.000000+05:30" is 32 characters); a
# cap keeps int() and the regular expressions below cheap on hostile strings.
MAX_TIMER_VALUE_CHARS = 64

TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")
CYCLES_UNSUPPORTED = "timer cycles are out of scope; use timeDuration or timeDate"

# ISO 8601 durations as SpiffWorkflow parses them: weeks stand alone, "T" needs a time part,
# and only seconds may have a fraction (the engine accepts a fraction only in the last part).
_DURATION = re.compile(
    r"P(?:(?P<date>(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?)"
    r"|(?P<weeks_part>(?P<weeks>\d+)W))"
    r"(?:T(?P<time>(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?))?"
)


def is_iso_duration(value: str) -> bool:
    """An ISO 8601 duration SpiffWorkflow reads the way it is written."""
    match = _DURATION.fullmatch(value)
    if match is None or match.group("time") == "":
        return False  # "P1DT": a T with nothing after it
    return any(match.group(part) for part in ("date", "weeks_part", "time"))


def _duration_problem(value: str) -> str | None:
    if not is_iso_duration(value):
        return f"timeDuration {value!r} is not an ISO 8601 duration such as 'PT4H' or 'P1D'"
    match = _DURATION.fullmatch(value)
    assert match is not None
    parts = {name: match.group(name) or "0" for name in _DURATION.groupindex}
    # Whole numbers of at most 64 digits: exact integer arithmetic, no overflow.
    months = int(parts["years"]) * 12 + int(parts["months"])
    days = sum(int(parts[name]) * factor for name, factor in _LONGEST_DAYS.items())
    whole = days * 86400 + int(parts["hours"]) * 3600 + int(parts["minutes"]) * 60
    seconds = whole + float(parts["seconds"])
    if months > MAX_TIMER_MONTHS or seconds > MAX_TIMER_DURATION.total_seconds():
        return (
            f"timeDuration {value!r} is too long: a timer may wait at most "
            f"{MAX_TIMER_DURATION.days} days (10 years, counting 31 days a month)"
        )
    return None


def _date_problem(value: str) -> str | None:
    example = "'2025-01-31T17:00:00+00:00'"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return (
            f"timeDate {value!r} is not an ISO 8601 date-time with a time zone, such as {example}"
        )
    if "W" in value.upper():
        # Week dates take a different, fragile path in the engine.
        return f"timeDate {value!r} is a week date; write a calendar date such as {example}"
    # The year test first: converting year 1 or 9999 to UTC may itself overflow.
    in_range = EARLIEST_TIMER_DATE.year - 1 <= moment.year <= LATEST_TIMER_DATE.year
    if not in_range or not EARLIEST_TIMER_DATE <= moment.astimezone(UTC) <= LATEST_TIMER_DATE:
        return (
            f"timeDate {value!r} must lie between {EARLIEST_TIMER_DATE:%Y-%m-%d} and "
            f"{LATEST_TIMER_DATE:%Y-%m-%d} (UTC)"
        )
    return None


def timer_value_problem(kind: str, value: object) -> str | None:
    """Why `value` is no acceptable value of a timer of this kind (`TIMER_KINDS`), or None.

    Used on literal timers by the lint and on every evaluated timer expression by the
    sandboxed script engine, before SpiffWorkflow parses or expands the value.
    """
    if kind == "timeCycle":
        return CYCLES_UNSUPPORTED
    if not isinstance(value, str):
        return f"{kind} must evaluate to a string, got {type(value).__name__}"
    if len(value) > MAX_TIMER_VALUE_CHARS:
        return f"{kind} value is longer than {MAX_TIMER_VALUE_CHARS} characters"
    if kind == "timeDuration":
        return _duration_problem(value)
    if kind == "timeDate":
        return _date_problem(value)
    raise ValueError(f"unknown timer kind {kind!r}")


# --- lengths ------------------------------------------------------------------------------------

# Lengths of the columns in engine/persistence/models.py that hold text from the diagram.
# The workflow layer may not import the persistence layer (DEVELOPERS.md), so they are
# repeated here; tests/test_bounds_lengths.py reads each one from its model
# (`Model.__table__.c.<column>.type.length`) and fails as soon as the two differ.
ELEMENT_ID_CHARS = 200  # user_tasks.name and events.task hold element ids
TASK_NAME_CHARS = 300  # user_tasks.label holds a user task's name
LANE_NAME_CHARS = 40  # user_tasks.lane holds its lane's name
PROCESS_KEY_CHARS = 200  # process_definitions.key holds the executable process's id
CATEGORY_CHARS = 40  # incidents.category holds the value of the form field 'category'
CATEGORY_FIELD = "category"

# Texts that have no column of their own (they live in the stored spec and on the pages):
# generous for people, small enough that a hostile upload cannot put megabytes into every
# inbox row, task page and problem report.
MAX_NAME_CHARS = 300  # any other name, a form field's label, an option's name
MAX_DOCUMENTATION_CHARS = 20_000  # bpmn:documentation (step instructions), annotation text
MAX_PROBLEM_CHARS = 1_000  # a problem message (it may quote what it refuses)

# The executable process's id is the process key: it appears in URLs and in the
# Content-Disposition header of downloads, so it is a plain identifier like the contract's
# keys (incident_management, problem_management, change_management).
MAX_PROCESS_KEY_CHARS = min(64, PROCESS_KEY_CHARS)
PROCESS_KEY = re.compile(rf"[A-Za-z_][A-Za-z0-9_-]{{0,{MAX_PROCESS_KEY_CHARS - 1}}}")
# No id may contain C0 or C1 control characters or Unicode line separators: ids are pinned
# on the diagram, put into URLs, headers and log lines.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
_LONG_TEXTS = frozenset({f"{{{_BPMN}}}documentation", f"{{{_BPMN}}}text"})


def shorten(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"


def printable(text: str) -> str:
    """`text` with control characters and line separators written as escapes (\\n, ...), so
    that a report quoting it stays on one line wherever it is printed."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def _quoted(value: str) -> str:
    return repr(shorten(value, 40))


def _too_long(what: str, value: str, limit: int) -> str | None:
    if len(value) <= limit:
        return None
    return f"{what} {_quoted(value)} is {len(value)} characters long; at most {limit} are allowed"


def _id_problems(element: Element, what: str, limit: int) -> Iterator[str]:
    identifier = element.get("id")
    if identifier is None:
        return
    control = _CONTROL.search(identifier)
    if control is not None:
        yield (
            f"{what} {_quoted(identifier)} contains the control character "
            f"U+{ord(control.group()):04X}; ids must be plain text"
        )
    found = _too_long(what, identifier, limit)
    if found:
        yield found


def _name_limit(tag: str) -> int:
    if tag == f"{{{_BPMN}}}userTask":
        return TASK_NAME_CHARS
    if tag == f"{{{_BPMN}}}lane":
        return LANE_NAME_CHARS
    return MAX_NAME_CHARS


def _category_problems(form_field: Element) -> Iterator[str]:
    """The value of the field 'category' is copied into incidents.category."""
    where = f"form field {CATEGORY_FIELD!r}"
    if form_field.get("type") == "enum":
        for option in form_field.iter(f"{{{_CAMUNDA}}}value"):
            found = _too_long(f"{where}: option id", option.get("id", ""), CATEGORY_CHARS)
            if found:
                yield found
        return
    maxlength = [
        constraint.get("config", "")
        for constraint in form_field.iter(f"{{{_CAMUNDA}}}constraint")
        if constraint.get("name") == "maxlength"
    ]
    if not maxlength or not maxlength[0].isdigit() or int(maxlength[0]) > CATEGORY_CHARS:
        yield (
            f"{where} is stored in a column of {CATEGORY_CHARS} characters: make it an enum "
            f"or give it a maxlength of at most {CATEGORY_CHARS}"
        )


def _camunda_problems(element: Element, local: str) -> Iterator[str]:
    if local == "formField":
        yield from _id_problems(element, "form field id", ELEMENT_ID_CHARS)
        found = _too_long("form field label", element.get("label", ""), MAX_NAME_CHARS)
        if found:
            yield found
        if element.get("id") == CATEGORY_FIELD:
            yield from _category_problems(element)
    elif local == "value":
        yield from _id_problems(element, "option id", ELEMENT_ID_CHARS)
        found = _too_long("option name", element.get("name", ""), MAX_NAME_CHARS)
        if found:
            yield found
    else:
        yield from _id_problems(element, f"camunda:{local} id", ELEMENT_ID_CHARS)


def _element_problems(element: Element) -> Iterator[str]:
    tag = element.tag
    if not isinstance(tag, str):
        return  # comments and processing instructions
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if namespace == _CAMUNDA:
        yield from _camunda_problems(element, local)
        return
    # Only BPMN ids are stored; diagram ids are derived from them ("Task_1_di").
    yield from _id_problems(
        element, "id", ELEMENT_ID_CHARS if namespace == _BPMN else MAX_NAME_CHARS
    )
    name = element.get("name")
    if name is not None and namespace == _BPMN:
        found = _too_long("name", name, _name_limit(tag))
        if found:
            yield found
    if tag in _LONG_TEXTS:
        found = _too_long(local, element.text or "", MAX_DOCUMENTATION_CHARS)
        if found:
            yield found


def process_key_problem(process_id: str | None) -> str | None:
    """Why the id of the executable process cannot be a process key, or None."""
    if process_id is not None and PROCESS_KEY.fullmatch(process_id):
        return None
    return (
        f"the process id {_quoted(process_id or '')} is the process key and must be a plain "
        f"identifier: a letter or '_', then up to {MAX_PROCESS_KEY_CHARS - 1} letters, "
        "digits, '_' or '-'"
    )


def text_problems(
    root: Element, executable_processes: Iterable[Element]
) -> Iterator[tuple[Element, str]]:
    """Every id, name and text of the document that is too long or not plain, with the
    element it is on; the id of every executable process must be a `PROCESS_KEY`."""
    for process in executable_processes:
        found = process_key_problem(process.get("id"))
        if found:
            yield process, found
    for element in root.iter():
        for message in _element_problems(element):
            yield element, message
