"""A real IMAP server for tests: Debian's dovecot on a free loopback port.

Dovecot runs as the current user (root in CI) from a configuration generated in
a temporary folder: its base and state folders, its log and the maildir all live
there, the one test user comes from a passwd-file, and it speaks STARTTLS with a
self-signed certificate made by `openssl req` for 127.0.0.1 (dovecot counts a
loopback connection as secure and would take a plaintext sign-in; the poller
never sends one, and the tests check that it refuses a certificate it does not
trust).  Messages are delivered by IMAP
APPEND, so no MTA is needed.  Without /usr/sbin/dovecot the tests that need it
call `missing(...)`: a skip locally, a failure with CI=true.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import missing
from tests.servers import free_port

DOVECOT = Path("/usr/sbin/dovecot")
USER = "desk"
PASSWORD = "imap secret"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {group}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
mail_home = {root}/home/%u
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = {internal_user}
  }}
  unix_listener stats-writer {{
    user = {internal_user}
  }}
}}
"""


@dataclass
class ImapServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    def url(self, mailbox: str = "INBOX", password: str = PASSWORD) -> str:
        """ITSM_IMAP_URL for this server: STARTTLS, trusting its own certificate."""
        return (
            f"imap://{quote(USER)}:{quote(password, safe='')}@127.0.0.1:{self.port}/"
            f"{mailbox}?ca_file={quote(str(self.ca_file))}"
        )

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.starttls(ssl.create_default_context(cafile=str(self.ca_file)))
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, mailbox: str = "INBOX", flags: str = "") -> None:
        client = self.connect()
        try:
            status, _ = client.append(mailbox, f"({flags})" if flags else None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    def flags(self, mailbox: str = "INBOX") -> list[tuple[bytes, bool]]:
        """Each message's Subject line and whether it is \\Seen, in UID order."""
        client = self.connect()
        try:
            client.select(mailbox, readonly=True)
            _, data = client.uid("SEARCH", "ALL")
            result = []
            for uid in data[0].split():
                _, parts = client.uid(
                    "FETCH", uid, "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
                )
                head = parts[0]
                assert isinstance(head, tuple)
                result.append((head[1].strip(), b"\\Seen" in head[0]))
            return result
        finally:
            client.logout()

    def empty(self, mailbox: str = "INBOX") -> None:
        client = self.connect()
        try:
            _, count = client.select(mailbox)
            if count[0] and int(count[0]) > 0:
                client.store("1:*", "+FLAGS", "\\Deleted")
                client.expunge()
        finally:
            client.logout()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class _Accounts:
    login: str  # imap-login
    internal: str  # auth, stats...
    group: str
    mail_uid: int  # who owns the maildir (dovecot refuses root for mail)
    mail_gid: int


def _accounts() -> _Accounts:
    """As a plain user, everything runs as that user.  As root (CI), dovecot refuses
    root for its login, internal and mail processes: the accounts the Debian package
    made (dovenull, dovecot) take them, and the folder is given to `dovecot`."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        name = pwd.getpwuid(uid).pw_name
        return _Accounts(name, name, grp.getgrgid(gid).gr_name, uid, gid)
    try:
        pwd.getpwnam("dovenull")
        owner = pwd.getpwnam("dovecot")
        group = grp.getgrgid(owner.pw_gid).gr_name
    except KeyError:
        missing("dovecot's accounts dovenull and dovecot are missing (install dovecot-imapd)")
        raise
    return _Accounts("dovenull", "dovecot", group, owner.pw_uid, owner.pw_gid)


def _give(root: Path, uid: int, gid: int) -> None:
    if os.getuid() != 0:
        return
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, gid)


def start_dovecot() -> ImapServer:
    """Dovecot in a fresh folder under the system's temporary folder (not pytest's,
    which is private to root when the tests run as root)."""
    if not DOVECOT.exists():
        missing("dovecot-imapd is not installed (/usr/sbin/dovecot)")
    if shutil.which("openssl") is None:
        missing("openssl is not installed (the test server's certificate)")
    accounts = _accounts()
    root = Path(tempfile.mkdtemp(prefix="itsm-dovecot-"))
    for folder in ("run", "state", "mail", "home"):
        (root / folder).mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    # uid and gid come from mail_uid / mail_gid (a passwd-file line may leave them out).
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:::::\n")
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(
        _CONFIG.format(
            root=root,
            login_user=accounts.login,
            internal_user=accounts.internal,
            group=accounts.group,
            uid=accounts.mail_uid,
            gid=accounts.mail_gid,
            port=port,
        )
    )
    _give(root, accounts.mail_uid, accounts.mail_gid)
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = ImapServer(root, port, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            server.stop()
            raise RuntimeError(f"dovecot exited early:\n{output}\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            time.sleep(0.1)
    log = server.log()
    server.stop()
    raise RuntimeError(f"dovecot did not start:\n{log}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[ImapServer]:
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def imap(dovecot: ImapServer) -> ImapServer:
    """The server with an empty INBOX."""
    dovecot.empty()
    return dovecot
