"""Operations: /healthz, /metrics, request ids, JSON logs, worker heartbeats."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect, select

from engine.persistence.db import Database
from engine.persistence.migrate import alembic_config
from engine.persistence.models import WorkerHeartbeat
from engine.services.context import ServiceContext
from engine.services.incidents.timers import fire_due
from engine.services.ops import health
from engine.services.ops.worker import TimerWorker
from engine.services.telemetry import correlation, metrics
from tests.scenario import Scenario
from tests.servers import Server
from web.app import create_app
from web.cli import main as itsm
from web.logs import JsonFormatter, LogConfigError, RequestIdFilter, configure_logging, make_handler
from web.ops import direct_from_loopback
from web.settings import Settings

METRICS_TOKEN = "metrics-token-0123456789"


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def samples(client: Any, **kw: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics exports: (name, sorted labels) -> value."""
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def app_on(database_url: str) -> Any:
    """An app of its own on `database_url` (which need not answer)."""
    ctx = ServiceContext(db=Database(database_url))
    app = create_app(Settings(database_url=database_url, secret_key="test"), ctx)
    app.config["TESTING"] = True
    return app


# -- /healthz -----------------------------------------------------------------------


def test_healthz_ok_with_a_live_worker_and_no_sign_in(app: Any, ctx: ServiceContext) -> None:
    TimerWorker(ctx).beat_if_due()
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["process"] == {"status": "ok"}
    assert body["database"]["status"] == "ok"
    assert body["database"]["revision"] == head_revision()
    assert body["worker"]["status"] == "ok"
    assert body["worker"]["alive"] == 1 and body["worker"]["expected"] is True
    assert body["worker"]["heartbeat_age_seconds"] == 0
    assert body["worker"]["stale_after_seconds"] == 15


def test_healthz_without_worker_is_503_unless_none_is_expected(app: Any) -> None:
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"]["status"] == "ok"
    assert body["worker"] == {"status": "missing", "expected": True, "alive": 0}
    assert body["problems"] == ["worker: no timer worker has recorded a heartbeat"]

    app.config["ITSM_HEALTH_EXPECT_WORKER"] = "0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["worker"] == {
        "status": "not_expected",
        "expected": False,
        "alive": 0,
    }


def test_healthz_stale_worker_is_503(app: Any, ctx: ServiceContext, clock: Any) -> None:
    worker = TimerWorker(ctx, interval=1.0)
    worker.beat_if_due()
    client = app.test_client()
    clock.advance(seconds=14)
    worker.beat_if_due()  # less than 5 s of real time since the last beat: not written
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["worker"]["heartbeat_age_seconds"] == 14
    clock.advance(seconds=2)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["worker"]["status"] == "stale"
    assert body["worker"]["alive"] == 0 and body["worker"]["heartbeat_age_seconds"] == 16
    assert body["problems"] == ["worker: no heartbeat within 15 s (newest 16 s ago)"]
    # A beat brings it back.
    health.record_heartbeat(ctx, worker.name, worker.started_at, worker.beat_every)
    assert client.get("/healthz").status_code == 200


def test_a_slow_worker_promises_a_longer_period(app: Any, ctx: ServiceContext, clock: Any) -> None:
    TimerWorker(ctx, interval=30).beat_if_due()
    clock.advance(seconds=80)
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["worker"]["stale_after_seconds"] == 90


def test_healthz_database_gone_is_503_not_500(tmp_path: Path) -> None:
    # A SQLite file in a directory that was removed, and one without our schema (what
    # SQLite makes of a removed file when it connects again).
    for url in (f"sqlite:///{tmp_path / 'removed' / 'itsm.db'}", f"sqlite:///{tmp_path / 'e.db'}"):
        response = app_on(url).test_client().get("/healthz")
        assert response.status_code == 503, url
        body = response.get_json()
        assert body["status"] == "unavailable"
        assert body["database"] == {"status": "unavailable", "problem": "OperationalError"}
        assert body["worker"]["status"] == "unknown"
        assert body["problems"] == ["database: OperationalError"]
        assert str(tmp_path) not in response.get_data(as_text=True)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_healthz_unreachable_postgresql_is_503_without_its_address() -> None:
    url = "postgresql+psycopg://itsm:hunter2@127.0.0.1:1/itsm"  # nothing listens on port 1
    started = time.monotonic()
    response = app_on(url).test_client().get("/healthz")
    assert time.monotonic() - started < health.PROBE_TIMEOUT_SECONDS + 1
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert response.get_json()["database"] == {
        "status": "unavailable",
        "problem": "OperationalError",
    }
    assert "127.0.0.1" not in body and "hunter2" not in body


