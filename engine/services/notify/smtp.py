"""Talking to the SMTP server (stdlib smtplib): the ITSM_SMTP_URL forms and the
timeouts.  `smtp://[user:password@]host:port` (plain, or `?starttls=1`),
`smtps://...` (TLS from the first byte).  Certificates are checked against the
system's trust store (`SSL_CERT_FILE` names another, e.g. an internal CA)."""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.utils import parseaddr
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


class SmtpConnection:
    """One connection for a pass's messages; opened at the first message."""

    def __init__(self, target: SmtpTarget, local_hostname: str | None = None) -> None:
        self.target = target
        self.local_hostname = local_hostname
        self.client: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        target = self.target
        # Only when TLS is used: loading the trust store costs tens of milliseconds.
        context = ssl.create_default_context() if target.tls or target.starttls else None
        client: smtplib.SMTP
        if target.tls:
            client = smtplib.SMTP_SSL(
                target.host,
                target.port,
                local_hostname=self.local_hostname,
                timeout=CONNECT_TIMEOUT,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                target.host,
                target.port,
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
        """Send one message; raises on any failure (refused recipient included)."""
        started = time.monotonic()
        if self.client is None:
            self.client = self._open()
        client = self.client
        remaining = TOTAL_TIMEOUT - (time.monotonic() - started)
        if remaining <= 0:
            self.close()
            raise TimeoutError("the SMTP server took longer than the total timeout")
        if client.sock is not None:
            client.sock.settimeout(min(CONNECT_TIMEOUT, remaining))
        try:
            refused = client.sendmail(parseaddr(sender)[1] or sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused:
            try:
                client.rset()
            except (smtplib.SMTPException, OSError):
                self.close()
            raise
        except (smtplib.SMTPServerDisconnected, OSError):
            self.client = None
            raise
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
