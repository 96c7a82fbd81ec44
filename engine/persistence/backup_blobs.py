"""The blob store's side of `itsm backup` and `itsm restore`: attachments and raw
inbound mails, the files the rows name by SHA-256 (engine.persistence.blobs).

A backup carries every digest that an `attachments` or `inbound_mails` row names,
each as the member `blobs/<sha256>`, read after the database: a file is stored
before the row naming it commits, so every file the backed-up rows name is there
(rows committed meanwhile may add a few more, which costs nothing). A named file
missing from the store is listed in the manifest rather than failing the backup:
the rest is still worth having, and the operator is told which are gone.

A restore writes each back into the store of ITSM_ATTACHMENT_DIR the way the store
writes (a temporary file renamed into place) after checking that its bytes are the
digest it is named by; a digest already in the store is left as it is (same name,
same bytes).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import Connection, inspect, select

from engine.persistence.blobs import BlobStore
from engine.persistence.models import Attachment, InboundMail

BLOBS_PREFIX = "blobs/"
CHUNK_BYTES = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What BlobStore.put names a file it is still writing.
_INCOMING = ".incoming-"


class BlobRestoreError(Exception):
    """A blob member cannot be restored; the message says which and why."""


def referenced_digests(connection: Connection) -> list[str]:
    """Every digest a row names, sorted. A database from before the tables existed (a
    backup is taken of the database as it is, e.g. before an upgrade) names none."""
    present = set(inspect(connection).get_table_names())
    digests: set[str] = set()
    if Attachment.__tablename__ in present:
        digests.update(connection.scalars(select(Attachment.sha256).distinct()))
    if InboundMail.__tablename__ in present:
        digests.update(
            connection.scalars(
                select(InboundMail.sha256).where(InboundMail.sha256.is_not(None)).distinct()
            )
        )
    return sorted(d for d in digests if d and _SHA256.fullmatch(d))


def member_name(digest: str) -> str:
    return BLOBS_PREFIX + digest


def is_blob_member(name: str) -> bool:
    return name.startswith(BLOBS_PREFIX)


def digest_of_member(name: str) -> str:
    digest = name[len(BLOBS_PREFIX) :]
    if not _SHA256.fullmatch(digest):
        raise BlobRestoreError(f"member {name}: not named by a SHA-256 digest")
    return digest


def is_store_file(relative: PurePosixPath) -> bool:
    """A file of the blob store itself, carried as `blobs/` rather than as a plain file
    of the attachment folder: a digest in its `ab/cd/` folder, or a write in progress."""
    parts = relative.parts
    if parts and parts[-1].startswith(_INCOMING):
        return True
    if len(parts) != 3 or not _SHA256.fullmatch(parts[2]):
        return False
    return parts[0] == parts[2][:2] and parts[1] == parts[2][2:4]


def files_to_carry(
    connection: Connection, store: BlobStore
) -> tuple[list[tuple[str, Path]], tuple[str, ...]]:
    """The files the rows name that the store has (digest, path), and the digests it
    lacks."""
    found, missing = [], []
    for digest in referenced_digests(connection):
        path = store.path_of(digest)
        if path.is_file() and not path.is_symlink():
            found.append((digest, path))
        else:
            missing.append(digest)
    return found, tuple(missing)


def blob_members(members: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each `blobs/` member of a manifest and its digest, checked before anything is
    restored: its recorded SHA-256 (which the member's bytes are checked against) must
    be the digest it is named by."""
    found = {}
    for name in sorted(members):
        if not is_blob_member(name):
            continue
        digest = digest_of_member(name)
        if members[name].get("sha256") != digest:
            raise BlobRestoreError(f"member {name}: its bytes are not its digest")
        found[name] = digest
    return found


def restore_blob(store: BlobStore, digest: str, stream: IO[bytes]) -> bool:
    """Write one file into the store, checked against its digest. False: it was there."""
    target = store.path_of(digest)
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=_INCOMING)
    try:
        found = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                found.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if found.hexdigest() != digest:
            raise BlobRestoreError(f"member {member_name(digest)}: its bytes are not its digest")
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return True
