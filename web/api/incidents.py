from __future__ import annotations

from flask import Response, jsonify, request, stream_with_context

from engine.services.incidents import commands as use_cases
from engine.services.incidents import event_pages, export, pages
from engine.services.incidents.commands import CHANNELS, STATUSES
from web.api import api_blueprint
from web.api.common import current_actor, json_body, services, with_total
from web.api.openapi import PAGING, TOTAL_HEADER, Content, Param, Reply, operation
from web.api.schemas import BOOLEAN, INTEGER, PRIORITY, STRING, answer, array, enum, ref

TAGS = ["incidents"]
ID = {"incident_id": "the incident's numeric id"}
NOT_VISIBLE = "no such incident, or not one you may see"


@api_blueprint.post("/incidents")
@operation(
    summary="Report an incident, for yourself or (staff, integration) for a caller",
    tags=TAGS,
    request=ref("NewIncident"),
    responses={
        200: Reply(
            "An integration user's `dedup_key` names an open incident: the report became "
            "a note on it",
            ref("Incident"),
        ),
        201: Reply("The new incident, its first task ready", ref("Incident")),
        403: "`caller`/`caller_email` from someone not staff or integration, or "
        "`dedup_key` from someone not integration (`details` names the field)",
        404: "the incident process is not deployed",
        409: "the incident with this `dedup_key` closed while the report was taken",
        422: "invalid fields, an unknown `caller`, both `caller` and `caller_email`, or a "
        "process script failed (`details` names the element)",
    },
)
def create_incident() -> tuple[Response, int]:
    actor = current_actor()
    detail, created = use_cases.report_incident(services(), actor, json_body())
    return jsonify(detail), 201 if created else 200


@api_blueprint.get("/incidents")
@operation(
    summary="Incidents you may see, newest first",
    tags=TAGS,
    query=[
        Param("status", enum(STATUSES)),
        Param("priority", PRIORITY),
        *PAGING,
    ],
    responses={200: ref("IncidentPage"), 422: "a query parameter is invalid"},
)
def list_incidents() -> Response:
    actor = current_actor()
    args = request.args
    return jsonify(
        use_cases.list_incidents(
            services(),
            actor,
            status=args.get("status") or None,
            priority=args.get("priority") or None,
            limit=args.get("limit") or None,
            offset=args.get("offset") or None,
        )
    )


@api_blueprint.get("/incidents/<int:incident_id>")
@operation(
    summary="One incident with its SLA, open tasks, links and events",
    tags=TAGS,
    path=ID,
    responses={200: ref("Incident"), 404: NOT_VISIBLE},
)
def get_incident(incident_id: int) -> Response:
    return jsonify(use_cases.get_incident(services(), current_actor(), incident_id))


@api_blueprint.patch("/incidents/<int:incident_id>")
@operation(
    summary="Correct the record: impact, urgency, category (recomputes priority and due "
    "times), title, description, contact (each change an event `field_changed`); one "
    "that makes the incident P1/P2 or major starts the manager review",
    tags=TAGS,
    path=ID,
    request=ref("Classification"),
    responses={
        200: Reply("The incident, events left out", ref("Incident")),
        403: "only the service desk, engineers and the incident manager reclassify",
        404: NOT_VISIBLE,
        409: "the incident is closed",
        422: "unknown field, value not an option of the form, or nothing to change",
    },
)
def patch_incident(incident_id: int) -> Response:
    actor = current_actor()
    return jsonify(use_cases.patch_incident(services(), actor, incident_id, json_body()))


@api_blueprint.get("/incidents/<int:incident_id>/notes")
@operation(
    summary="The incident's notes, oldest first, a page at a time (internal ones for staff "
    "only)",
    tags=TAGS,
    path=ID,
    query=list(PAGING),
    responses={
        200: Reply(
            "One page; the total is in X-Total-Count", array(ref("Note")), headers=TOTAL_HEADER
        ),
        404: NOT_VISIBLE,
        422: "`limit` or `offset` is invalid",
    },
)
def list_notes(incident_id: int) -> Response:
    notes, total = use_cases.list_notes(services(), current_actor(), incident_id, request.args)
    return with_total(jsonify(notes), total)


