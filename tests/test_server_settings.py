"""The embedded server's settings: ITSM_SERVER_* parsing, the waitress adjustments they
make, the open-files limit, and the trusted proxy's headers reaching the app."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from waitress.adjustments import Adjustments

from tests.conftest import missing
from tests.servers import ROOT, free_port
from web.server import (
    FD_RESERVE,
    FDS_PER_CONNECTION,
    ServerConfigError,
    ServerSettings,
    adjustments,
    affordable_connections,
    body_limit,
    create_server,
)
from web.settings import Settings


def test_defaults_outlast_a_flood_of_idle_connections():
    settings = ServerSettings.from_env({})
    assert settings == ServerSettings(
        threads=8,
        connection_limit=4000,
        channel_timeout=60,
        request_timeout=60,
        max_body_bytes=Settings.max_upload_bytes + 1024 * 1024,
    )
    kw = adjustments(settings, "127.0.0.1", 8000)
    assert kw["asyncore_use_poll"] is True  # select() stops at descriptor 1,023
    assert kw["connection_limit"] == 4000
    assert kw["channel_timeout"] == 60
    assert kw["cleanup_interval"] == 10
    assert kw["max_request_body_size"] == body_limit(Settings.max_upload_bytes)
    assert "trusted_proxy" not in kw
    Adjustments(**kw)  # waitress accepts every one


def test_every_figure_comes_from_the_environment():
    settings = ServerSettings.from_env(
        {
            "ITSM_SERVER_THREADS": "4",
            "ITSM_SERVER_CONNECTION_LIMIT": "2000",
            "ITSM_SERVER_CHANNEL_TIMEOUT": "8",
            "ITSM_SERVER_REQUEST_TIMEOUT": "20",
            "ITSM_SERVER_TRUSTED_PROXY": "127.0.0.1",
        },
        max_upload_bytes=1000,
    )
    assert (settings.threads, settings.connection_limit) == (4, 2000)
    assert (settings.channel_timeout, settings.request_timeout) == (8, 20)
    assert settings.cleanup_interval == 2
    assert settings.max_body_bytes == 1000 + 1024 * 1024
    assert settings.trusted_proxy_headers == (
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    )
    kw = adjustments(settings, "127.0.0.1", 8000)
    assert kw["trusted_proxy"] == "127.0.0.1"
    Adjustments(**kw)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ITSM_SERVER_THREADS": "many"}, "ITSM_SERVER_THREADS='many': expected a whole number"),
        ({"ITSM_SERVER_CONNECTION_LIMIT": "0"}, "must be at least 1"),
        ({"ITSM_SERVER_CHANNEL_TIMEOUT": "-5"}, "must be at least 1"),
        ({"ITSM_SERVER_TRUSTED_PROXY_HEADERS": "x-forwarded-proto"}, "without"),
        (
            {
                "ITSM_SERVER_TRUSTED_PROXY": "10.0.0.1",
                "ITSM_SERVER_TRUSTED_PROXY_HEADERS": "x-forwarded-proto x-real-ip",
            },
            "unknown x-real-ip",
        ),
    ],
)
def test_unusable_values_are_refused_by_name(env, message):
    with pytest.raises(ServerConfigError, match=message.replace("(", r"\(")):
        ServerSettings.from_env(env)


def test_itsm_serve_refuses_a_bad_setting_before_starting():
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env={"ITSM_SERVER_CHANNEL_TIMEOUT": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ITSM_SERVER_CHANNEL_TIMEOUT='soon'" in result.stderr


def test_the_connection_limit_fits_the_open_files_limit():
    assert affordable_connections(4000, 1_048_576) == 4000
    assert affordable_connections(4000, 4096) == (4096 - FD_RESERVE) // FDS_PER_CONNECTION
    assert affordable_connections(4000, 10) == 1
    kw = adjustments(ServerSettings(), "127.0.0.1", 8000, open_files=1024)
    assert kw["connection_limit"] == (1024 - FD_RESERVE) // FDS_PER_CONNECTION


def test_serve_raises_the_soft_open_files_limit_to_the_hard_one():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        missing("the hard limit leaves nothing to raise")
    code = (
        "import resource; from web.server import raise_open_files_limit; "
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    )
    returned, soft = (int(n) for n in result.stdout.split())
    assert returned == soft > 256
    assert hard == resource.RLIM_INFINITY or soft == hard


def echo_environ(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    seen = {
        key: environ.get(key)
        for key in ("wsgi.url_scheme", "REMOTE_ADDR", "HTTP_HOST", "HTTP_X_FORWARDED_PROTO")
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


@pytest.fixture
def serving() -> Iterator[Any]:
    running: list[Any] = []

    def start(settings: ServerSettings) -> int:
        port = free_port()
        server = create_server(echo_environ, settings, "127.0.0.1", port)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        return port

    yield start
    for server, thread in running:
        server.close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def forwarded_get(port: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        headers={
            "Host": "itsm.example.org",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.7",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_behind_a_trusted_proxy_the_app_sees_https_and_the_client(serving):
    port = serving(ServerSettings.from_env({"ITSM_SERVER_TRUSTED_PROXY": "127.0.0.1"}))
    seen = forwarded_get(port)
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert seen["HTTP_HOST"] == "itsm.example.org"


def test_a_proxy_trusted_for_fewer_headers_passes_only_those(serving):
    port = serving(
        ServerSettings.from_env(
            {
                "ITSM_SERVER_TRUSTED_PROXY": "127.0.0.1",
                "ITSM_SERVER_TRUSTED_PROXY_HEADERS": "x-forwarded-for",
            }
        )
    )
    seen = forwarded_get(port)
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert seen["wsgi.url_scheme"] == "http"


def test_without_a_trusted_proxy_forwarded_headers_are_dropped(serving):
    seen = forwarded_get(serving(ServerSettings.from_env({})))
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_PROTO"] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ITSM_ATTACHMENT_MAX_BYTES", "ten megabytes"),
        ("ITSM_SMTP_URL", "ftp://mail.example.org"),
        ("ITSM_IMAP_URL", "imap://mail.example.org/INBOX"),
    ],
)
def test_an_unusable_channel_setting_is_named_before_starting(tmp_path, name, value):
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ITSM_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            name: value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"itsm: {name}")
    assert "Traceback" not in result.stderr
