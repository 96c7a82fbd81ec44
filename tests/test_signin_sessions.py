"""Signing out, changing and resetting a password end sessions; sign-in rotates CSRF."""

from __future__ import annotations

import re
from typing import Any

from alembic import command
from sqlalchemy import inspect

from engine.persistence.migrate import alembic_config
from engine.services.context import ServiceContext
from engine.services.people import users
from tests.conftest import PASSWORD, Browser

NEW = "a brand new passphrase"


def _session_cookie(browser: Browser) -> str:
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)


def _replay(app: Any, cookie: str) -> Browser:
    thief = Browser(app)
    thief.client.set_cookie("session", cookie)
    return thief


def _signed_out(response: Any) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_copied_cookie_is_refused_after_sign_out(app: Any) -> None:
    browser = Browser(app)
    browser.login("desk")
    copied = _session_cookie(browser)
    assert _replay(app, copied).get("/tasks").status_code == 200  # the copy works ...
    assert browser.post("/logout", {}).status_code == 302
    assert _signed_out(browser.get("/tasks"))
    # ... until the owner signs out: then the copy is anonymous too.
    assert _signed_out(_replay(app, copied).get("/tasks"))


def test_the_csrf_token_changes_at_sign_in(app: Any) -> None:
    browser = Browser(app)
    before = browser.csrf_token("/login")
    with browser.client.session_transaction() as session:
        raw_before = session["csrf_token"]
    browser.login("desk")
    with browser.client.session_transaction() as session:
        assert session.get("csrf_token") != raw_before
    # A token planted before sign-in no longer works after it.
    planted = browser.client.post(
        "/language", data={"locale": "en", "next": "/tasks", "csrf_token": before}
    )
    assert planted.status_code == 400
    after = browser.csrf_token("/tasks")
    assert after != before
    fresh = browser.client.post(
        "/language", data={"locale": "en", "next": "/tasks", "csrf_token": after}
    )
    assert fresh.status_code == 302


def test_changing_the_password_ends_other_sessions_and_tokens(
    app: Any, api: Any, ctx: ServiceContext
) -> None:
    here, elsewhere = Browser(app), Browser(app)
    here.login("desk")
    elsewhere.login("desk")
    page = here.get("/account/password")
    assert page.status_code == 200 and 'name="current_password"' in page.get_data(as_text=True)
    changed = here.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW, "confirm_password": NEW},
        csrf_from="/account/password",
    )
    assert changed.status_code == 302
    assert here.get("/tasks").status_code == 200  # the session that changed it goes on
    assert _signed_out(elsewhere.get("/tasks"))
    assert api.get("desk", "/tasks").status_code == 401  # the template's token is revoked
    assert users.sign_in(ctx, "desk", NEW).username == "desk"
    old = api.client.post("/api/v1/auth/token", json={"username": "desk", "password": PASSWORD})
    assert old.status_code == 401


def test_the_change_page_explains_what_is_wrong(app: Any, ctx: ServiceContext) -> None:
    me = users.sign_in(ctx, "desk", PASSWORD)
    users.set_locale(ctx, me, "en")
    browser = Browser(app)
    browser.login("desk")

    def change(current: str, new: str, confirm: str | None = None) -> Any:
        return browser.post(
            "/account/password",
            {
                "current_password": current,
                "new_password": new,
                "confirm_password": new if confirm is None else confirm,
            },
            csrf_from="/account/password",
        )

    cases = [
        (change("wrong password here", NEW), "This is not your current password."),
        (change(PASSWORD, " " * 12), "A password cannot be only spaces."),
        (change(PASSWORD, "short"), "Use at least 12 characters."),
        (change(PASSWORD, "desk-desk-2026-x"), "Do not use the username in the password."),
        (change(PASSWORD, "1qaz2wsx3edc"), "This is a commonly used password; choose another."),
        (change(PASSWORD, "aaaaaaaaaaaaaaa"), "easy to guess"),
        (change(PASSWORD, PASSWORD), "Choose a password different from the current one."),
        (change(PASSWORD, NEW, "something else"), "The two new passwords differ."),
    ]
    for response, message in cases:
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert users.sign_in(ctx, "desk", PASSWORD).username == "desk"  # unchanged


def test_api_password_change_returns_a_new_token(api: Any, ctx: ServiceContext) -> None:
    weak = api.post("desk", "/auth/password", {"current_password": PASSWORD, "new_password": "x"})
    assert weak.status_code == 422 and set(weak.get_json()["details"]) == {"new_password"}
    wrong = api.post("desk", "/auth/password", {"current_password": "nope", "new_password": NEW})
    assert wrong.status_code == 422
    assert set(wrong.get_json()["details"]) == {"current_password"}
    missing = api.post("desk", "/auth/password", {"new_password": NEW})
    assert missing.status_code == 422
    assert api.post(None, "/auth/password", {}).status_code == 401

    ok = api.post("desk", "/auth/password", {"current_password": PASSWORD, "new_password": NEW})
    assert ok.status_code == 200
    fresh = ok.get_json()["token"]
    assert api.get("desk", "/tasks").status_code == 401
    headers = {"Authorization": f"Bearer {fresh}"}
    assert api.client.get("/api/v1/tasks", headers=headers).status_code == 200


