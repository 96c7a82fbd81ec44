"""Attachments on the pages: upload from the incident page, the task page and the
reporter's own view (post-redirect-get, CSRF), messages naming a refused file, and
downloads served as attachments."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.db import Database
from engine.persistence.models import Attachment
from engine.services.context import ChannelSettings, ServiceContext
from tests.conftest import Api, Browser, TestClock
from tests.scenario import Scenario
from web.app import create_app
from web.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def signed_in(app: Any, username: str, locale: str = "en") -> Browser:
    browser = Browser(app)
    browser.login(username)
    assert browser.post("/language", {"locale": locale}).status_code == 302
    return browser


def upload(browser: Browser, page: str, action: str, name: str, data: bytes,
           **fields: Any) -> Any:
    form = {"file": (io.BytesIO(data), name), **fields}
    return browser.post(action, form, csrf_from=page, content_type="multipart/form-data")


def rows(ctx: ServiceContext) -> list[Any]:
    with ctx.db.read() as session:
        found = session.execute(
            select(
                Attachment.internal, Attachment.uploaded_by, Attachment.content_type
            ).order_by(Attachment.id)
        )
        return [tuple(row) for row in found]


def form_action(html: str) -> str:
    match = re.search(r'<form method="post" enctype="multipart/form-data" class="attachment-form"'
                      r'\s+action="([^"]+)"', html)
    assert match, "no upload form on the page"
    return match.group(1).replace("&amp;", "&")


def download_links(html: str) -> list[str]:
    return re.findall(r'href="(/attachments/\d+)"', html)


@pytest.fixture
def incident(api: Api) -> int:
    return int(Scenario(api).id)


def test_staff_upload_from_the_incident_page_and_mark_it_internal(
    app: Any, ctx: ServiceContext, incident: int
) -> None:
    desk = signed_in(app, "desk")
    page = f"/incidents/{incident}"
    html = desk.get(page).get_data(as_text=True)
    assert 'name="internal"' in html and "No attachments yet." in html
    action = form_action(html)
    assert action == f"/incidents/{incident}/attachments"
    answer = upload(desk, page, action, "server.log", b"ERROR disk full", internal="true")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/incidents/{incident}#attachments")
    html = desk.get(page).get_data(as_text=True)
    assert "Attached server.log." in html
    assert "server.log" in html and "Internal" in html
    assert rows(ctx) == [(True, "desk", "text/plain")]
    [link] = download_links(html)
    got = desk.get(link)
    assert got.status_code == 200 and got.data == b"ERROR disk full"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    # The reporter's page does not show it, and its link is unknown to them.
    reporter = signed_in(app, "reporter")
    mine = reporter.get(page).get_data(as_text=True)
    assert "server.log" not in mine and download_links(mine) == []
    assert reporter.get(link).status_code == 404


def test_the_reporter_uploads_a_screenshot_from_their_own_incident(
    app: Any, ctx: ServiceContext, incident: int
) -> None:
    reporter = signed_in(app, "reporter")
    page = f"/incidents/{incident}"
    html = reporter.get(page).get_data(as_text=True)
    assert 'name="internal"' not in html  # only staff mark files internal
    answer = upload(reporter, page, form_action(html), "螢幕擷取.png", PNG)
    assert answer.status_code == 302
    html = reporter.get(page).get_data(as_text=True)
    assert "螢幕擷取.png" in html
    assert rows(ctx) == [(False, "reporter", "image/png")]
    # The desk sees it on the incident page too.
    desk = signed_in(app, "desk")
    assert "螢幕擷取.png" in desk.get(page).get_data(as_text=True)


def test_upload_from_the_task_page_comes_back_to_the_task(
    app: Any, api: Api, ctx: ServiceContext, incident: int
) -> None:
    [task] = [t["id"] for t in api.ok(api.get("desk", f"/incidents/{incident}"))["tasks"]]
    desk = signed_in(app, "desk")
    page = f"/tasks/{task}"
    html = desk.get(page).get_data(as_text=True)
    action = form_action(html)
    assert action.startswith(f"/incidents/{incident}/attachments?next=")
    answer = upload(desk, page, action, "photo.jpg", b"\xff\xd8\xff\xe0 jpeg")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(page)
    html = desk.get(page).get_data(as_text=True)
    assert "Attached photo.jpg." in html and "photo.jpg" in html
    assert rows(ctx) == [(False, "desk", "image/jpeg")]


def test_a_next_elsewhere_is_not_followed(app: Any, incident: int) -> None:
    desk = signed_in(app, "desk")
    page = f"/incidents/{incident}"
    answer = upload(desk, page, f"/incidents/{incident}/attachments?next=//evil.example/x",
                    "a.txt", b"a")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/incidents/{incident}#attachments")


def test_without_the_csrf_token_nothing_is_stored(
    app: Any, ctx: ServiceContext, incident: int
) -> None:
    desk = signed_in(app, "desk")
    answer = desk.post(
        f"/incidents/{incident}/attachments",
        {"file": (io.BytesIO(b"x"), "x.txt")},
        with_csrf=False,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert rows(ctx) == [] and list(ctx.blobs.digests()) == []


def test_an_empty_file_or_none_chosen_is_named_in_a_message(
    app: Any, ctx: ServiceContext, incident: int
) -> None:
    reporter = signed_in(app, "reporter")
    page = f"/incidents/{incident}"
    action = f"/incidents/{incident}/attachments"
    assert upload(reporter, page, action, "empty.txt", b"").status_code == 302
    assert "The file is empty." in reporter.get(page).get_data(as_text=True)
    none_chosen = reporter.post(action, {"file": (io.BytesIO(b""), "")}, csrf_from=page,
                                content_type="multipart/form-data")
    assert none_chosen.status_code == 302
    assert "Choose a file to attach." in reporter.get(page).get_data(as_text=True)
    refused = upload(reporter, page, action, "a.txt", b"a", internal="true")
    assert refused.status_code == 302
    assert "You may not attach a file marked like this." in reporter.get(page).get_data(
        as_text=True
    )
    assert rows(ctx) == []


def test_the_default_language_names_the_problem_too(app: Any, incident: int) -> None:
    reporter = signed_in(app, "reporter", locale="zh_Hant_TW")
    page = f"/incidents/{incident}"
    upload(reporter, page, f"/incidents/{incident}/attachments", "empty.txt", b"")
    html = reporter.get(page).get_data(as_text=True)
    assert "檔案是空的。" in html and "附件" in html


def test_someone_elses_incident_is_404(app: Any, ctx: ServiceContext, incident: int) -> None:
    other = signed_in(app, "reporter2")
    page = "/incidents"
    answer = upload(other, page, f"/incidents/{incident}/attachments", "a.txt", b"a")
    assert answer.status_code == 404 and rows(ctx) == []


@pytest.fixture
def small_app(database_url: str, clock: TestClock, tmp_path: Path) -> Any:
    channels = ChannelSettings(attachment_dir=tmp_path / "small", attachment_max_bytes=1000)
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    app = create_app(Settings(database_url=database_url, secret_key="test"), context)
    app.config["TESTING"] = True
    yield app, context
    context.db.dispose()


def test_over_the_limit_the_page_says_so_and_nothing_is_stored(
    small_app: Any, incident: int
) -> None:
    app, ctx = small_app
    reporter = signed_in(app, "reporter")
    page = f"/incidents/{incident}"
    action = f"/incidents/{incident}/attachments"
    html = reporter.get(page).get_data(as_text=True)
    assert "At most 1000 bytes." in html
    # Just over the file limit (the body itself is within the route's limit) ...
    answer = upload(reporter, page, action, "big.bin", b"x" * 1001)
    assert answer.status_code == 302
    assert "The file is too large: at most 1000 bytes." in reporter.get(page).get_data(
        as_text=True
    )
    # ... and a body announced far larger, refused before it is read.
    answer = upload(reporter, page, action, "huge.bin", b"x" * 300_000)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#attachments")
    assert "The file is too large" in reporter.get(page).get_data(as_text=True)
    assert rows(ctx) == [] and list(ctx.blobs.digests()) == []


def test_the_history_names_the_file(app: Any, incident: int) -> None:
    desk = signed_in(app, "desk")
    page = f"/incidents/{incident}"
    upload(desk, page, f"/incidents/{incident}/attachments", "trace.log", b"t", internal="true")
    html = desk.get(page).get_data(as_text=True)
    timeline = html[html.index('id="timeline-h"'):]
    assert "Attachment uploaded" in timeline and "trace.log (Internal)" in timeline
