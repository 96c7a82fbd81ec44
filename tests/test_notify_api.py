"""The incident's mails for staff (API and page) and the outbox backlog on /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.persistence.db import Database
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.notify.sender import send_due
from tests.conftest import Api, Browser, TestClock
from tests.mail_servers import SmtpServer, address_of, give_addresses
from tests.scenario import Scenario


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def ctx(database_url: str, clock: TestClock, smtp: SmtpServer, tmp_path: Path) -> Iterator[
    ServiceContext
]:
    channels = ChannelSettings(smtp_url=smtp.url(), attachment_dir=tmp_path / "attachments")
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    give_addresses(context)
    yield context
    context.db.dispose()


def test_staff_list_an_incidents_mails(api: Api, ctx: ServiceContext) -> None:
    s = Scenario(api)
    queued = api.get("desk", f"/incidents/{s.id}/notifications")
    assert queued.status_code == 200 and queued.headers["X-Total-Count"] == "3"
    rows = queued.get_json()
    assert {r["status"] for r in rows} == {"queued"}
    assert [r["to"] for r in rows][0] == address_of("reporter")
    assert set(rows[0]) == {"at", "to", "subject", "event", "status", "attempts"}
    assert rows[0]["event"] == "created" and rows[1]["event"] == "task_ready"
    assert send_due(ctx, "w") == 3
    sent = api.ok(api.get("manager", f"/incidents/{s.id}/notifications?limit=1&offset=1"))
    assert len(sent) == 1 and sent[0]["status"] == "sent" and sent[0]["attempts"] == 1
    assert sent[0]["subject"].startswith(f"[{s.incident['number']}]")


def test_only_staff_and_valid_pages(api: Api, ctx: ServiceContext) -> None:
    s = Scenario(api)
    assert api.get("reporter", f"/incidents/{s.id}/notifications").status_code == 403
    assert api.get("desk", "/incidents/999999/notifications").status_code == 404
    bad = api.get("desk", f"/incidents/{s.id}/notifications?limit=0")
    assert bad.status_code == 422 and "limit" in bad.get_json()["details"]


def test_incident_page_lists_mails_for_staff_only(api: Api, ctx: ServiceContext, app) -> None:
    s = Scenario(api)
    desk = Browser(app)
    desk.login("desk")
    page = desk.get(f"/incidents/{s.id}").get_data(as_text=True)
    assert 'id="notifications"' in page and address_of("reporter") in page
    assert "等待傳送" in page  # queued, in the default language
    reporter = Browser(app)
    reporter.login("reporter")
    mine = reporter.get(f"/incidents/{s.id}").get_data(as_text=True)
    assert 'id="notifications"' not in mine and address_of("desk") not in mine


def test_metrics_show_the_outbox_backlog(api: Api, ctx: ServiceContext, app, clock) -> None:
    Scenario(api)
    clock.advance(seconds=90)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "itsm_mail_queued 3.0" in text
    assert "itsm_mail_oldest_queued_age_seconds 90.0" in text
    send_due(ctx, "w")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "itsm_mail_queued 0.0" in text
