"""Test fixtures: a fresh database per test, cloned from a prepared template.

By default the database is SQLite; set ITSM_TEST_DATABASE_URL to a PostgreSQL
URL (a database the tests may use as a template source; they create and drop
their own databases beside it) to run the same suite on PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.persistence.db import Database
from engine.persistence.migrate import migrate
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.people import users
from engine.services.process import definitions
from web.app import create_app
from web.settings import Settings

PG_URL = os.environ.get("ITSM_TEST_DATABASE_URL", "")
DATABASE_KIND = "postgresql" if PG_URL else "sqlite"


def missing(reason: str) -> None:
    """Something a test needs is not on this machine: a skip locally, a failure in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


_real_getaddrinfo = socket.getaddrinfo
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Tests send nothing beyond loopback, DNS queries included: a name that is not
    an address literal or localhost does not resolve (the webhook host rule and the
    fuzzers meet names like `example.com`)."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and str(name).lower() not in LOOPBACK_NAMES:
        try:
            ipaddress.ip_address(str(name).split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names: {name}") from None
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "only_on(kind): a test of one database's own mechanism")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test of the other database's mechanism is not collected (never a skip: with
    CI=true nothing skips)."""
    keep, leave = [], []
    for item in items:
        marker = item.get_closest_marker("only_on")
        (leave if marker is not None and marker.args[0] != DATABASE_KIND else keep).append(item)
    if leave:
        config.hook.pytest_deselected(items=leave)
        items[:] = keep

# username → roles; every test database has these users, password = PASSWORD.
TEST_USERS: dict[str, list[str]] = {
    "reporter": ["reporter"],
    "reporter2": ["reporter"],
    "desk": ["service_desk"],
    "desk2": ["service_desk"],
    "l2": ["level2"],
    "l2b": ["level2"],
    "l3": ["level3"],
    "vendor": ["vendor"],
    "vendor2": ["vendor"],
    "manager": ["incident_manager"],
    "director": ["director"],
    "designer": ["designer"],
    "admin": ["admin"],
}
PASSWORD = "correct horse battery"


class TestClock:
    """An injectable clock that only moves when a test says so."""

    __test__ = False

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Template:
    url: str
    tokens: dict[str, str] = field(default_factory=dict)


def _prepare(url: str) -> dict[str, str]:
    db = Database(url)
    migrate(db.engine)
    ctx = ServiceContext(db=db, token_ttl=timedelta(days=400))
    definitions.deploy_bundled_if_empty(ctx)
    tokens = {}
    for username, roles in TEST_USERS.items():
        users.create_user(ctx, username, PASSWORD, roles)
        tokens[username] = users.issue_token(ctx, username, PASSWORD).token
    db.dispose()
    return tokens


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    if PG_URL:
        name = f"itsm_tpl_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        tokens = _prepare(url)
        yield Template(url, tokens)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        yield Template(url, _prepare(url))


@pytest.fixture
def database_url(template: Template, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        name = f"itsm_t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        tpl_name = make_url(template.url).database
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl_name}"'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        source = Path(make_url(template.url).database or "")
        target = tmp_path / "itsm.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
def ctx(database_url: str, clock: TestClock, tmp_path: Path) -> Iterator[ServiceContext]:
    # Files (attachments, raw mails) go to the test's own folder, never ./instance.
    channels = ChannelSettings(
        attachment_dir=tmp_path / "attachments", webhook_allowed_hosts=("127.0.0.1",)
    )
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


@pytest.fixture
def app(ctx: ServiceContext, database_url: str) -> Any:
    settings = Settings(database_url=database_url, secret_key="test-secret")
    flask_app = create_app(settings, ctx)
    flask_app.config["TESTING"] = True
    return flask_app


class Api:
    """The JSON API as a given user, through Flask's test client."""

    def __init__(self, client: Any, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, user: str | None, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.client.open("/api/v1" + path, method=method, json=json, headers=headers, **kw)

    def get(self, user: str | None, path: str, **kw: Any) -> Any:
        return self.call(user, "GET", path, **kw)

    def post(self, user: str | None, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call(user, "POST", path, json, **kw)

    def patch(self, user: str | None, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call(user, "PATCH", path, json, **kw)

    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, response.get_json())
        return response.get_json()


@pytest.fixture
def api(app: Any, template: Template) -> Api:
    return Api(app.test_client(), template.tokens)


class Browser:
    """The HTML pages as a signed-in user, through Flask's test client (CSRF on)."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()

    def csrf_token(self, path: str = "/login") -> str:
        import re

        page = self.client.get(path)
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
        assert match, f"no CSRF token on {path}"
        return match.group(1).decode()

    def login(self, username: str, password: str = PASSWORD) -> Any:
        token = self.csrf_token("/login")
        response = self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.data[:500]
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf_from: str | None = None,
             with_csrf: bool = True, **kw: Any) -> Any:
        data = dict(data or {})
        if with_csrf:
            data["csrf_token"] = self.csrf_token(csrf_from or "/login")
        return self.client.post(path, data=data, **kw)


@pytest.fixture
def browser(app: Any) -> Browser:
    """A fresh browser; call `.login(username)` first for pages behind sign-in."""
    return Browser(app)
