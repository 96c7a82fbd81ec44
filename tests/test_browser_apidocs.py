"""/api/docs in a real browser: Swagger UI lists the operations, under the strict CSP."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from playwright.sync_api import expect

from tests.test_browser_e2e import chromium, server  # noqa: F401  (fixtures)
from tests.test_security_headers import WATCH


def test_the_api_reference_lists_the_operations_without_sign_in(chromium, server) -> None:  # noqa: F811
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text} {m.location['url']}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    context.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400
            else None)

    response = page.goto(f"{server.root}/api/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    expect(page.locator("#swagger-ui[data-ready='true']")).to_have_count(1, timeout=20000)

    create = page.locator(
        ".opblock.opblock-post:has(.opblock-summary-path[data-path='/incidents'])"
    )
    expect(create).to_have_count(1)
    expect(create).to_contain_text("Report an incident")
    expect(page.locator(".opblock")).to_have_count(_operation_count(server.base), timeout=10000)

    # Opening one shows its parameters and answers, drawn from the document.
    get_one = page.locator(
        ".opblock.opblock-get:has(.opblock-summary-path[data-path='/incidents/{incident_id}'])"
    )
    get_one.locator(".opblock-summary").click()
    expect(get_one.locator(".parameters")).to_contain_text("incident_id")
    expect(get_one.locator(".responses-table")).to_contain_text("404")

    violations: list[Any] = page.evaluate("window.__cspViolations || []")
    assert violations == []
    assert problems == []
    # Everything came from this server: no CDN, no validator badge, no telemetry.
    assert all(url.startswith(server.root) for url in requests), requests
    context.close()


def _operation_count(api_base: str) -> int:
    with urllib.request.urlopen(f"{api_base}/openapi.json", timeout=10) as answer:
        document = json.load(answer)
    return sum(len(item) for item in document["paths"].values())
