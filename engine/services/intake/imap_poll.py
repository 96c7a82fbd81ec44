"""The IMAP poller: unseen messages of the organisation's mailbox, each taken like a
mail posted to the inbound endpoint (engine.services.intake.inbound).

`ITSM_IMAP_URL` names the mailbox: `imaps://user:password@host:993/INBOX` (TLS
from the first byte) or `imap://user:password@host:143/INBOX` (STARTTLS, always:
the password never goes over a plain connection).  The server's certificate is
checked against the system's trusted authorities, or against the file named by
the query parameter `ca_file` (`...?ca_file=/etc/itsm/imap-ca.pem`) for a server
with a certificate of its own.  User and password are percent-encoded in the URL.

Each pass signs in, lists the unseen messages by UID and handles at most BATCH of
them: a message larger than 25 MiB is recorded ignored (`too_large`) without
being downloaded; the others are fetched with BODY.PEEK[] (which leaves them
unseen) and received; a message is marked \\Seen only after its transaction has
committed, so a crash or a database outage leaves it to the next pass.  A message
whose handling raises is recorded ignored (`unreadable`, its raw bytes kept) and
marked seen: one bad message never stops the others.  Every network operation has
a timeout of TIMEOUT seconds.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from engine.services.context import Actor, ServiceContext
from engine.services.intake.inbound import MAX_MESSAGE_BYTES, receive, record_ignored
from engine.services.intake.mailbox_actor import mailbox_actor

log = logging.getLogger("itsm.imap")

TIMEOUT = 30.0
BATCH = 50
INTERVAL = 30.0
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapUrlError(ValueError):
    """ITSM_IMAP_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class Mailbox:
    tls_from_start: bool  # imaps
    host: str
    port: int
    user: str
    password: str
    folder: str
    ca_file: str | None


def parse_imap_url(url: str) -> Mailbox:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps"):
        raise ImapUrlError("ITSM_IMAP_URL must start with imaps:// or imap://")
    if not parts.hostname:
        raise ImapUrlError("ITSM_IMAP_URL names no host")
    if parts.username is None or parts.password is None:
        raise ImapUrlError("ITSM_IMAP_URL needs user:password@ before the host")
    try:
        port = parts.port
    except ValueError:
        raise ImapUrlError("ITSM_IMAP_URL has an invalid port") from None
    ca_files = parse_qs(parts.query).get("ca_file", [])
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return Mailbox(
        tls_from_start=parts.scheme == "imaps",
        host=parts.hostname,
        port=port or (993 if parts.scheme == "imaps" else 143),
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
        ca_file=ca_files[0] if ca_files else None,
    )


def _tls_context(mailbox: Mailbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=mailbox.ca_file)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(mailbox: Mailbox) -> imaplib.IMAP4:
    """Signed in, with the folder selected read-write."""
    client: imaplib.IMAP4
    if mailbox.tls_from_start:
        client = imaplib.IMAP4_SSL(
            mailbox.host, mailbox.port, ssl_context=_tls_context(mailbox), timeout=TIMEOUT
        )
    else:
        client = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT)
        try:
            client.starttls(_tls_context(mailbox))
        except Exception:
            _close(client)
            raise
    try:
        client.login(mailbox.user, mailbox.password)
        status, detail = client.select(_quoted(mailbox.folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select {mailbox.folder!r}: {detail!r}")
    except Exception:
        _close(client)
        raise
    return client


def _close(client: imaplib.IMAP4) -> None:
    """Drop the connection after a failure (the socket may already be gone)."""
    with contextlib.suppress(OSError):
        client.shutdown()


# -- one pass ---------------------------------------------------------------------


def poll_once(ctx: ServiceContext, worker_name: str) -> int:
    """Handle up to BATCH unseen messages; how many were handled.  (The loop that
    runs it is `imap` in engine.services.ops.channels.CHANNEL_LOOPS.)"""
    _attempted()
    mailbox = parse_imap_url(ctx.channels.imap_url)
    # Before any message: a mailbox user that cannot be had fails the pass, not a mail.
    carrier = mailbox_actor(ctx)
    client = connect(mailbox)
    try:
        status, data = client.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise imaplib.IMAP4.error(f"UID SEARCH UNSEEN failed: {data!r}")
        uids = data[0].split() if data and data[0] else []
        handled = 0
        for uid in uids[:BATCH]:
            _handle(ctx, client, uid.decode(), carrier)
            handled += 1
        _polled()
        return handled
    finally:
        try:
            client.logout()
        except Exception:  # the server hung up first: nothing to tell it
            log.debug("IMAP logout failed", exc_info=True)


def _handle(ctx: ServiceContext, client: imaplib.IMAP4, uid: str, carrier: Actor) -> None:
    size = _size_of(client, uid)
    if size is None:  # expunged by someone else since the search
        return
    if size > MAX_MESSAGE_BYTES:
        record_ignored(ctx, "imap", "too_large", size=size)
    else:
        raw = _fetch(client, uid)
        if raw is None:
            return
        try:
            outcome = receive(ctx, raw, "imap", actor=carrier)
            log.info("IMAP message %s: %s", uid, outcome.as_json())
        except Exception:
            log.exception("IMAP message %s could not be handled; recorded as unreadable", uid)
            record_ignored(ctx, "imap", "unreadable", size=len(raw), raw=raw)
    status, data = client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
    if status != "OK":
        raise imaplib.IMAP4.error(f"cannot mark message {uid} seen: {data!r}")


def _size_of(client: imaplib.IMAP4, uid: str) -> int | None:
    status, data = client.uid("FETCH", uid, "(RFC822.SIZE)")
    if status != "OK":
        raise imaplib.IMAP4.error(f"FETCH RFC822.SIZE failed: {data!r}")
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if isinstance(line, bytes):
            found = _SIZE.search(line)
            if found:
                return int(found.group(1))
    return None


def _fetch(client: imaplib.IMAP4, uid: str) -> bytes | None:
    status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        raise imaplib.IMAP4.error(f"FETCH BODY.PEEK[] failed: {data!r}")
    for item in data:
        if isinstance(item, tuple) and isinstance(item[1], bytes):
            return item[1]
    return None


# -- how long since the last good pass (/metrics) ------------------------------------

# time.monotonic() of this process's first pass and of its last good one.
_first_attempt: float | None = None
_last_success: float | None = None


def enabled(ctx: ServiceContext) -> bool:
    return bool(ctx.channels.imap_url)


def _attempted() -> None:
    global _first_attempt
    if _first_attempt is None:
        _first_attempt = time.monotonic()


def _polled() -> None:
    global _last_success
    _last_success = time.monotonic()


def last_poll_age_seconds() -> float | None:
    """Seconds since this process last polled the mailbox successfully, or since its
    first try when none succeeded yet; None when this process does not poll."""
    since = _last_success if _last_success is not None else _first_attempt
    return None if since is None else time.monotonic() - since


def poll_age_exposition() -> bytes:
    """`itsm_imap_last_poll_age_seconds` in the text format, when this process polls."""
    age = last_poll_age_seconds()
    if age is None:
        return b""
    registry = CollectorRegistry(auto_describe=True)
    Gauge(
        "itsm_imap_last_poll_age_seconds",
        "Seconds since this process last polled the IMAP mailbox successfully "
        "(or first tried to, when no pass has succeeded yet).",
        registry=registry,
    ).set(age)
    return generate_latest(registry)

