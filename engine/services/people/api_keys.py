"""API keys for programs: named, revocable keys of `integration` users.

An admin issues them (the key is shown once; only its SHA-256 is stored); they
have no expiry unless one is set, show when they were last used, and are
accepted as bearer tokens. A key stops working when it is revoked or expires,
when its user is deactivated, or when the user no longer holds `integration`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from engine.domain.paging import parse_page
from engine.domain.roles import INTEGRATION
from engine.persistence.models import ApiKey, User, UserRole
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound, Unauthorized
from engine.services.paging import counted, paged

KEY_PREFIX = "itsm_key_"
NAME_LIMIT = 100
# Recording every use would make every call a write: once a minute is enough to tell.
LAST_USE_RESOLUTION = timedelta(minutes=1)


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _require_admin(actor: Actor) -> None:
    if "admin" not in actor.roles:
        raise Forbidden("only an admin manages API keys")


def issue_key(ctx: ServiceContext, admin: Actor, payload: Any) -> dict[str, Any]:
    """201 `{..., key}`: the only time the key itself is shown."""
    _require_admin(admin)
    username, name, expires_at = _validate_new_key(ctx, payload)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active or INTEGRATION not in user.role_names:
            raise Invalid("invalid API key", {"username": "must be an active integration user"})
        taken = session.scalar(
            select(ApiKey.id).where(
                ApiKey.user_id == user.id, ApiKey.name == name, ApiKey.revoked_at.is_(None)
            )
        )
        if taken is not None:
            raise Invalid("invalid API key", {"name": "this user already has a key of that name"})
        row = ApiKey(
            key_hash=_hash(key),
            prefix=key[: len(KEY_PREFIX) + 6],
            name=name,
            user_id=user.id,
            created_by=admin.username,
            created_at=ctx.now(),
            expires_at=expires_at,
        )
        row.user = user
        session.add(row)
        session.flush()
        admin_events.record(
            session,
            admin.username,
            admin_events.API_KEY_ISSUED,
            row.created_at,
            username=username,
            name=name,
            key_id=row.id,
            prefix=row.prefix,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return {**key_view(row), "key": key}


def _validate_new_key(ctx: ServiceContext, payload: Any) -> tuple[str, str, datetime | None]:
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object", {})
    errors: dict[str, str] = {}
    username = payload.get("username")
    if not isinstance(username, str) or not username.strip():
        errors["username"] = "is required"
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "is required"
    elif len(name.strip()) > NAME_LIMIT:
        errors["name"] = f"must be at most {NAME_LIMIT} characters"
    expires_at: datetime | None = None
    raw_expiry = payload.get("expires_at")
    if raw_expiry is not None:
        expires_at = _parse_expiry(raw_expiry, ctx.now(), errors)
    unknown = sorted(set(payload) - {"username", "name", "expires_at"})
    for field in unknown:
        errors[field] = "unknown field"
    if errors:
        raise Invalid("invalid API key", errors)
    return str(username).strip(), str(name).strip(), expires_at


def _parse_expiry(raw: object, now: datetime, errors: dict[str, str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        errors["expires_at"] = "must be an ISO 8601 time with a UTC offset"
        return None
    if moment <= now:
        errors["expires_at"] = "must lie in the future"
        return None
    return moment


def list_keys(ctx: ServiceContext, admin: Actor, args: dict[str, str]) -> dict[str, Any]:
    """`{items, total}` newest first, revoked ones included (they say so)."""
    _require_admin(admin)
    page, errors = parse_page(args)
    if errors:
        raise Invalid("invalid query", errors)
    with ctx.db.read() as session:
        query = select(ApiKey)
        total = counted(session, query)
        rows = session.scalars(paged(query.order_by(ApiKey.id.desc()), page)).all()
        return {"items": [key_view(r) for r in rows], **total.fields()}


def revoke_key(ctx: ServiceContext, admin: Actor, key_id: int) -> dict[str, Any]:
    _require_admin(admin)
    with ctx.db.write() as session:
        row = session.get(ApiKey, key_id, with_for_update=True)
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        if row.revoked_at is None:
            row.revoked_at = ctx.now()
            admin_events.record(
                session,
                admin.username,
                admin_events.API_KEY_REVOKED,
                row.revoked_at,
                username=row.user.username,
                name=row.name,
                key_id=row.id,
            )
        session.flush()
        return key_view(row)


def key_view(row: ApiKey) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id,
        "name": row.name,
        "username": row.user.username,
        "prefix": row.prefix,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "last_used_at": iso(row.last_used_at),
    }


def actor_for_api_key(ctx: ServiceContext, key: str) -> Actor:
    """One read per request; a short write at most once a minute to note the use."""
    now = ctx.now()
    with ctx.db.read_connection() as connection:
        rows = connection.execute(
            select(
                ApiKey.id,
                ApiKey.expires_at,
                ApiKey.revoked_at,
                ApiKey.last_used_at,
                User.id,
                User.username,
                User.active,
                UserRole.role,
            )
            .join(User, User.id == ApiKey.user_id)
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .where(ApiKey.key_hash == _hash(key))
        ).all()
    if not rows:
        raise Unauthorized("unknown API key")
    key_id, expires_at, revoked_at, last_used_at, user_id, username, active, _ = rows[0]
    roles = frozenset(r[7] for r in rows if r[7])
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise Unauthorized("API key expired or revoked")
    if not active or INTEGRATION not in roles:
        raise Unauthorized("the key's user is deactivated or no longer an integration user")
    if last_used_at is None or now - last_used_at >= LAST_USE_RESOLUTION:
        with ctx.db.write() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    return Actor(id=user_id, username=username, roles=roles)
