"""The admin's page of webhooks: register one (its secret shown this once), see them,
delete one, and read each one's delivery log."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.services.errors import Invalid
from engine.services.notify import webhooks as use_cases
from web.ui.labels import event_label
from web.ui.session import actor, roles_required, services

webhooks_blueprint = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")
PAGE_SIZE = 25


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1, 1)


def _messages(details: Any) -> dict[str, str]:
    texts = {
        "url": _("Enter an http or https address without a user name or password, on a host "
                 "this installation may call."),
        "events": _("Choose at least one kind of event."),
        "secret": _("The secret must be %(low)d to %(high)d characters, or left empty.",
                    low=use_cases.SECRET_MIN, high=use_cases.SECRET_MAX),
    }
    if not isinstance(details, dict):
        return {}
    # The service's reason (e.g. which address the host resolved to) follows the text.
    return {str(k): f"{texts.get(str(k), '')} ({v})".strip() for k, v in details.items()}


def _event_choices() -> list[tuple[str, str]]:
    return sorted(((code, event_label(code)) for code in use_cases.INCIDENT_EVENT_TYPES),
                  key=lambda choice: choice[0])


def _page(*, created: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
          values: dict[str, Any] | None = None, status: int = 200) -> tuple[str, int]:
    page = _page_number()
    listing = use_cases.list_webhooks(
        services(), actor(), {"limit": str(PAGE_SIZE), "offset": str((page - 1) * PAGE_SIZE)}
    )
    pages = max((listing["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    html = render_template(
        "admin/webhooks.html",
        webhooks=listing["items"],
        page=min(page, pages),
        pages=pages,
        choices=_event_choices(),
        created=created,
        errors=errors or {},
        values=values or {"url": "", "events": []},
    )
    return html, status


@webhooks_blueprint.get("")
@roles_required("admin")
def index() -> tuple[str, int]:
    return _page()


@webhooks_blueprint.post("")
@roles_required("admin")
def create() -> tuple[str, int]:
    values = {"url": request.form.get("url", "").strip(),
              "events": request.form.getlist("events")}
    # An empty secret field: the app makes one (shown once, like an API key).
    secret = request.form.get("secret", "") or secrets.token_urlsafe(32)
    try:
        created = use_cases.create_webhook(
            services(), actor(), {"url": values["url"], "events": values["events"],
                                  "secret": secret}
        )
    except Invalid as exc:
        return _page(errors=_messages(exc.details), values=values, status=422)
    # Shown on this answer only: the secret is never shown again.
    return _page(created={**created, "secret": secret}, status=201)


@webhooks_blueprint.post("/<int:webhook_id>/delete")
@roles_required("admin")
def delete(webhook_id: int) -> Response:
    deleted = use_cases.delete_webhook(services(), actor(), webhook_id)
    flash(_("Nothing more is sent to %(url)s.", url=deleted["url"]), "success")
    return redirect(url_for("webhooks.index"))


@webhooks_blueprint.get("/<int:webhook_id>/deliveries")
@roles_required("admin")
def deliveries(webhook_id: int) -> str:
    webhook = use_cases.get_webhook(services(), actor(), webhook_id)
    page = _page_number()
    listing = use_cases.list_deliveries(
        services(), actor(), webhook_id,
        {"limit": str(PAGE_SIZE), "offset": str((page - 1) * PAGE_SIZE)},
    )
    pages = max((listing["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    statuses = {"queued": _("Queued"), "delivered": _("Delivered"), "failed": _("Failed")}
    return render_template(
        "admin/webhooks_deliveries.html",
        webhook=webhook,
        deliveries=listing["items"],
        total=listing["total"],
        statuses=statuses,
        page=min(page, pages),
        pages=pages,
    )
