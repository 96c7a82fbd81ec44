"""Users, roles, passwords and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from engine.domain.passwords import describe, password_problems
from engine.domain.roles import ALL_ROLES
from engine.persistence.models import ApiToken, User, UserRole
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, Unauthorized
from engine.services.people import organisations, profiles

# Passwords are hashed and checked outside every transaction (scrypt takes tens of
# milliseconds): a write only stores a hash computed before it and re-checks that the
# row still holds the hash that was verified.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
USERNAME_MAX = 80
TEMPORARY_PASSWORD_BYTES = 12  # 16 URL-safe characters
SAME_AS_CURRENT = "must differ from the current password"


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


# Checked instead when the user is unknown, so that both answers take as long: a
# well-formed scrypt hash of no password anyone knows (random salt and digest).
DUMMY_HASH = (
    "scrypt$838962a008623f40971fad0c5c998aa4$"
    "6b9995ee9dfa0649ffeb2145728c26f21574685a4d68ba7ecc838220f781d582"
)


class WrongPassword(Invalid):
    """The current password given to change it is not the user's (422)."""


@dataclass(frozen=True)
class Account:
    """A signed-in user and whether they must choose a new password first."""

    actor: Actor
    must_change_password: bool = False


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class _Verified:
    account: Account
    password_hash: str


def _policy_errors(field: str, password: str, username: str) -> dict[str, str]:
    problems = password_problems(password, username)
    return {field: describe(problems)} if problems else {}


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
        vendor_org=user.vendor_org,
    )


def actor_by_id(ctx: ServiceContext, user_id: int) -> Actor | None:
    """The signed-in browser user, or None if gone or deactivated."""
    account = account_by_id(ctx, user_id)
    return None if account is None else account.actor


def account_by_id(ctx: ServiceContext, user_id: int) -> Account | None:
    """The browser session's user, or None if gone or deactivated."""
    with ctx.db.read() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return None
        return Account(actor_of(user), user.must_change_password)


def sign_in(ctx: ServiceContext, username: str, password: str) -> Actor:
    return sign_in_account(ctx, username, password).actor


def sign_in_account(ctx: ServiceContext, username: str, password: str) -> Account:
    """Checks the password without holding a transaction; an unknown or deactivated
    user costs the same hash as a known one."""
    verified = _verify(ctx, username, password)
    if verified is None:
        raise Unauthorized("wrong username or password")
    return verified.account


def _verify(ctx: ServiceContext, username: str, password: str) -> _Verified | None:
    with ctx.db.read() as session:
        user = session.scalar(
            select(User).where(User.username == username).options(selectinload(User.roles))
        )
        found = (
            None
            if user is None
            else _Verified(Account(actor_of(user), user.must_change_password), user.password_hash)
        )
        active = user is not None and user.active
    # The read transaction is over: the hash runs with no lock and no snapshot held.
    matches = check_password(found.password_hash if found else DUMMY_HASH, password)
    return found if matches and active else None


def sign_out(ctx: ServiceContext, actor: Actor) -> None:
    """Ends every browser session of the user: a copy of an old cookie is refused."""
    with ctx.db.write() as session:
        user = session.get(User, actor.id)
        if user is not None:
            user.session_version += 1


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
                "email": u.email,
                "language": u.locale,
            }
            for u in users
        ]


def password_change_pending(ctx: ServiceContext) -> frozenset[str]:
    """Usernames whose password an administrator reset and who have not chosen a new one."""
    with ctx.db.read() as session:
        return frozenset(
            session.scalars(select(User.username).where(User.must_change_password.is_(True)))
        )


