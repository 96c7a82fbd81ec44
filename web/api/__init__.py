"""The JSON API under /api/v1 (contract)."""

from flask import Blueprint

api_blueprint = Blueprint("api", __name__)

import web.api.answers  # noqa: E402,F401  (routes register)
import web.api.attachments  # noqa: E402,F401  (routes register)
import web.api.inbound  # noqa: E402,F401  (routes register)
import web.api.me  # noqa: E402,F401  (routes register)
import web.api.notifications  # noqa: E402,F401  (routes register)
import web.api.openapi  # noqa: E402,F401  (GET /api/v1/openapi.json: every route's declaration)
import web.api.webhooks  # noqa: E402,F401  (routes register)
from web.api import api_keys, audit, auth, calendars, definitions, drafts, incidents, sla, tasks  # noqa: E402,F401  (routes register)
