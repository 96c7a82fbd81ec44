"""SLA targets per priority (contract: GET for staff, PUT for the incident manager)."""

from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.sla import policies as use_cases
from engine.services.sla import suspensions
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services
from web.api.openapi import Param, operation
from web.api.schemas import TIME, array, ref

TAGS = ["sla"]


@api_blueprint.get("/sla/policies")
@operation(
    summary="SLA targets per priority",
    tags=TAGS,
    responses={200: array(ref("SlaPolicy")), 403: "SLA policies are for staff"},
)
def list_sla_policies() -> Response:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("SLA policies are for staff")
    return jsonify(use_cases.list_policies(services()))


@api_blueprint.put("/sla/policies/<priority>")
@operation(
    summary="Change a priority's targets (a new version; for clocks started from now on)",
    tags=TAGS,
    path={"priority": "1 to 5"},
    request=ref("SlaPolicyChange"),
    responses={
        200: ref("SlaPolicy"),
        403: "only the incident manager changes SLA policies",
        404: "no SLA policy for that priority",
        409: "the SLA policy was changed by someone else; reload and retry",
        422: "unknown field, seconds out of range, response not below resolution, unknown "
        "calendar, or nothing to change",
    },
)
def update_sla_policy(priority: str) -> Response:
    actor = current_actor()
    # Who and which policy are answered before the body is read.
    use_cases.require_editor(actor)
    number = use_cases.parse_priority(priority)
    policy = use_cases.update_policy(services(), actor, number, json_body())
    return jsonify(policy)


@api_blueprint.get("/sla/suspensions")
@operation(
    summary="Suspended time per person",
    tags=TAGS,
    query=[Param("since", TIME, "count only the time after this")],
    responses={
        200: ref("SuspensionReport"),
        403: "only the incident manager sees suspended time per person",
        422: "`since` is not an ISO 8601 time with a UTC offset",
    },
)
def suspended_time_per_person() -> Response:
    """Suspended time per person (seed term 12), optionally from `since` on."""
    actor = current_actor()
    since = suspensions.parse_since(request.args.get("since"))
    return jsonify(suspensions.suspension_report(services(), actor, since))
