"""The incident's mails × every role: staff only, decided on the server (API and page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.domain.roles import STAFF_ROLES
from engine.persistence.db import Database
from engine.services.context import ChannelSettings, ServiceContext
from tests.conftest import TEST_USERS, Api, Browser, TestClock
from tests.mail_servers import address_of, give_addresses
from tests.scenario import Scenario


@pytest.fixture
def ctx(database_url: str, clock: TestClock, tmp_path: Path) -> Iterator[ServiceContext]:
    # Mail on (nothing listens: the mails stay queued, which is all the list needs).
    channels = ChannelSettings(
        smtp_url="smtp://127.0.0.1:9", attachment_dir=tmp_path / "attachments"
    )
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    give_addresses(context)
    yield context
    context.db.dispose()


def is_staff(user: str) -> bool:
    return bool(set(TEST_USERS[user]) & STAFF_ROLES)


def test_the_api_route_for_every_role(api: Api) -> None:
    s = Scenario(api)
    for user in [*TEST_USERS, None]:
        response = api.get(user, f"/incidents/{s.id}/notifications")
        expected = 401 if user is None else 200 if is_staff(user) else 403
        assert response.status_code == expected, (user, response.status_code)
        if expected == 200:
            assert len(response.get_json()) == 3


def test_the_page_section_for_every_role(api: Api, app) -> None:
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_vendor")  # the vendors may open the incident now
    for user in TEST_USERS:
        browser = Browser(app)
        browser.login(user)
        response = browser.get(f"/incidents/{s.id}")
        page = response.get_data(as_text=True)
        shown = 'id="notifications"' in page
        assert shown == is_staff(user), (user, response.status_code)
        if not is_staff(user):
            assert address_of("desk2") not in page