def _admin(app: Any, ctx: ServiceContext) -> Browser:
    users.set_locale(ctx, users.sign_in(ctx, "admin", PASSWORD), "en")
    admin = Browser(app)
    admin.login("admin")
    return admin


def test_admin_reset_forces_a_new_password_before_anything_else(
    app: Any, api: Any, ctx: ServiceContext
) -> None:
    desk = Browser(app)
    desk.login("desk")
    admin = _admin(app, ctx)
    response = admin.post("/admin/users/desk/password", {}, csrf_from="/admin/users")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    found = re.search(r'<code class="temporary-password">([^<]+)</code>', html)
    assert found and "Temporary password for desk" in html
    temporary = found.group(1)
    assert "Must change password" in admin.get("/admin/users").get_data(as_text=True)

    # The reset ended desk's session and revoked the API token.
    assert _signed_out(desk.get("/tasks"))
    assert api.get("desk", "/tasks").status_code == 401

    # Signed in with the temporary password: every page leads to the change page.
    signed_in = desk.login("desk", temporary)
    assert signed_in.headers["Location"].endswith("/account/password")
    for path in ("/tasks", "/incidents", "/"):
        moved = desk.get(path)
        assert moved.status_code == 302 and moved.headers["Location"].endswith(
            "/account/password"
        )
    posted = desk.post("/incidents/new", {"title": "x"}, csrf_from="/account/password")
    assert posted.status_code == 302 and posted.headers["Location"].endswith("/account/password")

    # An API token for desk works for the password change only.
    issued = api.client.post(
        "/api/v1/auth/token", json={"username": "desk", "password": temporary}
    ).get_json()
    assert issued["must_change_password"] is True
    headers = {"Authorization": f"Bearer {issued['token']}"}
    refused = api.client.get("/api/v1/tasks", headers=headers)
    assert refused.status_code == 403 and "change your password" in refused.get_json()["error"]

    changed = desk.post(
        "/account/password",
        {"current_password": temporary, "new_password": NEW, "confirm_password": NEW},
        csrf_from="/account/password",
    )
    assert changed.status_code == 302
    assert desk.get("/tasks").status_code == 200
    assert api.client.get("/api/v1/tasks", headers=headers).status_code == 401  # revoked
    assert "Must change password" not in admin.get("/admin/users").get_data(as_text=True)


def test_api_user_changes_a_reset_password_with_the_token(api: Any, ctx: ServiceContext) -> None:
    temporary = users.reset_password(ctx, users.sign_in(ctx, "admin", PASSWORD), "l2")
    token = api.client.post(
        "/api/v1/auth/token", json={"username": "l2", "password": temporary}
    ).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    changed = api.client.post(
        "/api/v1/auth/password",
        json={"current_password": temporary, "new_password": NEW},
        headers=headers,
    )
    assert changed.status_code == 200
    fresh = {"Authorization": f"Bearer {changed.get_json()['token']}"}
    assert api.client.get("/api/v1/tasks", headers=fresh).status_code == 200


def test_reset_is_for_admins_and_not_for_oneself(app: Any, ctx: ServiceContext) -> None:
    admin = _admin(app, ctx)
    own = admin.post("/admin/users/admin/password", {}, csrf_from="/admin/users")
    assert own.status_code == 422
    assert "Change your own password on the Change password page." in own.get_data(as_text=True)
    unknown = admin.post("/admin/users/nobody/password", {}, csrf_from="/admin/users")
    assert unknown.status_code == 404
    desk = Browser(app)
    desk.login("desk")
    assert desk.post("/admin/users/l2/password", {}, csrf_from="/tasks").status_code == 403
    assert users.sign_in(ctx, "l2", PASSWORD).username == "l2"  # untouched
    no_csrf = admin.post("/admin/users/l2/password", {}, with_csrf=False)
    assert no_csrf.status_code == 400


def test_migration_0008_downgrades_and_upgrades(ctx: ServiceContext) -> None:
    config = alembic_config()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    columns = {c["name"] for c in inspect(ctx.db.engine).get_columns("users")}
    assert "must_change_password" not in columns and "password_changed_at" not in columns
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    columns = {c["name"] for c in inspect(ctx.db.engine).get_columns("users")}
    assert {"must_change_password", "password_changed_at"} <= columns
    assert users.sign_in(ctx, "desk", PASSWORD).username == "desk"
