"""SLA policies page: the incident manager reads and changes the targets per priority.

Targets are typed in minutes or hours and stored in seconds; every check of
roles and values also runs in the service.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.services.errors import Invalid
from engine.services.sla import policies as use_cases
from engine.services.sla import suspensions
from web.ui.session import actor, roles_required, services

sla_blueprint = Blueprint("sla", __name__)

PageResult = str | tuple[str, int]

# Units a target may be typed in; seconds only appear for a value set so over the API.
UNITS: dict[str, int] = {"seconds": 1, "minutes": 60, "hours": 3600}
EDIT_UNITS = ("minutes", "hours")
KINDS = ("response", "resolution")
STAGES = use_cases.STAGES
_WHOLE_NUMBER = re.compile(r"\d{1,9}")


def duration(seconds: int) -> str:
    """A target in hours and minutes, e.g. "4 h", "15 min", "1 h 30 min"."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours and minutes:
        text = _("%(h)d h %(m)d min", h=hours, m=minutes)
    elif hours:
        text = _("%(h)d h", h=hours)
    elif minutes:
        text = _("%(m)d min", m=minutes)
    else:
        text = ""
    if secs:
        text = f"{text} {_('%(s)d s', s=secs)}".strip()
    return text


def unit_label(unit: str) -> str:
    return {"seconds": _("seconds"), "minutes": _("minutes"), "hours": _("hours")}.get(unit, unit)


def _split(seconds: int) -> tuple[str, str]:
    """The largest unit that shows the value as a whole number."""
    for unit in ("hours", "minutes", "seconds"):
        if seconds % UNITS[unit] == 0:
            return str(seconds // UNITS[unit]), unit
    return str(seconds), "seconds"  # pragma: no cover (seconds always divide)


def _form_of(policy: dict[str, Any]) -> dict[str, str]:
    form: dict[str, str] = {"calendar": policy["calendar"], "note": ""}
    for kind in KINDS:
        value, unit = _split(policy[f"{kind}_seconds"])
        form[f"{kind}_value"], form[f"{kind}_unit"] = value, unit
    for stage, target in policy["stages"].items():
        value, unit = _split(target["target_seconds"]) if target else ("", "hours")
        form[f"{stage}_value"], form[f"{stage}_unit"] = value, unit
        form[f"{stage}_calendar"] = (target or {}).get("calendar") or ""
    return form


def _stage_changes(form: Any, typed: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """Stage targets from the form: an empty amount removes the stage's target."""
    stages: dict[str, Any] = {}
    for stage in STAGES:
        if f"{stage}_value" not in form:
            continue  # a form without the stage's fields leaves its target alone
        raw = form.get(f"{stage}_value", "").strip()
        unit = form.get(f"{stage}_unit", "")
        calendar = form.get(f"{stage}_calendar", "").strip()
        typed[f"{stage}_value"], typed[f"{stage}_unit"] = raw, unit
        typed[f"{stage}_calendar"] = calendar
        key = f"stages.{stage}.target_seconds"
        if not raw:
            stages[stage] = None
        elif unit not in UNITS:
            errors[key] = _("Choose minutes or hours.")
        elif not _WHOLE_NUMBER.fullmatch(raw) or int(raw) == 0:
            errors[key] = _("Enter a whole number greater than zero.")
        else:
            stages[stage] = {"target_seconds": int(raw) * UNITS[unit], "calendar": calendar or None}
    return stages


def _translated(message: object) -> str:
    """The service speaks English; show its field messages in the user's language."""
    text = str(message)
    if text in (use_cases.MSG_NOT_INTEGER, use_cases.MSG_NOT_POSITIVE):
        return _("Enter a whole number greater than zero.")
    if text == use_cases.MSG_TOO_LARGE:
        return _("Use at most %(h)d hours.", h=use_cases.MAX_SECONDS // 3600)
    if text == use_cases.MSG_RESPONSE_NOT_BELOW:
        return _("The response target must be shorter than the resolution target.")
    if text == use_cases.MSG_RESOLUTION_NOT_ABOVE:
        return _("The resolution target must be longer than the response target.")
    if text in (use_cases.MSG_UNKNOWN_CALENDAR, use_cases.MSG_STAGE_CALENDAR):
        return _("Choose a calendar from the list.")
    if text == use_cases.MSG_NOTE_TOO_LONG:
        return _("Use at most %(n)d characters.", n=use_cases.NOTE_MAX)
    return text


def _page(
    status: int = 200,
    typed: dict[int, dict[str, str]] | None = None,
    errors: dict[int, dict[str, str]] | None = None,
) -> PageResult:
    policies = use_cases.list_policies(services())
    forms = {p["priority"]: _form_of(p) for p in policies}
    forms.update(typed or {})
    page = render_template(
        "sla/policies.html",
        policies=policies,
        forms=forms,
        errors=errors or {},
        history=use_cases.policy_history(services()),
        calendars=use_cases.calendar_names(services()),
        edit_units=EDIT_UNITS,
        kinds=KINDS,
        stages=STAGES,
        duration=duration,
        unit_label=unit_label,
    )
    return page if status == 200 else (page, status)


@sla_blueprint.get("/sla/policies")
@roles_required(use_cases.EDITOR_ROLE)
def policies() -> PageResult:
    return _page()


@sla_blueprint.post("/sla/policies/<int:priority>")
@roles_required(use_cases.EDITOR_ROLE)
def update(priority: int) -> PageResult | Response:
    number = use_cases.parse_priority(priority)  # 404 for an unknown priority
    form = request.form
    typed = {
        "calendar": form.get("calendar", "").strip(),
        "note": form.get("note", "").strip(),
    }
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {"calendar": typed["calendar"]}
    for kind in KINDS:
        raw = form.get(f"{kind}_value", "").strip()
        unit = form.get(f"{kind}_unit", "")
        typed[f"{kind}_value"], typed[f"{kind}_unit"] = raw, unit
        if unit not in UNITS:
            errors[f"{kind}_seconds"] = _("Choose minutes or hours.")
        elif not _WHOLE_NUMBER.fullmatch(raw) or int(raw) == 0:
            errors[f"{kind}_seconds"] = _("Enter a whole number greater than zero.")
        else:
            payload[f"{kind}_seconds"] = int(raw) * UNITS[unit]
    if stages := _stage_changes(form, typed, errors):
        payload["stages"] = stages
    if errors:
        return _page(422, {number: typed}, {number: errors})
    before = {p["priority"]: p["version"] for p in use_cases.list_policies(services())}
    try:
        policy = use_cases.update_policy(services(), actor(), number, payload, note=typed["note"])
    except Invalid as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        found = {str(k): _translated(v) for k, v in details.items()}
        return _page(422, {number: typed}, {number: found or {"": _translated(exc.message)}})
    if policy["version"] == before.get(number):
        flash(_("Priority %(p)d: nothing changed.", p=number), "info")
    else:
        flash(
            _(
                "Priority %(p)d: new targets saved as version %(v)d. They apply to incidents "
                "created from now on.",
                p=number,
                v=policy["version"],
            ),
            "success",
        )
    return redirect(url_for("sla.policies"))


# Report periods offered on the page, in days (0: since the beginning).
REPORT_PERIODS = (7, 30, 90, 0)


@sla_blueprint.get("/sla/suspensions")
@roles_required(suspensions.REPORT_ROLE)
def suspended_time() -> str:
    raw = request.args.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in REPORT_PERIODS else 30
    since = services().now() - timedelta(days=days) if days else None
    report = suspensions.suspension_report(services(), actor(), since)
    return render_template("sla/suspensions.html", report=report, days=days, periods=REPORT_PERIODS)