def set_roles(
    ctx: ServiceContext, username: str, roles: list[str], *, by: str = admin_events.SYSTEM_ACTOR
) -> None:
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
        before = sorted(user.role_names)
        user.roles = [r for r in user.roles if r.role in wanted]
        held = {r.role for r in user.roles}
        user.roles.extend(UserRole(role=r) for r in sorted(wanted - held))
        if before != sorted(wanted):
            admin_events.record(
                session,
                by,
                admin_events.USER_ROLES_CHANGED,
                ctx.now(),
                username=username,
                before=before,
                after=sorted(wanted),
            )
        organisations.follow_roles(session, user, ctx.now())


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
    ctx: ServiceContext,
    username: str,
    password: str,
    roles: list[str],
    display_name: str = "",
    *,
    vendor_org: str | None = None,
    create_org_as: str | None = None,
    by: str = admin_events.SYSTEM_ACTOR,
    email: str | None = None,
    language: str | None = None,
) -> Actor:
    """A vendor joins `vendor_org` (else `default`); an unknown organisation is
    refused unless `create_org_as` names who creates it (the command line).
    `email`: the user's address (unique; 409 when taken); `language`: `zh_Hant_TW`
    (the default) or `en`."""
    errors: dict[str, str] = profiles.validate_profile(email, language)
    if (
        not username
        or len(username) > USERNAME_MAX
        or not username.replace("_", "").replace(".", "").replace("-", "").isalnum()
    ):
        errors["username"] = "must be 1-80 letters, digits, '.', '_' or '-'"
    errors.update(_policy_errors("password", password, username))
    unknown = sorted(set(roles) - ALL_ROLES)
    if not roles:
        errors["roles"] = "at least one role is required"
    elif unknown:
        errors["roles"] = f"unknown role(s): {', '.join(unknown)}"
    if vendor_org is not None:
        org_problem = (
            organisations.NOT_A_VENDOR
            if organisations.VENDOR_ROLE not in roles
            else organisations.name_problem(vendor_org)
        )
        if org_problem:
            errors["org"] = org_problem
    if errors:
        raise Invalid("invalid user", errors)
    password_hash = hash_password(password)
    with ctx.db.write() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"user {username!r} already exists")
        if email:
            profiles.check_email_free(session, profiles.normal_email(email), None)
        now = ctx.now()
        user = User(
            username=username,
            password_hash=password_hash,
            password_changed_at=now,
            display_name=display_name or username,
            active=True,
            created_at=now,
            roles=[UserRole(role=r) for r in sorted(set(roles))],
            email=profiles.normal_email(email) if email else None,
        )
        if language:
            user.locale = language
        if organisations.VENDOR_ROLE in roles:
            user.vendor_org = organisations.resolve(
                session, vendor_org, now, create_as=create_org_as
            )
        session.add(user)
        session.flush()
        admin_events.record(
            session,
            by,
            admin_events.USER_CREATED,
            now,
            username=username,
            display_name=user.display_name,
            roles=sorted(set(roles)),
            **({"email": user.email} if user.email else {}),
        )
        return actor_of(user)


def user_exists(ctx: ServiceContext, username: str) -> bool:
    with ctx.db.read() as session:
        return session.scalar(select(User.id).where(User.username == username)) is not None


def set_active(
    ctx: ServiceContext, username: str, active: bool, *, by: str = admin_events.SYSTEM_ACTOR
) -> None:
    """Deactivating ends the user's browser sessions and revokes their API tokens
    for good (a later reactivation does not bring either back)."""
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        now = ctx.now()
        if user.active != active:
            change = admin_events.USER_ACTIVATED if active else admin_events.USER_DEACTIVATED
            admin_events.record(session, by, change, now, username=username)
        user.active = active
        if not active:
            _end_sessions_and_tokens(session, user, now, by, "deactivated")


def _end_sessions_and_tokens(
    session: Session, user: User, now: datetime, by: str, reason: str
) -> None:
    user.session_version += 1
    revoked = 0
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
        revoked += 1
    if revoked:
        admin_events.record(
            session,
            by,
            admin_events.TOKENS_REVOKED,
            now,
            username=user.username,
            count=revoked,
            reason=reason,
        )


@dataclass(frozen=True)
class PasswordChanged:
    account: Account
    token: IssuedToken | None


