"""SLA targets per priority (contract: GET for staff, PUT for the incident manager)."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.sla import policies as use_cases
from engine.services.sla import suspensions
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services


@api_blueprint.get("/sla/policies")
def list_sla_policies() -> Response:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("SLA policies are for staff")
    return jsonify(use_cases.list_policies(services()))


@api_blueprint.put("/sla/policies/<priority>")
def update_sla_policy(priority: str) -> Response:
    actor = current_actor()
    # Who and which policy are answered before the body is read.
    use_cases.require_editor(actor)
    number = use_cases.parse_priority(priority)
    policy = use_cases.update_policy(services(), actor, number, json_body())
    return jsonify(policy)


@api_blueprint.get("/sla/suspensions")
def suspended_time_per_person() -> Response:
    """Suspended time per person (seed term 12), optionally from `since` on."""
    actor = current_actor()
    since = suspensions.parse_since(request.args.get("since"))
    return jsonify(suspensions.suspension_report(services(), actor, since))
