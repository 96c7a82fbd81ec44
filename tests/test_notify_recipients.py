"""Who gets which mail (contract Part 2, "Notifications: e-mail out"): per row of the
recipients table, exactly the expected mails arrive at a real SMTP server (aiosmtpd
on loopback) once the sender's pass has run, in the recipient's language."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.persistence.db import Database
from engine.persistence.models import Notification
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.incidents.timers import fire_due
from engine.services.notify.sender import send_due
from engine.services.people import users
from engine.services.process.definitions import BUNDLED_PROCESS
from engine.workflow.translations import diagram_texts
from tests.conftest import PASSWORD, Api, Browser, Template, TestClock
from tests.mail_servers import Received, SmtpServer, address_of, give_addresses, set_user
from tests.scenario import Scenario
from web.app import create_app
from web.settings import Settings

BASE_URL = "https://itsm.example.test"
MAIL_FROM = "desk@itsm.example.test"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def ctx(database_url: str, clock: TestClock, smtp: SmtpServer, tmp_path: Path) -> Iterator[
    ServiceContext
]:
    channels = ChannelSettings(
        smtp_url=smtp.url(),
        mail_from=MAIL_FROM,
        base_url=BASE_URL,
        attachment_dir=tmp_path / "attachments",
    )
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    give_addresses(context)
    yield context
    context.db.dispose()


class Inbox:
    """What arrived at the SMTP server since the last look, after a sender pass."""

    def __init__(self, ctx: ServiceContext, smtp: SmtpServer) -> None:
        self.ctx = ctx
        self.smtp = smtp
        self.seen = 0

    def new(self) -> list[Received]:
        while send_due(self.ctx, "test-worker"):
            pass
        arrived = self.smtp.received[self.seen :]
        self.seen += len(arrived)
        return arrived

    def by_user(self) -> dict[str, Received]:
        """The new mails by recipient's username; fails on two mails to one person."""
        mails: dict[str, Received] = {}
        for mail in self.new():
            (rcpt,) = mail.rcpt_tos
            name = rcpt.split("@")[0] if rcpt.endswith("@example.test") else rcpt
            assert name not in mails, f"two mails to {name}: {mails[name].subject}, {mail.subject}"
            mails[name] = mail
        return mails


@pytest.fixture
def inbox(ctx: ServiceContext, smtp: SmtpServer) -> Inbox:
    return Inbox(ctx, smtp)


def test_created_acknowledges_the_caller_and_tells_the_desk(api: Api, inbox: Inbox) -> None:
    set_user(inbox.ctx, "desk2", locale="en")
    s = Scenario(api)
    number = s.incident["number"]
    mails = inbox.by_user()
    assert sorted(mails) == ["desk", "desk2", "reporter"]
    ack = mails["reporter"]
    assert ack.subject == f"[{number}] 已收到您的事件報告：Mail server down"
    assert ack.message["Auto-Submitted"] == "auto-generated"
    assert ack.message["From"] == MAIL_FROM
    assert ack.to == address_of("reporter")
    assert f"{BASE_URL}/incidents/{s.id}" in ack.text()
    assert f'href="{BASE_URL}/incidents/{s.id}"' in ack.html()
    assert "服務臺" in ack.text() and "服务台" not in ack.text() and "服務台" not in ack.text()
    # desk2 reads English; the desk's default is zh-Hant.
    assert mails["desk2"].subject.startswith(f"[{number}] A task is ready for you:")
    assert "/tasks/" in mails["desk2"].text()
    assert mails["desk"].subject.startswith(f"[{number}] 有新工作待處理")
    # The task is named as the diagram names it in each reader's language.
    texts = diagram_texts(BUNDLED_PROCESS.read_text(encoding="utf-8"))
    zh_name = texts.text("record_incident", "name", "zh_Hant_TW")
    en_name = texts.text("record_incident", "name", "en")
    assert zh_name and en_name and zh_name != en_name
    assert mails["desk"].subject.endswith(zh_name) and zh_name in mails["desk"].text()
    assert mails["desk2"].subject.endswith(en_name) and en_name in mails["desk2"].text()
    with inbox.ctx.db.read() as session:
        stored = {
            row.to_address: (row.message_id, row.status, row.event)
            for row in session.scalars(select(Notification))
        }
    assert ack.message["Message-ID"] == stored[address_of("reporter")][0]
    assert {status for _, status, _ in stored.values()} == {"sent"}
    assert stored[address_of("desk")][2] == "task_ready"
    assert stored[address_of("reporter")][2] == "created"
    assert inbox.new() == []  # a sent mail is never sent again


