"""The caller's pages: a signed link's session, and the portal's answers.

- `GET /c/<token>` checks the link and at once swaps it for a session scoped to that
  one incident (incident id, address, link version, expiry in the signed session
  cookie), then answers 303 to the clean `/c/incident`: the token stays neither in
  the address bar nor in a Referer (`Referrer-Policy: no-referrer` on the answers
  that carry it); web.logs redacts it from log lines. An expired, tampered or
  revoked link is a 403 page saying which.
- `/c/incident` and its forms (note, confirmation, survey) act as the caller's
  address; every request re-checks the incident's link version, so revoking the
  links from the incident page ends these sessions too. A form names its incident:
  a tab left open on another incident's link is refused (403), never applied here.
- For a signed-in caller, the portal's incident page (incidents/mine.html) shows the
  same answers (incidents/_answers.html) and posts them here; staff revoke the
  links from the incident page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine.domain.roles import HANDLER_ROLES
from engine.persistence.models import Incident
from engine.services.errors import Conflict, Invalid, ServiceError, TooLarge
from engine.services.incidents import caller_links, link_attachments
from engine.services.incidents.caller_links import (
    NEXT_PATHS,
    CallerRef,
    LinkRefused,
    LinkSession,
)
from engine.services.incidents.notes import add_caller_note
from engine.services.tasks import answers
from web.api.attachments import file_response, upload_limit, uploaded_file
from web.ui.attachments import refusal_text, too_large_message
from web.ui.session import actor, roles_required, services

caller_blueprint = Blueprint("caller", __name__)
SESSION_KEY = "caller_link"
# The values of a required yes / no, as on the task pages (web/templates/macros/form_fields.html).
CHOICES = {"true": True, "false": False}


def _refusal_text(reason: str) -> str:
    texts = {
        "expired": _("This link has expired (links work for 30 days)."),
        "tampered": _("This link is not valid: it is incomplete or was changed."),
        "revoked": _("This link was withdrawn by the service desk."),
        "other_incident": _("This page belongs to another incident than your current link."),
        "missing": _("Open the link from your mail to follow your incident."),
    }
    return texts.get(reason, texts["tampered"])


def _denied(reason: str) -> tuple[str, int]:
    return render_template("caller/denied.html", reason=reason, text=_refusal_text(reason)), 403


# -- the link and its session ---------------------------------------------------


@caller_blueprint.get("/c/<token>")
def open_link(token: str) -> Response | tuple[str, int]:
    try:
        link = caller_links.open_link(services(), token)
    except LinkRefused as exc:
        return _denied(exc.reason)
    session[SESSION_KEY] = link.as_dict()
    wanted = request.args.get("next", "")
    anchor = wanted if wanted and wanted in NEXT_PATHS else None
    # web.security sends this endpoint's answers with Referrer-Policy: no-referrer.
    return redirect(url_for("caller.incident", _anchor=anchor), 303)


def _link() -> LinkSession | None:
    return LinkSession.from_dict(session.get(SESSION_KEY))


@caller_blueprint.get("/c/incident")
def incident() -> str | tuple[str, int]:
    link = _link()
    if link is None:
        return _denied("missing")
    try:
        return _render_link_page(link)
    except LinkRefused as exc:
        return _denied(exc.reason)


def _render_link_page(
    link: LinkSession,
    errors: dict[str, str] | None = None,
    form: str = "",
    values: dict[str, Any] | None = None,
) -> str:
    ctx = services()
    data = caller_links.link_page(ctx, link)
    return render_template(
        "caller/incident.html",
        **data,
        answers=answers.open_answers(ctx, CallerRef(link=link), link.incident_id),
        link_mode=True,
        errors=errors or {},
        failed_form=form,
        values=values or {},
    )


def _posted_link() -> LinkSession:
    """The session's link, for a form posted on its page (LinkRefused otherwise)."""
    link = _link()
    if link is None:
        raise LinkRefused("revoked")
    if request.form.get("incident_id", "") != str(link.incident_id):
        raise LinkRefused("other_incident")
    return link


@caller_blueprint.post("/c/incident/notes")
def link_note() -> Response | str | tuple[str, int]:
    text = request.form.get("text", "")
    try:
        link = _posted_link()

        def still_valid(db_session: Session, _incident: Incident, now: datetime) -> None:
            # Re-checked inside the note's write: a revoke that committed first wins.
            caller_links.check_link(db_session, link, now)

        try:
            add_caller_note(
                services(), link.incident_id, link.address, text, via=None, also=still_valid
            )
        except Invalid as exc:
            return _render_link_page(link, _errors(exc), "note", {"text": text}), 422
    except LinkRefused as exc:
        return _denied(exc.reason)
    flash(_("Note added."), "success")
    return redirect(url_for("caller.incident", _anchor="notes"), 303)


@caller_blueprint.url_value_preprocessor
def _upload_body_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # As for every upload (web/ui/attachments.py): the limit is raised before the CSRF
    # check reads the form; a body announced larger is answered without reading it.
    if endpoint != "caller.link_upload":
        return
    request.max_content_length = upload_limit(services())
    if (request.content_length or 0) > upload_limit(services()):
        flash(too_large_message(), "error")
        abort(redirect(url_for("caller.incident", _anchor="attachments"), 303))


@caller_blueprint.post("/c/incident/attachments")
def link_upload() -> Response | tuple[str, int]:
    try:
        link = _posted_link()
        filename, data = uploaded_file()
        if not filename and not data:
            flash(_("Choose a file to attach."), "error")
        else:
            created = link_attachments.add_link_attachment(services(), link, filename, data)
            flash(_("Attached %(name)s.", name=created["filename"]), "success")
    except LinkRefused as exc:
        return _denied(exc.reason)
    except TooLarge:
        flash(too_large_message(), "error")
    except Invalid as exc:
        flash(refusal_text(exc), "error")
    return redirect(url_for("caller.incident", _anchor="attachments"), 303)