def change_password(
    ctx: ServiceContext,
    actor: Actor,
    current_password: str,
    new_password: str,
    *,
    new_token: bool = False,
) -> PasswordChanged:
    """The user's own change: the current password is required. Every browser session
    ends and every API token is revoked; `account` carries the new session version (to
    keep the session that asked) and `token` a fresh API token when `new_token`."""
    verified = _verify(ctx, actor.username, current_password)
    if verified is None or verified.account.actor.id != actor.id:
        raise WrongPassword(
            "wrong current password", {"current_password": "is not your current password"}
        )
    errors = _policy_errors("new_password", new_password, actor.username)
    if not errors and check_password(verified.password_hash, new_password):
        errors = {"new_password": SAME_AS_CURRENT}
    if errors:
        raise Invalid("invalid password", errors)
    password_hash = hash_password(new_password)
    with ctx.db.write() as session:
        user = session.get(User, actor.id)
        if user is None or not user.active:
            raise Unauthorized("user deactivated")
        if user.password_hash != verified.password_hash:
            raise Conflict("the password was changed meanwhile; sign in again")
        now = ctx.now()
        user.password_hash = password_hash
        user.password_changed_at = now
        user.must_change_password = False
        admin_events.record(
            session, actor.username, admin_events.PASSWORD_CHANGED, now, username=user.username
        )
        _end_sessions_and_tokens(session, user, now, actor.username, "password changed")
        token = _add_token(ctx, session, user) if new_token else None
        return PasswordChanged(Account(actor_of(user), False), token)


def reset_password(ctx: ServiceContext, by: Actor, username: str) -> str:
    """An administrator sets a temporary password, returned once: the user must choose a
    new one at the next sign-in. Ends the user's sessions and revokes their API tokens."""
    if "admin" not in by.roles:
        raise Forbidden("only an administrator resets passwords")
    temporary = generate_password(username)
    password_hash = hash_password(temporary)
    with ctx.db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise Invalid("unknown user", {"username": "no such user"})
        now = ctx.now()
        user.password_hash = password_hash
        user.password_changed_at = now
        user.must_change_password = True
        admin_events.record(
            session, by.username, admin_events.PASSWORD_RESET, now, username=user.username
        )
        _end_sessions_and_tokens(session, user, now, by.username, "password reset")
    return temporary


def generate_password(username: str) -> str:
    """A random password that meets the policy (temporary and demo passwords)."""
    while True:  # a random 16 characters nearly always passes the first time
        candidate = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
        if not password_problems(candidate, username):
            return candidate


def issue_token(ctx: ServiceContext, username: str, password: str) -> IssuedToken:
    return issue_token_for_account(ctx, username, password)[0]


def issue_token_for_account(
    ctx: ServiceContext, username: str, password: str
) -> tuple[IssuedToken, Account]:
    """The password is checked before the write, which only stores the token if the
    user is still active with the password that was checked."""
    verified = _verify(ctx, username, password)
    if verified is None:
        raise Unauthorized("wrong username or password")
    with ctx.db.write() as session:
        user = session.get(User, verified.account.actor.id)
        if user is None or not user.active or user.password_hash != verified.password_hash:
            raise Unauthorized("wrong username or password")
        account = Account(actor_of(user), user.must_change_password)
        return _add_token(ctx, session, user), account


def _add_token(ctx: ServiceContext, session: Session, user: User) -> IssuedToken:
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
    admin_events.record(
        session,
        user.username,
        admin_events.TOKEN_ISSUED,
        now,
        username=user.username,
        expires_at=expires_at.isoformat(),
    )
    return IssuedToken(token=token, expires_at=expires_at)


PASSWORD_CHANGE_FIRST = "change your password first: POST /api/v1/auth/password"


def actor_for_token(ctx: ServiceContext, token: str, *, password_change: bool = False) -> Actor:
    """One query per request: the token, its user and the user's roles. A user whose
    password was reset may use the token only to change it (`password_change`)."""
    with ctx.db.read_connection() as connection:
        rows = connection.execute(
            select(
                ApiToken.expires_at,
                ApiToken.revoked_at,
                User.id,
                User.username,
                User.active,
                User.must_change_password,
                User.vendor_org,
                UserRole.role,
            )
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .where(ApiToken.token_hash == _token_hash(token))
        ).all()
    if not rows:
        raise Unauthorized("unknown token")
    expires_at, revoked_at, user_id, username, active, must_change, vendor_org, _ = rows[0]
    if revoked_at is not None or expires_at <= ctx.now():
        raise Unauthorized("token expired or revoked")
    if not active:
        raise Unauthorized("user deactivated")
    if must_change and not password_change:
        raise Forbidden(PASSWORD_CHANGE_FIRST)
    return Actor(
        id=user_id,
        username=username,
        roles=frozenset(r[7] for r in rows if r[7]),
        vendor_org=vendor_org,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
