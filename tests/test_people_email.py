"""Users' e-mail addresses and languages (contract Part 2): the command line, the
admin page, the API, and the user's own preferences."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.models import AdminEvent, User
from engine.services.errors import Conflict, Invalid
from engine.services.people import profiles, users
from tests.conftest import PASSWORD, Browser
from tests.servers import ROOT


def itsm(*args: str, database_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ITSM_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def user_row(ctx: Any, username: str) -> User:
    with ctx.db.read() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        session.expunge(user)
        return user


def test_cli_creates_a_user_with_email_and_language(ctx: Any, database_url: str) -> None:
    result = itsm(
        "user", "create", "mei", "--role", "reporter", "--email", "Mei@Example.COM",
        "--language", "en", database_url=database_url, stdin="a long password\n",
    )
    assert result.returncode == 0, result.stderr
    row = user_row(ctx, "mei")
    assert (row.email, row.locale) == ("mei@example.com", "en")
    # The same address for another user: refused, naming the field.
    again = itsm(
        "user", "create", "mei2", "--role", "reporter", "--email", "MEI@example.com",
        database_url=database_url, stdin="a long password\n",
    )
    assert again.returncode == 2 and "email" in again.stderr
    bad = itsm(
        "user", "create", "mei3", "--role", "reporter", "--email", "mei at example",
        database_url=database_url, stdin="a long password\n",
    )
    assert bad.returncode == 2 and "email" in bad.stderr
    language = itsm(
        "user", "create", "mei4", "--role", "reporter", "--language", "fr",
        database_url=database_url, stdin="a long password\n",
    )
    assert language.returncode == 2 and "--language" in language.stderr


def test_default_language_is_traditional_chinese_and_no_address(ctx: Any) -> None:
    users.create_user(ctx, "plain", PASSWORD, ["reporter"])
    row = user_row(ctx, "plain")
    assert (row.email, row.locale, row.notify_task_ready) == (None, "zh_Hant_TW", True)


@pytest.mark.parametrize(
    "address",
    ["no-at-sign", "a@b", "a b@example.com", "a@example..com", "@example.com", "a@-x.com",
     "x" * 250 + "@example.com", "a@example.com\nBcc: b@example.com"],
)
def test_bad_addresses_are_422_naming_email(ctx: Any, address: str) -> None:
    with pytest.raises(Invalid) as caught:
        users.create_user(ctx, "someone", PASSWORD, ["reporter"], email=address)
    assert "email" in caught.value.details


def test_duplicate_address_is_a_conflict_in_any_case(ctx: Any) -> None:
    users.create_user(ctx, "one", PASSWORD, ["reporter"], email="same@example.com")
    with pytest.raises(Conflict) as caught:
        users.create_user(ctx, "two", PASSWORD, ["reporter"], email="SAME@example.com")
    assert caught.value.details == {"email": profiles.TAKEN}
    with pytest.raises(Conflict):
        profiles.update_profile(ctx, "desk", email="Same@Example.com")


def test_api_me_shows_email_and_language(api: Any, ctx: Any) -> None:
    profiles.update_profile(ctx, "desk", email="desk@example.com", language="en")
    me = api.ok(api.get("desk", "/me"))
    assert (me["username"], me["email"], me["language"]) == ("desk", "desk@example.com", "en")
    assert me["notify_task_ready"] is True and me["roles"] == ["service_desk"]
    assert api.ok(api.get("reporter", "/me"))["language"] == "zh_Hant_TW"
    assert api.get(None, "/me").status_code == 401


def admin_browser(app: Any) -> Browser:
    browser = Browser(app)
    browser.login("admin")
    return browser


def test_admin_creates_a_user_with_email_and_language(app: Any, ctx: Any) -> None:
    browser = admin_browser(app)
    form = {
        "username": "lin", "display_name": "Lin", "password": "a long password",
        "roles": ["reporter"], "email": "Lin@example.com", "language": "en",
    }
    response = browser.post("/admin/users", form, csrf_from="/admin/users")
    assert response.status_code == 302
    row = user_row(ctx, "lin")
    assert (row.email, row.locale) == ("lin@example.com", "en")
    taken = browser.post(
        "/admin/users", {**form, "username": "lin2"}, csrf_from="/admin/users"
    )
    assert taken.status_code == 409
    assert 'id="new-email-message"' in taken.get_data(as_text=True)
    bad = browser.post(
        "/admin/users", {**form, "username": "lin3", "email": "lin"}, csrf_from="/admin/users"
    )
    assert bad.status_code == 422 and 'id="new-email-message"' in bad.get_data(as_text=True)
    assert not users.user_exists(ctx, "lin2") and not users.user_exists(ctx, "lin3")


def test_admin_edits_email_and_language(app: Any, ctx: Any) -> None:
    browser = admin_browser(app)
    page = browser.get("/admin/users").get_data(as_text=True)
    assert 'action="/admin/users/desk/profile"' in page
    response = browser.post(
        "/admin/users/desk/profile",
        {"email": "Desk@Example.com", "language": "en"},
        csrf_from="/admin/users",
    )
    assert response.status_code == 302
    row = user_row(ctx, "desk")
    assert (row.email, row.locale) == ("desk@example.com", "en")
    assert "desk@example.com" in browser.get("/admin/users").get_data(as_text=True)
    with ctx.db.read() as session:
        event = session.scalars(
            select(AdminEvent).where(AdminEvent.type == "user_profile_changed")
        ).one()
        assert event.actor == "admin"
        assert event.data["changes"] == {
            "email": [None, "desk@example.com"],
            "language": ["zh_Hant_TW", "en"],
        }
    # Someone else's address: 409, marked on that row; a bad one: 422.
    users.create_user(ctx, "other", PASSWORD, ["reporter"], email="other@example.com")
    taken = browser.post(
        "/admin/users/desk/profile",
        {"email": "other@example.com", "language": "en"},
        csrf_from="/admin/users",
    )
    assert taken.status_code == 409
    bad = browser.post(
        "/admin/users/desk/profile", {"email": "x", "language": "de"}, csrf_from="/admin/users"
    )
    assert bad.status_code == 422
    # Emptying the address removes it.
    browser.post("/admin/users/desk/profile", {"email": "", "language": "en"},
                 csrf_from="/admin/users")
    assert user_row(ctx, "desk").email is None
    # Unknown user: 404; not an admin: 403.
    assert browser.post(
        "/admin/users/ghost/profile", {"email": ""}, csrf_from="/admin/users"
    ).status_code == 404
    desk = Browser(app)
    desk.login("desk")
    assert desk.post(
        "/admin/users/desk/profile", {"email": "me@example.com", "language": "en"},
        csrf_from="/incidents",
    ).status_code == 403


def test_user_turns_off_task_ready_mail_and_changes_language(app: Any, ctx: Any) -> None:
    browser = Browser(app)
    browser.login("l2")
    page = browser.get("/preferences").get_data(as_text=True)
    assert 'name="notify_task_ready"' in page and "checked" in page
    response = browser.post(
        "/preferences", {"language": "en"}, csrf_from="/preferences"
    )
    assert response.status_code == 302
    row = user_row(ctx, "l2")
    assert (row.notify_task_ready, row.locale) == (False, "en")
    assert "Preferences" in browser.get("/preferences").get_data(as_text=True)
    browser.post(
        "/preferences", {"language": "en", "notify_task_ready": "1"}, csrf_from="/preferences"
    )
    assert user_row(ctx, "l2").notify_task_ready is True
    bad = browser.post("/preferences", {"language": "xx"}, csrf_from="/preferences")
    assert bad.status_code == 422
    assert user_row(ctx, "l2").notify_task_ready is True
    assert browser.post(
        "/preferences", {"language": "en"}, with_csrf=False
    ).status_code == 400
    assert Browser(app).get("/preferences").status_code in (302, 401)
