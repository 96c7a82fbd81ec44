"""The user administration pages (admin role only)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.services.context import ServiceContext
from engine.services.people import users
from tests.conftest import PASSWORD, Browser

PAGE = "/admin/users"
NEW_PASSWORD = "a long enough secret"


def _user(ctx: ServiceContext, username: str) -> dict[str, Any] | None:
    return next((u for u in users.list_users(ctx) if u["username"] == username), None)


@pytest.fixture
def admin(browser: Browser) -> Browser:
    browser.login("admin")
    # The assertions read English text; Traditional Chinese is the default.
    assert browser.post("/language", {"locale": "en"}).status_code == 302
    return browser


def _sign_in(app: Any, username: str, password: str = PASSWORD) -> Any:
    """Another browser: the response to its sign-in attempt, and the browser."""
    other = Browser(app)
    token = other.csrf_token("/login")
    # `next` keeps this independent of the role's home page.
    response = other.client.post(
        f"/login?next={PAGE}",
        data={"username": username, "password": password, "csrf_token": token},
    )
    return response, other


def test_page_lists_users_with_translated_roles(admin: Browser) -> None:
    page = admin.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for username in ("reporter", "desk", "l2", "designer", "admin"):
        assert f">{username}" in html
    assert "Service desk" in html and "Level-2 engineer" in html and "Administrator" in html
    assert 'name="csrf_token"' in html
    # The nav links here for an admin.
    assert f'href="{PAGE}"' in html


def test_admin_creates_user_with_two_roles_who_can_sign_in(
    admin: Browser, ctx: ServiceContext, app: Any, api: Any
) -> None:
    response = admin.post(
        PAGE,
        {
            "username": "alice",
            "display_name": "Alice Chen",
            "password": NEW_PASSWORD,
            "roles": ["service_desk", "incident_manager"],
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    page = admin.get(PAGE).get_data(as_text=True)
    assert "User alice created." in page
    assert "Alice Chen" in page
    assert _user(ctx, "alice") == {
        "username": "alice",
        "display_name": "Alice Chen",
        "roles": ["incident_manager", "service_desk"],
        "active": True,
        "email": None,
        "language": "zh_Hant_TW",
    }
    signed_in, _ = _sign_in(app, "alice", NEW_PASSWORD)
    assert signed_in.status_code == 302
    token = api.client.post(
        "/api/v1/auth/token", json={"username": "alice", "password": NEW_PASSWORD}
    )
    assert token.status_code == 200


def test_duplicate_username_is_refused_and_values_kept(
    admin: Browser, ctx: ServiceContext
) -> None:
    before = users.list_users(ctx)
    response = admin.post(
        PAGE,
        {"username": "desk", "display_name": "Another desk", "password": NEW_PASSWORD,
         "roles": ["level2"]},
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "This username is already taken." in html
    assert 'value="Another desk"' in html
    assert NEW_PASSWORD not in html
    assert users.list_users(ctx) == before


def test_invalid_values_rerender_with_messages_and_typed_values(
    admin: Browser, ctx: ServiceContext
) -> None:
    response = admin.post(
        PAGE,
        {"username": "bad name!", "display_name": "Bob", "password": "short", "roles": []},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Use 1 to 80 letters, digits, &#39;.&#39;, &#39;_&#39; or &#39;-&#39;." in html
    assert "Use at least 12 characters." in html
    assert "Choose at least one role." in html
    assert 'value="bad name!"' in html and 'value="Bob"' in html
    assert "short" not in html
    assert html.count('class="field invalid"') >= 2

    # A checked role stays checked; an unknown one is refused.
    response = admin.post(
        PAGE,
        {"username": "bob", "password": NEW_PASSWORD, "roles": ["level3", "superuser"]},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Choose only roles from the list." in html
    assert 'value="level3"\n                    checked' in html
    assert _user(ctx, "bob") is None

    long_name = "x" * 201
    response = admin.post(
        PAGE, {"username": "bob", "display_name": long_name, "password": NEW_PASSWORD,
               "roles": ["level3"]},
    )
    assert response.status_code == 422
    assert _user(ctx, "bob") is None


def test_roles_changed_take_effect(admin: Browser, app: Any, api: Any, ctx: ServiceContext) -> None:
    # The designer becomes an admin too: the page opens for them.
    _, designer = _sign_in(app, "designer")
    assert designer.get(PAGE).status_code == 403
    response = admin.post(f"{PAGE}/designer/roles", {"roles": ["designer", "admin"]})
    assert response.status_code == 302
    assert "Roles of designer changed." in admin.get(PAGE).get_data(as_text=True)
    assert designer.get(PAGE).status_code == 200
    assert _user(ctx, "designer")["roles"] == ["admin", "designer"]  # type: ignore[index]

    # The desk agent becomes a reporter only: staff-only API calls stop working at once.
    assert api.get("desk", "/process-definitions").status_code == 200
    assert admin.post(f"{PAGE}/desk/roles", {"roles": ["reporter"]}).status_code == 302
    assert api.get("desk", "/process-definitions").status_code == 403


def test_roles_cannot_be_emptied_or_unknown(admin: Browser, ctx: ServiceContext) -> None:
    response = admin.post(f"{PAGE}/l2/roles", {})
    assert response.status_code == 422
    assert "Choose at least one role." in response.get_data(as_text=True)
    response = admin.post(f"{PAGE}/l2/roles", {"roles": ["level2", "wizard"]})
    assert response.status_code == 422
    assert "Choose only roles from the list." in response.get_data(as_text=True)
    assert _user(ctx, "l2")["roles"] == ["level2"]  # type: ignore[index]
    assert admin.post(f"{PAGE}/nobody/roles", {"roles": ["level2"]}).status_code == 404


def test_admin_keeps_own_admin_role(admin: Browser, ctx: ServiceContext) -> None:
    response = admin.post(f"{PAGE}/admin/roles", {"roles": ["designer"]})
    assert response.status_code == 422
    assert "You cannot remove your own administrator role." in response.get_data(as_text=True)
    assert _user(ctx, "admin")["roles"] == ["admin"]  # type: ignore[index]


def test_deactivate_ends_sessions_and_tokens(
    admin: Browser, app: Any, api: Any, ctx: ServiceContext
) -> None:
    _, desk = _sign_in(app, "desk")
    # Signed in: a page the desk agent may not open says 403, not "sign in".
    assert desk.get(PAGE).status_code == 403
    assert api.get("desk", "/incidents").status_code == 200

    response = admin.post(f"{PAGE}/desk/active", {"active": "0"})
    assert response.status_code == 302
    page = admin.get(PAGE).get_data(as_text=True)
    assert "desk was deactivated" in page
    assert "Deactivated" in page and "Reactivate" in page
    assert _user(ctx, "desk")["active"] is False  # type: ignore[index]

    # The next request of the old session is anonymous.
    signed_out = desk.get(PAGE)
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert api.get("desk", "/incidents").status_code == 401
    refused, _ = _sign_in(app, "desk")
    assert refused.status_code == 401

    # Reactivated: the user signs in again, but revoked tokens stay revoked.
    assert admin.post(f"{PAGE}/desk/active", {"active": "1"}).status_code == 302
    assert "desk can sign in again." in admin.get(PAGE).get_data(as_text=True)
    again, _ = _sign_in(app, "desk")
    assert again.status_code == 302
    assert api.get("desk", "/incidents").status_code == 401


def test_admin_cannot_deactivate_themself(admin: Browser, ctx: ServiceContext) -> None:
    page = admin.get(PAGE).get_data(as_text=True)
    assert f'action="{PAGE}/admin/active"' not in page  # no button for oneself
    response = admin.post(f"{PAGE}/admin/active", {"active": "0"})
    assert response.status_code == 422
    assert "You cannot deactivate yourself." in response.get_data(as_text=True)
    assert _user(ctx, "admin")["active"] is True  # type: ignore[index]
    assert admin.get(PAGE).status_code == 200


def test_bad_active_value_and_unknown_user(admin: Browser) -> None:
    assert admin.post(f"{PAGE}/desk/active", {"active": "maybe"}).status_code == 400
    assert admin.post(f"{PAGE}/nobody/active", {"active": "0"}).status_code == 404


@pytest.mark.parametrize("username", ["desk", "designer", "reporter"])
def test_non_admins_get_403(app: Any, ctx: ServiceContext, username: str) -> None:
    _, browser = _sign_in(app, username)
    before = users.list_users(ctx)
    assert browser.get(PAGE).status_code == 403
    create = browser.post(
        PAGE, {"username": "mallory", "password": NEW_PASSWORD, "roles": ["admin"]}
    )
    assert create.status_code == 403
    assert browser.post(f"{PAGE}/{username}/roles", {"roles": ["admin"]}).status_code == 403
    assert browser.post(f"{PAGE}/l2/active", {"active": "0"}).status_code == 403
    assert users.list_users(ctx) == before


def test_anonymous_is_sent_to_sign_in(browser: Browser) -> None:
    response = browser.get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_post_without_csrf_is_400_and_changes_nothing(
    admin: Browser, ctx: ServiceContext
) -> None:
    before = users.list_users(ctx)
    create = admin.post(
        PAGE, {"username": "eve", "password": NEW_PASSWORD, "roles": ["level2"]},
        with_csrf=False,
    )
    assert create.status_code == 400
    assert admin.post(f"{PAGE}/l2/roles", {"roles": ["admin"]}, with_csrf=False).status_code == 400
    assert admin.post(f"{PAGE}/l2/active", {"active": "0"}, with_csrf=False).status_code == 400
    bad = admin.post(
        f"{PAGE}/l2/active", {"active": "0", "csrf_token": "forged"}, with_csrf=False
    )
    assert bad.status_code == 400
    assert users.list_users(ctx) == before


def test_display_name_is_escaped(admin: Browser, app: Any) -> None:
    evil = "<script>alert(1)</script>"
    response = admin.post(
        PAGE, {"username": "xss", "display_name": evil, "password": NEW_PASSWORD,
               "roles": ["reporter"]},
    )
    assert response.status_code == 302
    html = admin.get(PAGE).get_data(as_text=True)
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    # Kept in the form after an error: escaped inside the attribute too.
    error = admin.post(
        PAGE, {"username": "xss", "display_name": evil, "password": NEW_PASSWORD,
               "roles": ["reporter"]},
    )
    assert error.status_code == 409
    assert evil not in error.get_data(as_text=True)

    # And in the header of that user's own pages.
    _, xss = _sign_in(app, "xss", NEW_PASSWORD)
    assert evil not in xss.get("/login").get_data(as_text=True)


def test_reactivation_does_not_revive_an_old_session(admin: Browser, app: Any) -> None:
    _, desk = _sign_in(app, "desk")
    assert desk.get(PAGE).status_code == 403
    admin.post(f"{PAGE}/desk/active", {"active": "0"})
    admin.post(f"{PAGE}/desk/active", {"active": "1"})
    response = desk.get(PAGE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
