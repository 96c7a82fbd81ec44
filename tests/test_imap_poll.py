"""The IMAP poller against a real dovecot on loopback (tests/imap_server.py).

The fixture mails are delivered by IMAP APPEND and fetched by the poller over
STARTTLS, each with the exact outcome the endpoint gives it; a message is marked
seen only once its transaction has committed, a message that cannot be handled is
recorded and does not stop the others, and a huge one is recorded without being
downloaded.
"""

from __future__ import annotations

import imaplib
import os
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.persistence.db import Database
from engine.persistence.models import AdminEvent, Attachment, InboundMail, Incident, Note, User
from engine.services.context import ServiceContext
from engine.services.intake import imap_poll
from engine.services.intake.imap_poll import ImapUrlError, parse_imap_url, poll_once
from engine.services.intake.inbound import MAX_MESSAGE_BYTES
from engine.services.intake.mailbox_actor import MAILBOX_USERNAME, MailboxUserUnusable
from engine.services.ops.channels import CHANNEL_LOOPS, ChannelWorkers
from engine.services.people import users
from tests import imap_server

# The dovecot fixtures (one server per session, an empty INBOX per test).
dovecot = imap_server.dovecot
imap = imap_server.imap
MAILS = Path(__file__).parent / "fixtures" / "mail"
ALICE = "alice.chen@example.com"


def fixture_mail(name: str, **substitutions: str) -> bytes:
    raw = (MAILS / name).read_bytes()
    for key, value in substitutions.items():
        raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
    return raw


@pytest.fixture
def polled(ctx, imap):
    """The test context pointed at the dovecot mailbox."""
    ctx.channels = replace(ctx.channels, imap_url=imap.url())
    return ctx


def rows(ctx) -> list[InboundMail]:
    with ctx.db.read() as session:
        found = list(session.scalars(select(InboundMail).order_by(InboundMail.id)))
        session.expunge_all()
        return found


def by_message_id(ctx) -> dict[str | None, tuple[str, str | None]]:
    return {row.message_id: (row.action, row.reason) for row in rows(ctx)}


def incident_of(ctx, incident_id: int) -> Incident:
    with ctx.db.read() as session:
        incident = session.get_one(Incident, incident_id)
        session.expunge(incident)
        return incident


# -- the mailbox URL ---------------------------------------------------------------------


def test_the_mailbox_url_names_tls_host_port_user_folder_and_ca_file():
    plain = parse_imap_url("imaps://desk%40corp:p%3Ass%2Fw@mail.corp.example/Help%20Desk")
    assert (plain.tls_from_start, plain.host, plain.port) == (True, "mail.corp.example", 993)
    assert (plain.user, plain.password, plain.folder) == ("desk@corp", "p:ss/w", "Help Desk")
    assert plain.ca_file is None
    starttls = parse_imap_url("imap://u:p@127.0.0.1:1143?ca_file=/etc/itsm/ca.pem")
    assert (starttls.tls_from_start, starttls.port, starttls.folder) == (False, 1143, "INBOX")
    assert starttls.ca_file == "/etc/itsm/ca.pem"
    assert parse_imap_url("imap://u:p@h/").port == 143


@pytest.mark.parametrize(
    "url",
    ["pop3://u:p@h/", "imaps://h/INBOX", "imaps://u@h/INBOX", "imaps://u:p@/INBOX",
     "imaps://u:p@h:99999/"],
)
def test_an_unusable_mailbox_url_is_refused_saying_why(url):
    with pytest.raises(ImapUrlError, match="ITSM_IMAP_URL"):
        parse_imap_url(url)


# -- each fixture mail --------------------------------------------------------------------


def test_every_fixture_mail_gets_its_outcome_and_is_marked_seen(polled, imap):
    names = [
        "new.eml", "big5.eml", "gb2312.eml", "utf8_bad_bytes.eml", "html_only.eml",
        "broken_mime.eml", "no_from.eml", "attachment.eml",
    ]  # fmt: skip
    for name in names:
        imap.append(fixture_mail(name))
    imap.append(fixture_mail("auto_reply.eml", NUMBER="INC-000001"))
    imap.append(fixture_mail("new.eml"))  # the same Message-ID again
    assert poll_once(polled, "test") == len(names) + 2
    assert [row.source for row in rows(polled)] == ["imap"] * (len(names) + 2)
    outcomes = [(row.message_id, row.action, row.reason) for row in rows(polled)]
    assert outcomes == [
        ("<new-1@mail.example.com>", "created", None),
        ("<big5-1@example.com.tw>", "created", None),
        ("<gb-1@example.cn>", "created", None),
        ("<bad-bytes-1@example.com>", "created", None),
        ("<html-1@example.com>", "created", None),
        ("<broken-1@example.com>", "created", None),
        ("<nofrom-1@example.com>", "ignored", "no_from"),
        ("<attach-1@example.com>", "created", None),
        ("<ooo-1@mail.example.com>", "ignored", "auto_submitted"),
        ("<new-1@mail.example.com>", "ignored", "duplicate"),
    ]
    assert all(seen for _, seen in imap.flags())
    created = {row.message_id: row.incident_id for row in rows(polled) if row.incident_id}
    big5 = incident_of(polled, created["<big5-1@example.com.tw>"])
    assert big5.title == "網路斷線" and big5.description.startswith("會議室的網路")
    assert big5.caller_email == "chen@example.com.tw" and big5.channel == "email"
    gb = incident_of(polled, created["<gb-1@example.cn>"])
    assert gb.title == "邮件服务器无法连接"
    html = incident_of(polled, created["<html-1@example.com>"])
    assert html.description.startswith("My laptop's screen flickers since the update.")
    with polled.db.read() as session:
        names_kept = session.scalars(select(Attachment.filename).order_by(Attachment.id)).all()
        creator = session.scalar(
            select(User.username).where(User.id == big5.created_by_id)
        )
    assert names_kept == ["screen.png", "錯誤記錄.txt"]
    assert creator == MAILBOX_USERNAME
    # Nothing is left for the next pass.
    assert poll_once(polled, "test") == 0


