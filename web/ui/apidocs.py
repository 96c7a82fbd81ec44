"""The browsable API reference at /api/docs (Swagger UI, built from npm at set-up).

Like the document it shows (`GET /api/v1/openapi.json`), the page holds no data and
needs no sign-in. Its script and stylesheet are the esbuild bundle of
web/assets/apidocs.js in build/apidocs/, never committed.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, render_template, send_from_directory, url_for
from werkzeug.wrappers import Response

apidocs_blueprint = Blueprint("apidocs", __name__, url_prefix="/api/docs")

APIDOCS_BUILD = Path(__file__).resolve().parents[2] / "build" / "apidocs"
ASSETS = frozenset({"apidocs.js", "apidocs.css"})


@apidocs_blueprint.get("")
def page() -> str:
    return render_template("apidocs.html", document_url=url_for("api.openapi_document"))


@apidocs_blueprint.get("/<filename>")
def asset(filename: str) -> Response:
    if filename not in ASSETS:
        abort(404)
    if not (APIDOCS_BUILD / filename).is_file():
        # Under /api/ errors are JSON for programs (web/errors.py): no page text here.
        abort(404, description="the API reference is not built (run npm install && npm run build)")
    return send_from_directory(APIDOCS_BUILD, filename, max_age=3600)
