"""Files kept outside the database: attachments and raw inbound mails.

Each file is stored once under its SHA-256 (`ab/cd/abcdef...`), written to a
temporary file in the same folder and renamed into place, so a reader never
sees half a file and two writers of the same bytes both succeed.  The folder is
`ITSM_ATTACHMENT_DIR`, default `attachments/` in the instance folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobMissing(LookupError):
    """No file is stored under that digest."""


@dataclass(frozen=True)
class BlobStore:
    root: Path

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store the bytes (once) and return their SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def read(self, sha256: str) -> bytes:
        try:
            return self.path_of(sha256).read_bytes()
        except FileNotFoundError as error:
            raise BlobMissing(sha256) from error

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).exists()

    def digests(self) -> Iterator[str]:
        """Every stored digest (for backups)."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("??/??/*")):
            if _SHA256.fullmatch(path.name):
                yield path.name
