"""Signed caller links as pure code: making a token and telling why one is refused.

A caller known only by address follows their incident through a link in every
mail to them (contract Part 2, "People, callers and contact"). The token is
`<incident id>.<link version>.<expiry, unix seconds>.<signature>`, the signature an
HMAC-SHA256 over the incident id, the caller's address lower-cased, the link
version and the expiry. The address is not in the token (a link forwarded by mail
should not carry the address in clear): it is the incident's caller address at the
time of the check, so a link stops working when the caller changes. The key is
derived from the installation's audit key and never is the audit key itself (a
leaked link key must not let anyone re-sign the audit chains).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

LINK_LIFETIME = timedelta(days=30)
KEY_PURPOSE = b"itsm caller-link v1"
_TOKEN = re.compile(
    r"([1-9][0-9]{0,11})\.([1-9][0-9]{0,9})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})"
)

# Why a link is refused; the 403 page says which.
Refusal = Literal["tampered", "expired", "revoked", "other_incident"]


def link_key(audit_key: bytes) -> bytes:
    """The key that signs caller links, derived from (never equal to) the audit key."""
    return hmac.new(audit_key, KEY_PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class LinkClaims:
    incident_id: int
    version: int
    expires_at: datetime


def _signature(key: bytes, incident_id: int, address: str, version: int, expires: int) -> str:
    message = f"{incident_id}\n{address.strip().lower()}\n{version}\n{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(key: bytes, incident_id: int, address: str, version: int, now: datetime) -> str:
    expires = int((now + LINK_LIFETIME).timestamp())
    signature = _signature(key, incident_id, address, version, expires)
    return f"{incident_id}.{version}.{expires}.{signature}"


def parse_token(token: str) -> LinkClaims | None:
    """The claims a token makes (not yet checked), or None when it is not a token."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    incident_id, version, expires = (int(match.group(n)) for n in (1, 2, 3))
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return LinkClaims(incident_id, version, expires_at)


def refusal(
    key: bytes,
    token: str,
    *,
    address: str | None,
    current_version: int,
    now: datetime,
) -> Refusal | None:
    """Why the token does not open its incident (None: it does). `address` is the
    incident's caller address now (None: the incident has none, or is unknown);
    `current_version` its link version. The signature is checked first, so an
    expired or revoked answer is only ever given for a link we made."""
    claims = parse_token(token)
    if claims is None or not address:
        return "tampered"
    expires = int(claims.expires_at.timestamp())
    expected = _signature(key, claims.incident_id, address, claims.version, expires)
    if not hmac.compare_digest(expected, token.rsplit(".", 1)[1]):
        return "tampered"
    if claims.version != current_version:
        return "revoked"
    if claims.expires_at <= now:
        return "expired"
    return None
