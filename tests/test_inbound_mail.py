"""Mail in through `POST /api/v1/inbound/email` (contract Part 2, "Intake: e-mail in").

Each fixture mail of tests/fixtures/mail/ is posted as a mail gateway would and
gets its exact outcome: the incident or note it became (title, text, caller,
attachments, the raw mail kept) or the reason it was ignored.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from engine.persistence.db import Database
from engine.persistence.models import Attachment, InboundMail, Incident, Note, Notification, User
from engine.services.context import ServiceContext
from engine.services.intake.inbound import (
    MAX_MESSAGE_BYTES,
    SENDER_LIMIT_PER_HOUR,
    Outcome,
    receive,
)
from engine.services.people import users
from tests.conftest import PASSWORD
from tests.scenario import Scenario
from tests.servers import Server
from tests.test_inbound_parse import mail_like

MAILS = Path(__file__).parent / "fixtures" / "mail"
RFC822 = {"Content-Type": "message/rfc822"}
ALICE = "alice.chen@example.com"


def fixture_mail(name: str, **substitutions: str) -> bytes:
    raw = (MAILS / name).read_bytes()
    for key, value in substitutions.items():
        raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
    return raw


def simple_mail(sender: str, subject: str, body: str = "Hello", **headers: str) -> bytes:
    lines = [f"From: {sender}", "To: desk@itsm.example", f"Subject: {subject}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def gateway(ctx, api):
    users.create_user(ctx, "mailgw", PASSWORD, ["integration"])
    api.tokens["mailgw"] = users.issue_token(ctx, "mailgw", PASSWORD).token
    return "mailgw"


def deliver(api, raw: bytes, user: str = "mailgw", **kw):
    return api.client.post(
        "/api/v1/inbound/email",
        data=raw,
        headers={**RFC822, "Authorization": f"Bearer {api.tokens[user]}", **kw},
    )


def outcome(api, raw: bytes) -> dict:
    response = deliver(api, raw)
    assert response.status_code == 200, (response.status_code, response.get_json())
    return response.get_json()


def incident_row(ctx, incident_id: int) -> Incident:
    with ctx.db.read() as session:
        incident = session.get_one(Incident, incident_id)
        session.expunge(incident)
        return incident


def inbound_rows(ctx) -> list[InboundMail]:
    with ctx.db.read() as session:
        rows = list(session.scalars(select(InboundMail).order_by(InboundMail.id)))
        session.expunge_all()
        return rows


def notes_of(ctx, incident_id: int) -> list[Note]:
    with ctx.db.read() as session:
        rows = list(session.scalars(select(Note).where(Note.incident_id == incident_id)))
        session.expunge_all()
        return rows


def ignored_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("itsm_inbound_mails_ignored_total", {"reason": reason})
    return value or 0.0


# -- new mail ---------------------------------------------------------------------------


def test_a_new_mail_becomes_an_incident_of_its_sender_with_the_raw_mail_kept(api, ctx, gateway):
    raw = fixture_mail("new.eml")
    answer = outcome(api, raw)
    assert set(answer) == {"action", "incident_id"} and answer["action"] == "created"
    incident = incident_row(ctx, answer["incident_id"])
    assert incident.channel == "email"
    assert incident.title == "印表機無法列印"
    assert incident.description == "三樓的印表機從早上開始無法列印，顯示「卡紙」。\n\nAlice"
    assert incident.caller_email == ALICE and incident.caller_id is None
    with ctx.db.read() as session:
        creator = session.get_one(User, incident.created_by_id).username
    assert creator == "mailgw"
    [row] = inbound_rows(ctx)
    assert (row.action, row.source, row.reason) == ("created", "api", None)
    assert row.incident_id == incident.id and row.from_address == ALICE
    assert row.message_id == "<new-1@mail.example.com>" and row.size == len(raw)
    assert ctx.blobs.read(row.sha256) == raw
    # The caller known by address is the incident's caller in the JSON too.
    detail = api.ok(api.get("manager", f"/incidents/{incident.id}"))
    assert detail["caller"]["email"] == ALICE


def test_a_users_address_makes_that_user_the_caller(api, ctx, gateway):
    with ctx.db.write() as session:
        session.execute(
            update(User).where(User.username == "reporter").values(email=ALICE)
        )
    answer = outcome(api, fixture_mail("new.eml"))
    incident = incident_row(ctx, answer["incident_id"])
    with ctx.db.read() as session:
        assert session.get_one(User, incident.caller_id).username == "reporter"
    assert incident.caller_email is None
    mine = api.ok(api.get("reporter", "/incidents"))
    assert [i["id"] for i in mine["items"]] == [incident.id]


@pytest.mark.parametrize(
    ("name", "title", "description"),
    [
        (
            "big5.eml",
            "網路斷線",
            "會議室的網路從中午開始斷線，無線和有線都不能用。\n\n陳先生 分機 1234",
        ),
        (
            "gb2312.eml",
            "邮件服务器无法连接",
            "从今天早上开始，邮件客户端无法连接服务器。\n\n李小姐",
        ),
        (
            "html_only.eml",
            "Laptop screen flickers",
            "My laptop's screen flickers since the update.\n\n- Model: X1\n\n- Since: Friday"
            "\n\nThanks,\nCarol",
        ),
        ("utf8_bad_bytes.eml", "VPN 無法\ufffd\ufffd connect",
         "The VPN 連線 fails \ufffd( with error \ufffd\ufffd 809."),
    ],
)
def test_charsets_and_html_are_read_as_text(api, ctx, gateway, name, title, description):
    incident = incident_row(ctx, outcome(api, fixture_mail(name))["incident_id"])
    assert (incident.title, incident.description) == (title, description)


def test_broken_mime_becomes_an_incident_with_what_could_be_read(api, ctx, gateway):
    answer = outcome(api, fixture_mail("broken_mime.eml"))
    assert answer["action"] == "created"
    incident = incident_row(ctx, answer["incident_id"])
    assert incident.title == "Scanner error"
    assert incident.description.startswith("The scanner says error 5")
    assert "\x00" not in incident.description


def test_attachments_are_kept_on_the_incident(api, ctx, gateway):
    answer = outcome(api, fixture_mail("attachment.eml"))
    incident = incident_row(ctx, answer["incident_id"])
    assert incident.description == "Saving a file shows the dialog in the screenshot."
    with ctx.db.read() as session:
        rows = list(session.scalars(select(Attachment).order_by(Attachment.id)))
        session.expunge_all()
    [mail] = inbound_rows(ctx)
    assert [(a.filename, a.content_type, a.size) for a in rows] == [
        ("screen.png", "image/png", 70),
        ("錯誤記錄.txt", "text/plain", 37),
    ]
    assert all(a.inbound_mail_id == mail.id and not a.internal for a in rows)
    assert ctx.blobs.read(rows[1].sha256) == b"saved at 18:00, error code 0x80070005"
    # The caller sees them: they are theirs.
    detail = api.ok(api.get("manager", f"/incidents/{incident.id}"))
    assert [a["filename"] for a in detail["attachments"]] == ["screen.png", "錯誤記錄.txt"]


def test_an_attachment_over_the_limit_is_named_not_kept(api, ctx, gateway):
    ctx.channels = replace(ctx.channels, attachment_max_bytes=50)
    incident = incident_row(ctx, outcome(api, fixture_mail("attachment.eml"))["incident_id"])
    assert "(attachments over 50 bytes left out: screen.png)" in incident.description
    with ctx.db.read() as session:
        assert session.scalars(select(Attachment.filename)).all() == ["錯誤記錄.txt"]


def test_a_mail_without_a_subject_gets_a_placeholder_title(api, ctx, gateway):
    answer = outcome(api, b"From: x@example.com\r\nMessage-ID: <s@x>\r\n\r\nBroken.\r\n")
    assert incident_row(ctx, answer["incident_id"]).title == "(no subject)"


# -- replies ------------------------------------------------------------------------------


@pytest.fixture
def alices(api, ctx, gateway):
    """An incident by mail from Alice, recorded and waiting for her."""
    answer = outcome(api, fixture_mail("new.eml"))
    incident_id = answer["incident_id"]
    s = Scenario.__new__(Scenario)
    s.api, s.id = api, incident_id
    s.record()
    api.ok(
        api.post(
            "desk",
            f"/incidents/{incident_id}/suspend",
            {"reason": "which printer?", "category": "awaiting_reporter"},
        )
    )
    return s


def test_the_callers_reply_by_subject_tag_is_her_note_and_resumes(api, ctx, alices):
    number = incident_row(ctx, alices.id).number
    answer = outcome(api, fixture_mail("reply_subject_tag.eml", NUMBER=number))
    assert answer == {"action": "noted", "incident_id": alices.id}
    [note] = notes_of(ctx, alices.id)
    assert note.text == "The printer works again after the restart, thanks."
    assert (note.author, note.via, note.internal) == (ALICE, "mailgw", False)
    assert incident_row(ctx, alices.id).status != "suspended"
    assert "resumed" in alices.event_types()
    mails = inbound_rows(ctx)
    assert [(m.action, m.incident_id) for m in mails] == [
        ("created", alices.id),
        ("noted", alices.id),
    ]
    assert b"Please restart the printer" in ctx.blobs.read(mails[1].sha256)


def test_a_tag_typed_without_the_zeros_names_the_incident(api, ctx, alices):
    digits = str(int(incident_row(ctx, alices.id).number.split("-")[1]))
    raw = simple_mail(ALICE, f"about [inc-{digits}]", "the paper tray is empty")
    assert outcome(api, raw) == {"action": "noted", "incident_id": alices.id}


def test_a_reply_naming_our_notification_in_references_is_a_note(api, ctx, alices):
    with ctx.db.write() as session:
        session.add(
            Notification(
                incident_id=alices.id,
                event="created",
                to_address=ALICE,
                language="zh_Hant_TW",
                template="created",
                subject="[INC] received",
                message_id="<n-42@itsm.example>",
                status="sent",
                created_at=ctx.now(),
            )
        )
    raw = fixture_mail("reply_references.eml", NOTIFICATION_ID="<n-42@itsm.example>")
    assert outcome(api, raw) == {"action": "noted", "incident_id": alices.id}
    [note] = notes_of(ctx, alices.id)
    assert note.text == "重新開機後還是一樣，紙匣是空的。"


def test_a_strangers_mail_about_an_incident_is_a_new_incident_naming_it(api, ctx, alices):
    number = incident_row(ctx, alices.id).number
    answer = outcome(api, fixture_mail("reply_stranger.eml", NUMBER=number))
    assert answer["action"] == "created" and answer["incident_id"] != alices.id
    new = incident_row(ctx, answer["incident_id"])
    assert new.caller_email == "mallory@example.org"
    assert new.title == f"Re: {number} printer"
    assert new.description == f"Re: {number}\n\nMy printer on the fourth floor is broken too."
    assert notes_of(ctx, alices.id) == []


def test_the_callers_reply_about_a_closed_incident_is_a_new_incident(api, ctx, alices):
    api.ok(api.post("desk", f"/incidents/{alices.id}/resume"))
    alices.desk_resolves()
    alices.confirm()
    alices.feedback()
    old = incident_row(ctx, alices.id)
    assert old.status == "closed"
    answer = outcome(api, fixture_mail("reply_subject_tag.eml", NUMBER=old.number))
    assert answer["action"] == "created" and answer["incident_id"] != alices.id
    assert incident_row(ctx, answer["incident_id"]).description.startswith(f"Re: {old.number}")


def test_an_unknown_incident_number_is_just_a_new_incident(api, ctx, gateway):
    answer = outcome(api, fixture_mail("reply_subject_tag.eml", NUMBER="INC-999999"))
    assert answer["action"] == "created"
    incident = incident_row(ctx, answer["incident_id"])
    assert incident.title == "Re: [INC-999999] printer"
    assert "On Mon" in incident.description  # a new report keeps the whole text


# -- ignored ------------------------------------------------------------------------------


def test_auto_replies_bulk_mail_and_mail_without_from_are_ignored(api, ctx, alices):
    number = incident_row(ctx, alices.id).number
    before = ignored_count("auto_submitted")
    assert outcome(api, fixture_mail("auto_reply.eml", NUMBER=number)) == {
        "action": "ignored",
        "reason": "auto_submitted",
    }
    assert ignored_count("auto_submitted") == before + 1
    for precedence in ("bulk", "junk", "list", "auto_reply"):
        raw = simple_mail(ALICE, f"news {precedence}", Precedence=precedence)
        assert outcome(api, raw)["reason"] == "precedence"
    assert outcome(api, simple_mail(ALICE, "fine", Auto_Submitted="no"))["action"] == "created"
    assert outcome(api, fixture_mail("no_from.eml")) == {"action": "ignored", "reason": "no_from"}
    bad = simple_mail("root@localhost", "cron")
    assert outcome(api, bad) == {"action": "ignored", "reason": "bad_sender"}
    assert notes_of(ctx, alices.id) == []
    rows = inbound_rows(ctx)
    assert [r.reason for r in rows if r.action == "ignored"] == [
        "auto_submitted", "precedence", "precedence", "precedence", "precedence",
        "no_from", "bad_sender",
    ]  # fmt: skip
    assert all(r.sha256 and ctx.blobs.exists(r.sha256) for r in rows)


def test_a_message_id_seen_before_is_ignored(api, ctx, gateway):
    raw = fixture_mail("new.eml")
    first = outcome(api, raw)
    assert outcome(api, raw) == {"action": "ignored", "reason": "duplicate"}
    with ctx.db.read() as session:
        assert session.scalars(select(Incident.id)).all() == [first["incident_id"]]


def test_our_own_mail_is_a_loop(api, ctx, alices):
    ctx.channels = replace(ctx.channels, mail_from="Desk@ITSM.example")
    raw = simple_mail("ITSM <desk@itsm.example>", "[INC-000001] received")
    assert outcome(api, raw) == {"action": "ignored", "reason": "loop"}
    # One of our notifications forwarded back to us by someone's mail rule.
    with ctx.db.write() as session:
        session.add(
            Notification(
                incident_id=alices.id,
                event="created",
                to_address=ALICE,
                language="en",
                template="created",
                subject="received",
                message_id="<ours-1@itsm.example>",
                status="sent",
                created_at=ctx.now(),
            )
        )
    echoed = simple_mail("list@example.com", "Fwd: received", Message_ID="<ours-1@itsm.example>")
    assert outcome(api, echoed) == {"action": "ignored", "reason": "loop"}
    assert notes_of(ctx, alices.id) == []


def test_more_than_twenty_mails_an_hour_from_one_sender_are_ignored(api, ctx, gateway, clock):
    with ctx.db.write() as session:
        for minutes in range(SENDER_LIMIT_PER_HOUR):
            session.add(
                InboundMail(
                    from_address=ALICE,
                    received_at=clock.now - timedelta(minutes=59 - minutes),
                    size=1,
                    source="api",
                    action="created",
                )
            )
    before = ignored_count("flood")
    assert outcome(api, fixture_mail("new.eml")) == {"action": "ignored", "reason": "flood"}
    assert ignored_count("flood") == before + 1
    assert outcome(api, simple_mail("bob@example.com", "other sender"))["action"] == "created"
    clock.advance(minutes=2)  # two of the twenty are now more than an hour old
    assert outcome(api, simple_mail(ALICE, "again", Message_ID="<again@x>"))["action"] == (
        "created"
    )


def test_dmarc_failure_counts_only_from_our_own_receiving_server(api, ctx, gateway):
    ctx.channels = replace(ctx.channels, inbound_authserv_id="mx.itsm.example")

    def with_results(results: str, n: int) -> bytes:
        return simple_mail(
            f"x{n}@example.com", f"spoof {n}", Authentication_Results=results
        )

    ours_fail = "MX.itsm.example 1; spf=pass smtp.mailfrom=example.com; dmarc=fail (p=reject)"
    assert outcome(api, with_results(ours_fail, 1)) == {
        "action": "ignored",
        "reason": "dmarc_failed",
    }
    forged = "mx.attacker.example; dmarc=fail header.from=example.com"
    assert outcome(api, with_results(forged, 2))["action"] == "created"
    ours_pass = "mx.itsm.example; dmarc=pass header.from=example.com"
    assert outcome(api, with_results(ours_pass, 3))["action"] == "created"
    ctx.channels = replace(ctx.channels, inbound_authserv_id="")
    assert outcome(api, with_results(ours_fail, 4))["action"] == "created"


def test_with_inbound_domains_unknown_outsiders_are_ignored(api, ctx, gateway):
    ctx.channels = replace(ctx.channels, inbound_domains=("example.com",))
    assert outcome(api, simple_mail("someone@other.org", "hi")) == {
        "action": "ignored",
        "reason": "unknown_sender",
    }
    assert outcome(api, simple_mail("a@example.com", "ours"))["action"] == "created"
    assert outcome(api, simple_mail("b@tw.example.com", "subdomain"))["action"] == "created"
    assert outcome(api, simple_mail("c@notexample.com", "lookalike"))["reason"] == (
        "unknown_sender"
    )
    with ctx.db.write() as session:
        session.execute(
            update(User).where(User.username == "reporter").values(email="rep@partner.org")
        )
    assert outcome(api, simple_mail("Rep@Partner.org", "a user"))["action"] == "created"
    # An address that already is an incident's caller may write again.
    ctx.channels = replace(ctx.channels, inbound_domains=())
    outcome(api, simple_mail("vip@client.org", "first"))
    ctx.channels = replace(ctx.channels, inbound_domains=("example.com",))
    assert outcome(api, simple_mail("vip@client.org", "second"))["action"] == "created"


# -- the endpoint ---------------------------------------------------------------------------


def test_over_25_mib_is_413_and_nothing_is_kept(api, ctx, gateway):
    filler = b"x" * (30 * 1024 * 1024)
    response = deliver(api, simple_mail(ALICE, "huge") + filler)
    assert response.status_code == 413
    assert "body" in response.get_json()["details"]
    just_over = simple_mail(ALICE, "just over")
    just_over += b"y" * (MAX_MESSAGE_BYTES + 1 - len(just_over))
    assert deliver(api, just_over).status_code == 413
    assert inbound_rows(ctx) == []


def test_a_mail_of_exactly_25_mib_is_taken(api, ctx, gateway):
    raw = simple_mail(ALICE, "big but allowed", body="")
    raw += b"z" * (MAX_MESSAGE_BYTES - len(raw))
    assert len(raw) == MAX_MESSAGE_BYTES
    assert outcome(api, raw)["action"] == "created"


def test_the_body_must_be_a_raw_message(api, gateway):
    response = deliver(api, b"From: a@example.com\r\n\r\nhi", **{"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "Content-Type" in response.get_json()["details"]
    assert deliver(api, b"").status_code == 422


@pytest.mark.parametrize(
    ("user", "status"),
    [("mailgw", 200), ("desk", 403), ("manager", 403), ("admin", 403), ("reporter", 403),
     (None, 401)],
)
def test_only_integration_users_deliver_mail(api, gateway, user, status):
    headers = dict(RFC822)
    if user is not None:
        headers["Authorization"] = f"Bearer {api.tokens[user]}"
    response = api.client.post(
        "/api/v1/inbound/email", data=simple_mail(ALICE, "role check"), headers=headers
    )
    assert response.status_code == status


def test_an_api_key_of_an_integration_user_delivers_mail(api, ctx, gateway):
    issued = api.ok(api.post("admin", "/api-keys", {"username": "mailgw", "name": "mx"}), 201)
    response = api.client.post(
        "/api/v1/inbound/email",
        data=fixture_mail("new.eml"),
        headers={**RFC822, "Authorization": f"Bearer {issued['key']}"},
    )
    assert response.status_code == 200 and response.get_json()["action"] == "created"


def test_the_operation_is_in_the_openapi_document(api):
    document = api.client.get("/api/v1/openapi.json").get_json()
    post = document["paths"]["/inbound/email"]["post"]
    assert "message/rfc822" in post["requestBody"]["content"]
    assert {"200", "401", "403", "413", "415"} <= set(post["responses"])


# -- whatever arrives ----------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.one_of(mail_like(), st.binary(min_size=1, max_size=2000)))
def test_whatever_arrives_is_answered_and_recorded(api, ctx, gateway, raw):
    before = len(inbound_rows(ctx))
    answer = outcome(api, raw)
    assert answer["action"] in ("created", "noted", "ignored")
    assert len(inbound_rows(ctx)) == before + 1


def test_a_reply_to_the_acknowledgement_the_outbox_queued_is_a_note(
    ctx, database_url, clock, gateway
):
    """With mail out on, the mail-created incident's acknowledgement is queued with a
    Message-ID; the caller's answer to it (no tag in the subject) becomes her note."""
    sending = ServiceContext(
        db=Database(database_url),
        now=clock,
        channels=replace(
            ctx.channels, smtp_url="smtp://127.0.0.1:9", mail_from="desk@itsm.example"
        ),
    )
    try:
        carrier = users.sign_in(sending, "mailgw", PASSWORD)
        created = receive(sending, fixture_mail("new.eml"), "api", actor=carrier)
        assert created.action == "created"
        with sending.db.read() as session:
            [ack] = session.scalars(
                select(Notification).where(Notification.incident_id == created.incident_id)
            ).all()
            assert ack.to_address == ALICE and ack.event == "created"
            ack_id = ack.message_id
        raw = fixture_mail("reply_references.eml", NOTIFICATION_ID=ack_id)
        assert receive(sending, raw, "api", actor=carrier) == Outcome(
            "noted", incident_id=created.incident_id
        )
        [note] = notes_of(sending, created.incident_id)
        assert note.author == ALICE and note.text == "重新開機後還是一樣，紙匣是空的。"
    finally:
        sending.db.dispose()


def _post_raw(url: str, token: str, raw: bytes) -> tuple[int, dict | None]:
    request = urllib.request.Request(url, data=raw, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "message/rfc822",
    })  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    try:
        with opener.open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body.startswith(b"{") else None


def test_a_large_mail_through_itsm_serve(api, ctx, gateway, database_url, tmp_path):
    """waitress's own body cap lets a 20 MiB message through (the app's default is 6)."""
    server = Server(database_url, env={"ITSM_ATTACHMENT_DIR": str(tmp_path / "files")})
    try:
        url = f"{server.base}/inbound/email"
        big = simple_mail(ALICE, "a big screenshot", body="") + b"x" * (20 * 1024 * 1024)
        status, answer = _post_raw(url, api.tokens["mailgw"], big)
        assert status == 200 and answer is not None and answer["action"] == "created", answer
        too_big = simple_mail(ALICE, "too big") + b"x" * MAX_MESSAGE_BYTES
        status, _ = _post_raw(url, api.tokens["mailgw"], too_big)
        assert status == 413
    finally:
        server.stop()
    assert [row.size for row in inbound_rows(ctx)] == [len(big)]
