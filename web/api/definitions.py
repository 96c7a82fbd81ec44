from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.process import definitions as use_cases
from engine.services.revision import migration
from web.api import api_blueprint
from web.api.common import bpmn_body, current_actor, json_body, services
from web.api.openapi import BPMN_DOWNLOAD, BPMN_UPLOAD, Param, Reply, operation
from web.api.schemas import ID, STRING, array, ref
from web.security import xml_download

TAGS = ["process definitions"]
KEY_VERSION = {"key": "the process key, e.g. incident_management", "version": "a version"}
NO_VERSION = "no such process or version"
MIGRATORS = "only designers and the incident manager move incidents between versions"


def _require_staff() -> None:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("process definitions are for staff")


@api_blueprint.get("/process-definitions")
@operation(
    summary="Every deployed version of every process",
    tags=TAGS,
    responses={200: array(ref("ProcessDefinition")), 403: "process definitions are for staff"},
)
def list_definitions() -> Response:
    _require_staff()
    return jsonify([d.as_dict() for d in use_cases.list_definitions(services())])


@api_blueprint.get("/process-definitions/<key>/<int:version>.bpmn")
@operation(
    summary="One version's BPMN XML (a download)",
    tags=TAGS,
    path=KEY_VERSION,
    responses={
        200: Reply("The BPMN file", BPMN_DOWNLOAD),
        403: "process definitions are for staff",
        404: NO_VERSION,
    },
)
def download(key: str, version: int) -> Response:
    _require_staff()
    xml = use_cases.definition_xml(services(), key, version)
    return xml_download(xml, f"{key}-v{version}.bpmn")


@api_blueprint.post("/process-definitions")
@operation(
    summary="Deploy a new version from BPMN XML",
    tags=TAGS,
    request=BPMN_UPLOAD,
    query=[Param("note", STRING, "what changed and why")],
    responses={
        201: ref("DeployedVersion"),
        403: "only designers deploy process versions",
        409: "other deployments of this process ran at the same time; retry",
        422: "the XML or BPMN has problems (truncated, DOCTYPE, not BPMN, over 5 MiB, lint): "
        "`details` lists them",
    },
)
def deploy() -> tuple[Response, int]:
    actor = current_actor()
    if "designer" not in actor.roles:
        raise Forbidden("only designers deploy process versions")
    info = use_cases.deploy(services(), actor, bpmn_body(), request.args.get("note", ""))
    return jsonify({"key": info.key, "version": info.version}), 201


@api_blueprint.get("/process-definitions/<key>/diff")
@operation(
    summary="What changed between two versions, element by element",
    tags=TAGS,
    path={"key": KEY_VERSION["key"]},
    query=[
        Param("from", ID, "a version", required=True),
        Param("to", ID, "another version", required=True),
    ],
    responses={
        200: ref("VersionDiff"),
        403: "process definitions are for staff",
        404: "no such process, or `from` or `to` is not one of its versions",
    },
)
def diff(key: str) -> Response:
    """What changed between two versions: `?from=1&to=2`."""
    _require_staff()
    old, new = (request.args.get(name, "") for name in ("from", "to"))
    result = use_cases.version_diff(
        services(), key, int(old) if old.isdigit() else old, int(new) if new.isdigit() else new
    )
    return jsonify(result)


@api_blueprint.get("/process-definitions/<key>/<int:version>/migration-preview")
@operation(
    summary="Open incidents of older versions: where each waits, whether it can move",
    tags=TAGS,
    path=KEY_VERSION,
    responses={200: array(ref("MigrationCandidate")), 403: MIGRATORS, 404: NO_VERSION},
)
def migration_preview(key: str, version: int) -> Response:
    return jsonify(migration.migration_preview(services(), current_actor(), key, version))


@api_blueprint.post("/process-definitions/<key>/<int:version>/migrate")
@operation(
    summary="Move chosen incidents to this version, each in its own transaction",
    tags=TAGS,
    path=KEY_VERSION,
    request=ref("MigrationRequest"),
    responses={
        200: Reply("One outcome per incident; a refused move changed nothing",
                   array(ref("MigrationOutcome"))),
        403: MIGRATORS,
        404: NO_VERSION,
        422: "`incident_ids` missing, empty, too long, or not a list of ids",
    },
)
def migrate(key: str, version: int) -> Response:
    actor = current_actor()
    migration.require_migrator(actor)
    return jsonify(migration.migrate(services(), actor, key, version, json_body()))