def test_a_hung_database_answers_in_time_and_holds_one_probe(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    calls: list[object] = []

    def hung(db: Database) -> Any:
        calls.append(db)
        release.wait(10)
        raise TimeoutError

    monkeypatch.setattr(health, "_read_state", hung)
    first = health.check_health(ctx, worker_expected=True, timeout=0.2)
    second = health.check_health(ctx, worker_expected=True, timeout=0.2)
    release.set()
    for answer in (first, second):
        assert not answer.ok
        assert answer.problems == ["database: no answer within 0.2 s"]
    assert len(calls) == 1  # the second check waited for the same probe
    monkeypatch.undo()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the hung probe has ended: a new one runs
        if health.check_health(ctx, worker_expected=False).ok:
            break
        time.sleep(0.05)
    else:
        pytest.fail("no fresh probe after the hung one ended")


# -- worker heartbeats -------------------------------------------------------------


def test_worker_beats_while_running_and_forgets_its_row_when_stopped(
    ctx: ServiceContext,
) -> None:
    worker = TimerWorker(ctx, interval=0.05)
    thread = worker.start_thread()
    deadline = time.monotonic() + 10
    rows: list[tuple[str, int]] = []
    while time.monotonic() < deadline and not rows:
        with ctx.db.read() as session:
            query = select(WorkerHeartbeat.worker, WorkerHeartbeat.beat_every_seconds)
            rows = [(name, every) for name, every in session.execute(query)]
        time.sleep(0.05)
    assert rows == [(worker.name, 5)]
    worker.stop()
    thread.join(10)
    with ctx.db.read() as session:
        assert session.scalars(select(WorkerHeartbeat)).all() == []


def test_a_beat_forgets_workers_silent_for_a_day(ctx: ServiceContext, clock: Any) -> None:
    dead = TimerWorker(ctx)
    dead.beat_if_due()
    clock.advance(days=1, seconds=1)
    alive = TimerWorker(ctx)
    alive.beat_if_due()
    with ctx.db.read() as session:
        assert session.scalars(select(WorkerHeartbeat.worker)).all() == [alive.name]
    assert dead.name != alive.name


def test_migration_0011_downgrades_and_upgrades(ctx: ServiceContext, clock: Any) -> None:
    config = alembic_config()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")
    assert "worker_heartbeats" not in inspect(ctx.db.engine).get_table_names()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert "worker_heartbeats" in inspect(ctx.db.engine).get_table_names()
    TimerWorker(ctx).beat_if_due()
    assert health.check_health(ctx, worker_expected=True).ok


# -- /metrics ------------------------------------------------------------------------


def test_metrics_count_requests_tasks_and_sla_firings(
    api: Any, app: Any, ctx: ServiceContext, clock: Any
) -> None:
    client = app.test_client()
    before = samples(client)
    s = Scenario(api)  # P1 until recorded: response target 15 min, 24x7
    api.ok(api.get("manager", f"/incidents/{s.id}"))
    assert api.get("manager", "/incidents/999999").status_code == 404
    clock.advance(minutes=7, seconds=40)  # 50 % fell due 10 s ago
    assert fire_due(ctx) == 1
    s.record()
    TimerWorker(ctx).beat_if_due()
    clock.advance(seconds=3)
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "itsm_http_requests_total"
    assert delta(requests, route="/api/v1/incidents", method="POST", status="201") == 1
    detail = "/api/v1/incidents/<int:incident_id>"
    assert delta(requests, route=detail, method="GET", status="200") >= 2
    assert delta(requests, route=detail, method="GET", status="404") == 1
    assert delta(requests, route="/metrics", method="GET", status="200") == 1
    assert delta("itsm_http_request_duration_seconds_count", route=detail, method="GET") >= 3
    bucket = value(
        after, "itsm_http_request_duration_seconds_bucket", route=detail, method="GET", le="+Inf"
    )
    assert bucket == value(
        after, "itsm_http_request_duration_seconds_count", route=detail, method="GET"
    )
    # Routes are URL rules: no path with an id in it is ever a label.
    raw = {f"/api/v1/incidents/{s.id}", "/api/v1/incidents/999999"}
    assert not [k for k in after if any(v in raw for _, v in k[1])]

    assert delta("itsm_task_completions_total", lane="service_desk") == 1
    assert delta("itsm_sla_firings_total", kind="warning") == 1
    assert delta("itsm_sla_firings_total", kind="breached") == 0
    assert delta("itsm_sla_firing_delay_seconds_count", kind="warning") == 1
    assert delta("itsm_sla_firing_delay_seconds_sum", kind="warning") == pytest.approx(10, abs=1)
    assert delta("itsm_sla_firing_delay_seconds_bucket", kind="warning", le="5.0") == 0
    assert delta("itsm_sla_firing_delay_seconds_bucket", kind="warning", le="10.0") == 1
    assert value(after, "itsm_worker_heartbeat_age_seconds") == 3


def test_a_write_that_rolls_back_counts_nothing(ctx: ServiceContext) -> None:
    def breaches() -> float:
        return metrics.SLA_FIRINGS.labels(kind="breached")._value.get()

    start = breaches()
    with pytest.raises(RuntimeError), ctx.db.write() as session:
        metrics.count_sla_firing(session, "sla_breached", 1.0)
        raise RuntimeError("the chunk failed")
    assert breaches() == start
    with ctx.db.write() as session:
        metrics.count_sla_firing(session, "sla_breached", None)
        assert breaches() == start  # not before the commit
    assert breaches() == start + 1


def test_no_heartbeat_gauge_without_a_heartbeat(app: Any) -> None:
    found = samples(app.test_client())
    assert not [k for k in found if k[0] == "itsm_worker_heartbeat_age_seconds"]


def test_metrics_refused_from_another_address_unless_the_token(app: Any) -> None:
    client = app.test_client()
    outside = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    response = client.get("/metrics", **outside)
    assert response.status_code == 403 and b"itsm_" not in response.data
    # No token configured: no bearer opens it.
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer "}, **outside).status_code == 403
    )
    app.config["ITSM_METRICS_TOKEN"] = METRICS_TOKEN
    for wrong in (
        "Bearer nope",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
        f"Bearer {METRICS_TOKEN}x",
    ):
        assert (
            client.get("/metrics", headers={"Authorization": wrong}, **outside).status_code == 403
        )
    found = samples(client, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, **outside)
    assert any(name == "itsm_http_requests_total" for name, _ in found)


