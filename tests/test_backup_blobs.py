"""`itsm backup` / `itsm restore` carry the blob store: every attachment and raw inbound
mail the rows name goes into the backup by digest and comes back into the restored
installation's ITSM_ATTACHMENT_DIR, where the restored app serves it again. Run on
SQLite, and on PostgreSQL with ITSM_TEST_DATABASE_URL."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from engine.domain.paging import Page
from engine.persistence.blobs import BlobStore
from engine.persistence.db import Database
from engine.persistence.models import InboundMail
from engine.services.context import ChannelSettings, ServiceContext
from engine.services.incidents import attachments
from engine.services.people import users
from tests.conftest import Api
from tests.scenario import Scenario
from tests.test_backup import empty_database, itsm

SCREENSHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
RAW_MAIL = (
    "From: amy@example.org\r\nTo: desk@example.org\r\nSubject: 印表機卡紙\r\n"
    "Message-ID: <m1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "第三台印表機又卡紙了。\r\n"
).encode()


def _upload(api: Api, incident: int, name: str, data: bytes) -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/incidents/{incident}/attachments",
        data={"file": (io.BytesIO(data), name)},
        headers={"Authorization": f"Bearer {api.tokens['reporter']}"},
    )
    return api.ok(response, 201)  # type: ignore[no-any-return]


def _keep_raw_mail(ctx: ServiceContext, incident: int) -> str:
    """What the inbound mail use case keeps: the raw message in the store, a row naming it."""
    digest = ctx.blobs.put(RAW_MAIL)
    with ctx.db.write() as session:
        session.add(InboundMail(
            message_id="<m1@example.org>", from_address="amy@example.org", subject="印表機卡紙",
            received_at=ctx.now(), size=len(RAW_MAIL), sha256=digest, source="api",
            action="noted", incident_id=incident,
        ))  # fmt: skip
    return digest


def _manifest(backup_file: Path) -> tuple[dict[str, Any], list[str]]:
    with zipfile.ZipFile(backup_file) as archive:
        return json.loads(archive.read("manifest.json")), archive.namelist()


def test_attachments_and_raw_mails_round_trip(
    api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    store_dir = ctx.channels.attachment_dir
    incident = Scenario(api).id
    shot = _upload(api, incident, "螢幕截圖.png", SCREENSHOT)
    mail = _keep_raw_mail(ctx, incident)
    # Neither an orphan (a file whose transaction failed) nor a write in progress is carried.
    orphan = ctx.blobs.put(b"nobody names me")
    (store_dir / "ab").mkdir(exist_ok=True)
    (store_dir / "ab" / ".incoming-x1y2").write_bytes(b"half a file")
    # Another file an operator keeps in the folder still travels as before.
    (store_dir / "README.txt").write_text("attachments live here\n")

    backup_file = tmp_path / "backup.zip"
    made = itsm("backup", str(backup_file), database_url=database_url,
                ITSM_ATTACHMENT_DIR=str(store_dir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "2 stored files" in made.stdout and made.stderr == ""
    manifest, names = _manifest(backup_file)
    assert manifest["format_version"] == 2
    assert manifest["blobs"] == {
        "files": 2, "bytes": len(SCREENSHOT) + len(RAW_MAIL), "missing": [],
    }  # fmt: skip
    assert sorted(n for n in names if n.startswith("blobs/")) == sorted(
        [f"blobs/{shot['sha256']}", f"blobs/{mail}"]
    )
    assert f"blobs/{orphan}" not in names
    # The store's own files are not carried twice, nor half-written ones at all.
    assert [n for n in names if n.startswith("attachments/")] == ["attachments/README.txt"]

    restored_dir = tmp_path / "restored-files"
    with empty_database(tmp_path, "restored") as target_url:
        done = itsm("restore", str(backup_file), database_url=target_url,
                    ITSM_ATTACHMENT_DIR=str(restored_dir))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "2 stored files" in done.stdout
        restored = BlobStore(restored_dir)
        assert sorted(restored.digests()) == sorted([shot["sha256"], mail])
        assert restored.read(mail) == RAW_MAIL
        assert (restored_dir / "README.txt").read_text() == "attachments live here\n"
        # The restored installation serves the attachment as before.
        target = Database(target_url)
        try:
            again = ServiceContext(
                db=target, now=ctx.now, audit_key=ctx.audit_key,
                channels=ChannelSettings(attachment_dir=restored_dir),
            )  # fmt: skip
            reporter = users.actor_for_token(again, api.tokens["reporter"])
            row, data = attachments.download(again, reporter, shot["id"])
            assert data == SCREENSHOT and hashlib.sha256(data).hexdigest() == row.sha256
            listed = attachments.list_attachments(again, reporter, incident, Page())
            assert [a["filename"] for a in listed["items"]] == ["螢幕截圖.png"]
        finally:
            target.dispose()


def test_a_named_file_missing_from_the_store_is_reported_not_fatal(
    api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    incident = Scenario(api).id
    kept = _upload(api, incident, "kept.txt", b"still here")
    lost = _upload(api, incident, "lost.txt", b"deleted by hand")
    ctx.blobs.path_of(lost["sha256"]).unlink()
    backup_file = tmp_path / "backup.zip"
    made = itsm("backup", str(backup_file), database_url=database_url,
                ITSM_ATTACHMENT_DIR=str(ctx.channels.attachment_dir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert lost["sha256"] in made.stderr and "warning" in made.stderr
    manifest, names = _manifest(backup_file)
    assert manifest["blobs"]["missing"] == [lost["sha256"]]
    assert f"blobs/{kept['sha256']}" in names and f"blobs/{lost['sha256']}" not in names


def _rewritten_blob(good: Path, bad: Path, digest: str, data: bytes) -> None:
    """The backup with one blob's bytes replaced and the manifest made to agree."""
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bad, "w") as out:
        manifest = json.loads(source.read("manifest.json"))
        for info in source.infolist():
            if info.filename == "manifest.json":
                continue
            body = data if info.filename == f"blobs/{digest}" else source.read(info)
            out.writestr(info.filename, body)
        manifest["members"][f"blobs/{digest}"] = {
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        }  # fmt: skip
        out.writestr("manifest.json", json.dumps(manifest))


def test_a_blob_whose_bytes_are_not_its_name_is_refused_before_the_restore(
    api: Api, ctx: ServiceContext, database_url: str, tmp_path: Path
) -> None:
    incident = Scenario(api).id
    shot = _upload(api, incident, "shot.png", SCREENSHOT)
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    made = itsm("backup", str(good), database_url=database_url,
                ITSM_ATTACHMENT_DIR=str(ctx.channels.attachment_dir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    _rewritten_blob(good, bad, shot["sha256"], b"something else")
    restored_dir = tmp_path / "restored-files"
    with empty_database(tmp_path, "refused") as target_url:
        done = itsm("restore", str(bad), database_url=target_url,
                    ITSM_ATTACHMENT_DIR=str(restored_dir))  # fmt: skip
        assert done.returncode != 0
        assert f"blobs/{shot['sha256']}" in done.stderr and "not its digest" in done.stderr
        assert not restored_dir.exists() or list(restored_dir.rglob("*")) == []
        # Nothing was loaded: the same database takes the good backup afterwards.
        again = itsm("restore", str(good), database_url=target_url,
                     ITSM_ATTACHMENT_DIR=str(restored_dir))  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert BlobStore(restored_dir).read(shot["sha256"]) == SCREENSHOT