def test_the_mailbox_user_is_an_inactive_integration_user_made_once(polled, imap):
    imap.append(fixture_mail("new.eml"))
    imap.append(fixture_mail("html_only.eml"))
    poll_once(polled, "test")
    with polled.db.read() as session:
        [user] = session.scalars(select(User).where(User.username == MAILBOX_USERNAME)).all()
        assert not user.active and user.role_names == frozenset({"integration"})
        created = session.scalars(
            select(AdminEvent.data).where(AdminEvent.type == "user_created")
        ).all()
    assert [d for d in created if d["username"] == MAILBOX_USERNAME] == [
        {"username": MAILBOX_USERNAME, "display_name": "Mail in (IMAP)", "roles": ["integration"]}
    ]


def test_replies_through_the_mailbox_are_notes_of_the_caller(polled, imap, api):
    imap.append(fixture_mail("new.eml"))
    poll_once(polled, "test")
    [first] = rows(polled)
    incident_id = first.incident_id
    number = incident_of(polled, incident_id).number
    api.ok(api.post("desk", f"/tasks/{_task(api, incident_id)}/complete",
                    {"category": "hardware", "impact": "3", "urgency": "3"}))
    api.ok(api.post("desk", f"/incidents/{incident_id}/suspend",
                    {"reason": "which printer?", "category": "awaiting_reporter"}))
    imap.append(fixture_mail("reply_subject_tag.eml", NUMBER=number))
    imap.append(fixture_mail("reply_stranger.eml", NUMBER=number))
    assert poll_once(polled, "test") == 2
    assert by_message_id(polled)["<reply-tag-1@mail.example.com>"] == ("noted", None)
    with polled.db.read() as session:
        [note] = session.scalars(select(Note).where(Note.incident_id == incident_id)).all()
        assert (note.author, note.via) == (ALICE, MAILBOX_USERNAME)
        assert note.text == "The printer works again after the restart, thanks."
    assert incident_of(polled, incident_id).status == "in_progress"  # resumed
    stranger = [r for r in rows(polled) if r.message_id == "<stranger-1@example.org>"][0]
    assert stranger.action == "created" and stranger.incident_id != incident_id
    assert incident_of(polled, stranger.incident_id).description.startswith(f"Re: {number}")


def test_a_user_named_mail_in_without_the_role_fails_the_pass_not_the_mail(polled, imap):
    users.create_user(polled, MAILBOX_USERNAME, "a long enough password 1", ["reporter"])
    imap.append(fixture_mail("new.eml"))
    with pytest.raises(MailboxUserUnusable, match="integration role"):
        poll_once(polled, "test")
    assert [seen for _, seen in imap.flags()] == [False]
    assert rows(polled) == []


def _task(api, incident_id: int) -> str:
    detail = api.ok(api.get("manager", f"/incidents/{incident_id}"))
    [task] = [t["id"] for t in detail["tasks"] if t["name"] == "record_incident"]
    return task


# -- what must not stop the poller -----------------------------------------------------------


