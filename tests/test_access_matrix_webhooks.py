"""Every webhook page and API route × every role: only an admin gets in, decided on
the server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.persistence.db import Database
from engine.services.context import ChannelSettings, ServiceContext
from tests.conftest import TEST_USERS, Browser, TestClock

SECRET = "matrix-secret-0123456789"


@pytest.fixture
def ctx(database_url: str, clock: TestClock) -> Iterator[ServiceContext]:
    channels = ChannelSettings(webhook_allowed_hosts=("127.0.0.1",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


@pytest.fixture
def webhook(api) -> int:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["created"], "secret": SECRET}
    return int(api.ok(api.post("admin", "/webhooks", body), 201)["id"])


def pages(webhook: int) -> list[tuple[str, str, dict[str, str] | None]]:
    form = {"url": "http://127.0.0.1:9/other", "events": "closed", "secret": SECRET}
    return [
        ("GET", "/admin/webhooks", None),
        ("GET", f"/admin/webhooks/{webhook}/deliveries", None),
        ("POST", "/admin/webhooks", form),
        ("POST", f"/admin/webhooks/{webhook}/delete", {}),
    ]


def test_every_webhook_page_for_every_role(app, webhook):
    for user in TEST_USERS:
        for method, path, data in pages(webhook):
            browser = Browser(app)
            browser.login(user)
            if method == "GET":
                code = browser.get(path).status_code
            else:
                code = browser.post(path, data, csrf_from="/tasks").status_code
            if user == "admin":
                assert code in (200, 201, 302), (method, path, user, code)
            else:
                assert code == 403, (method, path, user, code)


def test_the_pages_need_a_sign_in_and_the_csrf_token(app, webhook):
    anonymous = Browser(app)
    assert anonymous.get("/admin/webhooks").status_code == 302
    admin = Browser(app)
    admin.login("admin")
    refused = admin.post(f"/admin/webhooks/{webhook}/delete", {}, with_csrf=False)
    assert refused.status_code == 400


def test_every_webhook_api_route_for_every_role(api, webhook):
    body = {"url": "http://127.0.0.1:9/more", "events": ["closed"], "secret": SECRET}
    routes = [
        ("GET", "/webhooks", None),
        ("GET", f"/webhooks/{webhook}/deliveries", None),
        ("POST", "/webhooks", body),
        ("DELETE", f"/webhooks/{webhook}", None),
    ]
    for user in [*TEST_USERS, None]:
        for method, path, json in routes:
            code = api.call(user, method, path, json).status_code
            expected = {None: {401}, "admin": {200, 201}}.get(user, {403})
            assert code in expected, (method, path, user, code)
