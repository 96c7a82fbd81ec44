"""Security headers on every response, and a real browser that finds nothing refused.

Every GET route of the app (all of app.url_map) is requested as an anonymous user
and as a signed-in staff member, with ids of objects made here; every response,
including redirects, 404 and other errors, carries the Content-Security-Policy,
nosniff, no framing, the referrer policy and, when not a static asset, no-store.
Then Chromium opens the pages that run scripts (inbox, task, incident with its
diagram, modeler, version diff) under that policy and no violation may be reported.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from engine.services.context import ServiceContext
from tests.conftest import Api, Browser
from tests.scenario import Scenario
from tests.test_browser_e2e import Desk, chromium, server  # noqa: F401  (fixtures)
from tests.test_browser_modeler import CONDITION, open_group, select
from web.app import create_app
from web.security import (
    CACHEABLE_ENDPOINTS,
    CONTENT_SECURITY_POLICY,
    DOWNLOAD_POLICY,
    HSTS,
    MODELER_ENDPOINTS,
    MODELER_POLICY,
    NO_REFERRER_ENDPOINTS,
)
from web.settings import Settings

# Files served to save, each with the download sandbox (BPMN, attachments).
XML_DOWNLOADS = {
    "api.download",
    "process.download",
    "process.draft_xml",
    "api.download_attachment",
    "attachments.download",
}


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_the_policy_is_strict_for_scripts() -> None:
    policy = _directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    for directive, sources in policy.items():
        unsafe = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*"} & set(sources)
        assert not unsafe, directive
    # The modeler's one exception: inline style attributes, nothing else.
    modeler = _directives(MODELER_POLICY)
    assert modeler.pop("style-src-attr") == ["'unsafe-inline'"]
    assert modeler == policy


# -- every route -----------------------------------------------------------------------


@pytest.fixture
def objects(api: Api) -> dict[str, str]:
    """Ids of existing objects, by URL variable name."""
    scenario = Scenario(api)
    task_id = scenario.task_id("record_incident")
    draft = api.client.post(
        "/api/v1/process-drafts",
        headers={"Authorization": f"Bearer {api.tokens['designer']}"},
    ).get_json()
    calendars = api.ok(api.get("manager", "/sla/calendars"))
    key = api.ok(api.get("designer", "/process-definitions"))[0]["key"]
    attachment = api.client.post(
        f"/api/v1/incidents/{scenario.id}/attachments",
        data={"file": (io.BytesIO(b"<html><script>x()</script>"), "page.html")},
        headers={"Authorization": f"Bearer {api.tokens['reporter']}"},
    ).get_json()
    return {
        "incident_id": str(scenario.id),
        "task_id": str(task_id),
        "draft_id": str(draft["id"]),
        "attachment_id": str(attachment["id"]),
        "name": calendars[0]["name"],
        "key": key,
        "version": "1",
        "username": "desk",
        "filename": "app.css",
        "lane": "service_desk",
        "priority": "1",
    }


STATIC_FILES = {
    "static": "app.css",
    "incidents.bpmn_js": "bpmn-navigated-viewer.production.min.js",
    "process.properties_panel_css": "assets/properties-panel.css",
}


def _get_paths(app: Any, objects: dict[str, str]) -> list[tuple[str, str]]:
    """(endpoint, path) for every rule that answers GET, plus a path that matches none."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        values = {}
        for name in rule.arguments:
            if rule.endpoint in STATIC_FILES and name == "filename":
                values[name] = STATIC_FILES[rule.endpoint]
            else:
                values[name] = objects.get(name, "1")
        path = rule.build(values, append_unknown=False)[1]
        paths.append((rule.endpoint, path))
    paths.append(("<none>", "/no/such/page"))
    paths.append(("<none>", "/api/v1/no-such-thing"))
    return paths


def _assert_headers(endpoint: str, path: str, response: Any, https: bool = False) -> None:
    headers = response.headers
    where = f"{endpoint} {path} -> {response.status_code}"
    if endpoint in XML_DOWNLOADS and response.status_code == 200:
        policy = DOWNLOAD_POLICY
    elif endpoint in MODELER_ENDPOINTS:
        policy = MODELER_POLICY
    else:
        policy = CONTENT_SECURITY_POLICY
    assert headers.get("Content-Security-Policy") == policy, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("X-Frame-Options") == "DENY", where
    referrer = "no-referrer" if endpoint in NO_REFERRER_ENDPOINTS else "same-origin"
    assert headers.get("Referrer-Policy") == referrer, where
    if https:
        assert headers.get("Strict-Transport-Security") == HSTS, where
    else:
        assert "Strict-Transport-Security" not in headers, where
    if endpoint in CACHEABLE_ENDPOINTS and response.status_code == 200:
        assert "no-store" not in headers.get("Cache-Control", ""), where
    else:
        assert headers.get("Cache-Control") == "no-store", where


