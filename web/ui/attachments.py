"""Attachments on the pages: the upload form of the incident page, the task page and the
reporter's own view of their incident (one partial, incidents/_attachments.html), and
downloads for the signed-in browser.

An upload is its own form (multipart, CSRF) so a refused file loses nothing typed
elsewhere; it answers with a redirect (post-redirect-get) back to the page it came
from, a flash message naming what was wrong when the file was refused. As on the API
(web/api/attachments.py), the body limit is raised for this route before the CSRF
check and the input guard read the form; a body announced larger than the limit is
sent back with the message at once, nothing read.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden, Invalid, TooLarge
from engine.services.incidents import attachments as use_cases
from engine.services.incidents.vendors import VENDOR_LANE
from web.api.attachments import file_response, form_flag, upload_limit, uploaded_file
from web.redirects import local_target
from web.ui.session import actor, services

attachments_blueprint = Blueprint("attachments", __name__)

UPLOAD_ENDPOINT = "attachments.upload"


@attachments_blueprint.record_once
def _register_globals(state: Any) -> None:
    state.app.jinja_env.globals.update(
        attachment_options=attachment_options,
        attachment_max_bytes=attachment_max_bytes,
        file_size=file_size,
    )


def attachment_max_bytes() -> int:
    return services().channels.attachment_max_bytes


def attachment_options() -> dict[str, bool]:
    """What the signed-in user's upload form offers: staff mark a file internal or for
    the vendor; a vendor's file is always for the vendor."""
    me = actor()
    staff = me.has_any(STAFF_ROLES)
    always_vendor = not staff and VENDOR_LANE in me.roles
    return {"internal": staff, "vendor": staff, "always_vendor": always_vendor}


def file_size(size: int) -> str:
    if size < 1024:
        return _("%(n)d bytes", n=size)
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _back(incident_id: int) -> str:
    """The page the form was on (a path on this site), else the incident's page."""
    default = url_for("incidents.show", incident_id=incident_id, _anchor="attachments")
    return local_target(request.args.get("next")) or default


def too_large_message() -> str:
    limit = services().channels.attachment_max_bytes
    return _("The file is too large: at most %(size)s.", size=file_size(limit))


@attachments_blueprint.url_value_preprocessor
def _upload_body_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if endpoint != UPLOAD_ENDPOINT or values is None:
        return
    limit = upload_limit(services())
    request.max_content_length = limit
    if (request.content_length or 0) > limit:
        # Nothing of the body is read, so nothing it says is acted on: only the message.
        flash(too_large_message(), "error")
        abort(redirect(_back(int(values["incident_id"]))))


@attachments_blueprint.post("/incidents/<int:incident_id>/attachments")
@login_required
def upload(incident_id: int) -> Response:
    back = _back(incident_id)
    try:
        internal, vendor = form_flag("internal"), form_flag("vendor")
        filename, data = uploaded_file()
        if not filename and not data:
            flash(_("Choose a file to attach."), "error")
            return redirect(back)
        created = use_cases.add_attachment(
            services(), actor(), incident_id, filename, data, internal=internal, vendor=vendor
        )
    except TooLarge:
        flash(too_large_message(), "error")
        return redirect(back)
    except Invalid as exc:
        flash(refusal_text(exc), "error")
        return redirect(back)
    except Forbidden:
        flash(_("You may not attach a file marked like this."), "error")
        return redirect(back)
    flash(_("Attached %(name)s.", name=created["filename"]), "success")
    return redirect(back)


def refusal_text(exc: Invalid) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    problem = str(details.get("file", ""))
    if "empty" in problem:
        return _("The file is empty.")
    if "name" in problem:
        return _("The file needs a name.")
    return _("Please check the values.")


@attachments_blueprint.get("/attachments/<int:attachment_id>")
@login_required
def download(attachment_id: int) -> Response:
    row, data = use_cases.download(services(), actor(), attachment_id)
    return file_response(row, data)
