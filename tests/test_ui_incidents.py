"""The incident pages in the browser: list, report, detail, notes, suspend and
resume, the diagram data and the bpmn-js files (Flask test client, CSRF on)."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from engine.services.incidents import pages as incident_pages
from engine.services.people import users
from engine.services.process import definitions
from tests.conftest import PASSWORD, Browser
from tests.scenario import Scenario
from web.ui.incidents import BPMN_JS_DIST

XSS = "<script>alert(1)</script>"


# -- helpers -------------------------------------------------------------------


def sign_in(app: Any, username: str) -> Browser:
    """A browser signed in as `username`, reading English pages.

    Signs in with `next` so that the test does not depend on other areas' home pages."""
    browser = Browser(app)
    token = browser.csrf_token("/login")
    response = browser.client.post(
        "/login?next=/incidents",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, response.data[:500]
    response = browser.post("/language", {"locale": "en", "next": "/incidents"})
    assert response.status_code == 302
    return browser


def report(api: Any, user: str = "reporter", **fields: str) -> dict[str, Any]:
    body = {
        "title": "Printer jammed",
        "description": "Paper stuck",
        "contact": "ext. 42",
        "channel": "web",
    }
    body.update(fields)
    return api.ok(api.post(user, "/incidents", body), 201)  # type: ignore[no-any-return]


def page_text(response: Any) -> str:
    return response.data.decode("utf-8")


def numbers_on(response: Any) -> list[str]:
    """Incident numbers linked from the list, in order."""
    return re.findall(r'<a href="/incidents/\d+">(INC-\d+)</a>', page_text(response))


# -- list ----------------------------------------------------------------------


def test_list_staff_see_all_reporters_their_own_vendors_involved(api: Any, app: Any) -> None:
    mine = Scenario(api, reporter="reporter")
    other = Scenario(api, reporter="reporter2")
    number_mine, number_other = mine.incident["number"], other.incident["number"]

    desk = sign_in(app, "desk")
    listed = numbers_on(desk.get("/incidents"))
    assert number_mine in listed and number_other in listed

    reporter = sign_in(app, "reporter")
    response = reporter.get("/incidents")
    assert response.status_code == 200
    assert numbers_on(response) == [number_mine]
    assert "My incidents" in page_text(response)

    vendor = sign_in(app, "vendor")
    assert numbers_on(vendor.get("/incidents")) == []
    other.record()
    other.desk_passes_on()
    other.level2("escalate_vendor")
    assert numbers_on(vendor.get("/incidents")) == [number_other]


def test_search_by_number_title_and_contact(api: Any, app: Any) -> None:
    first = report(api, title="VPN drops every hour", contact="alice@example.com")
    second = report(api, title="Printer offline", contact="ext. 7781")
    desk = sign_in(app, "desk")

    assert numbers_on(desk.get(f"/incidents?q={first['number']}")) == [first["number"]]
    assert numbers_on(desk.get("/incidents?q=vpn DROPS")) == [first["number"]]
    assert numbers_on(desk.get("/incidents?q=7781")) == [second["number"]]
    assert numbers_on(desk.get("/incidents?q=ALICE@")) == [first["number"]]
    response = desk.get("/incidents?q=nothing-like-this")
    assert numbers_on(response) == []
    assert "No incidents match." in page_text(response)
    # LIKE wildcards are matched literally.
    assert numbers_on(desk.get("/incidents?q=%25")) == []


def test_each_filter(api: Any, app: Any) -> None:
    major = Scenario(api)
    major.record("1", "1", category="network")  # P1, major, in progress, investigate
    minor = Scenario(api)
    minor.record("3", "3", category="hardware")  # P5
    fresh = report(api, user="desk", channel="phone")  # new, unclassified
    desk = sign_in(app, "desk")
    m, n, f = major.incident["number"], minor.incident["number"], fresh["number"]

    def listed(query: str) -> set[str]:
        response = desk.get(f"/incidents?{query}")
        assert response.status_code == 200, query
        return set(numbers_on(response))

    assert listed("status=new") == {f}
    assert listed("status=in_progress") == {m, n}
    assert listed("priority=1") == {m}
    assert listed("priority=5") == {n}
    assert listed("phase=identify") == {f}
    assert listed("phase=investigate") == {m, n}
    assert listed("category=network") == {m}
    assert listed("category=hardware") == {n}
    assert listed("channel=phone") == {f}
    assert listed("channel=web") == {m, n}
    assert listed("major=yes") == {m}
    assert listed("major=no") == {n, f}
    assert listed("status=in_progress&priority=5") == {n}


def test_bad_list_parameters_are_422_with_messages(app: Any) -> None:
    desk = sign_in(app, "desk")
    response = desk.get("/incidents?status=bogus&priority=9&sort=colour&page=x")
    assert response.status_code == 422
    text = page_text(response)
    assert text.count('class="message"') >= 4
    assert "Choose one of the options." in text
    assert "Must be a whole number." in text


def test_sort_and_paging(api: Any, app: Any) -> None:
    created = [report(api, title=f"Incident {i:02d}") for i in range(27)]
    numbers = [c["number"] for c in created]
    desk = sign_in(app, "desk")

    first = desk.get("/incidents")
    assert "27 incidents" in page_text(first)
    assert "showing 1–25" in page_text(first)
    assert numbers_on(first) == list(reversed(numbers))[:25]
    assert "Page 1 of 2" in page_text(first)
    second = desk.get("/incidents?page=2")
    assert numbers_on(second) == list(reversed(numbers))[25:]

    ascending = desk.get("/incidents?sort=number&direction=asc")
    assert numbers_on(ascending)[:3] == numbers[:3]
    # The pager keeps sort and filters.
    assert "sort=number" in page_text(ascending) and "direction=asc" in page_text(ascending)

    # Priority: P1 first when ascending, unclassified last.
    top = Scenario(api)
    top.record("1", "1")
    low = Scenario(api)
    low.record("3", "3")
    by_priority = numbers_on(desk.get("/incidents?sort=priority&direction=asc"))
    assert by_priority[:2] == [top.incident["number"], low.incident["number"]]
    by_priority_desc = numbers_on(desk.get("/incidents?sort=priority&direction=desc"))
    assert by_priority_desc[:2] == [low.incident["number"], top.incident["number"]]
    for sort in ("created", "due", "status"):
        response = desk.get(f"/incidents?sort={sort}&direction=asc")
        assert response.status_code == 200
        assert len(numbers_on(response)) == 25


# -- detail --------------------------------------------------------------------


def test_detail_shows_fields_badges_sla_timeline_and_task_links(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    scenario.record("1", "1", category="network")
    incident = scenario.refresh()
    desk = sign_in(app, "desk")
    response = desk.get(f"/incidents/{scenario.id}")
    assert response.status_code == 200
    text = page_text(response)
    for value in (incident["number"], "Mail server down", "No mail since 9:00", "ext. 1234"):
        assert value in text
    assert 'class="badge p1"' in text and 'class="badge major"' in text
    clocks = re.findall(r'<tr id="clock-(\w+)" data-state="(\w+)">', text)
    assert clocks == [
        ("response", "met"),  # stopped at record_incident
        ("resolution", "running"),
        ("service_desk", "running"),
        ("level2", "not_started"),
        ("level3", "not_started"),
        ("vendor", "not_started"),
    ]
    assert incident["sla"]["resolution_due"] in text  # as a <time datetime>
    assert "4 h 0 min" in text  # P1 resolution target, nothing elapsed
    # Timeline: who, what, which task.
    assert "Reported" in text and "Step completed" in text
    assert "Record and classify incident" in text
    assert '<span class="actor">desk</span>' in text
    # Open tasks: a link for the lane's members only.
    tasks = {t["name"]: t["id"] for t in incident["tasks"]}
    assert f'href="/tasks/{tasks["initial_handling"]}"' in text
    assert f'href="/tasks/{tasks["manager_review"]}"' not in text
    manager = sign_in(app, "manager")
    assert f'href="/tasks/{tasks["manager_review"]}"' in page_text(
        manager.get(f"/incidents/{scenario.id}")
    )
    # The diagram placeholder.
    assert f'data-src="/incidents/{scenario.id}/diagram.json"' in text
    assert 'id="diagram"' in text


def test_overdue_sla_is_marked(api: Any, app: Any, clock: Any) -> None:
    scenario = Scenario(api)
    scenario.record("1", "1")
    clock.advance(hours=5)
    desk = sign_in(app, "desk")
    text = page_text(desk.get(f"/incidents/{scenario.id}"))
    assert 'class="overdue"' in text and "overdue" in text
    listed = page_text(desk.get("/incidents"))
    assert 'class="overdue"' in listed


def test_linked_records_are_listed(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    scenario.record()
    scenario.complete(
        "initial_handling",
        {"resolved_at_desk": True, "resolution": "Reset", "create_problem": True},
    )
    desk = sign_in(app, "desk")
    text = page_text(desk.get(f"/incidents/{scenario.id}"))
    assert "PRB-" in text and "Problem" in text


def test_work_notes_are_hidden_from_the_reporter(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    desk = sign_in(app, "desk")
    path = f"/incidents/{scenario.id}"
    response = desk.post(
        f"{path}/notes", {"text": "secret work note 4711", "visibility": "internal"}
    )
    assert response.status_code == 302
    response = desk.post(f"{path}/notes", {"text": "We are on it, Bob", "visibility": "public"})
    assert response.status_code == 302
    staff_page = page_text(desk.get(path))
    assert "secret work note 4711" in staff_page
    assert "We are on it, Bob" in staff_page

    reporter = sign_in(app, "reporter")
    response = reporter.get(path)
    assert response.status_code == 200
    text = page_text(response)
    assert "secret work note 4711" not in text
    assert "We are on it, Bob" in text
    # No names of the people at work and no internal work in the history.
    assert 'class="actor"' not in text
    assert ">desk<" not in text
    assert "Work note" not in text
    assert "We added a note." in text
    assert text.count("added a note") == 1

    notes = api.ok(api.get("desk", f"/incidents/{scenario.id}/notes"))
    assert [n["internal"] for n in notes] == [True, False]


def test_reporter_adds_a_note_and_sees_plain_status(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    reporter = sign_in(app, "reporter")
    path = f"/incidents/{scenario.id}"
    assert "We have received your report" in page_text(reporter.get(path))
    # A reporter cannot make a work note, whatever the form says.
    response = reporter.post(f"{path}/notes", {"text": "It also beeps", "visibility": "internal"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{path}#notes")
    text = page_text(reporter.get(path))
    assert "It also beeps" in text and "Note added." in text
    assert "You added a note." in text
    notes = api.ok(api.get("desk", f"/incidents/{scenario.id}/notes"))
    assert notes[-1]["internal"] is False and notes[-1]["author"] == "reporter"

    # An empty note: 422 on the same page.
    response = reporter.post(f"{path}/notes", {"text": "   "})
    assert response.status_code == 422
    assert "This field is required." in page_text(response)

    scenario.record()
    assert "We are working on it" in page_text(reporter.get(path))
    api.ok(
        api.post(
            "desk",
            f"/incidents/{scenario.id}/suspend",
            {"reason": "Which floor is the printer on?", "category": "awaiting_reporter"},
        )
    )
    text = page_text(reporter.get(path))
    assert "Waiting for your reply" in text and "Which floor is the printer on?" in text
    reporter.post(f"{path}/notes", {"text": "Third floor"})
    assert scenario.refresh()["status"] == "in_progress"  # the reply resumed it
    assert "We are working on it" in page_text(reporter.get(path))

    scenario.desk_resolves()
    text = page_text(reporter.get(path))
    assert "Solved — please confirm" in text and "Restarted the service" in text
    scenario.confirm()
    scenario.feedback()
    text = page_text(reporter.get(path))
    assert "Closed" in text and "Restarted the service" in text


def test_staff_note_validation_keeps_the_text(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    desk = sign_in(app, "desk")
    long_text = "x" * 20_001
    response = desk.post(
        f"/incidents/{scenario.id}/notes", {"text": long_text, "visibility": "public"}
    )
    assert response.status_code == 422
    text = page_text(response)
    assert "At most 20000 characters." in text
    assert long_text in text
    assert 'value="public" checked' in text


def test_suspend_and_resume_from_the_page(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    scenario.record()
    desk = sign_in(app, "desk")
    path = f"/incidents/{scenario.id}"

    response = desk.post(
        f"{path}/suspend", {"reason": "", "category": "awaiting_vendor", "resume_by": ""}
    )
    assert response.status_code == 422
    text = page_text(response)
    assert "This field is required." in text
    assert '<option value="awaiting_vendor" selected>' in text

    response = desk.post(
        f"{path}/suspend",
        {"reason": "Needs a part", "category": "other", "resume_by": "not a time"},
    )
    assert response.status_code == 422
    assert "Needs a part" in page_text(response)
    assert scenario.refresh()["status"] == "in_progress"

    response = desk.post(
        f"{path}/suspend",
        {
            "reason": "Waiting for the spare part",
            "category": "awaiting_vendor",
            "resume_by": "2999-01-01T09:00",
        },
    )
    assert response.status_code == 302
    incident = scenario.refresh()
    assert incident["status"] == "suspended" and incident["sla"]["suspended"] is True
    text = page_text(desk.get(path))
    assert "Waiting for the spare part" in text and "Waiting for the vendor" in text
    assert "incident is suspended" in text  # the flash
    assert f'action="{path}/resume"' in text

    # Suspending twice: 409, nothing changes.
    response = desk.post(f"{path}/suspend", {"reason": "again"})
    assert response.status_code == 409

    response = desk.post(f"{path}/resume")
    assert response.status_code == 302
    assert scenario.refresh()["status"] == "in_progress"
    assert "incident is resumed" in page_text(desk.get(path))
    assert desk.post(f"{path}/resume").status_code == 409


def test_reporter_cannot_suspend_or_resume(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    reporter = sign_in(app, "reporter")
    path = f"/incidents/{scenario.id}"
    assert f'action="{path}/suspend"' not in page_text(reporter.get(path))
    assert reporter.post(f"{path}/suspend", {"reason": "mine"}).status_code == 403
    assert reporter.post(f"{path}/resume").status_code == 403
    assert scenario.refresh()["status"] == "new"


# -- report --------------------------------------------------------------------


def test_reporter_reports_on_the_web(app: Any, api: Any) -> None:
    reporter = sign_in(app, "reporter")
    form = page_text(reporter.get("/incidents/new"))
    assert 'name="title"' in form and 'name="channel"' not in form
    response = reporter.post(
        "/incidents/new",
        {
            "title": "Laptop does not boot",
            "description": "Black screen",
            "contact": "ext. 99",
            "channel": "phone",  # ignored: reporters report on the web
        },
    )
    assert response.status_code == 302
    incident_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    incident = api.ok(api.get("desk", f"/incidents/{incident_id}"))
    assert incident["channel"] == "web" and incident["reporter"] == "reporter"
    assert incident["title"] == "Laptop does not boot"
    page = page_text(reporter.get(f"/incidents/{incident_id}"))
    assert "Laptop does not boot" in page and "reported." in page


def test_staff_take_a_call(app: Any, api: Any) -> None:
    desk = sign_in(app, "desk")
    assert 'name="channel"' in page_text(desk.get("/incidents/new"))
    response = desk.post(
        "/incidents/new",
        {"title": "Caller: mail down", "description": "", "contact": "0912", "channel": "wechat"},
    )
    assert response.status_code == 302
    incident_id = int(response.headers["Location"].split("/")[-1])
    assert api.ok(api.get("desk", f"/incidents/{incident_id}"))["channel"] == "wechat"


def test_report_form_422_keeps_values(app: Any, api: Any) -> None:
    reporter = sign_in(app, "reporter")
    before = api.ok(api.get("desk", "/incidents"))["total"]
    response = reporter.post(
        "/incidents/new",
        {"title": "   ", "description": "Kept text", "contact": "kept@example.com"},
    )
    assert response.status_code == 422
    text = page_text(response)
    assert "This field is required." in text
    assert "Kept text" in text and 'value="kept@example.com"' in text
    assert api.ok(api.get("desk", "/incidents"))["total"] == before

    desk = sign_in(app, "desk")
    response = desk.post(
        "/incidents/new", {"title": "t" * 301, "contact": "c", "channel": "pigeon"}
    )
    assert response.status_code == 422
    text = page_text(response)
    assert "At most 300 characters." in text and "Choose one of the options." in text


# -- escaping and security -------------------------------------------------------


def test_user_text_is_escaped(api: Any, app: Any) -> None:
    created = report(api, title=XSS, description=XSS, contact=XSS)
    path = f"/incidents/{created['id']}"
    api.ok(api.post("desk", f"{path}/notes", {"text": XSS, "internal": False}), 201)
    api.ok(api.post("desk", f"{path}/suspend", {"reason": XSS}))
    for user in ("desk", "reporter"):
        browser = sign_in(app, user)
        for page in ("/incidents", path, f"/incidents?q={XSS}"):
            text = page_text(browser.get(page))
            assert XSS not in text, (user, page)
        assert escape(XSS, quote=False) in page_text(browser.get(path))
        assert escape(XSS, quote=False) in page_text(browser.get("/incidents"))


def test_post_without_csrf_is_400_and_changes_nothing(api: Any, app: Any) -> None:
    scenario = Scenario(api)
    desk = sign_in(app, "desk")
    path = f"/incidents/{scenario.id}"
    before = api.ok(api.get("desk", "/incidents"))["total"]
    assert desk.post(f"{path}/notes", {"text": "x"}, with_csrf=False).status_code == 400
    assert desk.post(f"{path}/suspend", {"reason": "x"}, with_csrf=False).status_code == 400
    assert desk.post(f"{path}/resume", with_csrf=False).status_code == 400
    assert (
        desk.post("/incidents/new", {"title": "x", "channel": "web"}, with_csrf=False).status_code
        == 400
    )
    assert api.ok(api.get("desk", f"{path}/notes")) == []
    assert scenario.refresh()["status"] == "new"
    assert api.ok(api.get("desk", "/incidents"))["total"] == before


def test_other_reporters_incident_is_404(api: Any, app: Any) -> None:
    scenario = Scenario(api, reporter="reporter2")
    reporter = sign_in(app, "reporter")
    path = f"/incidents/{scenario.id}"
    assert reporter.get(path).status_code == 404
    assert reporter.get(f"{path}/diagram.json").status_code == 404
    assert reporter.post(f"{path}/notes", {"text": "hi"}).status_code == 404
    assert reporter.get("/incidents/999999").status_code == 404
    vendor = sign_in(app, "vendor")
    assert vendor.get(path).status_code == 404


def test_pages_need_sign_in(app: Any, api: Any) -> None:
    scenario = Scenario(api)
    browser = Browser(app)
    for path in (
        "/incidents",
        "/incidents/new",
        f"/incidents/{scenario.id}",
        f"/incidents/{scenario.id}/diagram.json",
    ):
        response = browser.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- diagram -----------------------------------------------------------------------


def test_diagram_json_marks_current_and_done(api: Any, app: Any, ctx: Any) -> None:
    scenario = Scenario(api)
    desk = sign_in(app, "desk")
    path = f"/incidents/{scenario.id}/diagram.json"
    data = desk.get(path).get_json()
    assert data["current"] == ["record_incident"]
    assert "record_incident" not in data["done"]
    assert "<bpmn:definitions" in data["xml"] or "definitions" in data["xml"]
    assert data["names"]["record_incident"] == "Record and classify incident"
    # Lanes show the roles' labels, in a copy: the stored definition is untouched.
    assert 'name="Service desk"' in data["xml"]
    stored = definitions.definition_xml(ctx, "incident_management", 1)
    assert 'name="service_desk"' in stored and 'name="Service desk"' not in stored

    scenario.record()
    data = desk.get(path).get_json()
    ready = sorted(t["name"] for t in scenario.refresh()["tasks"])
    assert sorted(data["current"]) == ready == ["initial_handling"]
    assert "record_incident" in data["done"]

    # The reporter may see the diagram of their own incident.
    reporter = sign_in(app, "reporter")
    assert reporter.get(path).status_code == 200


def test_diagram_labels_are_rewritten_by_the_translator(api: Any, ctx: Any) -> None:
    scenario = Scenario(api)
    actor = users.sign_in(ctx, "desk", PASSWORD)
    data = incident_pages.diagram(
        ctx, actor, scenario.id, lambda kind, element_id, name: f"[{kind}:{element_id}]"
    )
    assert data["names"]["record_incident"] == "[element:record_incident]"
    assert 'name="[element:record_incident]"' in data["xml"]
    assert 'name="[lane:lane_service_desk]"' in data["xml"]
    assert 'value="[element:phase_identify_name]"' in data["xml"]  # a phase group's title


def test_bpmn_js_is_served_when_installed(app: Any) -> None:
    # scripts/test.sh runs `npm install`; without it the diagram cannot work.
    assert (BPMN_JS_DIST / "bpmn-navigated-viewer.production.min.js").is_file()
    browser = Browser(app)
    response = browser.get("/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js")
    assert response.status_code == 200
    assert len(response.data) > 10_000
    assert browser.get("/vendor/bpmn-js/assets/bpmn-js.css").status_code == 200
    assert browser.get("/vendor/bpmn-js/../package.json").status_code == 404
    assert browser.get("/vendor/bpmn-js/nothing.js").status_code == 404


def test_bpmn_js_missing_is_404(app: Any, tmp_path: Path) -> None:
    app.config["BPMN_JS_DIST"] = str(tmp_path / "absent")
    response = Browser(app).get("/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js")
    assert response.status_code == 404


def test_history_shows_form_values_by_their_names_in_the_readers_language(
    api: Any, browser: Any
) -> None:
    scenario = Scenario(api)
    scenario.record("1", "1", category="network")
    browser.login("manager")  # reads the default language, Traditional Chinese
    text = page_text(browser.get(f"/incidents/{scenario.id}"))
    assert "分類: 網路" in text
    assert "category: network" not in text