def test_every_get_route_anonymous(app: Any, objects: dict[str, str]) -> None:
    client = app.test_client()
    statuses = set()
    for endpoint, path in _get_paths(app, objects):
        response = client.get(path)
        statuses.add(response.status_code)
        _assert_headers(endpoint, path, response)
    assert {200, 302, 401, 404} <= statuses  # static, sign-in redirects, API, missing


@pytest.mark.parametrize("user", ["desk", "manager", "designer", "admin"])
def test_every_get_route_signed_in(
    app: Any, objects: dict[str, str], template: Any, user: str
) -> None:
    """A browser session and an API token at once: pages and API both answer as `user`."""
    browser = Browser(app)
    browser.login(user)
    token = {"Authorization": f"Bearer {template.tokens[user]}"}
    statuses = set()
    for endpoint, path in _get_paths(app, objects):
        response = browser.get(path, headers=token)
        statuses.add(response.status_code)
        _assert_headers(endpoint, path, response)
    assert 200 in statuses and 404 in statuses


def test_errors_and_redirects_carry_the_headers(app: Any, browser: Browser) -> None:
    client = app.test_client()
    cases = [
        ("<none>", client.get("/tasks")),  # 302 to sign in
        ("<none>", client.post("/login", data={"username": "x"})),  # 400: no CSRF token
        ("<none>", client.post("/tasks")),  # 405
        ("<none>", client.get("/api/v1/incidents")),  # 401
    ]
    browser.login("reporter")
    cases += [
        ("<none>", browser.get("/admin/users")),  # 403
        ("<none>", browser.get("/incidents/999999")),  # 404
        ("<none>", browser.get("/")),  # 302 home
    ]
    assert {r.status_code for _, r in cases} >= {302, 400, 401, 403, 404, 405}
    for endpoint, response in cases:
        _assert_headers(endpoint, response.request.path, response)


def test_an_unexpected_error_carries_the_headers(app: Any) -> None:
    @app.get("/boom-for-test")
    def _boom() -> str:
        raise RuntimeError("boom")

    app.config["TESTING"] = False  # let the 500 handler answer instead of raising
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    _assert_headers("<none>", "/boom-for-test", response)


@pytest.fixture
def https_app(ctx: ServiceContext, database_url: str) -> Any:
    settings = Settings(database_url=database_url, secret_key="test-secret", secure_cookies=True)
    flask_app = create_app(settings, ctx)
    flask_app.config["TESTING"] = True
    return flask_app


def test_hsts_only_over_https(app: Any, https_app: Any) -> None:
    plain = app.test_client().get("/login")
    assert "Strict-Transport-Security" not in plain.headers
    # Over HTTPS (or behind a proxy that says so, as request.is_secure reads it).
    secure = app.test_client().get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == HSTS
    # A deployment that sets secure cookies is HTTPS-only: HSTS on every answer.
    configured = https_app.test_client().get("/login")
    assert configured.headers["Strict-Transport-Security"] == HSTS


def test_static_assets_stay_cacheable(app: Any, browser: Browser) -> None:
    browser.login("designer")
    for path in ("/static/app.css", "/static/app.js", "/static/diagram.js"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert "no-store" not in response.headers.get("Cache-Control", ""), path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_inline_script_style_or_handler_in_the_pages(browser: Browser, api: Api) -> None:
    """What the policy refuses is not in the markup to begin with."""
    scenario = Scenario(api)
    task = scenario.task_id("record_incident")
    browser.login("manager")
    assert browser.post("/language", {"locale": "en"}).status_code == 302
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")|<style|\sstyle=|"
        r"\son[a-z]+\s*=|javascript:",
        re.IGNORECASE,
    )
    for path in (
        "/tasks",
        f"/tasks/{task}",
        f"/incidents/{scenario.id}",
        "/incidents",
        "/incidents/new",
        "/process/",
        "/sla/policies",
        "/login",
    ):
        html = browser.get(path).get_data(as_text=True)
        assert not inline.search(html), (path, inline.search(html))


# -- a real browser under the policy ---------------------------------------------------

WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push([e.violatedDirective, e.blockedURI, e.sourceFile,
    e.lineNumber, e.columnNumber, e.sample].join(" | "));
});
"""


class Watched:
    """Every browser page of a Desk, with CSP violations and console errors collected."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.console: list[str] = []
        self._reported = 0

    def as_(self, username: str) -> Page:
        fresh = username not in self.desk.pages
        page = self.desk.as_(username)
        if fresh:
            page.context.add_init_script(WATCH)
            page.on(
                "console",
                lambda m: (
                    self.console.append(f"{username}: {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: self.console.append(f"{username}: pageerror: {e}"))
        return page

    def visit(self, username: str, path: str) -> Page:
        page = self.as_(username)
        page.goto(self.desk.base + path)
        return page

    def violations(self, page: Page) -> list[str]:
        """Refused on this page, and in console messages since the last call."""
        found: list[str] = page.evaluate("window.__cspViolations || []")
        fresh, self._reported = self.console[self._reported :], len(self.console)
        return found + [m for m in fresh if "Content Security Policy" in m]


@pytest.fixture
def watched(chromium: Any, server: Any, api: Api) -> Iterator[Watched]:  # noqa: F811
    yield Watched(Desk(chromium, server, api))


def test_no_csp_violation_on_the_scripted_pages(watched: Watched, api: Api) -> None:
    scenario = Scenario(api)
    task = scenario.task_id("record_incident")
    seen: dict[str, list[str]] = {}

    page = watched.visit("desk", "/tasks")
    expect(page.locator("body")).to_contain_text("Mail server down")
    seen["inbox"] = watched.violations(page)

    page = watched.visit("desk", f"/tasks/{task}")
    expect(page.locator("#task-form")).to_have_count(1)
    seen["task"] = watched.violations(page)

    page = watched.visit("manager", f"/incidents/{scenario.id}")
    expect(page.locator("#diagram[data-ready='true']")).to_have_count(1, timeout=20000)
    expect(page.locator(".djs-element.current[data-element-id='record_incident']")).to_have_count(1)
    seen["incident"] = watched.violations(page)

    # The language menu switches with its own button (no inline handler, no submit on change).
    page.select_option("#locale", "en")
    page.click("#locale-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(rf"/incidents/{scenario.id}\??$"))
    seen["language"] = watched.violations(page)

    page = watched.visit("designer", "/process/")
    page.fill("#new-name", "CSP check")
    page.click("#new-draft")
    expect(page).to_have_url(re.compile(r"/process/drafts/\d+$"))
    expect(page.locator("#modeler[data-ready='true']")).to_have_count(1, timeout=20000)
    seen["modeler (opened)"] = watched.violations(page)
    # The properties panel, a problem pinned as an overlay, the align menu's icons.
    select(page, "flow_escalation_yes")
    open_group(page, "CamundaPlatform__Condition")
    page.locator(CONDITION).first.fill("management_escalation ==")
    page.click("#check")
    expect(page.locator("#modeler[data-checked='problems']")).to_have_count(1, timeout=20000)
    expect(page.locator(".problem-badge")).to_have_count(1)
    page.evaluate(
        "() => { const m = window.itsmModeler, r = m.get('elementRegistry');"
        " m.get('selection').select([r.get('record_incident'), r.get('initial_handling')]); }"
    )
    page.locator(".djs-context-pad [data-action='align-elements']").click()
    expect(page.locator(".djs-popup-results .entry").first).to_be_visible()
    seen["modeler"] = watched.violations(page)

    key = api.ok(api.get("designer", "/process-definitions"))[0]["key"]
    page = watched.visit("designer", f"/process/versions/{quote(key)}/diff?from=1&to=1")
    expect(page.locator("#diagram[data-ready='true']")).to_have_count(1, timeout=20000)
    seen["diff"] = watched.violations(page)

    refused = [f"{name}: {line}" for name, found in seen.items() for line in found]
    assert not refused, "\n".join(refused)
    errors = [m for m in watched.console if ": error:" in m or "pageerror" in m]
    assert errors == []


def test_a_vendor_sees_the_redacted_diagram_drawn(watched: Watched, api: Api) -> None:
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_passes_on()
    scenario.level2("escalate_vendor")
    page = watched.visit("vendor", f"/incidents/{scenario.id}")
    expect(page.locator("#diagram[data-ready='true']")).to_have_count(1, timeout=20000)
    expect(
        page.locator(".djs-element.current[data-element-id='vendor_investigation']")
    ).to_have_count(1)
    assert watched.violations(page) == []
