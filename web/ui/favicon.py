"""`/favicon.ico`: browsers ask for it on every site, signed in or not.

The icon itself is a static file (web/static/favicon.ico, drawn from favicon.svg, which the
pages link as well); this route only answers the address browsers try by themselves,
cacheable like the other static files (web/security.py CACHEABLE_ENDPOINTS).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.wrappers import Response

STATIC = Path(__file__).resolve().parents[1] / "static"
ONE_WEEK = 7 * 24 * 3600

favicon_blueprint = Blueprint("favicon", __name__)


@favicon_blueprint.get("/favicon.ico")
def favicon() -> Response:
    return send_from_directory(
        STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=ONE_WEEK
    )
