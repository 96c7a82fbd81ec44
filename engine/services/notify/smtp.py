"""Talking to the SMTP server (stdlib smtplib): the ITSM_SMTP_URL forms and the
timeouts.  `smtp://[user:password@]host:port` (plain, or `?starttls=1`),
`smtps://...` (TLS from the first byte).  Certificates are checked against the
system's trust store (`SSL_CERT_FILE` names another, e.g. an internal CA)."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CONNECT_TIMEOUT = 10.0  # seconds to connect, and for each later reply
TOTAL_TIMEOUT = 30.0  # seconds for one message, connection included
TRUE_WORDS = ("1", "true", "yes", "on")


class SmtpUrlError(ValueError):
    """ITSM_SMTP_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # smtps: TLS from the start
    starttls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpUrlError("ITSM_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise SmtpUrlError("ITSM_SMTP_URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise SmtpUrlError("ITSM_SMTP_URL has an invalid port") from None
    query = parse_qs(parts.query)
    starttls = any(v.lower() in TRUE_WORDS for v in query.get("starttls", []))
    tls = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if tls else 25),
        tls=tls,
        starttls=starttls and not tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class _Deadline:
    """Bounds every read and write of a client by the message's total time: before
    each, the socket's timeout becomes what is left of it (at most CONNECT_TIMEOUT),
    and past it the next step fails at once."""

    deadline: float | None = None

    def arm(self, sock: socket.socket | None) -> None:
        if self.deadline is None or sock is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP server took longer than the total timeout")
        sock.settimeout(min(CONNECT_TIMEOUT, left))


class _Bounded:
    """Every read and write of the SMTP conversation within the mail's total time
    (mixed into smtplib's SMTP and SMTP_SSL, which share send/getreply)."""

    bound: _Deadline
    sock: Any

    def send(self, s: Any) -> None:
        self.bound.arm(self.sock)
        super().send(s)  # type: ignore[misc]

    def getreply(self) -> tuple[int, bytes]:
        self.bound.arm(self.sock)
        return super().getreply()  # type: ignore[misc]


class _Smtp(_Bounded, smtplib.SMTP):
    def __init__(self, bound: _Deadline, **kwargs: Any) -> None:
        self.bound = bound
        smtplib.SMTP.__init__(self, **kwargs)


class _Smtps(_Bounded, smtplib.SMTP_SSL):
    def __init__(self, bound: _Deadline, **kwargs: Any) -> None:
        self.bound = bound
        smtplib.SMTP_SSL.__init__(self, **kwargs)


class SmtpConnection:
    """One connection for a pass's messages; opened at the first message.  Each
    message (with the connection, for the first) has TOTAL_TIMEOUT seconds, each
    step of it CONNECT_TIMEOUT."""

    def __init__(self, target: SmtpTarget, local_hostname: str | None = None) -> None:
        self.target = target
        self.local_hostname = local_hostname
        self.client: smtplib.SMTP | None = None
        self.bound = _Deadline()

    def _open(self) -> smtplib.SMTP:
        target = self.target
        # Only when TLS is used: loading the trust store costs tens of milliseconds.
        context = ssl.create_default_context() if target.tls or target.starttls else None
        client: smtplib.SMTP
        if target.tls:
            client = _Smtps(
                self.bound,
                host=target.host,
                port=target.port,
                local_hostname=self.local_hostname,
                timeout=CONNECT_TIMEOUT,
                context=context,
            )
        else:
            client = _Smtp(
                self.bound,
                host=target.host,
                port=target.port,
                local_hostname=self.local_hostname,
                timeout=CONNECT_TIMEOUT,
            )
        try:
            client.ehlo()
            if target.starttls and context is not None:
                client.starttls(context=context)
                client.ehlo()
            if target.username is not None:
                client.login(target.username, target.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Send one message; raises on any failure (refused recipient included).  The
        deadline is set first: connecting (in the constructor) counts too."""
        self.bound.deadline = time.monotonic() + TOTAL_TIMEOUT
        if self.client is None:
            self.client = self._open()
        client = self.client
        try:
            refused = client.sendmail(parseaddr(sender)[1] or sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused:
            try:
                client.rset()
            except (smtplib.SMTPException, OSError):
                self.client = None
                client.close()
            raise
        except (smtplib.SMTPServerDisconnected, OSError):
            # Mid-conversation: the connection is of no further use.
            self.client = None
            client.close()
            raise
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        self.bound.deadline = time.monotonic() + CONNECT_TIMEOUT
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
