"""Where the audit key comes from: ITSM_AUDIT_KEY, else a private key file per
installation, created once and then reused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.persistence.audit_key import (
    AUDIT_KEY_ENV,
    AuditKeyError,
    audit_key_for,
    key_file_for,
)


def test_the_key_file_is_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'itsm.db'}"
    key = audit_key_for(url)
    path = tmp_path / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and audit_key_for(url) == key
    assert list(tmp_path.iterdir()) == [path]  # no draft left behind


def test_itsm_audit_key_wins_and_must_be_long_enough(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'itsm.db'}"
    monkeypatch.setenv(AUDIT_KEY_ENV, "s" * 40)
    assert audit_key_for(url) == b"s" * 40
    assert not (tmp_path / "audit.key").exists()
    monkeypatch.setenv(AUDIT_KEY_ENV, "short")
    with pytest.raises(AuditKeyError, match=AUDIT_KEY_ENV):
        audit_key_for(url)


def test_an_unusable_key_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    (tmp_path / "audit.key").write_text("too short\n")
    with pytest.raises(AuditKeyError, match=str(tmp_path / "audit.key")):
        audit_key_for(f"sqlite:///{tmp_path / 'itsm.db'}")


def test_a_database_elsewhere_keeps_its_key_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ITSM_INSTANCE_DIR", str(tmp_path / "instance"))
    path = key_file_for("postgresql+psycopg://itsm:secret@127.0.0.1:5432/itsm")
    assert path == Path(tmp_path / "instance" / "audit.key")
    assert key_file_for("sqlite://") == path
    assert os.fspath(key_file_for("sqlite:////srv/itsm/itsm.db")) == "/srv/itsm/audit.key"


def test_processes_starting_at_once_agree_on_one_key(tmp_path, monkeypatch):
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'itsm.db'}"
    start = threading.Barrier(6)
    keys: list[bytes] = []

    def read() -> None:
        start.wait()
        keys.append(audit_key_for(url))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(keys) == 6 and len(set(keys)) == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "audit.key"]


def test_a_short_key_stops_the_command_line_with_a_message_not_a_traceback(tmp_path):
    env = {
        **os.environ,
        "ITSM_DATABASE_URL": f"sqlite:///{tmp_path / 'itsm.db'}",
        "ITSM_AUDIT_KEY": "too short",
    }
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "user", "create", "someone", "--role", "admin"],
        input="a long enough password 1",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "ITSM_AUDIT_KEY" in result.stderr and "Traceback" not in result.stderr