@api_blueprint.get("/incidents/<int:incident_id>/events")
@operation(
    summary="The incident's history, oldest first, a page at a time (what you may see of it)",
    tags=TAGS,
    path=ID,
    query=list(PAGING),
    responses={
        200: answer(
            {"items": array(ref("Event")), "total": INTEGER, "total_exact": BOOLEAN},
            optional=("total_exact",),
        ),
        404: NOT_VISIBLE,
        422: "`limit` or `offset` is invalid",
    },
)
def list_events(incident_id: int) -> Response:
    return jsonify(event_pages.list_events(services(), current_actor(), incident_id, request.args))


@api_blueprint.post("/incidents/<int:incident_id>/notes")
@operation(
    summary="Add a note; the caller's note (or an integration user's `on_behalf_of` the "
    "caller) resumes an incident awaiting the reporter",
    tags=TAGS,
    path=ID,
    request=ref("NewNote"),
    responses={
        201: Reply("The note", ref("Note")),
        403: "only the caller and staff write notes; internal notes only staff; "
        "`on_behalf_of` only integration users",
        404: NOT_VISIBLE,
        422: "`text` missing or too long, `internal` not a boolean, `on_behalf_of` not "
        "the incident's caller",
    },
)
def add_note(incident_id: int) -> tuple[Response, int]:
    actor = current_actor()
    return jsonify(use_cases.add_note(services(), actor, incident_id, json_body())), 201


@api_blueprint.post("/incidents/<int:incident_id>/suspend")
@operation(
    summary="Suspend: the SLA clocks stop",
    tags=TAGS,
    path=ID,
    request=ref("Suspension"),
    responses={
        200: Reply("The incident, events left out", ref("Incident")),
        403: "only the service desk, engineers and the incident manager suspend",
        404: NOT_VISIBLE,
        409: "the incident is already suspended, or closed",
        422: "`reason` missing, unknown `category`, `resume_by` not a future time",
    },
)
def suspend(incident_id: int) -> Response:
    actor = current_actor()
    return jsonify(use_cases.suspend(services(), actor, incident_id, json_body()))


@api_blueprint.post("/incidents/<int:incident_id>/resume")
@operation(
    summary="Resume: the SLA clocks run again",
    tags=TAGS,
    path=ID,
    responses={
        200: Reply("The incident, events left out", ref("Incident")),
        403: "only the service desk, engineers and the incident manager resume",
        404: NOT_VISIBLE,
        409: "the incident is not suspended",
    },
)
def resume(incident_id: int) -> Response:
    return jsonify(use_cases.resume(services(), current_actor(), incident_id))


CSV_DOWNLOAD = Content(
    "text/csv",
    {
        "type": "string",
        "description": "UTF-8 with a BOM; one header row: " + ",".join(export.COLUMNS),
    },
    headers={
        "Content-Disposition": {**STRING, "description": 'attachment; filename="incidents.csv"'}
    },
)


@api_blueprint.get("/incidents.csv")
@operation(
    summary="The incidents the list's filters match, as a CSV download",
    tags=TAGS,
    query=[
        Param("q", STRING, "in the number, title or contact"),
        Param("status", enum(STATUSES)),
        Param("priority", PRIORITY),
        Param("phase", enum(pages.PHASES)),
        Param("category", STRING),
        Param("channel", enum(CHANNELS)),
        Param("major", enum(pages.MAJOR_VALUES)),
        Param("sort", enum(tuple(pages.SORT_COLUMNS))),
        Param("direction", enum(pages.DIRECTIONS)),
    ],
    responses={200: Reply("Every matching incident", CSV_DOWNLOAD), 422: "a filter is invalid"},
)
def export_incidents_csv() -> Response:
    """Every incident the list's filters match (`q`, `status`, `priority`, `phase`,
    `category`, `channel`, `major`, `sort`, `direction`, as on the incident list page), as
    a CSV download streamed in batches: an export, so not paged."""
    actor = current_actor()
    query = pages.parse_query(request.args)
    chunks = export.incidents_csv(services(), actor, query)
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{export.FILENAME}"'
    return response