@pytest.mark.parametrize(
    ("remote_addr", "headers", "trusted_proxy", "allowed"),
    [
        ("127.0.0.1", {}, "", True),
        ("127.8.9.10", {}, "", True),
        ("::1", {}, "", True),
        ("::ffff:127.0.0.1", {}, "", True),
        ("10.1.2.3", {}, "", False),
        ("::ffff:10.1.2.3", {}, "", False),
        ("", {}, "", False),
        ("localhost", {}, "", False),
        # Through a proxy, even one on this host passing on a client on this host.
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}, "", False),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, "127.0.0.1", False),
        ("127.0.0.1", {"x-real-ip": "203.0.113.7"}, "", False),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}, "", False),
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, "", False),
        # The trusted proxy itself, which named no client: unknown, so refused.
        ("127.0.0.1", {}, "127.0.0.1", False),
        ("127.0.0.1", {}, "*", False),
        ("::1", {}, "::1", False),
        # A proxy on another machine: this host's own scraper is still direct.
        ("127.0.0.1", {}, "10.0.0.5", True),
        ("::1", {}, "127.0.0.1", True),
    ],
)
def test_direct_from_loopback(
    remote_addr: str, headers: dict[str, str], trusted_proxy: str, allowed: bool
) -> None:
    assert direct_from_loopback(remote_addr, headers.keys(), trusted_proxy) is allowed


