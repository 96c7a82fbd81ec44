"""A caller known only by address adds and downloads files through the signed link's
session, on that one incident; internal and vendor files stay out of reach."""

from __future__ import annotations

import io

from engine.services.context import ServiceContext
from tests.conftest import Api, Browser
from tests.test_caller_link import ADDRESS, for_caller, link_for, opened, refused_reason

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def _upload(browser: Browser, incident_id: int, name: str, data: bytes) -> object:
    form = {"incident_id": str(incident_id), "file": (io.BytesIO(data), name)}
    return browser.post(
        "/c/incident/attachments", form, csrf_from="/c/incident", content_type="multipart/form-data"
    )


def test_the_caller_attaches_and_downloads_through_the_link(
    ctx: ServiceContext, browser: Browser, api: Api
) -> None:
    scenario = for_caller(api, caller_email=ADDRESS.lower())
    opened(browser, link_for(ctx, scenario.id))
    response = _upload(browser, scenario.id, "screen.png", PNG)
    assert response.status_code == 303
    assert response.headers["Location"] == "/c/incident#attachments"
    listed = api.ok(api.get("desk", f"/incidents/{scenario.id}/attachments"))["items"]
    assert [(a["filename"], a["uploaded_by"], a["content_type"]) for a in listed] == [
        ("screen.png", ADDRESS.lower(), "image/png")
    ]
    page = browser.get("/c/incident").get_data(as_text=True)
    assert "screen.png" in page and f"/c/attachments/{listed[0]['id']}" in page
    download = browser.get(f"/c/attachments/{listed[0]['id']}")
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment")


def test_internal_files_and_other_incidents_stay_out_of_reach(
    ctx: ServiceContext, browser: Browser, api: Api
) -> None:
    scenario = for_caller(api, caller_email=ADDRESS.lower())
    other = for_caller(api, caller_email="someone.else@example.org")
    internal = api.client.post(
        f"/api/v1/incidents/{scenario.id}/attachments",
        data={"file": (io.BytesIO(b"our notes"), "notes.txt"), "internal": "true"},
        headers={"Authorization": f"Bearer {api.tokens['desk']}"},
    ).get_json()
    elsewhere = api.client.post(
        f"/api/v1/incidents/{other.id}/attachments",
        data={"file": (io.BytesIO(b"theirs"), "theirs.txt")},
        headers={"Authorization": f"Bearer {api.tokens['desk']}"},
    ).get_json()
    opened(browser, link_for(ctx, scenario.id))
    assert "notes.txt" not in browser.get("/c/incident").get_data(as_text=True)
    assert browser.get(f"/c/attachments/{internal['id']}").status_code == 404
    assert browser.get(f"/c/attachments/{elsewhere['id']}").status_code == 404
    # A form naming another incident than the link's is refused, nothing stored.
    refused = _upload(browser, other.id, "x.txt", b"x")
    assert refused_reason(refused) == "other_incident"
    assert api.ok(api.get("desk", f"/incidents/{other.id}/attachments"))["total"] == 1
    # Without a link session there is nothing to download.
    assert refused_reason(Browser(browser.client.application).get(
        f"/c/attachments/{elsewhere['id']}"
    )) == "missing"


def test_an_empty_or_oversize_file_is_refused_with_a_message(
    ctx: ServiceContext, browser: Browser, api: Api
) -> None:
    scenario = for_caller(api, caller_email=ADDRESS.lower())
    opened(browser, link_for(ctx, scenario.id))
    empty = _upload(browser, scenario.id, "empty.txt", b"")
    assert empty.status_code == 303
    assert "檔案是空的" in browser.get("/c/incident").get_data(as_text=True)
    big = _upload(browser, scenario.id, "big.bin", b"x" * (ctx.channels.attachment_max_bytes + 1))
    assert big.status_code == 303
    assert "檔案太大" in browser.get("/c/incident").get_data(as_text=True)
    assert api.ok(api.get("desk", f"/incidents/{scenario.id}/attachments"))["total"] == 0
