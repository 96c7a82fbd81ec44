"""The webhook admin API (contract Part 2, "Intake ... webhooks"): validation naming
the field, admin only, the secret never answered, admin events, paging, and the
deliveries queued in the transaction of their event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from engine.persistence.db import Database
from engine.persistence.models import AdminEvent, WebhookDelivery
from engine.services.audit import admin_events
from engine.services.context import Actor, ChannelSettings, ServiceContext
from engine.services.errors import Invalid
from engine.services.notify.webhooks import INCIDENT_EVENT_TYPES, create_webhook
from tests.conftest import TEST_USERS, TestClock
from tests.scenario import Scenario
from tests.test_openapi import CheckedApi

SECRET = "s3cret-s3cret-s3cret"
URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def ctx(database_url: str, clock: TestClock) -> Iterator[ServiceContext]:
    """Loopback allowed, as in every test run (ITSM_WEBHOOK_ALLOWED_HOSTS=127.0.0.1)."""
    channels = ChannelSettings(webhook_allowed_hosts=("127.0.0.1",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


@pytest.fixture
def public_only(ctx: ServiceContext) -> Iterator[ServiceContext]:
    """The same database with an empty allowed list: only public addresses pass."""
    context = ServiceContext(db=Database(str(ctx.db.url)), now=ctx.now)
    yield context
    context.db.dispose()


def register(api, body=None, user="admin"):
    return api.post(user, "/webhooks", {"url": URL, "events": ["created"], "secret": SECRET,
                                        **(body or {})})


def test_an_admin_registers_lists_and_deletes_a_webhook(api, ctx):
    hook = api.ok(register(api, {"events": ["created", "resolved", "created"]}), 201)
    assert set(hook) == {"id", "url", "events", "created_at", "created_by", "deleted_at"}
    assert hook["url"] == URL and hook["events"] == ["created", "resolved"]
    assert hook["created_by"] == "admin" and hook["deleted_at"] is None
    listed = api.ok(api.get("admin", "/webhooks"))
    assert listed == {"items": [hook], "total": 1}
    assert SECRET not in json.dumps(listed)

    gone = api.ok(api.call("admin", "DELETE", f"/webhooks/{hook['id']}"))
    assert gone["deleted_at"] is not None
    again = api.ok(api.call("admin", "DELETE", f"/webhooks/{hook['id']}"))
    assert again["deleted_at"] == gone["deleted_at"]
    # Deleted webhooks stay listed, saying so; their log stays readable.
    assert api.ok(api.get("admin", "/webhooks"))["items"][0]["deleted_at"] == gone["deleted_at"]
    assert api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries")) == {
        "items": [], "total": 0}

    with ctx.db.read() as session:
        rows = session.scalars(
            select(AdminEvent).where(AdminEvent.type.like("webhook_%")).order_by(AdminEvent.id)
        ).all()
        seen = [(r.type, r.actor, r.data) for r in rows]
    assert seen == [
        (admin_events.WEBHOOK_CREATED, "admin",
         {"webhook_id": hook["id"], "url": URL, "events": ["created", "resolved"]}),
        (admin_events.WEBHOOK_DELETED, "admin", {"webhook_id": hook["id"], "url": URL}),
    ]
    assert SECRET not in json.dumps([r[2] for r in seen])


def test_only_an_admin_manages_webhooks(api):
    hook = api.ok(register(api), 201)
    for user in TEST_USERS:
        if user == "admin":
            continue
        assert register(api, user=user).status_code == 403, user
        assert api.get(user, "/webhooks").status_code == 403, user
        assert api.call(user, "DELETE", f"/webhooks/{hook['id']}").status_code == 403, user
        assert api.get(user, f"/webhooks/{hook['id']}/deliveries").status_code == 403, user
    assert api.get(None, "/webhooks").status_code == 401
    assert api.call("admin", "DELETE", "/webhooks/999").status_code == 404
    assert api.get("admin", "/webhooks/999/deliveries").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "127.0.0.1:9/hook"}, "url"),
        ({"url": "http://user:pass@127.0.0.1:9/hook"}, "url"),
        ({"url": "http://user@127.0.0.1:9/hook"}, "url"),
        ({"url": "http://127.0.0.1:99999/hook"}, "url"),
        ({"url": "http:///hook"}, "url"),
        ({"url": "http://127.0.0.1:9/a b"}, "url"),
        ({"url": "http://127.0.0.1:9/" + "a" * 2000}, "url"),
        ({"url": "http://no-such-host.invalid/hook"}, "url"),
        ({"url": ""}, "url"),
        ({"url": 5}, "url"),
        ({"events": []}, "events"),
        ({"events": "created"}, "events"),
        ({"events": ["created", "no_such_event"]}, "events"),
        ({"events": [1]}, "events"),
        ({"secret": "short"}, "secret"),
        ({"secret": "x" * 201}, "secret"),
        ({"secret": None}, "secret"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, body, field):
    response = register(api, body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["details"]
    assert api.ok(api.get("admin", "/webhooks"))["total"] == 0


def test_a_body_that_is_not_an_object_is_a_422(api):
    assert api.post("admin", "/webhooks", ["http://127.0.0.1/"]).status_code == 422


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "127.1.2.3",
        "2130706433",  # 127.0.0.1 as one number: the resolver's answer is what counts
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    ],
)
def test_with_no_allowed_hosts_only_public_addresses_register(public_only, host):
    admin = Actor(id=0, username="admin", roles=frozenset({"admin"}))
    with pytest.raises(Invalid) as refused:
        create_webhook(public_only, admin, {"url": f"http://{host}:8080/x", "events": ["created"],
                                            "secret": SECRET})
    assert "url" in refused.value.details


def test_a_listed_host_is_called_whatever_it_resolves_to(api, ctx):
    # 127.0.0.1 is listed: "localhost" passes when all its addresses are listed or public;
    # ::1 is neither, so a localhost that resolves to ::1 too is refused as a whole.
    assert api.post("admin", "/webhooks", {"url": "http://127.0.0.1:1/", "events": ["closed"],
                                           "secret": SECRET}).status_code == 201
    assert register(api, {"url": "http://[::1]:1/"}).status_code == 422


def test_lists_are_paged(api):
    for n in range(3):
        api.ok(register(api, {"url": f"{URL}/{n}"}), 201)
    page = api.ok(api.get("admin", "/webhooks?limit=2&offset=1"))
    assert page["total"] == 3 and [h["url"] for h in page["items"]] == [f"{URL}/1", f"{URL}/0"]
    assert api.get("admin", "/webhooks?limit=0").status_code == 422
    assert "offset" in api.get("admin", "/webhooks?offset=-1").get_json()["details"]


def test_each_subscribed_event_is_queued_in_its_transaction(api, ctx):
    hook = api.ok(register(api, {"events": ["created", "task_completed"]}), 201)
    other = api.ok(register(api, {"events": ["closed"]}), 201)
    s = Scenario(api)
    s.record()
    deliveries = api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries"))
    assert deliveries["total"] == 2
    assert [d["event_type"] for d in deliveries["items"]] == ["task_completed", "created"]
    first = deliveries["items"][-1]
    assert first["status"] == "queued" and first["attempts"] == 0
    assert first["response_status"] is None and first["delivered_at"] is None
    assert api.ok(api.get("admin", f"/webhooks/{other['id']}/deliveries"))["total"] == 0
    page = api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries?limit=1"))
    assert page["total"] == 2 and len(page["items"]) == 1

    with ctx.db.read() as session:
        row = session.get(WebhookDelivery, first["id"])
        assert row is not None
        body, event_id = json.loads(row.payload), row.event_id
    detail = api.ok(api.get("manager", f"/incidents/{s.id}"))
    created = next(e for e in detail["events"] if e["type"] == "created")
    # The incident as the event's transaction left it: not yet classified.
    assert body == {
        "id": event_id,
        "type": "created",
        "at": created["at"],
        "incident": {"id": s.id, "number": detail["number"], "status": "new", "priority": None},
    }
    with ctx.db.read() as session:
        later = json.loads(session.get(WebhookDelivery, deliveries["items"][0]["id"]).payload)
    assert later["type"] == "task_completed"
    assert later["incident"]["status"] == detail["status"] == "in_progress"
    assert later["incident"]["priority"] == detail["priority"] == 5

    api.ok(api.call("admin", "DELETE", f"/webhooks/{hook['id']}"))
    s.desk_resolves()
    assert api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries"))["total"] == 2


def test_every_event_type_the_app_names_can_be_subscribed(api):
    hook = api.ok(register(api, {"events": sorted(INCIDENT_EVENT_TYPES)}), 201)
    assert set(hook["events"]) == INCIDENT_EVENT_TYPES
    assert {"field_changed", "attachment_added", "record_linked", "linked_record_created",
            "notification_failed", "survey_answered", "created", "sla_breached"} <= set(
        hook["events"])


def test_webhook_answers_as_documented(api, app):
    checked = CheckedApi(api, app)
    hook = checked.ok(register(checked), 201)
    Scenario(checked)
    checked.ok(checked.get("admin", "/webhooks?limit=5"))
    checked.ok(checked.get("admin", f"/webhooks/{hook['id']}/deliveries"))
    assert register(checked, {"url": "ftp://x"}).status_code == 422
    assert checked.get("desk", "/webhooks").status_code == 403
    assert checked.get("admin", "/webhooks/999/deliveries").status_code == 404
    checked.ok(checked.call("admin", "DELETE", f"/webhooks/{hook['id']}"))
    assert {("create_webhook", 201), ("list_webhooks", 200), ("list_deliveries", 200),
            ("delete_webhook", 200), ("create_webhook", 422)} <= checked.seen