def test_metrics_refused_through_a_proxy_in_the_app(app: Any) -> None:
    client = app.test_client()
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert proxied.status_code == 403
    app.config["ITSM_SERVER_TRUSTED_PROXY"] = "127.0.0.1"
    assert client.get("/metrics").status_code == 403
    app.config["ITSM_METRICS_TOKEN"] = METRICS_TOKEN
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert client.get("/metrics", headers=auth).status_code == 200


@pytest.fixture
def proxied_server(database_url: str) -> Iterator[Server]:
    """`itsm serve` trusting a proxy on 127.0.0.1, with JSON logs and no worker."""
    env = {
        "ITSM_SERVER_TRUSTED_PROXY": "127.0.0.1",
        "ITSM_METRICS_TOKEN": METRICS_TOKEN,
        "ITSM_LOG_FORMAT": "json",
        "ITSM_LOG_LEVEL": "info",
    }
    server = Server(database_url, env=env, args=("--no-worker",))
    yield server
    server.kill()


def _fetch(url: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_real_server_behind_a_trusted_proxy(proxied_server: Server) -> None:
    status, headers, body = _fetch(proxied_server.root + "/healthz", {"X-Request-ID": "probe-7"})
    assert status == 503  # --no-worker and no other worker
    assert json.loads(body)["worker"]["status"] == "missing"
    assert headers["X-Request-ID"] == "probe-7"

    metrics_url = proxied_server.root + "/metrics"
    # What nginx on this host sends for an outside client: waitress makes the request
    # the client's (203.0.113.7), which is not loopback.
    assert _fetch(metrics_url, {"X-Forwarded-For": "203.0.113.7"})[0] == 403
    # A client on this host through the proxy, or the proxy naming nobody.
    assert _fetch(metrics_url, {"X-Forwarded-For": "127.0.0.1"})[0] == 403
    assert _fetch(metrics_url, {})[0] == 403
    status, headers, body = _fetch(metrics_url, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and b"itsm_http_requests_total" in body
    assert b'route="/healthz"' in body
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])

    process = proxied_server.process
    process.kill()
    process.wait(10)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert entries, output
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message", "request_id"}
        assert entry["time"].endswith("+00:00")
    warning = [e for e in entries if e["logger"] == "itsm.health"]
    assert [e["request_id"] for e in warning] == ["probe-7"], output
    assert warning[0]["level"] == "WARNING"


# -- request ids and logs ------------------------------------------------------------