def test_muted_user_gets_no_task_mail_and_the_actor_none(api: Api, inbox: Inbox) -> None:
    set_user(inbox.ctx, "desk2", notify_task_ready=False)
    s = Scenario(api)
    assert sorted(inbox.by_user()) == ["desk", "reporter"]
    set_user(inbox.ctx, "desk2", notify_task_ready=True)
    s.record()  # desk completes it: initial_handling is ready, desk2 is told, desk is not
    mails = inbox.by_user()
    assert sorted(mails) == ["desk2"]
    # desk2 reads zh-Hant here: the task as the diagram names it in that language.
    zh_name = diagram_texts(BUNDLED_PROCESS.read_text(encoding="utf-8")).text(
        "initial_handling", "name", "zh_Hant_TW"
    )
    assert zh_name and mails["desk2"].subject.endswith(zh_name)


def test_assigned_tells_the_assignee(api: Api, inbox: Inbox) -> None:
    s = Scenario(api)
    s.record()
    inbox.new()
    task_id = s.task_id("initial_handling")
    api.ok(api.post("desk", f"/tasks/{task_id}/assign", {"username": "desk2"}))
    mails = inbox.by_user()
    assert sorted(mails) == ["desk2"]
    assert mails["desk2"].subject == f"[{s.incident['number']}] 工作已指派給您：Mail server down"


def test_management_escalation_and_director_review(api: Api, inbox: Inbox) -> None:
    s = Scenario(api)
    inbox.new()
    s.record(impact="1", urgency="1")  # P1: the manager's review starts
    mails = inbox.by_user()
    assert "manager" in mails and "管理升級" in mails["manager"].subject
    assert "desk2" in mails  # initial handling
    if "director" not in mails:  # the director's review follows the manager's
        s.complete("manager_review", {"manager_acknowledged": True})
        mails = inbox.by_user()
    assert "director" in mails
    assert "分管領導" in mails["director"].subject


def test_sla_warning_and_breach_tell_the_task_people_and_managers(
    api: Api, inbox: Inbox, clock: TestClock
) -> None:
    s = Scenario(api)  # unclassified: P1 targets, response 15 min
    inbox.new()
    task_id = s.task_id("record_incident")
    api.ok(api.post("desk", f"/tasks/{task_id}/claim"))
    inbox.new()
    clock.advance(minutes=7, seconds=30)
    fire_due(inbox.ctx)  # 50 %: no mail
    assert inbox.new() == []
    clock.advance(minutes=4)  # 76 %
    fire_due(inbox.ctx)
    mails = inbox.by_user()
    assert sorted(mails) == ["desk", "manager"]  # the assignee, not the whole lane
    assert "75%" in mails["desk"].subject
    clock.advance(minutes=4)  # 102 %
    fire_due(inbox.ctx)
    mails = inbox.by_user()
    assert sorted(mails) == ["desk", "manager"]
    assert "已違反 SLA" in mails["manager"].subject


def test_notes_the_reporter_may_read_reach_the_caller(api: Api, inbox: Inbox) -> None:
    s = Scenario(api)
    inbox.new()
    api.ok(api.post("desk", f"/incidents/{s.id}/notes", {"text": "secret", "internal": True}), 201)
    assert inbox.new() == []
    api.ok(api.post("desk", f"/incidents/{s.id}/notes", {"text": "Please reboot"}), 201)
    mails = inbox.by_user()
    assert sorted(mails) == ["reporter"]
    assert "Please reboot" in mails["reporter"].text()
    api.ok(api.post("reporter", f"/incidents/{s.id}/notes", {"text": "Done"}), 201)
    assert inbox.new() == []  # nobody is told about their own note


