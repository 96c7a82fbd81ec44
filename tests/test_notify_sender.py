"""The mail loop against real SMTP servers on loopback (aiosmtpd; a socket that
never answers): retries with backoff, never twice, two workers, refused
recipients, STARTTLS with AUTH, and requests that never wait for SMTP."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.persistence.db import Database
from engine.persistence.models import Event, Notification
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.notify import sender, smtp
from engine.services.notify.sender import MAX_ATTEMPTS, send_due
from engine.services.notify.smtp import SmtpUrlError, parse_smtp_url
from engine.services.ops.channels import CHANNEL_LOOPS, ChannelWorkers
from tests.conftest import Api, Template, TestClock
from tests.mail_servers import (
    HangingServer,
    SlowServer,
    SmtpServer,
    address_of,
    free_port,
    give_addresses,
    self_signed_certificate,
)
from tests.scenario import Scenario
from web.app import create_app
from web.settings import Settings


def make_ctx(database_url: str, clock: TestClock, smtp_url: str, tmp_path: Path) -> ServiceContext:
    channels = ChannelSettings(
        smtp_url=smtp_url,
        mail_from="desk@itsm.example.test",
        base_url="https://itsm.example.test",
        attachment_dir=tmp_path / "attachments",
    )
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    give_addresses(context)
    return context


def api_of(ctx: ServiceContext, template: Template) -> Api:
    app = create_app(Settings(database_url=ctx.db.url, secret_key="test"), ctx)
    return Api(app.test_client(), template.tokens)


def rows(ctx: ServiceContext) -> list[tuple[str, str, int]]:
    with ctx.db.read() as session:
        return [
            (r.to_address, r.status, r.attempts)
            for r in session.scalars(select(Notification).order_by(Notification.id))
        ]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def mail_ctx(database_url: str, clock: TestClock, port: int, tmp_path: Path) -> Iterator[
    ServiceContext
]:
    context = make_ctx(database_url, clock, f"smtp://127.0.0.1:{port}", tmp_path)
    yield context
    context.db.dispose()


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.host, plain.port, plain.tls, plain.starttls, plain.username) == (
        "127.0.0.1", 2525, False, False, None,
    )
    secured = parse_smtp_url("smtp://bot%40desk:p%3Ass@mail.test:587?starttls=1")
    assert (secured.starttls, secured.username, secured.password) == (True, "bot@desk", "p:ss")
    assert parse_smtp_url("smtps://mail.test").port == 465
    assert parse_smtp_url("smtps://mail.test").tls is True
    for bad in ("http://mail.test", "smtp://", "smtp://mail.test:99999"):
        with pytest.raises(SmtpUrlError):
            parse_smtp_url(bad)


def test_server_down_then_up_delivers_each_mail_once(
    mail_ctx: ServiceContext, template: Template, clock: TestClock, port: int
) -> None:
    Scenario(api_of(mail_ctx, template))  # reporter's ack, desk and desk2: 3 mails
    assert send_due(mail_ctx, "w1") == 3  # nobody listens on the port
    assert {(status, attempts) for _, status, attempts in rows(mail_ctx)} == {("queued", 1)}
    assert send_due(mail_ctx, "w1") == 0  # backing off
    clock.advance(seconds=31)
    assert send_due(mail_ctx, "w1") == 3  # still down: the second try
    server = SmtpServer(port).start()
    try:
        clock.advance(minutes=1)
        assert send_due(mail_ctx, "w1") == 0  # the second backoff is 2 minutes
        clock.advance(minutes=1, seconds=1)
        assert send_due(mail_ctx, "w1") == 3
        clock.advance(hours=2)
        assert send_due(mail_ctx, "w1") == 0
        received = server.received
        assert sorted(r.to for r in received) == sorted(
            address_of(name) for name in ("desk", "desk2", "reporter")
        )
        assert {(status, attempts) for _, status, attempts in rows(mail_ctx)} == {("sent", 3)}
    finally:
        server.stop()


def test_two_workers_never_send_a_mail_twice(
    mail_ctx: ServiceContext, template: Template, port: int
) -> None:
    api = api_of(mail_ctx, template)
    for _ in range(8):
        Scenario(api)  # 3 mails each
    server = SmtpServer(port).start()
    # A second context on the same database: another worker process.
    other = ServiceContext(
        db=Database(mail_ctx.db.url), now=mail_ctx.now, channels=mail_ctx.channels
    )
    try:
        handled: Counter[str] = Counter()

        def work(ctx: ServiceContext, name: str) -> None:
            while True:
                count = send_due(ctx, name, batch=3)
                if not count:
                    return
                handled[name] += count

        threads = [
            threading.Thread(target=work, args=(mail_ctx, "w1")),
            threading.Thread(target=work, args=(other, "w2")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        ids = Counter(str(r.message["Message-ID"]) for r in server.received)
        assert len(ids) == 24 and set(ids.values()) == {1}
        assert sum(handled.values()) == 24
        assert {status for _, status, _ in rows(mail_ctx)} == {"sent"}
    finally:
        server.stop()
        other.db.dispose()


def test_claimed_by_a_dead_worker_is_taken_after_the_claim(
    mail_ctx: ServiceContext, template: Template, clock: TestClock, port: int
) -> None:
    Scenario(api_of(mail_ctx, template))
    assert len(sender.claim_due(mail_ctx, "dead-worker")) == 3  # and then it died
    server = SmtpServer(port).start()
    try:
        assert send_due(mail_ctx, "w2") == 0
        clock.advance(seconds=sender.CLAIM_FOR.total_seconds() + 1)
        assert send_due(mail_ctx, "w2") == 3
        assert len(server.received) == 3
    finally:
        server.stop()


def test_refused_recipient_is_retried_then_failed_with_an_event(
    mail_ctx: ServiceContext, template: Template, clock: TestClock, port: int
) -> None:
    server = SmtpServer(port)
    server.collector.refuse.add(address_of("desk2"))
    server.start()
    try:
        s = Scenario(api_of(mail_ctx, template))
        for attempt in range(MAX_ATTEMPTS):
            assert send_due(mail_ctx, "w") == (3 if attempt == 0 else 1)
            clock.advance(hours=2)
        assert send_due(mail_ctx, "w") == 0
        final = {to: (status, attempts) for to, status, attempts in rows(mail_ctx)}
        assert final[address_of("desk2")] == ("failed", MAX_ATTEMPTS)
        assert final[address_of("desk")] == ("sent", 1)
        assert len(server.received) == 2
        with mail_ctx.db.read() as session:
            failed = session.scalars(
                select(Event).where(Event.incident_id == s.id, Event.type == "notification_failed")
            ).all()
            assert len(failed) == 1
            assert failed[0].actor == "system"
            assert failed[0].data["to"] == address_of("desk2")
            assert failed[0].data["subject"].startswith(f"[{s.incident['number']}]")
            assert "refused" in failed[0].data["error"]
    finally:
        server.stop()


def test_starttls_and_auth(
    database_url: str,
    clock: TestClock,
    template: Template,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the test CA, as an internal CA would be
    server = SmtpServer(tls=(cert, key), login=("itsm", "s3cret")).start()
    good = make_ctx(database_url, clock, server.url(), tmp_path)
    try:
        Scenario(api_of(good, template))
        assert send_due(good, "w") == 3
        assert len(server.received) == 3
        assert {status for _, status, _ in rows(good)} == {"sent"}
        # A wrong password fails (and is retried later), nothing is delivered.
        Scenario(api_of(good, template))
        bad = copy.copy(good)  # the same database, the wrong password
        bad.channels = replace(good.channels, smtp_url=server.url().replace("s3cret", "wrong"))
        assert send_due(bad, "w") == 3
        assert len(server.received) == 3
        assert sorted(status for _, status, _ in rows(good)).count("queued") == 3
    finally:
        server.stop()
        good.db.dispose()


def test_the_request_never_waits_for_a_hanging_server(
    database_url: str, clock: TestClock, template: Template, tmp_path: Path
) -> None:
    hanging = HangingServer()
    ctx = make_ctx(database_url, clock, hanging.url(), tmp_path)
    worker = threading.Thread(target=send_due, args=(ctx, "w"), daemon=True)
    try:
        api = api_of(ctx, template)
        Scenario(api)
        worker.start()  # the sender is now stuck waiting for the greeting
        time.sleep(0.2)
        started = time.monotonic()
        s = Scenario(api)
        s.record()
        assert time.monotonic() - started < 2.0
        worker.join(sender.TOTAL_TIMEOUT + 5)
        assert not worker.is_alive()  # the connect timeout ended the pass
        assert {status for _, status, _ in rows(ctx)} == {"queued"}
    finally:
        hanging.stop()
        ctx.db.dispose()


def test_a_slow_server_is_cut_at_the_total_timeout(
    database_url: str,
    clock: TestClock,
    template: Template,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(smtp, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(smtp, "TOTAL_TIMEOUT", 1.5)
    slow = SlowServer(delay=0.5)  # each reply in time, four replies too many
    ctx = make_ctx(database_url, clock, slow.url(), tmp_path)
    try:
        Scenario(api_of(ctx, template))
        started = time.monotonic()
        assert send_due(ctx, "w") == 3
        # Cut at 1.5 s; without the total bound the five replies up to DATA take 2.5 s
        # (and then fail otherwise: this server never says 354).
        assert time.monotonic() - started < 2.3
        assert {(status, attempts) for _, status, attempts in rows(ctx)} == {("queued", 1)}
        with ctx.db.read() as session:
            errors = set(session.scalars(select(Notification.last_error)))
        assert len(errors) == 1
        (error,) = errors
        assert "timed out" in error or "total timeout" in error, error
    finally:
        slow.stop()
        ctx.db.dispose()


def test_backoff_grows() -> None:
    assert [step.total_seconds() for step in sender.BACKOFF] == [30, 120, 600, 3600]
    assert MAX_ATTEMPTS == 5
    assert timedelta(seconds=sender.BATCH * sender.TOTAL_TIMEOUT) < sender.CLAIM_FOR


def test_the_mail_loop_runs_in_a_thread_of_its_own_only_with_smtp(
    mail_ctx: ServiceContext, template: Template, port: int, database_url: str, clock: TestClock
) -> None:
    (loop,) = [loop for loop in CHANNEL_LOOPS if loop.name == "mail"]
    plain = ServiceContext(db=Database(database_url), now=clock)
    try:
        assert not loop.enabled(plain)  # no ITSM_SMTP_URL: no mail loop at all
        assert loop.enabled(mail_ctx)
    finally:
        plain.db.dispose()
    server = SmtpServer(port).start()
    workers = ChannelWorkers(mail_ctx, [loop])
    try:
        threads = workers.start()
        assert [thread.name for thread in threads] == ["itsm-mail"]
        Scenario(api_of(mail_ctx, template))
        assert len(server.wait_for(3)) == 3
    finally:
        workers.stop()
        server.stop()