@caller_blueprint.get("/c/attachments/<int:attachment_id>")
def link_download(attachment_id: int) -> Response | tuple[str, int]:
    link = _link()
    if link is None:
        return _denied("missing")
    try:
        row, data = link_attachments.link_download(services(), link, attachment_id)
    except LinkRefused as exc:
        return _denied(exc.reason)
    return file_response(row, data)


@caller_blueprint.post("/c/incident/confirmation")
def link_confirm() -> Response | str | tuple[str, int]:
    try:
        link = _posted_link()
        payload, values, errors = _confirmation_form()
        return _answer(
            lambda: answers.answer_confirmation(
                services(), CallerRef(link=link), link.incident_id, payload
            ),
            errors,
            lambda e: (_render_link_page(link, e, "confirm", values), 422),
            redirect(url_for("caller.incident", _anchor="answers"), 303),
        )
    except LinkRefused as exc:
        return _denied(exc.reason)


@caller_blueprint.post("/c/incident/survey")
def link_survey() -> Response | str | tuple[str, int]:
    try:
        link = _posted_link()
        payload = _survey_form()
        return _answer(
            lambda: answers.answer_survey(
                services(), CallerRef(link=link), link.incident_id, payload
            ),
            {},
            lambda e: (_render_link_page(link, e, "survey", payload), 422),
            redirect(url_for("caller.incident", _anchor="answers"), 303),
        )
    except LinkRefused as exc:
        return _denied(exc.reason)


# -- the forms ------------------------------------------------------------------------


def _confirmation_form() -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A required yes / no: nothing chosen is "please choose", never "no" (an unticked
    box once silently reopened incidents)."""
    choice = request.form.get("recovered", "")
    comment = request.form.get("comment", "")
    values = {"recovered": choice, "comment": comment}
    payload: dict[str, Any] = {"comment": comment}
    errors: dict[str, str] = {}
    if choice in CHOICES:
        payload["recovered"] = CHOICES[choice]
    else:
        errors["recovered"] = _("Tell us whether it works again: choose yes or no.")
    return payload, values, errors


def _survey_form() -> dict[str, Any]:
    payload: dict[str, Any] = {"satisfaction": request.form.get("satisfaction", "")}
    feedback = request.form.get("feedback", "")
    if feedback.strip():
        payload["feedback"] = feedback
    return payload


def _errors(exc: Invalid) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    messages = {
        "is required": _("This field is required."),
        "is required: true or false": _("Tell us whether it works again: choose yes or no."),
    }
    out = {}
    for key, message in details.items():
        text = str(message)
        if text.startswith("must be one of"):
            out[str(key)] = _("Choose one of the options.")
        elif text.startswith("must be at most"):
            out[str(key)] = _("This text is too long (at most 20,000 characters).")
        else:
            out[str(key)] = messages.get(text, text)
    return out


def _answer(
    call: Any, errors: dict[str, str], invalid: Any, done: Response
) -> Response | tuple[str, int]:
    """Run an answer; a refused value re-renders the form (422), a task that is no
    longer open says so, a kept answer redirects (post-redirect-get)."""
    if errors:
        return invalid(errors)  # type: ignore[no-any-return]
    try:
        call()
    except Invalid as exc:
        return invalid(_errors(exc))  # type: ignore[no-any-return]
    except Conflict:
        flash(_("This question is no longer open."), "error")
        return done
    flash(_("Thank you, your answer was recorded."), "success")
    return done


# -- the portal (a signed-in caller) and the desk's revoke -----------------------------


@caller_blueprint.record_once
def _register_globals(state: Any) -> None:
    state.app.add_template_global(_portal_answers, "caller_answers")


def _portal_answers(incident_id: int) -> dict[str, Any] | None:
    """What the signed-in caller may answer on their incident page (None: nothing)."""
    if not current_user.is_authenticated:
        return None
    try:
        return answers.open_answers(services(), CallerRef(actor=actor()), incident_id)
    except ServiceError:
        return None  # not the caller (staff, a vendor): nothing to answer here


def _portal_back(incident_id: int) -> Response:
    return redirect(url_for("incidents.show", incident_id=incident_id, _anchor="answers"), 303)


def _portal_invalid(incident_id: int) -> Any:
    def invalid(errors: dict[str, str]) -> Response:
        for message in errors.values():
            flash(message, "error")
        return _portal_back(incident_id)

    return invalid


@caller_blueprint.post("/incidents/<int:incident_id>/confirmation")
@login_required
def portal_confirm(incident_id: int) -> Response | tuple[str, int]:
    payload, _values, errors = _confirmation_form()
    caller = CallerRef(actor=actor())
    return _answer(
        lambda: answers.answer_confirmation(services(), caller, incident_id, payload),
        errors,
        _portal_invalid(incident_id),
        _portal_back(incident_id),
    )


@caller_blueprint.post("/incidents/<int:incident_id>/survey")
@login_required
def portal_survey(incident_id: int) -> Response | tuple[str, int]:
    payload = _survey_form()
    caller = CallerRef(actor=actor())
    return _answer(
        lambda: answers.answer_survey(services(), caller, incident_id, payload),
        {},
        _portal_invalid(incident_id),
        _portal_back(incident_id),
    )


@caller_blueprint.post("/incidents/<int:incident_id>/caller-links/revoke")
@roles_required(*HANDLER_ROLES)
def revoke(incident_id: int) -> Response:
    caller_links.revoke_links(services(), actor(), incident_id)
    flash(_("The caller's links to this incident no longer work."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)
