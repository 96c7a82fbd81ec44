"""Signed caller links in the browser, and the portal's answers for a signed-in caller."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest

from engine.domain.caller_link import link_key, make_token, refusal
from engine.persistence.models import Incident, Note, User
from engine.services.context import ServiceContext
from engine.services.incidents.caller_links import caller_link, caller_link_in
from engine.services.incidents.timers import fire_due
from tests.conftest import Api, Browser, TestClock
from tests.scenario import Scenario
from web.logs import make_handler

ADDRESS = "Ann.Caller@Example.org"


def for_caller(api: Api, **caller: str) -> Scenario:
    """An incident the desk took by phone for a caller, recorded and resolved."""
    body = {"title": "VPN drops", "channel": "phone", **caller}
    created = api.ok(api.post("desk", "/incidents", body), 201)
    scenario = Scenario.__new__(Scenario)
    scenario.api, scenario.id, scenario.incident = api, created["id"], created
    scenario.record()
    scenario.desk_resolves()
    return scenario


def link_for(ctx: ServiceContext, incident_id: int, address: str = ADDRESS, **kw: Any) -> str:
    with ctx.db.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        url = caller_link(ctx, incident, address, ctx.now(), **kw)
    assert url.startswith(ctx.channels.base_url + "/c/")
    return url[len(ctx.channels.base_url) :]


def refused_reason(response: Any, *, token_in_url: bool = False) -> str:
    assert response.status_code == 403, response.data[:300]
    if token_in_url:  # the page's own URL holds the token: never sent on
        assert response.headers["Referrer-Policy"] == "no-referrer"
    match = re.search(rb'data-reason="([a-z_]+)"', response.data)
    assert match, response.data[:500]
    return match.group(1).decode()


def opened(browser: Browser, path: str) -> Any:
    response = browser.get(path)
    assert response.status_code == 303, response.data[:300]
    return response


@pytest.fixture
def scenario(api: Api) -> Scenario:
    return for_caller(api, caller_email=ADDRESS.lower())


def test_the_link_is_swapped_for_a_session_and_a_clean_url(
    ctx: ServiceContext, browser: Browser, scenario: Scenario
) -> None:
    path = link_for(ctx, scenario.id, next_path="confirmation")
    token = path.split("/c/", 1)[1].split("?", 1)[0]
    response = opened(browser, path)
    assert response.headers["Location"] == "/c/incident#confirmation"
    assert token not in response.headers["Location"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = browser.get("/c/incident")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert scenario.incident["number"] in text
    assert "Restarted the service" in text  # the resolution
    assert token not in text
    assert 'name="recovered" value="true"' in text and "checked" not in text


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: "9" + t,  # another incident id, same signature
        lambda t: t.split(".")[0] + ".2." + ".".join(t.split(".")[2:]),  # a later version
        lambda t: "not-a-token",
        lambda t: t + "." + t,
    ],
)
def test_a_tampered_link_is_refused(
    ctx: ServiceContext, browser: Browser, scenario: Scenario, spoil: Any
) -> None:
    token = link_for(ctx, scenario.id).split("/c/", 1)[1]
    assert refused_reason(browser.get(f"/c/{spoil(token)}"), token_in_url=True) == "tampered"
    assert refused_reason(browser.get("/c/incident")) == "missing"


def test_a_link_for_another_address_is_refused(
    ctx: ServiceContext, browser: Browser, scenario: Scenario
) -> None:
    assert refused_reason(browser.get(link_for(ctx, scenario.id, "mallory@example.org"))) == (
        "tampered"
    )


def test_the_link_expires_after_30_days(
    ctx: ServiceContext, browser: Browser, scenario: Scenario, clock: TestClock
) -> None:
    path = link_for(ctx, scenario.id)
    clock.advance(days=29, hours=23)
    opened(browser, path)
    assert browser.get("/c/incident").status_code == 200
    clock.advance(hours=1)
    assert refused_reason(browser.get("/c/incident")) == "expired"
    fresh = Browser(browser.client.application)
    assert refused_reason(fresh.get(path), token_in_url=True) == "expired"


def test_revoking_ends_links_and_their_sessions(
    app: Any, ctx: ServiceContext, browser: Browser, scenario: Scenario, api: Api
) -> None:
    path = link_for(ctx, scenario.id)
    opened(browser, path)
    desk = Browser(app)
    desk.login("desk")
    page = f"/incidents/{scenario.id}"
    assert f"/incidents/{scenario.id}/caller-links/revoke" in desk.get(page).get_data(as_text=True)
    response = desk.post(f"/incidents/{scenario.id}/caller-links/revoke", csrf_from=page)
    assert response.status_code == 303
    assert refused_reason(browser.get("/c/incident")) == "revoked"
    assert refused_reason(Browser(app).get(path), token_in_url=True) == "revoked"
    events = [e for e in scenario.refresh()["events"] if e["type"] == "caller_links_revoked"]
    assert [(e["actor"], e["version"]) for e in events] == [("desk", 2)]
    # A new link works again.
    opened(Browser(app), link_for(ctx, scenario.id))
    # Only the people who work incidents revoke.
    reporter = Browser(app)
    reporter.login("reporter")
    denied = reporter.post(f"/incidents/{scenario.id}/caller-links/revoke", csrf_from="/incidents")
    assert denied.status_code == 403


def test_the_link_session_notes_confirms_and_answers_the_survey(
    ctx: ServiceContext, browser: Browser, scenario: Scenario, api: Api
) -> None:
    opened(browser, link_for(ctx, scenario.id))
    form = {"incident_id": str(scenario.id)}
    note = browser.post(
        "/c/incident/notes", {**form, "text": "It dropped again at noon"}, csrf_from="/c/incident"
    )
    assert note.status_code == 303
    notes = api.ok(api.get("desk", f"/incidents/{scenario.id}/notes"))
    assert [(n["author"], n["text"]) for n in notes] == [
        (ADDRESS.lower(), "It dropped again at noon")
    ]
    # No choice made: asked again, nothing completed.
    blank = browser.post("/c/incident/confirmation", form, csrf_from="/c/incident")
    assert blank.status_code == 422
    assert 'id="recovered-error"' in blank.get_data(as_text=True)
    assert scenario.open_tasks() == ["confirm_recovery"]
    yes = browser.post(
        "/c/incident/confirmation",
        {**form, "recovered": "true", "comment": "Fine now"},
        csrf_from="/c/incident",
    )
    assert yes.status_code == 303 and yes.headers["Location"] == "/c/incident#answers"
    assert scenario.open_tasks() == ["record_feedback"]
    actors = [e["actor"] for e in scenario.refresh()["events"] if e["type"] == "task_completed"][
        -1:
    ]
    assert actors == [ADDRESS.lower()]
    page = browser.get("/c/incident").get_data(as_text=True)
    assert 'name="satisfaction" value="5"' in page
    bad = browser.post("/c/incident/survey", {**form, "satisfaction": "7"}, csrf_from="/c/incident")
    assert bad.status_code == 422
    survey = browser.post(
        "/c/incident/survey",
        {**form, "satisfaction": "5", "feedback": "Thanks"},
        csrf_from="/c/incident",
    )
    assert survey.status_code == 303
    assert scenario.refresh()["status"] == "closed"
    with ctx.db.read() as session:
        texts = [n.text for n in session.query(Note).filter_by(incident_id=scenario.id)]
    assert texts == ["It dropped again at noon", "Fine now"]


def test_the_link_session_needs_csrf(
    ctx: ServiceContext, browser: Browser, scenario: Scenario
) -> None:
    opened(browser, link_for(ctx, scenario.id))
    response = browser.post(
        "/c/incident/confirmation",
        {"incident_id": str(scenario.id), "recovered": "true"},
        with_csrf=False,
    )
    assert response.status_code == 400
    assert scenario.open_tasks() == ["confirm_recovery"]


def test_the_link_session_opens_no_other_incident(
    ctx: ServiceContext, browser: Browser, scenario: Scenario, api: Api
) -> None:
    other = for_caller(api, caller_email="bob@example.org")
    opened(browser, link_for(ctx, scenario.id))
    response = browser.post(
        "/c/incident/confirmation",
        {"incident_id": str(other.id), "recovered": "true"},
        csrf_from="/c/incident",
    )
    assert refused_reason(response) == "other_incident"
    assert other.open_tasks() == ["confirm_recovery"]
    # The pages of signed-in users stay closed to the link session.
    assert browser.get(f"/incidents/{other.id}").status_code == 302
    assert browser.get(f"/incidents/{scenario.id}").status_code == 302


def test_the_api_never_accepts_the_link_or_its_session(
    ctx: ServiceContext, browser: Browser, scenario: Scenario
) -> None:
    path = link_for(ctx, scenario.id)
    token = path.split("/c/", 1)[1]
    opened(browser, path)
    client = browser.client
    assert client.get(f"/api/v1/incidents/{scenario.id}").status_code == 401
    answer = client.post(f"/api/v1/incidents/{scenario.id}/confirmation", json={"recovered": True})
    assert answer.status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/incidents/{scenario.id}", headers=bearer).status_code == 401
    assert scenario.open_tasks() == ["confirm_recovery"]


def test_a_user_callers_link_acts_as_the_user(
    ctx: ServiceContext, browser: Browser, api: Api
) -> None:
    with ctx.db.write() as session:
        user = session.query(User).filter_by(username="reporter2").one()
        user.email = "r2@example.org"
    scenario = for_caller(api, caller="reporter2")
    opened(browser, link_for(ctx, scenario.id, "R2@example.org"))
    browser.post(
        "/c/incident/confirmation",
        {"incident_id": str(scenario.id), "recovered": "false"},
        csrf_from="/c/incident",
    )
    events = scenario.refresh()["events"]
    assert [e["actor"] for e in events if e.get("task") == "confirm_recovery"][-1] == "reporter2"
    assert "reopened" in [e["type"] for e in events]


def test_a_link_made_from_a_session_is_the_same_link(
    ctx: ServiceContext, scenario: Scenario
) -> None:
    with ctx.db.read() as session:
        incident = session.get(Incident, scenario.id)
        assert incident is not None
        from_ctx = caller_link(ctx, incident, ADDRESS, ctx.now(), "survey")
        from_session = caller_link_in(session, incident, ADDRESS, ctx.now(), "survey")
    assert from_session == from_ctx and from_ctx.endswith("?next=survey")


def test_the_link_key_is_derived_not_the_audit_key(ctx: ServiceContext) -> None:
    key = link_key(ctx.audit_key)
    assert key != ctx.audit_key and ctx.audit_key not in key
    now = ctx.now()
    token = make_token(ctx.audit_key, 5, "a@example.org", 1, now)
    assert refusal(key, token, address="a@example.org", current_version=1, now=now) == "tampered"
    good = make_token(key, 5, "a@example.org", 1, now)
    assert refusal(key, good, address="A@Example.org", current_version=1, now=now) is None


def test_the_token_is_never_logged() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.caller_link")
    logger.addHandler(make_handler("text", stream))
    logger.propagate = False
    try:
        logger.warning('"GET /c/%s?next=survey HTTP/1.1" 303', "12.1.1790000000.abcDEF-_x")
        logger.warning("GET /c/incident HTTP/1.1")
    finally:
        logger.handlers.clear()
    lines = stream.getvalue()
    assert "abcDEF" not in lines and "1790000000" not in lines
    assert "/c/[redacted]?next=survey" in lines
    assert "/c/incident HTTP" in lines


# -- the portal ------------------------------------------------------------------------


def test_the_signed_in_caller_answers_from_their_page(app: Any, api: Api, browser: Browser) -> None:
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_resolves()
    browser.login("reporter")
    page = f"/incidents/{scenario.id}"
    text = browser.get(page).get_data(as_text=True)
    assert 'name="recovered" value="true"' in text and 'name="recovered" value="false"' in text
    assert "checked" not in text.split('id="confirmation"', 1)[1].split("</form>", 1)[0]
    blank = browser.post(f"{page}/confirmation", {"incident_id": str(scenario.id)}, csrf_from=page)
    assert blank.status_code == 303
    assert scenario.open_tasks() == ["confirm_recovery"]  # never silently "no"
    done = browser.post(
        f"{page}/confirmation",
        {"incident_id": str(scenario.id), "recovered": "true"},
        csrf_from=page,
    )
    assert done.status_code == 303 and done.headers["Location"] == f"{page}#answers"
    assert scenario.open_tasks() == ["record_feedback"]
    text = browser.get(page).get_data(as_text=True)
    assert 'name="satisfaction"' in text and 'name="recovered"' not in text
    browser.post(
        f"{page}/survey",
        {"incident_id": str(scenario.id), "satisfaction": "4"},
        csrf_from=page,
    )
    assert scenario.refresh()["status"] == "closed"
    assert 'name="satisfaction"' not in browser.get(page).get_data(as_text=True)


def test_staff_and_other_reporters_get_no_answer_forms(
    app: Any, api: Api, scenario: Scenario
) -> None:
    desk = Browser(app)
    desk.login("desk")
    page = f"/incidents/{scenario.id}"
    text = desk.get(page).get_data(as_text=True)
    assert 'name="recovered" value="true"' not in text
    response = desk.post(
        f"{page}/confirmation",
        {"incident_id": str(scenario.id), "recovered": "true"},
        csrf_from=page,
    )
    assert response.status_code == 403
    assert scenario.open_tasks() == ["confirm_recovery"]
    other = Browser(app)
    other.login("reporter2")
    assert other.get(page).status_code == 404


def test_the_late_survey_is_offered_once_after_the_timer_closed_it(
    app: Any, api: Api, ctx: ServiceContext, clock: TestClock, browser: Browser
) -> None:
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_resolves()
    clock.advance(days=5, seconds=1)
    fire_due(ctx)  # nobody confirmed: system did
    clock.advance(days=5, seconds=1)
    fire_due(ctx)  # nobody answered the survey: closed without one
    assert scenario.refresh()["status"] == "closed"
    browser.login("reporter")
    page = f"/incidents/{scenario.id}"
    text = browser.get(page).get_data(as_text=True)
    assert f'action="{page}/survey"' in text
    assert 'name="recovered"' not in text
    answer = browser.post(
        f"{page}/survey",
        {"incident_id": str(scenario.id), "satisfaction": "3", "feedback": "Slow"},
        csrf_from=page,
    )
    assert answer.status_code == 303
    late = [e for e in scenario.refresh()["events"] if e["type"] == "survey_answered"]
    assert [(e["actor"], e["satisfaction"], e["feedback"]) for e in late] == [
        ("reporter", "3", "Slow")
    ]
    assert scenario.incident["status"] == "closed"
    assert 'name="satisfaction"' not in browser.get(page).get_data(as_text=True)
