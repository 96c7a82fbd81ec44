"""A real SMTP server for the tests: aiosmtpd on a free loopback port, collecting
what it receives; optionally STARTTLS with a throwaway self-signed certificate
(openssl), AUTH, refused recipients.  Also a server that accepts connections and
never answers (a hanging SMTP server) and helpers that give the test users
addresses."""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from engine.persistence.models import User
from engine.services.context import ServiceContext
from tests.conftest import TEST_USERS, missing

MAIL_DOMAIN = "example.test"


def address_of(username: str) -> str:
    return f"{username}@{MAIL_DOMAIN}"


def give_addresses(ctx: ServiceContext, usernames: list[str] | None = None) -> None:
    """Every test user (or those named) gets `<username>@example.test`."""
    names = list(TEST_USERS) if usernames is None else usernames
    with ctx.db.write() as session:
        for user in session.scalars(select(User).where(User.username.in_(names))):
            user.email = address_of(user.username)


def set_user(ctx: ServiceContext, username: str, **values: Any) -> None:
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        for name, value in values.items():
            setattr(user, name, value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"]).strip()

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())


class Collector:
    """The aiosmtpd handler: refuses the addresses in `refuse`, keeps the rest."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1; `tls` a (cert, key) pair for STARTTLS (required),
    `login` a (user, password) AUTH requires."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.port = port or free_port()
        self.collector = collector or Collector()
        self.tls = tls
        self.login = login
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        with self.collector.lock:
            return list(self.collector.received)

    def url(self) -> str:
        credentials = f"{self.login[0]}:{self.login[1]}@" if self.login else ""
        query = "?starttls=1" if self.tls else ""
        return f"smtp://{credentials}127.0.0.1:{self.port}{query}"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.login is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.login[0]
            and auth_data.password.decode() == self.login[1]
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        options: dict[str, Any] = {}
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            options.update(tls_context=context, require_starttls=True)
        if self.login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.tls is not None,
            )
        self.controller = Controller(
            self.collector, hostname="127.0.0.1", port=self.port, **options
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.02)
        return self.received


class HangingServer:
    """Accepts TCP connections on loopback and never says a word."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopping:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def stop(self) -> None:
        self.stopping = True
        self.socket.close()
        for connection in self.connections:
            connection.close()


class SlowServer:
    """Speaks SMTP, but answers every line only after `delay` seconds: each step is
    quick enough for a per-step timeout, all of them together are not."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(4)
        self.port = int(self.socket.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as lines:
            try:
                time.sleep(self.delay)
                connection.sendall(b"220 slow.test ESMTP\r\n")
                for _line in lines:
                    time.sleep(self.delay)
                    connection.sendall(b"250 ok\r\n")
            except OSError:
                return

    def stop(self) -> None:
        self.socket.close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made by openssl (the test's own CA file too)."""
    if shutil.which("openssl") is None:
        missing("openssl is needed to make a test certificate")
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
