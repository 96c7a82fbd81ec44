"""What every response tells the browser, and how stored BPMN leaves the server.

`register_security_headers` installs one after_request hook (create_app calls it):
a strict Content-Security-Policy, nosniff, no framing, a same-origin referrer, HSTS
over HTTPS, and `Cache-Control: no-store` on everything but the static assets.

Stored BPMN is whatever a designer uploaded, so it may hold `<html:script>` or any
other markup a browser would run if it rendered the file; `xml_download` serves it as
a file to save, never as a document of this origin.
"""

from __future__ import annotations

import string
from urllib.parse import quote

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

# The pages load scripts, styles, images and fonts from this origin only, and data:
# images/fonts (bpmn-js's icon font and diagram-js's markers are embedded as data: URIs).
# style-src: bpmn-js and diagram-js position and colour the SVG shapes, labels and
# overlays by writing style attributes (`setAttribute("style", ...)` through tiny-svg /
# min-dom), which CSP counts as inline style; without 'unsafe-inline' for *attributes*
# the diagrams render without positions or colours. `style-src-attr` allows exactly that
# and nothing else: <style> elements and stylesheets stay 'self' (`style-src-elem`), and
# scripts never get 'unsafe-inline'.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-elem 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
# A download opened in the browser anyway (or sniffed) runs nothing and loads nothing.
DOWNLOAD_POLICY = "sandbox; default-src 'none'"
HSTS = "max-age=31536000; includeSubDomains"

# Endpoints that serve build artefacts and installed packages, the same for everyone:
# they keep the max-age they were sent with.
CACHEABLE_ENDPOINTS = frozenset(
    {"static", "process.modeler_js", "process.properties_panel_css", "incidents.bpmn_js"}
)

_PLAIN_FILENAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _cacheable(response: Response) -> bool:
    return request.endpoint in CACHEABLE_ENDPOINTS and response.status_code < 400


def register_security_headers(app: Flask, *, https_only: bool = False) -> None:
    """`https_only`: the site is only served over HTTPS (the secure-cookie setting)."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        # A view may set a stricter policy (downloads do); it is never loosened here.
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        if request.is_secure or https_only:
            headers["Strict-Transport-Security"] = HSTS
        if not _cacheable(response):
            # Pages and API answers are per user (and may carry a CSRF token): no copy is
            # kept by the browser or anything between.
            headers["Cache-Control"] = "no-store"
            headers.pop("Expires", None)
            headers.pop("Pragma", None)
        return response


def content_disposition(filename: str) -> str:
    """`attachment` with the name quoted per RFC 6266: an ASCII-only `filename` with
    every unsafe character replaced (no quote, backslash, semicolon or line break can
    end the parameter), and the full name in `filename*` percent-encoded as UTF-8."""
    printable = "".join(c for c in filename if c.isprintable()) or "download"
    plain = "".join(c if c in _PLAIN_FILENAME_CHARS else "_" for c in printable)
    encoded = quote(printable, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"


def xml_download(xml: str | bytes, filename: str) -> Response:
    """Stored XML as a file to save: attachment, nosniff, and a sandbox with no sources."""
    response: Response = current_app.response_class(xml, mimetype="application/xml")
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response
