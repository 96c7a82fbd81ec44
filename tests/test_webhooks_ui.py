"""The admin's webhook pages: register (the secret shown this once), errors named
on the form, delete, the delivery log, the nav entry, both languages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from engine.persistence.db import Database
from engine.services.context import ChannelSettings, ServiceContext
from tests.conftest import Browser, TestClock
from tests.scenario import Scenario

SECRET = "page-secret-0123456789"


@pytest.fixture
def ctx(database_url: str, clock: TestClock) -> Iterator[ServiceContext]:
    channels = ChannelSettings(webhook_allowed_hosts=("127.0.0.1",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


@pytest.fixture
def admin(app) -> Browser:
    browser = Browser(app)
    browser.login("admin")
    return browser


def test_an_admin_registers_a_webhook_and_sees_the_secret_once(admin, api):
    page = admin.get("/admin/webhooks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/admin/webhooks"' in html  # the nav entry
    created = admin.post("/admin/webhooks", {"url": "http://127.0.0.1:9/in",
                                             "events": ["created", "closed"]},
                         csrf_from="/admin/webhooks")
    assert created.status_code == 201
    shown = re.search(r'id="webhook-secret">([^<]+)<', created.get_data(as_text=True))
    assert shown and len(shown.group(1)) >= 32
    secret = shown.group(1)
    (hook,) = api.ok(api.get("admin", "/webhooks"))["items"]
    assert hook["events"] == ["created", "closed"] and hook["url"] == "http://127.0.0.1:9/in"
    assert secret not in admin.get("/admin/webhooks").get_data(as_text=True)

    given = admin.post("/admin/webhooks", {"url": "http://127.0.0.1:9/two", "events": "closed",
                                           "secret": SECRET}, csrf_from="/admin/webhooks")
    assert given.status_code == 201 and SECRET in given.get_data(as_text=True)


def test_bad_fields_are_named_on_the_form(admin, api):
    answer = admin.post("/admin/webhooks", {"url": "http://user:pw@127.0.0.1:9/",
                                            "secret": "short"}, csrf_from="/admin/webhooks")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    for field in ("url", "events", "secret"):
        assert f'id="webhook-{field}-message"' in html, field
    assert "user:pw" in html  # the address is kept for correcting
    assert api.ok(api.get("admin", "/webhooks"))["total"] == 0


def test_delete_and_the_delivery_log(admin, api):
    hook = api.ok(api.post("admin", "/webhooks", {"url": "http://127.0.0.1:9/in",
                                                  "events": ["created"], "secret": SECRET}), 201)
    Scenario(api)
    log = admin.get(f"/admin/webhooks/{hook['id']}/deliveries")
    assert log.status_code == 200
    html = log.get_data(as_text=True)
    assert html.count("data-delivery=") == 1 and "<code>created</code>" in html
    assert admin.get("/admin/webhooks/999/deliveries").status_code == 404

    gone = admin.post(f"/admin/webhooks/{hook['id']}/delete", {}, csrf_from="/admin/webhooks")
    assert gone.status_code == 302 and gone.headers["Location"].endswith("/admin/webhooks")
    listed = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "http://127.0.0.1:9/in" in listed and f'action="/admin/webhooks/{hook["id"]}/delete"' \
        not in listed
    assert api.ok(api.get("admin", "/webhooks"))["items"][0]["deleted_at"] is not None


def test_the_page_speaks_both_languages(admin):
    chinese = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "登錄 Webhook" in chinese and "要傳送的事件" in chinese
    assert admin.post("/language", {"locale": "en"}).status_code == 302
    english = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "Register a webhook" in english and "Events to send" in english
