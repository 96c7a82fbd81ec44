"""Operations: /healthz, /metrics, and a request id on every request.

- `GET /healthz` (no sign-in, JSON): 200 `{"status": "ok", ...}` while the database
  answers and a timer worker has beaten lately (engine.services.ops.health), else
  503 naming the problems. `ITSM_HEALTH_EXPECT_WORKER=0` says no worker is run at
  all: the answer then depends on the database alone and says so.
- `GET /metrics`: the Prometheus text format (engine.services.telemetry.metrics)
  for a direct request from this host, or with `Authorization: Bearer
  <ITSM_METRICS_TOKEN>`; 403 otherwise. See `direct_from_loopback` for what "direct"
  has to mean behind a reverse proxy.
- Every response carries `X-Request-ID`: the caller's when it is a safe token, else
  a new one; log lines written for the request carry it too (web.logs).

Each setting is read from the app's config, else the environment.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import time
import uuid
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from engine.services.context import ServiceContext
from engine.services.intake import imap_poll
from engine.services.notify import mail_log, webhook_delivery
from engine.services.ops.health import check_health
from engine.services.telemetry import correlation, metrics

REQUEST_ID_HEADER = "X-Request-ID"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Headers only a proxy adds. Behind ITSM_SERVER_TRUSTED_PROXY, waitress keeps the
# trusted proxy's forwarded headers and drops everyone else's; X-Real-IP it never
# drops, and nginx configurations often set it.
FORWARDING_HEADERS = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
    }
)

ops_blueprint = Blueprint("ops", __name__)


def _setting(name: str, default: str = "") -> str:
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name, default)
    return str(value).strip()


def direct_from_loopback(
    remote_addr: str | None, header_names: Iterable[str], trusted_proxy: str
) -> bool:
    """Whether a request came straight from this host, not through a proxy.

    `remote_addr` is what waitress says: the socket's peer, or, when that peer is
    the trusted proxy (`trusted_proxy`, ITSM_SERVER_TRUSTED_PROXY), the client that
    its X-Forwarded-For names. So a proxied request from outside has the outside
    address and is refused. Two cases would still look like loopback, and are refused:

    - a request carrying any forwarding header: it came through a proxy (nginx on
      this host passing on a client of its own, also one on this host);
    - a request whose address is the trusted proxy's itself (or any address, when
      every peer is trusted with `*`): the proxy sent no X-Forwarded-For, so the
      client is unknown. With a proxy on 127.0.0.1, a scraper on this host
      therefore needs the token (or another loopback address, e.g. ::1).

    What no app can tell is a proxy on this host that waitress was not told to
    trust (its headers are dropped before the app sees them): docs/deployment.md
    asks for ITSM_SERVER_TRUSTED_PROXY behind a proxy, and for /metrics to be
    refused at the proxy as well."""
    if FORWARDING_HEADERS & {name.lower() for name in header_names}:
        return False
    if not remote_addr or trusted_proxy == "*":
        return False
    try:
        address = ipaddress.ip_address(remote_addr.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    if trusted_proxy:
        try:
            proxy = ipaddress.ip_address(trusted_proxy.strip("[]"))
        except ValueError:
            proxy = None
        if address == proxy or remote_addr == trusted_proxy:
            return False
    return address.is_loopback


def _worker_expected() -> bool:
    """False only when told (`0`) that this deployment runs no timer worker."""
    return _setting("ITSM_HEALTH_EXPECT_WORKER", "1") not in ("0", "False")


def _token_matches(authorization: str, token: str) -> bool:
    scheme, _, given = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@ops_blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    ctx: ServiceContext = current_app.extensions["itsm"]
    health = check_health(ctx, worker_expected=_worker_expected())
    return jsonify(health.as_json()), 200 if health.ok else 503


@ops_blueprint.get("/metrics")
def metrics_page() -> Response:
    allowed = _token_matches(
        request.headers.get("Authorization", ""), _setting("ITSM_METRICS_TOKEN")
    ) or direct_from_loopback(
        request.remote_addr, request.headers.keys(), _setting("ITSM_SERVER_TRUSTED_PROXY")
    )
    if not allowed:
        return Response(
            "metrics are served to this host directly or with the metrics token\n",
            403,
            mimetype="text/plain",
        )
    ctx: ServiceContext = current_app.extensions["itsm"]
    readings = check_health(ctx, worker_expected=_worker_expected()).readings
    body = generate_latest(REGISTRY) + metrics.state_exposition(readings)
    body += imap_poll.poll_age_exposition()
    body += webhook_delivery.backlog_exposition(ctx)
    body += mail_log.backlog_exposition(ctx)
    return Response(body, 200, content_type=CONTENT_TYPE_LATEST)


def _request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _begin() -> None:
    g.request_id = _request_id()
    g.request_started = time.perf_counter()
    g.request_id_token = correlation.bind(g.request_id)


def _finish(response: Response) -> Response:
    # Also for error responses: Flask runs after_request for handled errors and 500s.
    request_id = g.get("request_id") or _request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    rule = request.url_rule.rule if request.url_rule is not None else None
    metrics.count_request(rule, request.method, response.status_code, elapsed)
    return response


def _end(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            correlation.unbind(token)
        except ValueError:  # bound in another context (a copied request context)
            correlation.bind(None)


def register_ops(app: Flask) -> None:
    """The ops endpoints and the request-id and metrics hooks (create_app calls it)."""
    app.register_blueprint(ops_blueprint)
    # First of all before_request hooks: what they log carries the id, and a request
    # one of them refuses is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish)
    app.teardown_request(_end)
