"""Webhook delivery against a real HTTP receiver on 127.0.0.1 (http.server in a
thread): signatures, retries with backoff, no redirects, time limits, the host rule
at delivery, claiming, and the loop never holding up the request that caused it."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.persistence.db import Database
from engine.persistence.models import WebhookDelivery
from engine.services.context import Actor, ChannelSettings, ServiceContext
from engine.services.notify import webhook_delivery
from engine.services.notify.webhook_delivery import (
    BACKOFF,
    MAX_ATTEMPTS,
    DeliveryLimits,
    deliver_due,
)
from engine.services.notify.webhooks import create_webhook
from engine.services.ops.channels import CHANNEL_LOOPS, ChannelWorkers
from tests.conftest import TestClock, missing
from tests.scenario import Scenario

SECRET = "receiver-shared-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on loopback that records each request and answers from a script:
    an int status, a (status, headers) pair, or "hang" (until the test ends)."""

    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "hang":
                    receiver.released.wait(30)
                    return
                status, headers = action if isinstance(action, tuple) else (action, {})
                answer = b'{"ok": true}' if status < 300 else b"receiver says no"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def ctx(database_url: str, clock: TestClock) -> Iterator[ServiceContext]:
    """Loopback allowed, as in every test run (ITSM_WEBHOOK_ALLOWED_HOSTS=127.0.0.1)."""
    channels = ChannelSettings(webhook_allowed_hosts=("127.0.0.1",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


def hook(api, url, events=("created",), secret=SECRET):
    return api.ok(api.post("admin", "/webhooks", {"url": url, "events": list(events),
                                                  "secret": secret}), 201)


def deliveries(api, webhook):
    return api.ok(api.get("admin", f"/webhooks/{webhook['id']}/deliveries"))["items"]


def test_a_delivery_is_signed_and_verifiable(api, ctx, receiver):
    webhook = hook(api, receiver.url("/in?source=itsm"))
    s = Scenario(api)
    assert deliver_due(ctx, "w1") == 1
    (got,) = receiver.received
    assert got.path == "/in?source=itsm"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-ITSM-Signature"] == f"sha256={expected}"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-ITSM-Event"] == "created"
    assert got.headers["Host"] == f"127.0.0.1:{receiver.server.server_address[1]}"
    body = json.loads(got.body)
    assert body["type"] == "created" and body["incident"]["id"] == s.id
    assert body["incident"]["number"] == s.incident["number"]
    (row,) = deliveries(api, webhook)
    assert got.headers["X-ITSM-Delivery"] == str(row["id"])
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["response_status"] == 200 and row["delivered_at"] is not None
    # A delivered row is never sent again.
    assert deliver_due(ctx, "w1") == 0 and len(receiver.received) == 1


def test_a_500_is_retried_with_backoff_until_it_succeeds(api, ctx, receiver, clock):
    webhook = hook(api, receiver.url())
    receiver.script = [500, 503]
    Scenario(api)
    assert deliver_due(ctx, "w1") == 1
    (row,) = deliveries(api, webhook)
    assert row["status"] == "queued" and row["attempts"] == 1
    assert row["response_status"] == 500 and "500" in row["last_error"]
    assert "receiver says no" in row["last_error"]
    clock.advance(seconds=BACKOFF[0].total_seconds() - 1)
    assert deliver_due(ctx, "w1") == 0  # not due yet
    clock.advance(seconds=1)
    assert deliver_due(ctx, "w1") == 1
    assert deliveries(api, webhook)[0]["response_status"] == 503
    clock.advance(seconds=BACKOFF[1].total_seconds())
    assert deliver_due(ctx, "w1") == 1
    (row,) = deliveries(api, webhook)
    assert row["status"] == "delivered" and row["attempts"] == 3 and row["last_error"] is None
    assert len(receiver.received) == 3
    assert len({r.headers["X-ITSM-Delivery"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1


def test_after_the_last_attempt_the_delivery_fails(api, ctx, receiver, clock):
    webhook = hook(api, receiver.url())
    receiver.script = [500] * MAX_ATTEMPTS
    Scenario(api)
    for wait in (*BACKOFF, None):
        assert deliver_due(ctx, "w1") == 1
        if wait is not None:
            clock.advance(seconds=wait.total_seconds())
    (row,) = deliveries(api, webhook)
    assert row["status"] == "failed" and row["attempts"] == MAX_ATTEMPTS == 6
    clock.advance(days=1)
    assert deliver_due(ctx, "w1") == 0 and len(receiver.received) == MAX_ATTEMPTS


def test_a_redirect_is_not_followed(api, ctx, receiver):
    elsewhere = Receiver()
    try:
        webhook = hook(api, receiver.url())
        receiver.script = [(302, {"Location": elsewhere.url("/stolen")})]
        Scenario(api)
        assert deliver_due(ctx, "w1") == 1
        (row,) = deliveries(api, webhook)
        assert row["status"] == "queued" and row["response_status"] == 302
        assert "redirect not followed" in row["last_error"]
        assert elsewhere.received == []
    finally:
        elsewhere.close()


def test_a_hanging_receiver_times_out_and_the_pass_goes_on(api, ctx, receiver):
    hanging = Receiver(script=["hang"])
    try:
        slow = hook(api, hanging.url())
        fine = hook(api, receiver.url())
        Scenario(api)
        started = time.monotonic()
        limits = DeliveryLimits(connect_seconds=1.0, total_seconds=1.0)
        assert webhook_delivery.deliver_due(ctx, "w1", limits) == 2
        assert time.monotonic() - started < 5
        (row,) = deliveries(api, slow)
        assert row["status"] == "queued" and "timed out" in row["last_error"]
        assert deliveries(api, fine)[0]["status"] == "delivered"
        assert len(receiver.received) == 1
    finally:
        hanging.close()


def test_the_request_causing_an_event_never_waits_for_its_delivery(api, ctx):
    hanging = Receiver(script=["hang"] * 10)
    (loop,) = [loop for loop in CHANNEL_LOOPS if loop.name == "webhooks"]
    workers = ChannelWorkers(ctx, [loop])
    try:
        hook(api, hanging.url(), events=("created", "task_completed"))
        Scenario(api)
        workers.start()
        deadline = time.monotonic() + 10
        while not hanging.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hanging.received, "the loop never called the receiver"
        # The loop now waits on the receiver (10 s limit); incidents go on as usual.
        for _ in range(3):
            started = time.monotonic()
            s = Scenario(api)
            s.record()
            assert time.monotonic() - started < 2
    finally:
        hanging.released.set()
        workers.stop(timeout=15)
        hanging.close()


def test_the_host_rule_is_applied_again_at_each_delivery(api, ctx, receiver, database_url):
    webhook = hook(api, receiver.url())
    Scenario(api)
    # The same installation with no allowed hosts: loopback is refused when calling.
    strict = ServiceContext(db=Database(database_url), now=ctx.now)
    try:
        assert deliver_due(strict, "w1") == 1
    finally:
        strict.db.dispose()
    (row,) = deliveries(api, webhook)
    assert row["status"] == "queued" and row["last_error"].startswith("refused")
    assert "loopback" in row["last_error"] and receiver.received == []


def test_a_deleted_webhooks_queued_deliveries_are_dropped(api, ctx, receiver):
    webhook = hook(api, receiver.url())
    Scenario(api)
    api.ok(api.call("admin", "DELETE", f"/webhooks/{webhook['id']}"))
    assert deliver_due(ctx, "w1") == 1
    (row,) = deliveries(api, webhook)
    assert row["status"] == "failed" and "deleted" in row["last_error"]
    assert receiver.received == []


def test_a_claimed_delivery_is_not_taken_by_another_worker(api, ctx, receiver, clock):
    hook(api, receiver.url())
    Scenario(api)
    claimed, _ = webhook_delivery._claim(ctx, "worker-a", webhook_delivery.LIMITS)
    assert len(claimed) == 1
    assert deliver_due(ctx, "worker-b") == 0 and receiver.received == []
    # worker-a died: once its claim runs out, worker-b takes the row over.
    clock.advance(minutes=10)
    assert deliver_due(ctx, "worker-b") == 1 and len(receiver.received) == 1
    with ctx.db.read() as session:
        row = session.get(WebhookDelivery, claimed[0].id)
        assert row is not None and row.status == "delivered" and row.claimed_by is None


def test_metrics_show_the_webhook_backlog(api, app, ctx, receiver, clock):
    hook(api, receiver.url(), events=("created", "task_completed"))
    s = Scenario(api)
    s.record()
    clock.advance(seconds=42)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "itsm_webhook_deliveries_queued 2.0" in text
    assert "itsm_webhook_oldest_queued_age_seconds 42.0" in text
    deliver_due(ctx, "w1")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "itsm_webhook_deliveries_queued 0.0" in text
    assert "itsm_webhook_oldest_queued_age_seconds 0.0" in text


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[Receiver, list[str], str]]:
    """An https receiver on 127.0.0.1 with a throwaway certificate for `localhost`;
    it records the TLS server names (SNI) clients ask for."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        capture_output=True,
    )
    if made.returncode != 0:
        missing(f"openssl could not make a certificate: {made.stderr[-300:]!r}")
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name or "")
    server = Receiver()
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    yield server, names, str(cert)
    server.close()


@pytest.fixture
def localhost_ctx(database_url, clock) -> Iterator[ServiceContext]:
    """The installation with `localhost` listed: called whatever it resolves to."""
    channels = ChannelSettings(webhook_allowed_hosts=("localhost",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


def _https_hook(ctx: ServiceContext, receiver: Receiver) -> int:
    admin = Actor(id=0, username="admin", roles=frozenset({"admin"}))
    url = f"https://localhost:{receiver.server.server_address[1]}/tls"
    return int(create_webhook(ctx, admin, {"url": url, "events": ["created"],
                                           "secret": SECRET})["id"])


def test_https_verifies_the_hosts_certificate_and_sends_its_name(
    api, localhost_ctx, tls_receiver, monkeypatch
):
    receiver, names, cert = tls_receiver
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust the throwaway certificate
    webhook_id = _https_hook(localhost_ctx, receiver)
    Scenario(api)
    assert deliver_due(localhost_ctx, "w1") == 1
    (row,) = deliveries(api, {"id": webhook_id})
    assert row["status"] == "delivered", row
    assert names == ["localhost"]
    (got,) = receiver.received
    assert got.headers["Host"] == f"localhost:{receiver.server.server_address[1]}"
    assert got.path == "/tls"


def test_https_refuses_a_certificate_it_cannot_verify(api, localhost_ctx, tls_receiver,
                                                      monkeypatch, tmp_path):
    receiver, _names, _cert = tls_receiver
    empty = tmp_path / "no-roots.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    webhook_id = _https_hook(localhost_ctx, receiver)
    Scenario(api)
    assert deliver_due(localhost_ctx, "w1") == 1
    (row,) = deliveries(api, {"id": webhook_id})
    assert row["status"] == "queued" and "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
    assert receiver.received == []


def test_a_path_with_other_characters_is_sent_percent_encoded(api, ctx, receiver):
    webhook = hook(api, receiver.url("/事件?來源=itsm"))
    Scenario(api)
    assert deliver_due(ctx, "w1") == 1
    assert receiver.received[0].path == "/%E4%BA%8B%E4%BB%B6?%E4%BE%86%E6%BA%90=itsm"
    assert deliveries(api, webhook)[0]["status"] == "delivered"
