"""Incident pages: the list, reporting, one incident (staff and reporter
views), its notes, suspend and resume, and the process diagram.

Every rule is checked on the server by the use cases; these views only
translate forms into calls and results into pages.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from werkzeug.wrappers import Response

from engine.domain.roles import HANDLER_ROLES, STAFF_ROLES
from engine.services.context import Actor
from engine.services.errors import Conflict, Invalid
from engine.services.incidents import commands as use_cases
from engine.services.incidents import export, pages
from engine.services.incidents.callers import caller_card
from engine.services.incidents.commands import CHANNELS
from engine.services.incidents.diagram_texts import incident_texts
from engine.services.incidents.form_labels import CLASSIFY_TASK, FormLabels, form_labels
from web.security import outsider_diagram_xml
from web.ui import labels
from web.ui.filters import local_time
from web.ui.session import actor, roles_required, services
from web.ui.tasks import field_label, option_label, page_language, use_diagram_texts

incidents_blueprint = Blueprint("incidents", __name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BPMN_JS_DIST = REPO_ROOT / "node_modules" / "bpmn-js" / "dist"

SUSPEND_CATEGORY_LABELS = {
    "awaiting_reporter": _l("Waiting for the reporter"),
    "awaiting_vendor": _l("Waiting for the vendor"),
    "awaiting_change": _l("Waiting for a change"),
    "other": _l("Other"),
}
LINK_KIND_LABELS = {
    "change": _l("Change"),
    "service_request": _l("Service request"),
    "problem": _l("Problem"),
    "knowledge_article": _l("Knowledge article draft"),
}
CATEGORY_LABELS = {
    "hardware": _l("Hardware"),
    "software": _l("Software"),
    "network": _l("Network"),
    "access": _l("Access"),
    "other": _l("Other"),
}
RESUME_REASONS = {
    "resumed by hand": _l("resumed by hand"),
    "reporter replied": _l("the reporter replied"),
    "a task was completed": _l("a step was completed"),
}
# The record's text fields, as the history names a corrected one.
FIELD_NAMES = {
    "title": _l("Title"),
    "description": _l("Description"),
    "contact": _l("Contact"),
}
SORT_LABELS = {
    "number": _l("Number"),
    "created": _l("Created"),
    "priority": _l("Priority"),
    "due": _l("Resolution due"),
    "status": _l("Status"),
}


# -- labels shared by the templates -------------------------------------------


def element_label(element_id: str | None, fallback: str | None = None) -> str:
    """A BPMN element's name: the diagram's own translation (the page's incident's
    version), else the catalog (`element:<id>`, or the task pages' `task:<id>`), else its
    BPMN name."""
    if not element_id:
        return fallback or "—"
    texts = g.get("diagram_texts")
    shown = texts.text(element_id, "name", page_language()) if texts is not None else None
    if shown:
        return shown
    for key in (f"element:{element_id}", f"task:{element_id}"):
        translated = _(key)
        if translated and translated != key:
            return translated
    return fallback or element_id


def category_label(code: str | None) -> str:
    if not code:
        return "—"
    label = CATEGORY_LABELS.get(code)
    return str(label) if label is not None else code


def suspend_category_label(code: str | None) -> str:
    if not code:
        return "—"
    label = SUSPEND_CATEGORY_LABELS.get(code)
    return str(label) if label is not None else code


def link_kind_label(code: str | None) -> str:
    label = LINK_KIND_LABELS.get(code or "")
    return str(label) if label is not None else (code or "—")


@incidents_blueprint.record_once
def _register_globals(state: Any) -> None:
    app = state.app
    app.add_template_global(element_label, "element_label")
    app.add_template_global(category_label, "incident_category_label")
    app.add_template_global(suspend_category_label, "incident_suspend_label")
    app.add_template_global(link_kind_label, "incident_link_label")


def _field_message(message: str) -> str:
    """The use cases' field messages, in the user's language where known."""
    if message == "is required":
        return _("This field is required.")
    match = re.fullmatch(r"must be at most (\d+) characters", message)
    if match:
        return _("At most %(n)s characters.", n=match.group(1))
    if message.startswith("must be one of"):
        return _("Choose one of the options.")
    if message == "must be in the future":
        return _("Must be in the future.")
    if message == "must be a whole number":
        return _("Must be a whole number.")
    return message


def field_errors(exc: Invalid) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return {str(k): _field_message(str(v)) for k, v in details.items()}


# -- the list -----------------------------------------------------------------


@incidents_blueprint.get("/incidents")
@login_required
def index() -> str | tuple[str, int]:
    me = actor()
    errors: dict[str, str] = {}
    try:
        query = pages.parse_query(request.args)
    except Invalid as exc:
        errors = field_errors(exc)
        query = pages.IncidentQuery()
    page = pages.search_incidents(services(), me, query)
    html = render_template(
        "incidents/index.html",
        page=page,
        query=query,
        args=request.args,
        errors=errors,
        staff=me.has_any(STAFF_ROLES),
        now=services().now(),
        statuses=use_cases.STATUSES,
        phases=pages.PHASES,
        channels=CHANNELS,
        sort_labels=SORT_LABELS,
    )
    return (html, 422) if errors else html


@incidents_blueprint.get("/incidents.csv")
@login_required
def export_csv() -> Response | str | tuple[str, int]:
    """The list's incidents (all pages) with its filters and sort, as a CSV download."""
    try:
        query = pages.parse_query(request.args)
    except Invalid:
        return index()  # the list, with the bad filter marked (422)
    chunks = export.incidents_csv(services(), actor(), query)
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{export.FILENAME}"'
    return response


# -- report -------------------------------------------------------------------


@incidents_blueprint.route("/incidents/new", methods=["GET", "POST"])
@login_required
def report() -> str | Response | tuple[str, int]:
    """Report an incident. Staff taking a call report for a caller: one they looked
    up (`caller`, with the caller's open incidents shown as possible duplicates) or
    an address (`caller_email`); else for themself."""
    me = actor()
    takes_calls = me.has_any(STAFF_ROLES)
    source = request.form if request.method == "POST" else request.args
    values = {
        "title": "",
        "description": "",
        "contact": "",
        "channel": "phone" if takes_calls else "web",
        "caller": source.get("caller", "").strip() if takes_calls else "",
        "caller_email": source.get("caller_email", "").strip() if takes_calls else "",
    }
    caller, errors = _caller_card(me, values["caller"])
    if request.method == "GET":
        return _render_report(values, errors, takes_calls, caller)
    form = request.form
    values.update({name: form.get(name, "") for name in ("title", "description", "contact")})
    values["channel"] = form.get("channel", "") if takes_calls else "web"
    payload = {k: values[k] for k in ("title", "description", "contact", "channel")}
    payload.update({k: values[k] for k in ("caller", "caller_email") if values[k]})
    try:
        created = use_cases.create_incident(services(), me, payload)
    except Invalid as exc:
        return _render_report(values, field_errors(exc), takes_calls, caller), 422
    flash(_("Incident %(number)s reported.", number=created["number"]), "success")
    return redirect(url_for("incidents.show", incident_id=created["id"]))


def _caller_card(me: Actor, username: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if not username:
        return None, {}
    try:
        return caller_card(services(), me, username), {}
    except Invalid as exc:
        return None, field_errors(exc)


def _render_report(
    values: dict[str, str],
    errors: dict[str, str],
    takes_calls: bool,
    caller: dict[str, Any] | None = None,
) -> str:
    return render_template(
        "incidents/report.html",
        values=values,
        errors=errors,
        takes_calls=takes_calls,
        channels=CHANNELS,
        caller=caller,
    )


# -- one incident -------------------------------------------------------------


@incidents_blueprint.get("/incidents/<int:incident_id>")
@login_required
def show(incident_id: int) -> str:
    return render_show(incident_id)


def render_show(
    incident_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: str = "",
    values: dict[str, Any] | None = None,
) -> str:
    me = actor()
    data = pages.incident_page(services(), me, incident_id)
    context: dict[str, Any] = {
        **data,
        "errors": errors or {},
        "failed_form": form,
        "values": values or {},
        "my_roles": me.roles,
        "handler": me.has_any(HANDLER_ROLES),
    }
    if data["view"] == "reporter":
        context["plain_status"] = plain_status(data["incident"])
        context["history"] = [_plain_event(e) for e in data["events"]]
        return render_template("incidents/mine.html", **context)
    forms = form_labels(services(), me, incident_id)
    use_diagram_texts(incident_texts(services(), me, incident_id))
    context["timeline"] = [
        _timeline_entry(e, data["task_labels"], forms) for e in data["events"]
    ]
    return render_template("incidents/show.html", **context)


@incidents_blueprint.post("/incidents/<int:incident_id>/notes")
@login_required
def add_note(incident_id: int) -> Response | tuple[str, int]:
    me = actor()
    text = request.form.get("text", "")
    internal = me.has_any(STAFF_ROLES) and request.form.get("visibility", "internal") == "internal"
    try:
        use_cases.add_note(services(), me, incident_id, {"text": text, "internal": internal})
    except Invalid as exc:
        values = {"text": text, "visibility": "internal" if internal else "public"}
        page = render_show(incident_id, errors=field_errors(exc), form="note", values=values)
        return page, 422
    flash(_("Work note added.") if internal else _("Note added."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id, _anchor="notes"))


@incidents_blueprint.post("/incidents/<int:incident_id>/suspend")
@roles_required(*HANDLER_ROLES)
def suspend(incident_id: int) -> Response | tuple[str, int]:
    me = actor()
    form = request.form
    values = {
        "reason": form.get("reason", ""),
        "category": form.get("category", ""),
        "resume_by": form.get("resume_by", ""),
    }
    payload: dict[str, Any] = {"reason": values["reason"]}
    if values["category"]:
        payload["category"] = values["category"]
    errors: dict[str, str] = {}
    if values["resume_by"].strip():
        resume_by = _parse_local_time(values["resume_by"].strip(), me.timezone)
        if resume_by is None:
            errors["resume_by"] = _("Enter a date and time.")
        else:
            payload["resume_by"] = resume_by.isoformat()
    try:
        if errors:
            raise Invalid("invalid suspension", {})
        use_cases.suspend(services(), me, incident_id, payload)
    except Invalid as exc:
        errors = {**field_errors(exc), **errors}
        page = render_show(incident_id, errors=errors, form="suspend", values=values)
        return page, 422
    except Conflict:
        flash(_("This incident cannot be suspended now."), "error")
        return render_show(incident_id), 409
    flash(_("The incident is suspended; its SLA clocks are paused."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id))


@incidents_blueprint.post("/incidents/<int:incident_id>/resume")
@roles_required(*HANDLER_ROLES)
def resume(incident_id: int) -> Response | tuple[str, int]:
    try:
        use_cases.resume(services(), actor(), incident_id)
    except Conflict:
        flash(_("This incident is not suspended."), "error")
        return render_show(incident_id), 409
    flash(_("The incident is resumed; its SLA clocks run again."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id))


def _parse_local_time(raw: str, timezone: str) -> datetime | None:
    """A `datetime-local` value in the user's time zone, made aware."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is not None:
        return value
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return value.replace(tzinfo=zone)


# -- what the pages say -------------------------------------------------------


def plain_status(incident: dict[str, Any]) -> dict[str, str]:
    """The status in words for the reporter: a headline and one sentence."""
    status = incident["status"]
    if status == "suspended" and incident.get("suspend_category") == "awaiting_reporter":
        return {
            "key": "waiting_for_you",
            "headline": _("Waiting for your reply"),
            "text": _("We need something from you before we can go on. Please add a note below."),
        }
    if status == "suspended":
        return {
            "key": "on_hold",
            "headline": _("On hold"),
            "text": _(
                "We are waiting for something outside our control and will "
                "continue as soon as we can."
            ),
        }
    if status == "new":
        return {
            "key": "received",
            "headline": _("We have received your report"),
            "text": _("The service desk will look at it shortly."),
        }
    if status == "resolved":
        return {
            "key": "solved",
            "headline": _("Solved — please confirm"),
            "text": _(
                "We believe the problem is solved. The service desk will check with "
                "you that everything works again."
            ),
        }
    if status == "closed":
        return {
            "key": "closed",
            "headline": _("Closed"),
            "text": _("This incident is closed. Thank you for reporting it."),
        }
    return {
        "key": "working",
        "headline": _("We are working on it"),
        "text": _("Our team is investigating the problem."),
    }


def _plain_event(event: dict[str, Any]) -> dict[str, Any]:
    kind = event["type"]
    mine = event.get("mine", False)
    texts = {
        "created": _("You reported the incident.") if mine else _("The incident was reported."),
        "task_completed": _("The service desk recorded and classified your report."),
        "technical_escalation": _("Your incident was passed to a specialist team."),
        "suspended": _("We asked you for more information.")
        if event.get("category") == "awaiting_reporter"
        else _("Work was put on hold."),
        "resumed": _("Work continued."),
        "resolved": _("The problem was solved."),
        "reopened": _("The incident was reopened."),
        "closed": _("The incident was closed."),
        "note_added": _("You added a note.") if mine else _("We added a note."),
    }
    return {
        "at": event["at"],
        "text": texts.get(kind, labels.event_label(kind)),
        "detail": event.get("reason"),
    }


def _timeline_entry(
    event: dict[str, Any], task_labels: dict[str, str], forms: dict[str, FormLabels]
) -> dict[str, Any]:
    task = event.get("task")
    return {
        "at": event["at"],
        "actor": event["actor"],
        "type": event["type"],
        "task": task,
        "task_fallback": task_labels.get(task or "", task),
        "internal": bool(event.get("internal")),
        "details": _event_details(event, forms),
    }


def _event_details(event: dict[str, Any], forms: dict[str, FormLabels]) -> list[str]:
    """Short lines about an event, for staff (plain text, escaped by the template)."""
    kind = event["type"]
    out: list[str] = []
    if kind == "created" and event.get("channel"):
        out.append(_("Channel: %(channel)s", channel=labels.channel_label(event["channel"])))
    elif kind == "task_completed":
        task = event.get("task") or ""
        for name, value in (event.get("values") or {}).items():
            out.append(_labelled_value(task, name, value, forms))
    elif kind == "suspended":
        if event.get("category"):
            out.append(
                _("Category: %(category)s", category=suspend_category_label(event["category"]))
            )
        if event.get("reason"):
            out.append(_("Reason: %(reason)s", reason=event["reason"]))
        if event.get("resume_by"):
            out.append(_("Resume by: %(time)s", time=local_time(event["resume_by"])))
    elif kind == "resumed" and event.get("reason"):
        reason = RESUME_REASONS.get(event["reason"])
        out.append(_("Reason: %(reason)s", reason=str(reason) if reason else event["reason"]))
    elif kind in ("stage_entered", "stage_left") and event.get("stage"):
        out.append(labels.clock_label(event["stage"]))
    elif kind == "priority_changed":
        out.append(
            f"{labels.priority_label(event.get('from'))} → {labels.priority_label(event.get('to'))}"
        )
    elif kind == "reclassified":
        for name in ("category", "impact", "urgency"):
            if name in event:
                out.append(_labelled_value(CLASSIFY_TASK, name, event[name], forms))
    elif kind == "field_changed":
        out.append(
            _(
                "%(field)s: %(old)s → %(new)s",
                field=FIELD_NAMES.get(event.get("field") or "", event.get("field") or ""),
                old=_shortened(event.get("old")),
                new=_shortened(event.get("new")),
            )
        )
    elif kind == "technical_escalation" and event.get("to"):
        out.append(_("To: %(lane)s", lane=labels.role_label(event["to"])))
    elif kind == "assigned":
        if event.get("assignee"):
            out.append(_("Assigned to: %(user)s", user=event["assignee"]))
        if event.get("reason"):
            out.append(_("Reason: %(reason)s", reason=event["reason"]))
    elif kind in ("sla_warning", "sla_breached"):
        out.append(
            _(
                "%(clock)s clock at %(percent)s %%",
                clock=labels.clock_label(event.get("clock")),
                percent=event.get("percent", "?"),
            )
        )
    elif kind == "note_added":
        out.append(
            _("Work note (internal)") if event.get("internal") else _("Visible to the reporter")
        )
    elif kind == "attachment_added" and event.get("filename"):
        internal = f" ({_('Internal')})" if event.get("internal") else ""
        out.append(f"{event['filename']}{internal}")
    elif kind == "linked_record_created":
        out.append(f"{link_kind_label(event.get('kind'))} {event.get('number') or ''}".strip())
    elif kind == "error" and event.get("message"):
        out.append(str(event["message"]))
    return out


def _shortened(value: Any, limit: int = 200) -> str:
    """A corrected text as the history shows it: empty marked, long ones cut."""
    text = str(value or "")
    if not text:
        return _("(empty)")
    return text if len(text) <= limit else text[:limit] + "…"


def _labelled_value(task: str, name: str, value: Any, forms: dict[str, FormLabels]) -> str:
    """`field: value` as the form showed them: the catalog's text by key, else the diagram's."""
    form = forms.get(task, FormLabels())
    if isinstance(value, str) and form.option_name(name, value) is not None:
        shown = option_label(task, name, value, form.option_name(name, value))
    elif isinstance(value, str):
        shown = value  # free text (a resolution), or an option this version no longer has
    else:
        shown = _value_text(value)
    return f"{field_label(task, name, form.field_label(name))}: {shown}"


def _value_text(value: Any) -> str:
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    if value is None:
        return "—"
    return str(value)


# -- the diagram --------------------------------------------------------------


def _diagram_label(kind: str, element_id: str, name: str) -> str:
    if kind == "lane":
        texts = g.get("diagram_texts")
        own = texts.translated.get((element_id, "name"), {}) if texts is not None else {}
        if page_language() in own:
            return own[page_language()]
        return labels.role_label(name) if name in labels.ROLES else name
    return element_label(element_id, name)


@incidents_blueprint.get("/incidents/<int:incident_id>/diagram.json")
@login_required
def diagram(incident_id: int) -> Response:
    me = actor()
    use_diagram_texts(incident_texts(services(), me, incident_id))
    data = pages.diagram(services(), me, incident_id, _diagram_label)
    if not me.has_any(STAFF_ROLES):
        # A reporter or a vendor sees the shapes and where the incident is, not the
        # scripts, conditions, timers, forms or the designers' notes.
        data["xml"] = outsider_diagram_xml(data["xml"])
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


@incidents_blueprint.get("/vendor/bpmn-js/<path:filename>")
def bpmn_js(filename: str) -> Response:
    """The bpmn-js build installed by `npm install` (never committed)."""
    dist = Path(current_app.config.get("BPMN_JS_DIST", BPMN_JS_DIST))
    if not dist.is_dir():
        abort(404, description=_("bpmn-js is not installed (run npm install)."))
    return send_from_directory(dist, filename, max_age=3600)