@pytest.fixture
def logged(app: Any) -> Iterator[io.StringIO]:
    """The JSON lines logged while the test runs (web.logs's handler on the root)."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _routes_for_tests(app: Any) -> None:
    log = logging.getLogger("itsm.test")

    @app.get("/test/log")
    def _log() -> str:
        log.info("inside the request")
        return "ok"

    @app.get("/test/boom")
    def _boom() -> str:
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production


def test_every_response_has_a_request_id(app: Any) -> None:
    _routes_for_tests(app)
    client = app.test_client()
    answers = [
        client.get("/login"),  # a page
        client.get("/healthz"),
        client.get("/api/v1/tasks"),  # 401
        client.get("/no-such-page"),  # 404 page
        client.get("/api/v1/no-such-thing"),  # 404 JSON
        client.delete("/login"),  # 405
        client.get("/test/boom"),  # 500
        client.get("/static/no-such-file.js"),
    ]
    assert [a.status_code for a in answers] == [200, 503, 401, 404, 404, 405, 500, 404]
    ids = [a.headers.get("X-Request-ID", "") for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    # The 500 is counted under its route too.
    assert (
        value(
            samples(client),
            "itsm_http_requests_total",
            route="/test/boom",
            method="GET",
            status="500",
        )
        >= 1
    )


@pytest.mark.parametrize(
    "given", ["abc-123_X.y", "a", "0" * 64, "1f0e1f0e-aaaa-4bbb-8ccc-0123456789ab"]
)
def test_a_safe_request_id_is_echoed(app: Any, given: str) -> None:
    response = app.test_client().get("/api/v1/tasks", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "has space", "0" * 65, "a/b", "<script>", "id;x=1", "é"])
def test_an_unsafe_request_id_is_replaced(app: Any, given: str) -> None:
    response = app.test_client().get("/healthz", headers={"X-Request-ID": given})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_json_log_lines_carry_the_request_id(app: Any, logged: io.StringIO) -> None:
    _routes_for_tests(app)
    client = app.test_client()
    logging.getLogger("itsm.test").info("before any request")
    assert client.get("/test/log", headers={"X-Request-ID": "req-1"}).status_code == 200
    assert client.get("/test/boom", headers={"X-Request-ID": "req-2"}).status_code == 500
    logging.getLogger("itsm.test").info("after the requests")
    entries = [json.loads(line) for line in logged.getvalue().splitlines()]
    by_message = {e["message"]: e for e in entries}
    assert by_message["before any request"]["request_id"] is None
    assert by_message["after the requests"]["request_id"] is None
    inside = by_message["inside the request"]
    assert inside["request_id"] == "req-1"
    assert inside["level"] == "INFO" and inside["logger"] == "itsm.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", inside["time"])
    crash = [e for e in entries if e["request_id"] == "req-2"]
    assert len(crash) == 1 and crash[0]["level"] == "ERROR"
    assert "RuntimeError: boom" in crash[0]["exc_info"]
    assert "\n" in crash[0]["exc_info"]  # a whole traceback, on one line of the log


def test_worker_log_lines_carry_the_pass_id(
    api: Any, ctx: ServiceContext, clock: Any, logged: io.StringIO
) -> None:
    Scenario(api)
    clock.advance(minutes=8)
    worker = TimerWorker(ctx, interval=0.05)
    thread = worker.start_thread()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "sla_warning" not in logged.getvalue():
        time.sleep(0.05)
    worker.stop()
    thread.join(10)
    entries = [json.loads(line) for line in logged.getvalue().splitlines()]
    fired = [e for e in entries if "sla_warning" in e["message"]]
    assert fired and re.fullmatch(r"worker-[0-9a-f]{12}", fired[0]["request_id"])
    started = [e for e in entries if e["message"].endswith("started")]
    assert started and started[0]["request_id"] is None  # outside any pass


def test_text_lines_show_the_id_or_a_dash() -> None:
    stream = io.StringIO()
    handler = make_handler("text", stream)
    log = logging.getLogger("itsm.test.text")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("no id")
        bound = correlation.bind("req-9")
        log.warning("with id")
        correlation.unbind(bound)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second = stream.getvalue().splitlines()
    assert " WARNING [-] itsm.test.text: no id" in first
    assert " WARNING [req-9] itsm.test.text: with id" in second


def test_configure_logging_reads_format_and_level() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging({"ITSM_LOG_FORMAT": "JSON", "ITSM_LOG_LEVEL": "warning"})
        assert root.level == logging.WARNING
        assert len(root.handlers) == 1
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
        configure_logging({})
        assert root.level == logging.INFO
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ITSM_LOG_FORMAT": "xml"}, "ITSM_LOG_FORMAT='xml'"),
        ({"ITSM_LOG_LEVEL": "LOUD"}, "ITSM_LOG_LEVEL='LOUD'"),
    ],
)
def test_bad_log_settings_name_the_variable(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with pytest.raises(LogConfigError, match=re.escape(named)):
        configure_logging(env)
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    # Both commands stop before they open the database or serve anything.
    monkeypatch.setenv("ITSM_DATABASE_URL", "sqlite:////nonexistent/dir/itsm.db")
    for command_line in (["worker"], ["serve", "--port", "1"]):
        assert itsm(command_line) == 2
        assert named in capsys.readouterr().err


def test_beat_period_and_worker_names() -> None:
    assert health.beat_period(1.0) == health.HEARTBEAT_EVERY_SECONDS == 5
    assert health.beat_period(7.2) == 8  # whole seconds, rounded up
    name = health.worker_name(3)
    assert len(name) <= 255 and name.endswith(":3")
