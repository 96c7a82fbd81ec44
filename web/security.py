"""What every response tells the browser, and how stored BPMN leaves the server.

`register_security_headers` installs one after_request hook (create_app calls it):
a strict Content-Security-Policy, nosniff, no framing, a same-origin referrer, HSTS
over HTTPS, and `Cache-Control: no-store` on everything but the static assets.

Stored BPMN is whatever a designer uploaded, so it may hold `<html:script>` or any
other markup a browser would run if it rendered the file; `xml_download` serves it as
a file to save, never as a document of this origin. And a process diagram shown to
someone outside the staff (a reporter, a vendor) goes through `outsider_diagram_xml`:
the shapes and names stay, the logic and the designers' notes do not.
"""

from __future__ import annotations

import string
from urllib.parse import quote

from flask import Flask, Response, current_app, request
from lxml import etree

from engine.workflow.lint import BPMN_NS, BPMNDI_NS, DC_NS, DI_NS

# The pages load scripts, styles, images and fonts from this origin only, plus data:
# images and fonts (bpmn-js's icon font and the properties panel's icons are data: URIs
# inside their stylesheets). No inline script, no eval, no plugins, no <base>, no
# framing, forms post here only.
_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)
CONTENT_SECURITY_POLICY = "; ".join(_DIRECTIVES)
# The one exception, for the modeler page only (checked in Chromium by
# tests/test_security_headers.py): bpmn-js-properties-panel builds its containers from
# markup with style attributes (`<div style="height: 100%" ...>` through min-dom's
# domify), and bpmn-js's align/distribute icons are SVG markup with style attributes;
# under style-src 'self' the browser refuses them and the panel loses its layout. So the
# modeler may use inline style *attributes* (`style-src-attr`) and nothing more:
# <style> elements and stylesheets stay 'self', scripts never get 'unsafe-inline'. The
# viewer on the incident and diff pages needs no exception (it styles through the CSSOM,
# which CSP does not restrict).
MODELER_POLICY = "; ".join((*_DIRECTIVES, "style-src-attr 'unsafe-inline'"))
MODELER_ENDPOINTS = frozenset({"process.edit", "process.deploy"})
# Pages whose URL carries a secret (a signed caller link, web.ui.caller_link).
NO_REFERRER_ENDPOINTS = frozenset({"caller.open_link"})
# A download opened in the browser anyway (or sniffed) runs nothing and loads nothing.
DOWNLOAD_POLICY = "sandbox; default-src 'none'"
HSTS = "max-age=31536000; includeSubDomains"

# Endpoints that serve build artefacts and installed packages, the same for everyone:
# they keep the max-age they were sent with.
CACHEABLE_ENDPOINTS = frozenset(
    {
        "static",
        "process.modeler_js",
        "process.properties_panel_css",
        "incidents.bpmn_js",
        "apidocs.asset",
        "favicon.favicon",
    }
)

_PLAIN_FILENAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _cacheable(response: Response) -> bool:
    return request.endpoint in CACHEABLE_ENDPOINTS and response.status_code < 400


def register_security_headers(app: Flask, *, https_only: bool = False) -> None:
    """`https_only`: the site is only served over HTTPS (the secure-cookie setting)."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        # A policy the view set itself (a download's sandbox) is kept.
        modeler = request.endpoint in MODELER_ENDPOINTS
        headers.setdefault(
            "Content-Security-Policy", MODELER_POLICY if modeler else CONTENT_SECURITY_POLICY
        )
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        # same-origin rather than no-referrer: Flask-WTF checks the Referer of form posts
        # over HTTPS, and it must still be sent to ourselves.
        # A signed caller link's URL holds its token: it is never sent on as a Referer.
        no_referrer = request.endpoint in NO_REFERRER_ENDPOINTS
        headers["Referrer-Policy"] = "no-referrer" if no_referrer else "same-origin"
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


# -- the diagram as people outside the staff see it ------------------------------------

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
# What a diagram is drawn from; anything in another namespace (camunda:, an html:script,
# a vendor's extension) is either logic or a payload, and goes.
_DRAWN_NAMESPACES = frozenset({BPMN_NS, BPMNDI_NS, DC_NS, DI_NS})
# BPMN elements that hold code, expressions, timings or prose rather than shape: removed
# with everything inside them.
_LOGIC_ELEMENTS = frozenset(
    {
        "extensionElements",
        "documentation",
        "script",
        "timeDate",
        "timeDuration",
        "timeCycle",
        "completionCondition",
        "loopCardinality",
        "loopCondition",
        "activationCondition",
        "resourceAssignmentExpression",
        "resourceParameterBinding",
        "assignment",
        "transformation",
        "formalExpression",
        "expression",
        # A text annotation's words are the designers' notes; the shape stays, empty.
        "text",
    }
)
# Codes and names a designer chose for the engine, not for the drawing.
_INTERNAL_ATTRIBUTES = frozenset({"errorCode", "escalationCode", "messageRef", "signalRef"})
# Conditions are emptied rather than removed: bpmn-js marks a conditional flow by the
# element's presence, not its content.
_EMPTIED_ELEMENTS = frozenset({"conditionExpression", "condition"})


def _parser() -> etree.XMLParser:
    # The XML comes from our own serialisation of a stored version, but it is still
    # parsed with nothing to resolve, load or fetch (as engine.workflow.safe_xml does).
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _drop(node: etree._Element) -> None:
    parent = node.getparent()
    if parent is not None:
        parent.remove(node)


def _is_logic(node: etree._Element) -> bool:
    name = etree.QName(node)
    return name.namespace not in _DRAWN_NAMESPACES or (
        name.namespace == BPMN_NS and name.localname in _LOGIC_ELEMENTS
    )


def outsider_diagram_xml(xml: str) -> str:
    """The diagram without its scripts, condition and timer expressions, extension
    elements (camunda: forms, properties, listeners), documentation, comments and any
    foreign markup: what a reporter or a vendor may read of the process."""
    root = etree.fromstring(xml.encode("utf-8"), _parser())
    for node in list(root.iter()):
        # Comments and processing instructions have no string tag.
        if not isinstance(node.tag, str) or _is_logic(node):
            _drop(node)
        else:
            name = etree.QName(node)
            if name.namespace == BPMN_NS and name.localname in _EMPTIED_ELEMENTS:
                kind = node.get(f"{{{XSI_NS}}}type")
                node.clear()  # text, children and attributes
                if kind is not None:
                    node.set(f"{{{XSI_NS}}}type", kind)
            for attribute in list(node.attrib):
                namespace = etree.QName(attribute).namespace
                internal = namespace is None and attribute in _INTERNAL_ATTRIBUTES
                if internal or (namespace is not None and namespace != XSI_NS):
                    del node.attrib[attribute]
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding="unicode")
