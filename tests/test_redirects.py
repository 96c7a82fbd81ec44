"""Redirect targets taken from the request (`next`) never leave this origin.

Before the fix `/login?next=////host/x` sent the browser to //host/x, and a CR or
LF in `next` made the redirect itself fail with a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import PASSWORD, Browser
from tests.scenario import Scenario
from web.redirects import local_target, safe_redirect_target

ORIGIN = "http://localhost"

HOSTILE = [
    "////host/x",
    "///host/x",
    "//host",
    "//host/x?y=1",
    "/\\host",
    "\\\\host",
    "/\\/host",
    "\\/host",
    "https://host",
    "https:host",
    "http://localhost.host/",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fhost",  # the literal text: a relative reference, not a path on this site
    "host/x",
    "/\t/host",
    "\t//host",
    "/\r\n/host",
    "/x\r\nSet-Cookie: a=b",
    "/x\nLocation: //host",
    "/x\x00",
    "\x00//host",
    "/x\x7f",
    " //host",
    "//host ",
    "/x\u0085y",
    "//[::1",
    "",
]
GOOD = [
    "/tasks",
    "/incidents?status=new&sort=due",
    "/incidents/1#notes",
    "/incidents/%2F%2Fhost",
    "/process/",
    "/tasks?lane=level2&page=2",
    "/incidents?q=%E9%83%B5%E4%BB%B6",
]


def _browser_lands_on(location: str, base: str) -> tuple[str, str]:
    """Where a browser goes for this Location: scheme and host, read as a browser reads."""
    cleaned = location.strip(" \x00").replace("\t", "").replace("\r", "").replace("\n", "")
    parts = urlsplit(urljoin(base, cleaned.replace("\\", "/")))
    return parts.scheme, parts.netloc


def _assert_stays_here(response: Any, target: str, default: str) -> None:
    """Redirected to the safe default, or (a NUL) refused before any view by the input
    guard: either way the browser stays on this origin."""
    if "\x00" in target:
        assert response.status_code == 422 and "Location" not in response.headers
        return
    assert response.status_code == 302
    assert response.headers["Location"] == default
    assert _browser_lands_on(response.headers["Location"], ORIGIN) == ("http", "localhost")


@pytest.mark.parametrize("target", HOSTILE)
def test_local_target_refuses_other_origins_and_control_characters(target: str) -> None:
    assert local_target(target) is None
    assert safe_redirect_target(target, "/home") == "/home"


@pytest.mark.parametrize("target", GOOD)
def test_local_target_keeps_paths_on_this_site(target: str) -> None:
    assert local_target(target) == target


def test_backslashes_are_read_as_slashes_as_browsers_do() -> None:
    assert local_target("/incidents\\1") == "/incidents/1"
    assert local_target(None) is None


def _login(app: Any, username: str, next_value: str | None) -> Any:
    other = Browser(app)
    token = other.csrf_token("/login")
    query = {} if next_value is None else {"next": next_value}
    return other.client.post(
        "/login",
        query_string=query,
        data={"username": username, "password": PASSWORD, "csrf_token": token},
    )


@pytest.mark.parametrize("target", HOSTILE)
def test_login_next_never_leaves_the_site(app: Any, target: str) -> None:
    response = _login(app, "desk", target)
    _assert_stays_here(response, target, "/tasks")  # the service desk's home


def test_login_next_from_a_raw_query_string(app: Any) -> None:
    """`?next=%2F%2Fhost` arrives as `//host`; a raw CR LF too."""
    for raw in ("%2F%2Fhost", "%2F%5Chost", "%0D%0A%2F%2Fhost", "/x%0D%0ASet-Cookie:%20a=b"):
        other = Browser(app)
        token = other.csrf_token("/login")
        response = other.client.post(
            f"/login?next={raw}",
            data={"username": "desk", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302, raw
        assert response.headers["Location"] == "/tasks", raw


@pytest.mark.parametrize("target", GOOD)
def test_login_keeps_a_local_next(app: Any, target: str) -> None:
    response = _login(app, "desk", target)
    assert response.status_code == 302
    assert response.headers["Location"] == target


@pytest.mark.parametrize("target", HOSTILE)
def test_language_form_next_never_leaves_the_site(browser: Browser, target: str) -> None:
    browser.login("desk")
    response = browser.post("/language", {"locale": "en", "next": target})
    _assert_stays_here(response, target, "/")


@pytest.mark.parametrize(
    ("target", "location"),
    # The form sends request.full_path, which ends in "?" when there is no query.
    [("/incidents?status=new", "/incidents?status=new"), ("/tasks?", "/tasks")],
)
def test_language_form_returns_to_the_page(browser: Browser, target: str, location: str) -> None:
    browser.login("desk")
    response = browser.post("/language", {"locale": "en", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == location


def test_claim_next_with_a_newline_falls_back_to_the_task(browser: Browser, api: Any) -> None:
    task_id = Scenario(api).task_id("record_incident")
    browser.login("desk")
    response = browser.post(f"/tasks/{task_id}/claim", {"next": "/tasks\r\nSet-Cookie: a=b"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/tasks/{task_id}"


@pytest.mark.parametrize("target", ["////host/x", "/\\host", "https://host", "//host"])
def test_claim_next_never_leaves_the_site(browser: Browser, api: Any, target: str) -> None:
    task_id = Scenario(api).task_id("record_incident")
    browser.login("desk")
    response = browser.post(f"/tasks/{task_id}/claim", {"next": target})
    assert response.status_code == 302
    assert _browser_lands_on(response.headers["Location"], ORIGIN) == ("http", "localhost")
