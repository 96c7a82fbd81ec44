"""A real browser (Playwright driving Debian's Chromium) against `itsm serve`: the
reporter attaches a screenshot to their incident in the portal, the desk finds it on
the incident page and downloads the same bytes, and attaches a log from the task page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.conftest import Api
from tests.servers import Server
from tests.test_browser_e2e import Desk, chromium, report  # noqa: F401  (fixtures)


def test_the_reporter_attaches_a_screenshot_and_the_desk_downloads_it(
    chromium: Browser, api: Api, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    server = Server(database_url, env={"ITSM_ATTACHMENT_DIR": str(tmp_path / "files")})
    try:
        desk = Desk(chromium, server, api)
        incident = report(desk, "Printer jams on floor 3")
        reporter = desk.as_("reporter")
        # A real screenshot: the page itself, as PNG bytes.
        shot = tmp_path / "螢幕擷取.png"
        shot.write_bytes(reporter.screenshot())
        form = reporter.locator("form.attachment-form")
        form.locator("input[type=file]").set_input_files(str(shot))
        form.locator("button[type=submit]").click()
        expect(reporter).to_have_url(f"{desk.base}/incidents/{incident}#attachments")
        expect(reporter.locator(".flashes .flash").first).to_contain_text(
            "螢幕擷取.png"
        )
        expect(reporter.locator("#attachments a", has_text="螢幕擷取.png")).to_be_visible()

        page = desk.as_("desk")
        page.goto(f"{desk.base}/incidents/{incident}")
        link = page.locator("#attachments a", has_text="螢幕擷取.png")
        expect(link).to_be_visible()
        with page.expect_download() as downloaded:
            link.click()
        saved: Any = downloaded.value.path()
        assert Path(saved).read_bytes() == shot.read_bytes()
        assert downloaded.value.suggested_filename == "螢幕擷取.png"

        # From the task page, back to the task page.
        task = desk.task_id(incident, "record_incident")
        page.goto(f"{desk.base}/tasks/{task}")
        log = tmp_path / "printer.log"
        log.write_text("paper jam at tray 2\n")
        form = page.locator("form.attachment-form")
        form.locator("input[type=file]").set_input_files(str(log))
        form.locator("[name=internal]").check()
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(f"{desk.base}/tasks/{task}")
        expect(page.locator("#attachments a", has_text="printer.log")).to_be_visible()
        # The reporter never sees the internal log.
        reporter.goto(f"{desk.base}/incidents/{incident}")
        expect(reporter.locator("#attachments a", has_text="螢幕擷取.png")).to_be_visible()
        expect(reporter.locator("#attachments a", has_text="printer.log")).to_have_count(0)
    finally:
        server.stop()
