"""The whole way a caller known only by address goes, in Chromium against a real
`itsm serve` whose mail loop sends to a real SMTP server: the desk takes the call,
the caller gets the mail, opens its link, uploads a screenshot, confirms the
recovery from the resolution mail and answers the survey."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.mail_servers import Received, SmtpServer
from tests.scenario import Scenario
from tests.servers import Server, free_port
from tests.test_browser_caller_link import chromium  # noqa: F401  (the fixture)

CALLER = "guest@example.org"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class LiveApi:
    """The Api of tests.conftest over HTTP, so that the serving process (the one with
    ITSM_SMTP_URL) does every write and queues its mails."""

    def __init__(self, server: Server, tokens: dict[str, str]) -> None:
        self.server, self.tokens = server, tokens

    def call(self, user: str, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.tokens[user]}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return _Answer(response.status, json.loads(response.read() or b"null"))

    def get(self, user: str, path: str) -> Any:
        return self.call(user, "GET", path)

    def post(self, user: str, path: str, body: Any = None) -> Any:
        return self.call(user, "POST", path, body)

    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.body
        return response.body


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self.body = status, body


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(database_url: str, smtp: SmtpServer, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        "ITSM_SMTP_URL": smtp.url(),
        "ITSM_BASE_URL": f"http://127.0.0.1:{port}",
        "ITSM_MAIL_FROM": "desk@itsm.test",
        "ITSM_ATTACHMENT_DIR": str(tmp_path / "attachments"),
    }
    live = Server(database_url, port=port, env=env)
    yield live
    live.stop()


def _mail(smtp: SmtpServer, subject_part: str) -> Received:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for mail in smtp.received:
            if mail.to == CALLER and (subject_part in mail.subject or subject_part in mail.text()):
                return mail
        time.sleep(0.2)
    raise AssertionError(f"no mail to {CALLER} with {subject_part!r}: {smtp.received}")


def _link(mail: Received, server: Server, after: str = "") -> str:
    links = re.findall(re.escape(server.root) + r"/c/[^\s<>\"]+", mail.text())
    chosen = [link for link in links if after in link] if after else links
    assert chosen, mail.text()
    return chosen[0]


def test_the_caller_follows_the_mails_uploads_and_answers(
    api: Any, server: Server, smtp: SmtpServer, chromium: Browser  # noqa: F811
) -> None:
    live = LiveApi(server, api.tokens)
    body = {"title": "Projector dead", "channel": "phone", "caller_email": CALLER}
    created = live.ok(live.post("desk", "/incidents", body), 201)
    scenario = Scenario.__new__(Scenario)
    scenario.api, scenario.id, scenario.incident = live, created["id"], created
    acknowledgement = _mail(smtp, created["number"])
    assert acknowledgement.subject.startswith(f"[{created['number']}]")

    page = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(_link(acknowledgement, server))
    expect(page).to_have_url(f"{server.root}/c/incident")
    page.locator("input[name=file]").set_input_files(
        {"name": "screen.png", "mimeType": "image/png", "buffer": PNG}
    )
    page.locator("form.attachment-form button[type=submit]").click()
    expect(page.locator("#attachments")).to_contain_text("screen.png")
    files = live.ok(live.get("desk", f"/incidents/{scenario.id}/attachments"))["items"]
    assert [(f["filename"], f["uploaded_by"], f["content_type"]) for f in files] == [
        ("screen.png", CALLER, "image/png")
    ]

    scenario.record()
    scenario.desk_resolves()
    resolution = _mail(smtp, "Restarted the service")
    page.goto(_link(resolution, server, "confirmation"))
    expect(page).to_have_url(f"{server.root}/c/incident#confirmation")
    form = page.locator("form#confirmation")
    form.locator("input[name=recovered][value=true]").check()
    form.locator("button[type=submit]").click()
    survey = page.locator("form#survey")
    survey.locator("input[name=satisfaction][value='5']").check()
    survey.locator("button[type=submit]").click()
    expect(page.locator("form#survey")).to_have_count(0)
    assert scenario.refresh()["status"] == "closed"
    answered = [e["actor"] for e in scenario.incident["events"] if e["type"] == "task_completed"]
    assert answered[-2:] == [CALLER, CALLER]
