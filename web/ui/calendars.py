"""Business calendars page: the incident manager lists, creates, edits and deletes them.

Working hours are typed one weekday per line of the form ("08:30-12:00, 13:30-17:30"),
dates one per line; every check of roles and values runs in the service.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine.domain.calendars import WEEKDAY_KEYS
from engine.services.errors import Conflict, Invalid
from engine.services.sla import calendars as use_cases
from web.ui.labels import priority_label
from web.ui.session import actor, roles_required, services

calendars_blueprint = Blueprint("calendars", __name__)

PageResult = str | tuple[str, int]

DATE_FIELDS = use_cases.DATE_FIELDS
# What a new calendar starts with: the usual Taiwan office week.
NEW_CALENDAR: dict[str, Any] = {
    "name": "",
    "timezone": "Asia/Taipei",
    **{f"weekly_{key}": "" for key in WEEKDAY_KEYS},
    **{f"weekly_{key}": "09:00-12:00, 13:00-18:00" for key in WEEKDAY_KEYS[:5]},
    **{key: "" for key in DATE_FIELDS},
    "use_taiwan_holidays": True,
}
# Periods are separated by commas (or semicolons, half- or full-width).
_PERIOD_SEPARATORS = re.compile(r"[,;，；]")


def weekday_labels() -> dict[str, str]:
    return {
        "mon": _("Monday"),
        "tue": _("Tuesday"),
        "wed": _("Wednesday"),
        "thu": _("Thursday"),
        "fri": _("Friday"),
        "sat": _("Saturday"),
        "sun": _("Sunday"),
    }


def periods_text(periods: list[dict[str, str]]) -> str:
    return ", ".join(f"{p['start']}-{p['end']}" for p in periods)


def _form_of(calendar: dict[str, Any]) -> dict[str, Any]:
    """A stored calendar as the form shows it."""
    return {
        "name": calendar["name"],
        "timezone": calendar["timezone"],
        **{f"weekly_{key}": periods_text(calendar["weekly"][key]) for key in WEEKDAY_KEYS},
        **{key: "\n".join(calendar[key]) for key in DATE_FIELDS},
        "use_taiwan_holidays": calendar["use_taiwan_holidays"],
    }


def _periods(text: str) -> list[dict[str, str]] | None:
    """Text such as "08:30-12:00, 13:30-17:30" → periods; None if a piece is not START-END."""
    periods = []
    for piece in _PERIOD_SEPARATORS.split(text):
        if not piece.strip():
            continue
        start, dash, end = piece.replace("–", "-").partition("-")
        if not dash or not start.strip() or not end.strip():
            return None
        periods.append({"start": start.strip(), "end": end.strip()})
    return periods


def _read_form(
    form: MultiDict[str, str], name: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The typed values (kept for the page), the service payload and format errors."""
    typed: dict[str, Any] = {
        "name": name if name is not None else form.get("name", "").strip(),
        "timezone": form.get("timezone", "").strip(),
        **{f"weekly_{key}": form.get(f"weekly_{key}", "").strip() for key in WEEKDAY_KEYS},
        **{key: form.get(key, "") for key in DATE_FIELDS},
        "use_taiwan_holidays": "use_taiwan_holidays" in form,
    }
    errors: dict[str, str] = {}
    weekly: dict[str, list[dict[str, str]]] = {}
    for key in WEEKDAY_KEYS:
        periods = _periods(typed[f"weekly_{key}"])
        if periods is None:
            errors[f"weekly.{key}"] = _(
                "Write each period as HH:MM-HH:MM and separate periods with commas."
            )
        else:
            weekly[key] = periods
    payload: dict[str, Any] = {
        "timezone": typed["timezone"],
        "weekly": weekly,
        **{
            key: [line.strip() for line in typed[key].splitlines() if line.strip()]
            for key in DATE_FIELDS
        },
        "use_taiwan_holidays": typed["use_taiwan_holidays"],
    }
    if name is None:
        payload["name"] = typed["name"]
    return typed, payload, errors