def test_a_message_over_25_mib_is_recorded_and_marked_seen_without_download(polled, imap):
    head = b"From: big@example.com\r\nSubject: huge\r\nMessage-ID: <huge-1@example.com>\r\n\r\n"
    huge = head + (b"0123456789abcdef" * 64 + b"\r\n") * (30 * 1024 * 1024 // 1026)
    assert len(huge) > MAX_MESSAGE_BYTES
    imap.append(huge)
    imap.append(fixture_mail("new.eml"))
    assert poll_once(polled, "test") == 2
    [big, new] = rows(polled)
    assert (big.action, big.reason, big.sha256, big.message_id) == (
        "ignored", "too_large", None, None,
    )
    assert big.size == len(huge)
    assert new.action == "created"
    assert [seen for _, seen in imap.flags()] == [True, True]


def test_a_message_that_cannot_be_handled_is_recorded_unreadable_and_the_next_goes_on(
    polled, imap, monkeypatch
):
    real_receive = imap_poll.receive

    def receive_or_fail(ctx, raw, source, **kw):
        # Stands for any bug a message may trigger: the poller must survive it.
        if b"X-Test-Explode" in raw:
            raise RuntimeError("a bug this message triggers")
        return real_receive(ctx, raw, source, **kw)

    monkeypatch.setattr(imap_poll, "receive", receive_or_fail)
    bad = b"From: a@example.com\r\nX-Test-Explode: 1\r\nSubject: boom\r\n\r\nboom\r\n"
    imap.append(bad)
    imap.append(fixture_mail("html_only.eml"))
    assert poll_once(polled, "test") == 2
    [first, second] = rows(polled)
    assert (first.action, first.reason) == ("ignored", "unreadable")
    assert polled.blobs.read(first.sha256) == bad
    assert (second.action, second.message_id) == ("created", "<html-1@example.com>")
    assert all(seen for _, seen in imap.flags())


def test_a_message_stays_unseen_until_its_transaction_commits(polled, imap, tmp_path, clock):
    imap.append(fixture_mail("new.eml"))
    # A database without the tables: every write fails, as when the database is down.
    broken = ServiceContext(
        db=Database(f"sqlite:///{tmp_path / 'empty.db'}"), now=clock, channels=polled.channels
    )
    try:
        with pytest.raises(Exception, match="no such table"):
            poll_once(broken, "test")
    finally:
        broken.db.dispose()
    assert [seen for _, seen in imap.flags()] == [False]
    assert poll_once(polled, "test") == 1
    assert [(r.action, r.message_id) for r in rows(polled)] == [
        ("created", "<new-1@mail.example.com>")
    ]
    assert [seen for _, seen in imap.flags()] == [True]


def test_a_wrong_password_or_an_untrusted_certificate_fails_the_pass(polled, imap):
    imap.append(fixture_mail("new.eml"))
    wrong = replace(polled.channels, imap_url=imap.url(password="not it"))
    with pytest.raises(imaplib.IMAP4.error):
        poll_once(replace_channels(polled, wrong), "test")
    untrusted = replace(polled.channels, imap_url=imap.url().split("?")[0])
    with pytest.raises(ssl.SSLCertVerificationError):
        poll_once(replace_channels(polled, untrusted), "test")
    assert [seen for _, seen in imap.flags()] == [False]
    assert rows(polled) == []


def replace_channels(ctx: ServiceContext, channels) -> ServiceContext:
    ctx.channels = channels
    return ctx


# -- the loop and /metrics ------------------------------------------------------------------


def test_the_imap_loop_runs_in_the_channel_workers_when_a_mailbox_is_set(polled, imap, ctx):
    [loop] = [loop for loop in CHANNEL_LOOPS if loop.name == "imap"]
    assert loop.enabled(polled)
    mailbox = polled.channels
    assert not loop.enabled(replace_channels(polled, replace(mailbox, imap_url="")))
    replace_channels(polled, mailbox)
    imap.append(fixture_mail("gb2312.eml"))
    workers = ChannelWorkers(polled, [loop])
    workers.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not rows(polled):
            time.sleep(0.2)
    finally:
        workers.stop()
    assert [(r.action, r.source) for r in rows(polled)] == [("created", "imap")]


def test_metrics_show_the_age_of_the_last_successful_poll(polled, imap, app):
    poll_once(polled, "test")
    body = app.test_client().get("/metrics").get_data(as_text=True)
    [line] = [x for x in body.splitlines() if x.startswith("itsm_imap_last_poll_age_seconds ")]
    assert 0 <= float(line.split()[1]) < 30
    imap.append(fixture_mail("no_from.eml"))
    poll_once(polled, "test")
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'itsm_inbound_mails_ignored_total{reason="no_from"}' in body



def test_itsm_worker_polls_the_mailbox_named_in_the_environment(
    polled, imap, database_url, tmp_path
):
    imap.append(fixture_mail("big5.eml"))
    env = dict(
        os.environ,
        ITSM_DATABASE_URL=database_url,
        ITSM_IMAP_URL=imap.url(),
        ITSM_ATTACHMENT_DIR=str(tmp_path / "worker-blobs"),
        ITSM_INSTANCE_DIR=str(tmp_path / "instance"),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "worker"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not rows(polled) and worker.poll() is None:
            time.sleep(0.3)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    [row] = rows(polled)
    assert (row.action, row.source) == ("created", "imap")
    assert row.message_id == "<big5-1@example.com.tw>"
    assert (tmp_path / "worker-blobs" / row.sha256[:2] / row.sha256[2:4] / row.sha256).exists()
    assert incident_of(polled, row.incident_id).title == "網路斷線", output
    assert [seen for _, seen in imap.flags()] == [True]
