"""The JSON API under /api/v1 (contract)."""

from flask import Blueprint

api_blueprint = Blueprint("api", __name__)

from web.api import auth, calendars, definitions, drafts, incidents, sla, tasks  # noqa: E402,F401  (routes register)
