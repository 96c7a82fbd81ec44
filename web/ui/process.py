"""Process pages: versions and drafts, the modeler, checking and deploying.

Designers edit drafts in the bpmn-js modeler; the incident manager reads the
list. Saving and checking are fetch() calls from the modeler (CSRF header);
deploying is a form (post-redirect-get). Every rule also runs in the services.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from engine.services.errors import Invalid
from engine.services.process import definitions, drafts
from engine.services.revision import migration
from engine.services.revision import what_if as replay
from engine.workflow.safe_xml import MAX_BPMN_BYTES
from web.api.common import bpmn_body
from web.security import xml_download
from web.ui.session import actor, roles_required, services

process_blueprint = Blueprint("process", __name__, url_prefix="/process")

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELER_BUILD = REPO_ROOT / "build" / "modeler"
PROPERTIES_PANEL_CSS = REPO_ROOT / "node_modules" / "@bpmn-io" / "properties-panel" / "dist"
READERS = tuple(sorted(drafts.READERS))

PageResult = str | tuple[str, int]


@process_blueprint.get("/")
@roles_required(*READERS)
def index() -> str:
    return render_template(
        "process/index.html",
        versions=list(reversed(definitions.list_definitions(services()))),
        drafts=drafts.list_drafts(services(), actor()),
        designer=drafts.DESIGNER in actor().roles,
        max_mib=MAX_BPMN_BYTES // (1024 * 1024),
    )


@process_blueprint.get("/versions/<key>/<int:version>.bpmn")
@roles_required(*READERS)
def download(key: str, version: int) -> Response:
    xml = definitions.definition_xml(services(), key, version)
    return xml_download(xml, f"{key}-v{version}.bpmn")


@process_blueprint.get("/versions/<key>/diff")
@roles_required(*READERS)
def diff(key: str) -> str:
    versions = [v.version for v in definitions.list_definitions(services()) if v.key == key]
    if not versions:
        abort(404)
    latest = versions[-1]
    old = _version_arg("from", max(latest - 1, 1))
    new = _version_arg("to", latest)
    changes = definitions.version_diff(services(), key, old, new)
    return render_template("process/diff.html", diff=changes, versions=versions)


@process_blueprint.get("/versions/<key>/diff/diagram.json")
@roles_required(*READERS)
def diff_diagram(key: str) -> Response:
    """The newer version's diagram with added and changed elements marked."""
    old, new = _version_arg("from", 1), _version_arg("to", 1)
    changes = definitions.version_diff(services(), key, old, new)
    response = jsonify(
        {
            "xml": definitions.definition_xml(services(), key, changes["to"]),
            "markers": {
                "diff-added": [c["element_id"] for c in changes["added"]],
                "diff-changed": [c["element_id"] for c in changes["changed"]],
            },
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _version_arg(name: str, default: int) -> int | str:
    raw = request.args.get(name, "")
    if not raw:
        return default
    return int(raw) if raw.isdigit() else raw


@process_blueprint.get("/versions/<key>/<int:version>/migration")
@roles_required(*sorted(migration.MIGRATORS))
def migration_page(key: str, version: int) -> str:
    preview = migration.migration_preview(services(), actor(), key, version)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in preview:
        groups.setdefault(tuple(item["position"]), []).append(item)
    return render_template(
        "process/migration.html", key=key, version=version, groups=groups, total=len(preview)
    )


@process_blueprint.post("/versions/<key>/<int:version>/migration")
@roles_required(*sorted(migration.MIGRATORS))
def migrate(key: str, version: int) -> Response:
    chosen = [int(v) for v in request.form.getlist("incident_id") if v.isdigit()]
    if not chosen:
        flash(_("Choose at least one incident to move."), "error")
        return redirect(url_for("process.migration_page", key=key, version=version))
    results = migration.migrate(services(), actor(), key, version, {"incident_ids": chosen})
    moved = [r for r in results if r["ok"]]
    flash(_("%(n)d incident(s) moved to version %(v)d.", n=len(moved), v=version), "success")
    for failed in (r for r in results if not r["ok"]):
        flash(
            _(
                "Incident %(id)d not moved: %(reason)s",
                id=failed["incident_id"],
                reason=failed["reason"],
            ),
            "error",
        )
    return redirect(url_for("process.migration_page", key=key, version=version))


@process_blueprint.post("/drafts")
@roles_required(drafts.DESIGNER)
def create() -> Response | PageResult:
    upload = request.files.get("file")
    xml = upload.read(MAX_BPMN_BYTES + 1) if upload and upload.filename else None
    try:
        if xml is not None and len(xml) > MAX_BPMN_BYTES:
            raise Invalid(
                "the BPMN is too large",
                [{"element": None, "line": None, "message": f"larger than {MAX_BPMN_BYTES} bytes"}],
            )
        draft = drafts.create_draft(services(), actor(), request.form.get("name"), xml)
    except Invalid as exc:
        flash(_("The file cannot be used as a draft: %(reason)s", reason=_first(exc)), "error")
        return redirect(url_for("process.index"))
    flash(_("Draft %(name)s created.", name=draft["name"]), "success")
    return redirect(url_for("process.edit", draft_id=draft["id"]))


@process_blueprint.get("/drafts/<int:draft_id>")
@roles_required(drafts.DESIGNER)
def edit(draft_id: int) -> PageResult:
    return _modeler_page(draft_id)


def _modeler_page(draft_id: int, problems: list[dict[str, Any]] | None = None) -> PageResult:
    draft = drafts.get_draft(services(), actor(), draft_id)
    page = render_template(
        "process/modeler.html",
        draft=draft,
        problems=problems or [],
        texts={
            "saved": _("Saved (revision %(revision)s)."),
            "failed": _("The draft could not be saved."),
            "clean": _("No problems: this draft can be deployed."),
            "problems": _("%(n)s problem(s): see the marked elements."),
        },
    )
    return page if problems is None else (page, 422)


@process_blueprint.get("/drafts/<int:draft_id>/what-if")
@roles_required(*READERS)
def what_if(draft_id: int) -> PageResult:
    draft = drafts.get_draft(services(), actor(), draft_id)
    try:
        limit = replay.parse_limit(request.args.get("limit"))
        report = replay.replay_draft(services(), actor(), draft_id, limit)
    except Invalid as exc:
        details = exc.details if isinstance(exc.details, list) else []
        page = render_template(
            "process/what_if.html", draft=draft, report=None, problems=details, limit=20
        )
        return page, 422
    return render_template(
        "process/what_if.html", draft=draft, report=report, problems=[], limit=limit
    )


@process_blueprint.get("/drafts/<int:draft_id>.bpmn")
@roles_required(*READERS)
def draft_xml(draft_id: int) -> Response:
    """The draft's XML, for the modeler's fetch() and for saving; never shown inline (it
    is a designer's upload and may carry markup that would run in this origin)."""
    draft = drafts.get_draft(services(), actor(), draft_id)
    return xml_download(draft["xml"], f"{draft['name']}.bpmn")


@process_blueprint.post("/drafts/<int:draft_id>/save")
@roles_required(drafts.DESIGNER)
def save(draft_id: int) -> Response:
    raw = request.args.get("revision", "")
    body = bpmn_body()  # refused (422) when over the BPMN size limit, before it is read
    draft = drafts.save_draft(
        services(), actor(), draft_id, body, int(raw) if raw.isdigit() else raw
    )
    return jsonify(draft)


@process_blueprint.get("/drafts/<int:draft_id>/problems")
@roles_required(*READERS)
def problems(draft_id: int) -> Response:
    found = drafts.validate_draft(services(), actor(), draft_id)
    return jsonify({"problems": found, "deployable": definitions.deployable(found)})


@process_blueprint.post("/drafts/<int:draft_id>/deploy")
@roles_required(drafts.DESIGNER)
def deploy(draft_id: int) -> Response | PageResult:
    note = request.form.get("note", "").strip()
    try:
        info = drafts.deploy_draft(services(), actor(), draft_id, note)
    except Invalid as exc:
        details = exc.details if isinstance(exc.details, list) else []
        return _modeler_page(draft_id, details or [{"element": None, "message": exc.message}])
    flash(_("Version %(v)d deployed: new incidents start on it.", v=info.version), "success")
    return redirect(url_for("process.index"))


@process_blueprint.post("/drafts/<int:draft_id>/delete")
@roles_required(drafts.DESIGNER)
def delete(draft_id: int) -> Response:
    drafts.delete_draft(services(), actor(), draft_id)
    flash(_("Draft deleted."), "success")
    return redirect(url_for("process.index"))


@process_blueprint.get("/assets/modeler.js")
def modeler_js() -> Response:
    """The modeler bundle built by `npm run build` from the installed packages."""
    if not (MODELER_BUILD / "modeler.js").is_file():
        abort(404, description=_("The modeler is not built (run npm install && npm run build)."))
    return send_from_directory(MODELER_BUILD, "modeler.js", max_age=3600)


@process_blueprint.get("/assets/properties-panel/<path:filename>")
def properties_panel_css(filename: str) -> Response:
    return send_from_directory(PROPERTIES_PANEL_CSS, filename, max_age=3600)


def _first(exc: Invalid) -> str:
    details = exc.details
    if isinstance(details, list) and details:
        return str(details[0].get("message"))
    return exc.message
