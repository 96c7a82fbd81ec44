"""Attachments over the API (contract Part 2, "Attachments"): the answer's shape, the
type sniffed from the bytes, the size limit (413, nothing stored), bad files (422),
names without paths, and who sees what (internal, vendor) - 404 for the rest."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.domain.file_types import safe_filename, sniff_content_type
from engine.persistence.db import Database
from engine.persistence.models import AdminEvent, Attachment, UserTaskRow
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.people import users
from tests.conftest import PASSWORD, Api, Template, TestClock
from tests.scenario import Scenario
from tests.test_openapi import CheckedApi
from web.app import create_app
from web.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SMALL_LIMIT = 1000


def upload(api: Api, user: str, incident_id: int, name: str | None, data: bytes,
           mimetype: str = "application/octet-stream", **fields: str) -> Any:
    form: dict[str, Any] = dict(fields)
    if name is not None:
        form["file"] = (io.BytesIO(data), name, mimetype)
    return api.client.post(
        f"/api/v1/incidents/{incident_id}/attachments",
        data=form,
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {api.tokens[user]}"},
    )


def stored_files(ctx: ServiceContext) -> list[str]:
    return list(ctx.blobs.digests())


def attachment_rows(ctx: ServiceContext) -> list[Attachment]:
    with ctx.db.read() as session:
        return list(session.scalars(select(Attachment)))


@pytest.fixture
def incident(api: Api) -> int:
    return int(Scenario(api).id)


@pytest.fixture
def small(database_url: str, clock: TestClock, tmp_path: Path, template: Template) -> Any:
    """An app whose attachment limit is SMALL_LIMIT bytes, its files under tmp_path/att."""
    channels = ChannelSettings(attachment_dir=tmp_path / "att", attachment_max_bytes=SMALL_LIMIT)
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    app = create_app(Settings(database_url=database_url, secret_key="test"), context)
    app.config["TESTING"] = True
    yield context, Api(app.test_client(), template.tokens)
    context.db.dispose()


# -- the answer -----------------------------------------------------------------------


def test_an_upload_answers_201_with_the_contract_shape_and_writes_its_events(
    api: Api, ctx: ServiceContext, incident: int
) -> None:
    created = api.ok(upload(api, "reporter", incident, "notes.txt", "網路斷了".encode()), 201)
    data = "網路斷了".encode()
    assert set(created) == {
        "id", "filename", "size", "content_type", "sha256", "internal", "vendor",
        "uploaded_by", "uploaded_at",
    }  # fmt: skip
    assert created["filename"] == "notes.txt"
    assert created["size"] == len(data)
    assert created["sha256"] == hashlib.sha256(data).hexdigest()
    assert created["content_type"] == "text/plain"
    assert (created["internal"], created["vendor"]) == (False, False)
    assert created["uploaded_by"] == "reporter"
    assert created["uploaded_at"].endswith("+00:00")
    # The bytes are in the configured folder, under their digest.
    assert ctx.blobs.read(created["sha256"]) == data
    assert str(ctx.blobs.path_of(created["sha256"])).startswith(str(ctx.channels.attachment_dir))

    detail = api.ok(api.get("desk", f"/incidents/{incident}"))
    assert detail["attachments"] == [created]
    added = [e for e in detail["events"] if e["type"] == "attachment_added"]
    assert len(added) == 1
    assert added[0]["actor"] == "reporter"
    assert (added[0]["attachment_id"], added[0]["filename"], added[0]["internal"]) == (
        created["id"], "notes.txt", False,
    )  # fmt: skip
    with ctx.db.read() as session:
        audit = session.scalars(
            select(AdminEvent).where(AdminEvent.type == "attachment_uploaded")
        ).all()
        expected = {"incident_id": incident, "attachment_id": created["id"],
                    "sha256": created["sha256"]}  # fmt: skip
        assert [(a.actor, a.data) for a in audit] == [("reporter", expected)]


def test_the_list_is_paged_items_and_total(api: Api, incident: int) -> None:
    ids = [
        api.ok(upload(api, "desk", incident, f"f{n}.txt", f"file {n}".encode()), 201)["id"]
        for n in range(3)
    ]
    listed = api.ok(api.get("desk", f"/incidents/{incident}/attachments"))
    assert [a["id"] for a in listed["items"]] == ids and listed["total"] == 3
    page = api.ok(api.get("desk", f"/incidents/{incident}/attachments?limit=1&offset=1"))
    assert [a["id"] for a in page["items"]] == ids[1:2] and page["total"] == 3
    refused = api.get("desk", f"/incidents/{incident}/attachments?limit=0")
    assert refused.status_code == 422 and "limit" in refused.get_json()["details"]


# -- what it is, and how it is served ----------------------------------------------------


def test_the_type_is_sniffed_from_the_bytes_not_the_name_or_the_client(
    api: Api, incident: int
) -> None:
    png = api.ok(upload(api, "desk", incident, "screenshot.txt", PNG, mimetype="text/plain"), 201)
    assert png["content_type"] == "image/png"
    response = api.get("reporter", f"/attachments/{png['id']}")
    assert response.status_code == 200
    assert response.data == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert 'filename="screenshot.txt"' in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")


def test_an_html_file_is_served_as_html_only_as_an_attachment_with_nosniff(
    api: Api, incident: int
) -> None:
    page = api.ok(upload(api, "reporter", incident, "photo.png", HTML, mimetype="image/png"), 201)
    assert page["content_type"] == "text/html"
    response = api.get("desk", f"/attachments/{page['id']}")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a" + b"\x00" * 10, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"PK\x03\x04" + b"\x00" * 26 + b"[Content_Types].xml....word/document.xml",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"PK\x03\x04" + b"\x00" * 26 + b"readme.txt", "application/zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "application/x-ole-storage"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
         "image/svg+xml"),
        (b"From: a@example.org\r\nSubject: hi\r\n\r\nbody", "message/rfc822"),
        ("印表機卡紙".encode(), "text/plain"),
        ("印表機卡紙".encode("big5"), "application/octet-stream"),
        (b"\x00\x01\x02\x03", "application/octet-stream"),
    ],
)
def test_common_types_are_recognised(data: bytes, kind: str) -> None:
    assert sniff_content_type(data) == kind


# -- bad files ----------------------------------------------------------------------------


def test_over_the_limit_is_413_and_nothing_is_stored(small: Any, incident: int) -> None:
    ctx, api = small
    refused = upload(api, "reporter", incident, "big.bin", b"x" * (SMALL_LIMIT + 1))
    assert refused.status_code == 413
    body = refused.get_json()
    assert set(body) == {"error", "details"} and "file" in body["details"]
    assert stored_files(ctx) == [] and attachment_rows(ctx) == []
    # A body announced far beyond the limit is refused before it is read.
    huge = upload(api, "reporter", incident, "huge.bin", b"x" * (SMALL_LIMIT + 200_000))
    assert huge.status_code == 413 and "file" in huge.get_json()["details"]
    assert stored_files(ctx) == [] and attachment_rows(ctx) == []
    # Exactly the limit is fine.
    assert upload(api, "reporter", incident, "ok.bin", b"x" * SMALL_LIMIT).status_code == 201
    assert len(stored_files(ctx)) == 1


def test_the_default_limit_is_10_mib_above_the_apps_own_body_limit(
    api: Api, ctx: ServiceContext, incident: int
) -> None:
    """The app refuses other bodies above ~6 MiB; an upload route takes 10 MiB."""
    nine_mib = b"\x89PNG\r\n\x1a\n" + b"\x00" * (9 * 1024 * 1024)
    created = api.ok(upload(api, "desk", incident, "big.png", nine_mib), 201)
    assert created["size"] == len(nine_mib)
    over = upload(api, "desk", incident, "big.png", b"\x00" * (10 * 1024 * 1024 + 1))
    assert over.status_code == 413
    assert len(attachment_rows(ctx)) == 1


@pytest.mark.parametrize(
    ("name", "data", "fields"),
    [
        ("empty.txt", b"", {}),  # empty
        ("", b"something", {}),  # nameless
        ("...", b"something", {}),  # nothing left of the name
        (None, b"", {}),  # no file at all
    ],
)
def test_empty_nameless_or_missing_files_are_422_naming_file(
    api: Api, ctx: ServiceContext, incident: int, name: str | None, data: bytes,
    fields: dict[str, str],
) -> None:
    refused = upload(api, "reporter", incident, name, data, **fields)
    assert refused.status_code == 422, refused.get_json()
    assert list(refused.get_json()["details"]) == ["file"]
    assert attachment_rows(ctx) == [] and stored_files(ctx) == []


def test_a_flag_that_is_not_true_or_false_is_422_naming_it(api: Api, incident: int) -> None:
    refused = upload(api, "desk", incident, "a.txt", b"a", internal="maybe")
    assert refused.status_code == 422 and list(refused.get_json()["details"]) == ["internal"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:/Users/amy/Desktop/螢幕擷取.png", "螢幕擷取.png"),
        ("/tmp/a b.txt", "a b.txt"),
    ],
)
def test_a_path_in_the_name_is_ignored(api: Api, incident: int, given: str, kept: str) -> None:
    created = api.ok(upload(api, "reporter", incident, given, b"data"), 201)
    assert created["filename"] == kept


def test_names_lose_control_characters_and_are_capped() -> None:
    assert safe_filename("bad\x07\r\nname\u202e.txt") == "badname.txt"
    long = "字" * 300 + ".pdf"
    capped = safe_filename(long)
    assert len(capped) == 200 and capped.endswith(".pdf")
    assert safe_filename("  .hidden ") == "hidden"
    assert safe_filename(None) == ""
    # What an old Windows browser sends (werkzeug's parser already drops the escapes).
    assert safe_filename("C:\\Users\\amy\\shot.png") == "shot.png"


# -- who sees what -----------------------------------------------------------------------


def test_a_reporter_never_sees_an_internal_attachment(api: Api, incident: int) -> None:
    public = api.ok(upload(api, "desk", incident, "public.txt", b"for you"), 201)
    internal = api.ok(upload(api, "desk", incident, "log.txt", b"secret", internal="true"), 201)
    assert internal["internal"] is True
    listed = api.ok(api.get("reporter", f"/incidents/{incident}/attachments"))
    assert [a["id"] for a in listed["items"]] == [public["id"]] and listed["total"] == 1
    assert api.get("reporter", f"/attachments/{internal['id']}").status_code == 404
    assert api.get("reporter", f"/attachments/{public['id']}").status_code == 200
    shown = api.ok(api.get("reporter", f"/incidents/{incident}"))
    assert [a["id"] for a in shown["attachments"]] == [public["id"]]
    # The caller sees the desk's upload by its lane role, not the agent's name.
    assert shown["attachments"][0]["uploaded_by"] == "service_desk"
    # The history tells the caller of the public file only (no internal event).
    assert [e["type"] for e in shown["events"]].count("attachment_added") == 1
    # Staff see both.
    assert api.ok(api.get("l2", f"/incidents/{incident}/attachments"))["total"] == 2


def test_only_staff_attach_internal_files(api: Api, ctx: ServiceContext, incident: int) -> None:
    refused = upload(api, "reporter", incident, "x.txt", b"x", internal="true")
    assert refused.status_code == 403
    assert attachment_rows(ctx) == [] and stored_files(ctx) == []
    assert upload(api, "reporter", incident, "x.txt", b"x", vendor="true").status_code == 403


def test_others_see_nothing_of_an_incident_not_theirs(api: Api, incident: int) -> None:
    created = api.ok(upload(api, "reporter", incident, "mine.txt", b"mine"), 201)
    assert upload(api, "reporter2", incident, "x.txt", b"x").status_code == 404
    assert api.get("reporter2", f"/incidents/{incident}/attachments").status_code == 404
    assert api.get("reporter2", f"/attachments/{created['id']}").status_code == 404
    assert api.get("vendor", f"/attachments/{created['id']}").status_code == 404
    assert api.get("desk", "/attachments/999999").status_code == 404
    assert api.get(None, f"/attachments/{created['id']}").status_code == 401


def _vendor(ctx: ServiceContext, api: Api, username: str, org: str) -> None:
    users.create_user(ctx, username, PASSWORD, ["vendor"], vendor_org=org, create_org_as="test")
    api.tokens[username] = users.issue_token(ctx, username, PASSWORD).token


@pytest.fixture
def vendors(ctx: ServiceContext, api: Api) -> Api:
    with_vendors = Api(api.client, dict(api.tokens))
    _vendor(ctx, with_vendors, "acme", "ACME")
    _vendor(ctx, with_vendors, "globex", "Globex")
    return with_vendors


def _at_vendor(api: Api, org: str) -> Scenario:
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_vendor", vendor_org=org)
    return s


def test_vendor_attachments_stay_with_staff_and_that_organisation(
    vendors: Api, ctx: ServiceContext
) -> None:
    api = vendors
    s = _at_vendor(api, "ACME")
    # Globex once had a vendor task here too: it sees the incident, not ACME's files.
    with ctx.db.write() as session:
        session.add(UserTaskRow(
            id=str(uuid.uuid4()), incident_id=s.id, name="vendor_investigation", label="v",
            lane="vendor", state="cancelled", created_at=ctx.now() - timedelta(hours=1),
            vendor_org="Globex",
        ))  # fmt: skip
    acme = api.ok(upload(api, "acme", s.id, "trace.log", b"acme trace"), 201)
    assert acme["vendor"] is True  # without asking: a vendor's file is a vendor file
    for_vendors = api.ok(upload(api, "l2", s.id, "config.txt", b"cfg", vendor="true"), 201)
    public = api.ok(upload(api, "reporter", s.id, "shot.txt", b"shot"), 201)
    internal = api.ok(upload(api, "l2", s.id, "note.txt", b"n", internal="true"), 201)
    assert upload(api, "acme", s.id, "x.txt", b"x", internal="true").status_code == 403

    def seen(user: str) -> list[int]:
        return [a["id"] for a in api.ok(api.get(user, f"/incidents/{s.id}/attachments"))["items"]]

    assert seen("desk") == [acme["id"], for_vendors["id"], public["id"], internal["id"]]
    assert seen("acme") == [acme["id"], for_vendors["id"], public["id"]]
    assert seen("globex") == [for_vendors["id"], public["id"]]
    assert seen("reporter") == [public["id"]]
    assert api.get("reporter", f"/attachments/{acme['id']}").status_code == 404
    assert api.get("reporter", f"/attachments/{for_vendors['id']}").status_code == 404
    assert api.get("globex", f"/attachments/{acme['id']}").status_code == 404
    assert api.get("acme", f"/attachments/{acme['id']}").status_code == 200
    assert api.get("acme", f"/attachments/{internal['id']}").status_code == 404
    shown = api.ok(api.get("globex", f"/incidents/{s.id}"))
    assert [a["id"] for a in shown["attachments"]] == [for_vendors["id"], public["id"]]
    assert [a["id"] for a in api.ok(api.get("reporter", f"/incidents/{s.id}"))["attachments"]] == [
        public["id"]
    ]


def test_the_answers_match_the_openapi_document(api: Api, app: Any, incident: int) -> None:
    checked = CheckedApi(api, app)
    path = f"/incidents/{incident}/attachments"
    form = {"file": (io.BytesIO(PNG), "shot.png")}
    created = checked.ok(checked.post("reporter", path, data=form), 201)
    checked.ok(checked.get("reporter", path))
    checked.ok(checked.get("reporter", f"/incidents/{incident}"))
    empty = {"file": (io.BytesIO(b""), "e.txt")}
    assert checked.post("reporter", path, data=empty).status_code == 422
    internal = {"file": (io.BytesIO(b"x"), "x"), "internal": "true"}
    assert checked.post("reporter", path, data=internal).status_code == 403
    assert checked.get("reporter2", path).status_code == 404
    download = checked.document["paths"]["/attachments/{attachment_id}"]["get"]
    assert "*/*" in download["responses"]["200"]["content"]
    assert api.get("reporter", f"/attachments/{created['id']}").status_code == 200