def _translated(field: str, message: object) -> str:
    """The service speaks English; show its field messages in the user's language."""
    text = str(message)
    if field == "name":
        if text == use_cases.MSG_REQUIRED:
            return _("Enter a name.")
        if text == use_cases.MSG_RESERVED_NAME:
            return _("24x7 is built in; choose another name.")
        if text == use_cases.MSG_NAME_TAKEN:
            return _("A calendar with this name already exists.")
        return _("Use 1 to %(n)d lowercase letters, digits or underscores.", n=use_cases.NAME_MAX)
    if field == "timezone":
        if text == use_cases.MSG_REQUIRED:
            return _("Enter a time zone such as Asia/Taipei.")
        return _("Unknown time zone: use an IANA name such as Asia/Taipei.")
    if field == "weekly":
        return _("Give at least one weekday working hours.")
    if field.startswith("weekly."):
        if text == use_cases.MSG_MAKEUP_NEEDS_MONDAY:
            return _(
                "Make-up working days are worked with Monday's hours: give Monday working hours."
            )
        return _(
            "Use times from 00:00 to 24:00; each period must end after it starts, "
            "earliest first, without overlaps."
        )
    if field == "makeup_working_days" and text.startswith(use_cases.MSG_MAKEUP_CLASH):
        dates = text.partition(": ")[2]
        return _("These days are also extra days off: %(dates)s", dates=dates)
    if field in DATE_FIELDS:
        return _("Write one date per line as YYYY-MM-DD, for example 2026-10-10.")
    return text


def _messages(details: Any) -> dict[str, str]:
    if not isinstance(details, dict):
        return {}
    return {str(k): _translated(str(k), v) for k, v in details.items()}


def _list_page(status: int = 200, delete_errors: dict[str, str] | None = None) -> PageResult:
    page = render_template(
        "calendars/index.html",
        calendars=use_cases.list_calendars(services()),
        delete_errors=delete_errors or {},
        weekdays=WEEKDAY_KEYS,
        weekday_labels=weekday_labels(),
        periods_text=periods_text,
    )
    return page if status == 200 else (page, status)


def _form_page(
    calendar: dict[str, Any] | None,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> PageResult:
    """The form: a new calendar when `calendar` is None, else that one."""
    page = render_template(
        "calendars/edit.html",
        calendar=calendar,
        creating=calendar is None,
        form=form,
        errors=errors or {},
        weekdays=WEEKDAY_KEYS,
        weekday_labels=weekday_labels(),
        date_fields=DATE_FIELDS,
    )
    return page if status == 200 else (page, status)


@calendars_blueprint.get("/sla/calendars")
@roles_required(use_cases.EDITOR_ROLE)
def index() -> PageResult:
    return _list_page()


@calendars_blueprint.get("/sla/calendars/new")
@roles_required(use_cases.EDITOR_ROLE)
def new() -> PageResult:
    return _form_page(None, dict(NEW_CALENDAR))


@calendars_blueprint.post("/sla/calendars/new")
@roles_required(use_cases.EDITOR_ROLE)
def create() -> PageResult | Response:
    typed, payload, errors = _read_form(request.form, None)
    if errors:
        return _form_page(None, typed, errors, 422)
    try:
        use_cases.create_calendar(services(), actor(), payload)
    except Invalid as exc:
        return _form_page(None, typed, _messages(exc.details), 422)
    except Conflict as exc:
        return _form_page(None, typed, _messages(exc.details), 409)
    flash(
        _(
            "Calendar %(name)s created. Choose it for a priority on the SLA policies page.",
            name=typed["name"],
        ),
        "success",
    )
    return redirect(url_for("calendars.index"))


@calendars_blueprint.get("/sla/calendars/<name>/edit")
@roles_required(use_cases.EDITOR_ROLE)
def edit(name: str) -> PageResult:
    calendar = use_cases.get_calendar(services(), name)  # 404 for an unknown one
    return _form_page(calendar, _form_of(calendar))


@calendars_blueprint.post("/sla/calendars/<name>/edit")
@roles_required(use_cases.EDITOR_ROLE)
def update(name: str) -> PageResult | Response:
    use_cases.require_changeable(services(), actor(), name)  # 404, or 403 for 24x7
    calendar = use_cases.get_calendar(services(), name)
    typed, payload, errors = _read_form(request.form, calendar["name"])
    if errors:
        return _form_page(calendar, typed, errors, 422)
    try:
        use_cases.replace_calendar(services(), actor(), name, payload)
    except Invalid as exc:
        return _form_page(calendar, typed, _messages(exc.details), 422)
    flash(
        _(
            "Calendar %(name)s saved. The change applies to incidents created from now on.",
            name=name,
        ),
        "success",
    )
    return redirect(url_for("calendars.index"))


@calendars_blueprint.post("/sla/calendars/<name>/delete")
@roles_required(use_cases.EDITOR_ROLE)
def delete(name: str) -> PageResult | Response:
    try:
        use_cases.delete_calendar(services(), actor(), name)
    except Conflict as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        used_by = ", ".join(priority_label(p) for p in details.get("used_by", []))
        message = _(
            "The SLA policies of %(priorities)s use this calendar; choose another calendar "
            "for them first.",
            priorities=used_by,
        )
        return _list_page(409, {name: message})
    flash(_("Calendar %(name)s deleted.", name=name), "success")
    return redirect(url_for("calendars.index"))
