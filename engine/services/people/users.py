"""Users, roles, passwords and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.roles import ALL_ROLES
from engine.persistence.models import ApiToken, User, UserRole
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Invalid, Unauthorized

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
USERNAME_MAX = 80


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


LOCALES = ("zh_Hant_TW", "en")


def actor_of(user: User) -> Actor:
    return Actor(
        id=user.id,
        username=user.username,
        roles=user.role_names,
        display_name=user.display_name,
        locale=user.locale,
        timezone=user.timezone,
        session_version=user.session_version,
    )


def actor_by_id(ctx: ServiceContext, user_id: int) -> Actor | None:
    """The signed-in browser user, or None if gone or deactivated."""
    with ctx.db.read() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return None
        return actor_of(user)


def sign_in(ctx: ServiceContext, username: str, password: str) -> Actor:
    with ctx.db.read() as session:
        user = authenticate(session, username, password)
        if user is None:
            raise Unauthorized("wrong username or password")
        return actor_of(user)


def set_locale(ctx: ServiceContext, actor: Actor, locale: str) -> None:
    if locale not in LOCALES:
        raise Invalid("unknown language", {"locale": f"must be one of: {', '.join(LOCALES)}"})
    with ctx.db.write() as session:
        user = session.get(User, actor.id)
        if user is not None:
            user.locale = locale


def list_users(ctx: ServiceContext) -> list[dict[str, object]]:
    with ctx.db.read() as session:
        users = session.scalars(select(User).order_by(User.username))
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "roles": sorted(u.role_names),
                "active": u.active,
            }
            for u in users
        ]


def set_roles(ctx: ServiceContext, username: str, roles: list[str]) -> None:
    unknown = sorted(set(roles) - ALL_ROLES)
    if not roles or unknown:
        message = (
            "at least one role is required"
            if not roles
            else (f"unknown role(s): {', '.join(unknown)}")
        )
        raise Invalid("invalid roles", {"roles": message})
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        wanted = set(roles)
        user.roles = [r for r in user.roles if r.role in wanted]
        held = {r.role for r in user.roles}
        user.roles.extend(UserRole(role=r) for r in sorted(wanted - held))


def usernames_with_role(ctx: ServiceContext, role: str) -> list[str]:
    with ctx.db.read() as session:
        return list(
            session.scalars(
                select(User.username)
                .join(UserRole, UserRole.user_id == User.id)
                .where(UserRole.role == role, User.active.is_(True))
                .order_by(User.username)
            )
        )


def create_user(
    ctx: ServiceContext, username: str, password: str, roles: list[str], display_name: str = ""
) -> Actor:
    errors: dict[str, str] = {}
    if (
        not username
        or len(username) > USERNAME_MAX
        or not username.replace("_", "").replace(".", "").replace("-", "").isalnum()
    ):
        errors["username"] = "must be 1-80 letters, digits, '.', '_' or '-'"
    if len(password) < 8:
        errors["password"] = "must be at least 8 characters"
    unknown = sorted(set(roles) - ALL_ROLES)
    if not roles:
        errors["roles"] = "at least one role is required"
    elif unknown:
        errors["roles"] = f"unknown role(s): {', '.join(unknown)}"
    if errors:
        raise Invalid("invalid user", errors)
    with ctx.db.write() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"user {username!r} already exists")
        user = User(
            username=username,
            password_hash=hash_password(password),
            display_name=display_name or username,
            active=True,
            created_at=ctx.now(),
            roles=[UserRole(role=r) for r in sorted(set(roles))],
        )
        session.add(user)
        session.flush()
        return actor_of(user)


def user_exists(ctx: ServiceContext, username: str) -> bool:
    with ctx.db.read() as session:
        return session.scalar(select(User.id).where(User.username == username)) is not None


def set_active(ctx: ServiceContext, username: str, active: bool) -> None:
    """Deactivating ends the user's browser sessions and revokes their API tokens
    for good (a later reactivation does not bring either back)."""
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        user.active = active
        if active:
            return
        user.session_version += 1
        now = ctx.now()
        for token in session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        ):
            token.revoked_at = now


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not check_password(user.password_hash, password):
        return None
    return user


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue_token(ctx: ServiceContext, username: str, password: str) -> IssuedToken:
    with ctx.db.write() as session:
        user = authenticate(session, username, password)
        if user is None:
            raise Unauthorized("wrong username or password")
        token = secrets.token_urlsafe(32)
        now = ctx.now()
        expires_at = now + ctx.token_ttl
        session.add(
            ApiToken(
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return IssuedToken(token=token, expires_at=expires_at)


def actor_for_token(ctx: ServiceContext, token: str) -> Actor:
    """One query per request: the token, its user and the user's roles."""
    with ctx.db.read_connection() as connection:
        rows = connection.execute(
            select(
                ApiToken.expires_at,
                ApiToken.revoked_at,
                User.id,
                User.username,
                User.active,
                UserRole.role,
            )
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .where(ApiToken.token_hash == _token_hash(token))
        ).all()
    if not rows:
        raise Unauthorized("unknown token")
    expires_at, revoked_at, user_id, username, active, _ = rows[0]
    if revoked_at is not None or expires_at <= ctx.now():
        raise Unauthorized("token expired or revoked")
    if not active:
        raise Unauthorized("user deactivated")
    return Actor(id=user_id, username=username, roles=frozenset(r[5] for r in rows if r[5]))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