def test_resolved_and_closed_reach_the_caller(api: Api, inbox: Inbox) -> None:
    set_user(inbox.ctx, "reporter", locale="en")
    s = Scenario(api)
    s.record()
    inbox.new()
    s.desk_resolves()
    mails = inbox.by_user()
    assert sorted(mails) == ["desk2", "reporter"]  # desk2: confirm_recovery is ready
    resolved = mails["reporter"]
    assert resolved.subject.startswith(f"[{s.incident['number']}] Your incident is resolved")
    assert "Restarted the service" in resolved.text()
    assert f"{BASE_URL}/incidents/{s.id}#confirmation" in resolved.text()
    s.confirm(True)
    inbox.new()
    s.feedback()
    mails = inbox.by_user()
    assert sorted(mails) == ["reporter"]
    assert "closed" in mails["reporter"].subject
    assert "#survey" not in mails["reporter"].text()  # the survey is answered


def test_caller_known_only_by_address(
    ctx: ServiceContext, api: Api, inbox: Inbox, browser: Browser
) -> None:
    body = {
        "title": "Printer jam",
        "description": "Floor 3",
        "channel": "phone",
        "caller_email": "visitor@outside.test",
    }
    incident = api.ok(api.post("desk", "/incidents", body), 201)
    mails = inbox.by_user()
    assert "visitor@outside.test" in mails
    ack = mails["visitor@outside.test"]
    assert ack.subject.startswith(f"[{incident['number']}]")
    # No account to sign in with: the mail carries the signed link to the incident.
    assert f"{BASE_URL}/c/" in ack.text() and "/incidents/" not in ack.text()
    link = next(w for w in ack.text().split() if w.startswith(f"{BASE_URL}/c/"))
    opened = browser.get(link.removeprefix(BASE_URL))
    assert opened.status_code in (200, 302, 303), opened.status_code
    assert "desk" not in mails and "desk2" in mails  # the desk agent is the actor
    # The outbox keeps the address and link version, never a token that opens it.
    with ctx.db.read() as session:
        contexts = session.scalars(
            select(Notification.context).where(Notification.to_address == "visitor@outside.test")
        ).all()
    assert contexts and all("/c/" not in json.dumps(c) for c in contexts)


def test_vendor_task_mails_only_its_organisation(
    ctx: ServiceContext, api: Api, inbox: Inbox
) -> None:
    with_vendors = Api(api.client, dict(api.tokens))
    for username, org in (("acme", "ACME"), ("globex", "Globex")):
        users.create_user(ctx, username, PASSWORD, ["vendor"], vendor_org=org, create_org_as="test")
        with_vendors.tokens[username] = users.issue_token(ctx, username, PASSWORD).token
    give_addresses(ctx, ["acme", "globex"])
    s = Scenario(with_vendors)
    s.record()
    s.desk_passes_on()
    inbox.new()
    s.level2("escalate_vendor", vendor_org="ACME")
    mails = inbox.by_user()
    assert "acme" in mails and "globex" not in mails and "vendor" not in mails


def test_no_smtp_url_writes_no_rows(
    database_url: str, clock: TestClock, template: Template
) -> None:
    plain = ServiceContext(db=Database(database_url), now=clock)  # no ITSM_SMTP_URL
    try:
        give_addresses(plain)
        app = create_app(Settings(database_url=database_url, secret_key="test"), plain)
        Scenario(Api(app.test_client(), template.tokens)).record()
        with plain.db.read() as session:
            assert session.scalar(select(func.count()).select_from(Notification)) == 0
        assert send_due(plain, "w") == 0
    finally:
        plain.db.dispose()


def test_a_programs_repeated_alert_mails_nobody(
    ctx: ServiceContext, api: Api, inbox: Inbox
) -> None:
    users.create_user(ctx, "monitor", PASSWORD, ["integration"], email="monitor@example.test")
    api.tokens["monitor"] = users.issue_token(ctx, "monitor", PASSWORD).token
    alert = {"title": "db1 disk full", "channel": "app", "dedup_key": "db1", "caller": "reporter"}
    first = api.ok(api.post("monitor", "/incidents", alert), 201)
    mails = inbox.by_user()
    assert "reporter" in mails and "monitor" not in mails  # the caller's acknowledgement
    again = api.ok(api.post("monitor", "/incidents", {**alert, "description": "99 %"}))
    assert again["id"] == first["id"]
    assert inbox.new() == []  # the repeat is a note on it, and no news for anyone
