from __future__ import annotations

from flask import Response, jsonify, request

from engine.domain.roles import STAFF_ROLES
from engine.services.errors import Forbidden
from engine.services.process import definitions as use_cases
from engine.services.revision import migration
from web.api import api_blueprint
from web.api.common import bpmn_body, current_actor, json_body, services
from web.security import xml_download


def _require_staff() -> None:
    if not current_actor().has_any(STAFF_ROLES):
        raise Forbidden("process definitions are for staff")


@api_blueprint.get("/process-definitions")
def list_definitions() -> Response:
    _require_staff()
    return jsonify([d.as_dict() for d in use_cases.list_definitions(services())])


@api_blueprint.get("/process-definitions/<key>/<int:version>.bpmn")
def download(key: str, version: int) -> Response:
    _require_staff()
    xml = use_cases.definition_xml(services(), key, version)
    return xml_download(xml, f"{key}-v{version}.bpmn")


@api_blueprint.post("/process-definitions")
def deploy() -> tuple[Response, int]:
    actor = current_actor()
    if "designer" not in actor.roles:
        raise Forbidden("only designers deploy process versions")
    info = use_cases.deploy(services(), actor, bpmn_body(), request.args.get("note", ""))
    return jsonify({"key": info.key, "version": info.version}), 201


@api_blueprint.get("/process-definitions/<key>/diff")
def diff(key: str) -> Response:
    """What changed between two versions: `?from=1&to=2`."""
    _require_staff()
    old, new = (request.args.get(name, "") for name in ("from", "to"))
    result = use_cases.version_diff(
        services(), key, int(old) if old.isdigit() else old, int(new) if new.isdigit() else new
    )
    return jsonify(result)


@api_blueprint.get("/process-definitions/<key>/<int:version>/migration-preview")
def migration_preview(key: str, version: int) -> Response:
    return jsonify(migration.migration_preview(services(), current_actor(), key, version))


@api_blueprint.post("/process-definitions/<key>/<int:version>/migrate")
def migrate(key: str, version: int) -> Response:
    actor = current_actor()
    migration.require_migrator(actor)
    return jsonify(migration.migrate(services(), actor, key, version, json_body()))
