"""The inbox and the task pages: see a step, fill in its form, claim, release, assign.

Every check of roles, lanes and claims happens in the services; the views only
turn their answers and errors into pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from engine.domain.roles import LANE_ROLES
from engine.services.errors import Conflict, Invalid
from engine.services.incidents import commands as incident_cases
from engine.services.incidents.diagram_texts import (
    DIAGRAM_LANGUAGE,
    DiagramTexts,
    incident_texts,
    texts_of_incidents,
)
from engine.services.people.users import usernames_with_role
from engine.services.tasks import commands as task_cases
from engine.services.tasks import inbox as inbox_cases
from web.redirects import safe_redirect_target
from web.ui.labels import role_label
from web.ui.session import actor, roles_required, services

tasks_blueprint = Blueprint("tasks", __name__)

INBOX_ROLES = tuple(sorted(LANE_ROLES - {"reporter"}))
TRUE_TEXTS = ("true", "on", "1")
FALSE_TEXTS = ("false", "0")


# -- labels from the diagram's own translations, else the catalog, else the BPMN -----------


def _catalog(key: str, fallback: str | None) -> str:
    text = _(key)
    return text if text and text != key else (fallback or "")


def use_diagram_texts(texts: DiagramTexts | None) -> None:
    """The process version whose texts this request's page shows (one incident's)."""
    g.diagram_texts = texts


def page_language() -> str:
    return str(get_locale() or DIAGRAM_LANGUAGE)


def diagram_text(
    texts: DiagramTexts | None, element_id: str, what: str, catalog_key: str, fallback: str | None
) -> str:
    """The diagram's text in the page language; the catalog only for a text the diagram
    has no translation of (older versions, elements a designer has not translated)."""
    texts = texts if texts is not None else g.get("diagram_texts")
    if texts is not None:
        shown = texts.text(element_id, what, page_language())
        if shown:
            return shown
    return _catalog(catalog_key, fallback)


@tasks_blueprint.app_template_global()
def task_label(
    task_name: str, bpmn_label: str | None = None, texts: DiagramTexts | None = None
) -> str:
    return diagram_text(texts, task_name, "name", f"task:{task_name}", bpmn_label) or task_name


@tasks_blueprint.app_template_global()
def field_label(task: str, field_id: str, bpmn_label: str | None = None) -> str:
    return (
        diagram_text(None, task, f"label:{field_id}", f"field:{task}:{field_id}", bpmn_label)
        or field_id
    )


@tasks_blueprint.app_template_global()
def option_label(task: str, field: str, option_id: str, bpmn_name: str | None = None) -> str:
    what, key = f"option:{field}:{option_id}", f"option:{task}:{field}:{option_id}"
    return diagram_text(None, task, what, key, bpmn_name) or option_id


@tasks_blueprint.app_template_global()
def instructions(task: str, bpmn_documentation: str | None = None) -> str:
    return diagram_text(None, task, "documentation", f"doc:{task}", bpmn_documentation) or ""


@tasks_blueprint.app_template_global()
def incident_url(incident_id: int) -> str:
    """The incident page (its path is fixed by the contract)."""
    return f"/incidents/{int(incident_id)}"


# -- messages of the form validation, in the user's language ------------------------------

_FIXED_MESSAGES: dict[str, Callable[[], str]] = {
    "is required": lambda: _("This field is required."),
    "must be a whole number": lambda: _("Enter a whole number."),
    "must be a date YYYY-MM-DD": lambda: _("Enter a date (YYYY-MM-DD)."),
    "must be true or false": lambda: _("Tick the box or leave it empty."),
    "must be text": lambda: _("Enter text."),
    "is not a field of this form": lambda: _("This is not a field of this form."),
}
_PATTERN_MESSAGES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"must be one of: .*"), lambda m: _("Choose one of the options.")),
    (
        re.compile(r"must be at least (\d+) characters long"),
        lambda m: _("Enter at least %(n)s characters.", n=m.group(1)),
    ),
    (
        re.compile(r"must be at most (\d+) characters long"),
        lambda m: _("Enter at most %(n)s characters.", n=m.group(1)),
    ),
    (
        re.compile(r"must be between (-?\d+) and (-?\d+)"),
        lambda m: _("Enter a number from %(low)s to %(high)s.", low=m.group(1), high=m.group(2)),
    ),
    (re.compile(r"must be at least (-?\d+)"), lambda m: _("Enter %(n)s or more.", n=m.group(1))),
    (re.compile(r"must be at most (-?\d+)"), lambda m: _("Enter %(n)s or less.", n=m.group(1))),
    (
        re.compile(r"must be on or after (\S+)"),
        lambda m: _("Enter %(day)s or a later date.", day=m.group(1)),
    ),
    (
        re.compile(r"must be on or before (\S+)"),
        lambda m: _("Enter %(day)s or an earlier date.", day=m.group(1)),
    ),
    (
        re.compile(r"must be an active user of the (\w+) lane"),
        lambda m: _(
            "Enter the username of an active user in the lane %(lane)s.",
            lane=role_label(m.group(1)),
        ),
    ),
]


def field_message(message: str) -> str:
    """A validation message of the services, translated where it is a known one."""
    fixed = _FIXED_MESSAGES.get(message)
    if fixed is not None:
        return fixed()
    for pattern, translate in _PATTERN_MESSAGES:
        match = pattern.fullmatch(message)
        if match:
            return translate(match)
    return message


def _inbox_messages(details: Any) -> dict[str, str]:
    texts = {
        "lane": _("Choose one of your lanes."),
        "priority": _("Choose a priority from P1 to P5."),
        "view": _("Choose your lanes' tasks or your own tasks."),
        "sort": _("Sort by number, priority, age or time left."),
        "dir": _("Sort ascending or descending."),
        "page": _("The page must be a whole number of at least 1."),
    }
    if not isinstance(details, dict):
        return {}
    return {key: texts.get(key, str(value)) for key, value in details.items()}


# -- the inbox -----------------------------------------------------------------------------


@tasks_blueprint.get("/tasks")
@login_required
@roles_required(*INBOX_ROLES)
def inbox() -> str | tuple[str, int]:
    me = actor()
    ctx = services()
    errors: dict[str, str] = {}
    try:
        query = inbox_cases.parse_query(me, request.args.to_dict())
        result = inbox_cases.list_inbox(ctx, me, query)
    except Invalid as exc:
        errors = _inbox_messages(exc.details)
        query = inbox_cases.InboxQuery()
        result = {"items": [], "total": 0, "page": 1, "pages": 1,
                  "per_page": inbox_cases.PAGE_SIZE}
    # Each task's name from its own incident's process version.
    texts = texts_of_incidents(ctx, [item["incident_id"] for item in result["items"]])
    for item in result["items"]:
        item["texts"] = texts.get(item["incident_id"])

    def inbox_url(**changes: Any) -> str:
        params = query.as_params()
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return url_for("tasks.inbox", **params)

    page = render_template(
        "tasks/inbox.html",
        query=query,
        result=result,
        errors=errors,
        lanes=inbox_cases.inbox_lanes(me),
        inbox_url=inbox_url,
        now=ctx.now(),
        me=me,
    )
    return (page, 422) if errors else page


# -- one task ------------------------------------------------------------------------------


@tasks_blueprint.get("/tasks/<task_id>")
@login_required
def show(task_id: str) -> str:
    task = task_cases.get_task(services(), actor(), task_id)
    return _task_page(task)


@tasks_blueprint.post("/tasks/<task_id>")
@login_required
def complete(task_id: str) -> Response | tuple[str, int]:
    me = actor()
    ctx = services()
    # Browsers leave unticked boxes out; the service reads a missing optional box as false
    # and a required yes / no with neither chosen as missing.
    submitted = {key: request.form.get(key, "") for key in request.form if key != "csrf_token"}
    try:
        incident = task_cases.complete_task(ctx, me, task_id, submitted, from_text=True)
    except Invalid as exc:
        task = task_cases.get_task(ctx, me, task_id)
        errors = exc.details if isinstance(exc.details, dict) else {}
        return _task_page(task, submitted=submitted, errors=errors), 422
    except (Conflict, StaleDataError):
        task = task_cases.get_task(ctx, me, task_id)
        return _task_page(task, submitted=submitted, conflict=True), 409
    flash(_("Step completed for %(number)s.", number=incident.get("number") or ""), "success")
    mine_left = [t for t in incident.get("tasks", []) if t.get("lane") in me.roles]
    if mine_left:
        return redirect(url_for("tasks.inbox"))
    return redirect(incident_url(incident["id"]))


@tasks_blueprint.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Response:
    task_cases.claim(services(), actor(), task_id)
    flash(_("You have claimed this step; only you can complete it now."), "success")
    return redirect(_back_to(task_id))


@tasks_blueprint.post("/tasks/<task_id>/release")
@login_required
def release(task_id: str) -> Response:
    task_cases.release(services(), actor(), task_id)
    flash(_("You have released this step; anyone in its lane can take it."), "success")
    return redirect(_back_to(task_id))


@tasks_blueprint.post("/tasks/<task_id>/assign")
@login_required
def assign(task_id: str) -> Response:
    username = request.form.get("username", "")
    task_cases.assign(services(), actor(), task_id, {"username": username})
    flash(_("The step is now assigned to %(user)s.", user=username), "success")
    return redirect(_back_to(task_id))


def _back_to(task_id: str) -> str:
    return safe_redirect_target(
        request.form.get("next"), url_for("tasks.show", task_id=task_id)
    )


# -- rendering the task page ---------------------------------------------------------------


def _task_page(
    task: dict[str, Any],
    *,
    submitted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    conflict: bool = False,
) -> str:
    me = actor()
    ctx = services()
    now = ctx.now()
    incident = incident_cases.get_incident(ctx, me, task["incident_id"])
    labels = inbox_cases.task_labels(ctx, me, task["incident_id"])
    use_diagram_texts(incident_texts(ctx, me, task["incident_id"]))
    ready = task.get("state") == "ready"
    claimed_by = task.get("claimed_by")
    free_for_me = ready and claimed_by in (None, me.username)
    errors = dict(errors or {})
    fields = [_field_state(spec, submitted, errors) for spec in task["form"]["fields"]]
    known = {spec["id"] for spec in task["form"]["fields"]}
    other_errors = [
        f"{key}: {field_message(str(message))}"
        for key, message in errors.items()
        if key not in known
    ]
    due = incident.get("sla", {}).get("resolution_due")
    return render_template(
        "tasks/show.html",
        task=task,
        incident=incident,
        labels=labels,
        fields=fields,
        errors=errors,
        other_errors=other_errors,
        conflict=conflict,
        ready=ready,
        can_submit=free_for_me,
        show_form=ready or submitted is not None,
        claimed_by_other=ready and claimed_by not in (None, me.username),
        assignees=usernames_with_role(ctx, task["lane"]) if free_for_me else [],
        due_overdue=_is_past(due, now) and not incident.get("sla", {}).get("suspended"),
        now=now,
        me=me,
    )


def _field_state(
    spec: Mapping[str, Any], submitted: Mapping[str, str] | None, errors: Mapping[str, str]
) -> dict[str, Any]:
    """The field's spec plus what the form shows: value, ticked or not, message."""
    state = dict(spec)
    field_id = spec["id"]
    if submitted is None or spec.get("readonly"):
        default = spec.get("default")
        state["checked"] = default is True
        state["value"] = _as_text(default)
        # A required yes / no starts with neither chosen, whatever the BPMN's default.
        state["choice"] = None
    else:
        raw = submitted.get(field_id)
        state["checked"] = raw is not None and raw in TRUE_TEXTS
        state["value"] = raw if raw is not None else ""
        state["choice"] = _choice(raw)
    message = errors.get(field_id)
    state["error"] = field_message(str(message)) if message is not None else None
    return state


def _choice(raw: str | None) -> str | None:
    """Which of a yes / no pair the typed answer picks, if any."""
    if raw in TRUE_TEXTS:
        return "true"
    if raw in FALSE_TEXTS:
        return "false"
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_past(value: str | None, now: datetime) -> bool:
    if not value:
        return False
    return datetime.fromisoformat(value) < now
