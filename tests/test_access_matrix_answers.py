"""The caller's pages × every role: who may answer, revoke and open a link's page."""

from __future__ import annotations

from typing import Any

from engine.persistence.models import Incident
from engine.services.context import ServiceContext
from engine.services.incidents.caller_links import caller_link
from tests.conftest import Browser
from tests.scenario import Scenario
from tests.test_ui_access_matrix import HANDLERS, ROLES_BY_USER

REFUSED = {403, 404}


def resolved(api: Any) -> Scenario:
    scenario = Scenario(api)  # reported by `reporter`: the caller
    scenario.record()
    scenario.desk_resolves()
    return scenario


def status(app: Any, user: str | None, path: str, data: dict[str, str]) -> int:
    browser = Browser(app)
    if user is not None:
        browser.login(user)
    return int(browser.post(path, data, csrf_from="/login").status_code)


def test_only_the_caller_answers_confirmation_and_survey(app: Any, api: Any) -> None:
    scenario = resolved(api)
    form = {"incident_id": str(scenario.id)}
    for task, path, data in (
        ("confirm_recovery", f"/incidents/{scenario.id}/confirmation", {"recovered": "true"}),
        ("record_feedback", f"/incidents/{scenario.id}/survey", {"satisfaction": "5"}),
    ):
        assert scenario.open_tasks() == [task]
        # Everyone else first: each is refused and the task stays open.
        for user in ROLES_BY_USER:
            if user == "reporter":
                continue
            code = status(app, user, path, {**form, **data})
            assert code in REFUSED, (path, user, code)
            assert scenario.open_tasks() == [task], (path, user)
        assert status(app, None, path, {**form, **data}) == 302  # to sign in
        assert status(app, "reporter2", path, {**form, **data}) == 404
        assert status(app, "reporter", path, {**form, **data}) == 303
        assert scenario.open_tasks() != [task]
    assert scenario.refresh()["status"] == "closed"


def test_only_handlers_revoke_the_callers_links(app: Any, api: Any) -> None:
    scenario = resolved(api)
    path = f"/incidents/{scenario.id}/caller-links/revoke"
    revokes = 0
    for user in ROLES_BY_USER:
        code = status(app, user, path, {})
        if user in HANDLERS:
            assert code == 303, (user, code)
            revokes += 1
        else:
            assert code in REFUSED, (user, code)
    versions = [
        e["version"] for e in scenario.refresh()["events"] if e["type"] == "caller_links_revoked"
    ]
    assert versions == list(range(2, 2 + revokes))
    assert status(app, None, path, {}) == 302


def test_a_links_page_opens_for_its_holder_whoever_is_signed_in(
    app: Any, api: Any, ctx: ServiceContext
) -> None:
    created = api.ok(
        api.post(
            "desk",
            "/incidents",
            {"title": "Badge reader", "channel": "phone", "caller_email": "c@example.org"},
        ),
        201,
    )
    with ctx.db.read() as session:
        incident = session.get(Incident, created["id"])
        assert incident is not None
        url = caller_link(ctx, incident, "c@example.org", ctx.now())
    path = url[len(ctx.channels.base_url) :]
    for user in [None, *ROLES_BY_USER]:
        browser = Browser(app)
        if user is not None:
            browser.login(user)
        assert browser.get("/c/incident").status_code == 403, user  # no link opened
        assert browser.get(path).status_code == 303, user
        assert browser.get("/c/incident").status_code == 200, user


def test_the_api_answers_only_for_the_caller(api: Any) -> None:
    scenario = resolved(api)
    for task, path, body in (
        ("confirm_recovery", f"/incidents/{scenario.id}/confirmation", {"recovered": True}),
        ("record_feedback", f"/incidents/{scenario.id}/survey", {"satisfaction": "4"}),
    ):
        for user in [*ROLES_BY_USER, "reporter2"]:
            if user == "reporter":
                continue
            code = api.post(user, path, body).status_code
            assert code in REFUSED, (path, user, code)
        assert api.post(None, path, body).status_code == 401
        assert scenario.open_tasks() == [task]
        api.ok(api.post("reporter", path, body))
    assert scenario.refresh()["status"] == "closed"
