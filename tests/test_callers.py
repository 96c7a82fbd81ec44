"""Callers (contract Part 2): staff and programs report for someone else, the caller
follows the incident as their own, programs deduplicate and write on the caller's
behalf."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.models import Incident, Note
from engine.services.incidents.commands import create_incident, report_incident
from engine.services.incidents.notes import add_caller_note
from engine.services.people import users
from tests.conftest import PASSWORD, Browser

REPORT = {"title": "Printer jams", "description": "Third floor", "channel": "phone"}


@pytest.fixture
def gateway(ctx: Any, api: Any) -> str:
    """An integration user (a mail gateway) with a bearer token."""
    users.create_user(ctx, "gateway", PASSWORD, ["integration"])
    api.tokens["gateway"] = users.issue_token(ctx, "gateway", PASSWORD).token
    return "gateway"


@pytest.fixture
def alice(ctx: Any, api: Any) -> str:
    users.create_user(ctx, "alice", PASSWORD, ["reporter"], email="Alice@Example.com")
    api.tokens["alice"] = users.issue_token(ctx, "alice", PASSWORD).token
    return "alice"


def stored(ctx: Any, incident_id: int) -> Incident:
    with ctx.db.read() as session:
        incident = session.get_one(Incident, incident_id)
        session.expunge(incident)
        return incident


def test_desk_reports_for_a_named_caller_who_then_owns_it(api: Any, ctx: Any) -> None:
    created = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": "reporter"}), 201)
    assert created["caller"] == {"username": "reporter", "email": None}
    assert created["reporter"] == "reporter"
    row = stored(ctx, created["id"])
    assert row.caller_id is not None and row.created_by_id != row.caller_id
    event = created["events"][0]
    assert (event["type"], event["actor"], event["caller"]) == ("created", "desk", "reporter")
    # The caller sees it in the API list and detail; another reporter does not.
    mine = api.ok(api.get("reporter", "/incidents"))
    assert [i["id"] for i in mine["items"]] == [created["id"]]
    api.ok(api.get("reporter", f"/incidents/{created['id']}"))
    assert api.get("reporter2", f"/incidents/{created['id']}").status_code == 404
    # The caller's note counts as theirs.
    api.ok(api.post("reporter", f"/incidents/{created['id']}/notes", {"text": "Still jams"}), 201)


def test_the_creating_reporter_gains_nothing_when_someone_else_is_the_caller(
    api: Any, ctx: Any, alice: str
) -> None:
    created = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": alice}), 201)
    # desk created it but is staff: check a non-staff creator, the integration way below.
    assert api.ok(api.get(alice, "/incidents"))["total"] == 1
    assert api.ok(api.get("reporter", "/incidents"))["total"] == 0
    assert stored(ctx, created["id"]).caller_email is None


def test_program_creator_is_not_the_caller(api: Any, ctx: Any, gateway: str, alice: str) -> None:
    created = api.ok(api.post(gateway, "/incidents", {**REPORT, "caller": alice}), 201)
    # The program reads it as its caller would (names of staff as roles), but cannot
    # write a note of its own: it is not the caller.
    response = api.post(gateway, f"/incidents/{created['id']}/notes", {"text": "me"})
    assert response.status_code == 403
    assert created["events"][0]["actor"] == gateway


def test_caller_email_of_a_user_makes_that_user_the_caller(
    api: Any, ctx: Any, alice: str
) -> None:
    created = api.ok(
        api.post("desk", "/incidents", {**REPORT, "caller_email": "alice@EXAMPLE.com"}), 201
    )
    assert created["caller"] == {"username": "alice", "email": "alice@example.com"}
    row = stored(ctx, created["id"])
    assert row.caller_email is None and row.caller_id is not None
    assert api.ok(api.get(alice, "/incidents"))["total"] == 1


def test_caller_known_only_by_address(api: Any, ctx: Any) -> None:
    created = api.ok(
        api.post("desk", "/incidents", {**REPORT, "caller_email": "bob@example.org"}), 201
    )
    assert created["caller"] == {"username": None, "email": "bob@example.org"}
    assert created["reporter"] == "bob@example.org"
    assert created["events"][0]["caller"] == "bob@example.org"
    row = stored(ctx, created["id"])
    assert (row.caller_id, row.caller_email) == (None, "bob@example.org")
    # Nobody signed in owns it: the desk's own list is by visibility, not by caller.
    assert api.ok(api.get("reporter", "/incidents"))["total"] == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"caller": "nobody"}, "caller"),
        ({"caller": ""}, "caller"),
        ({"caller_email": "not an address"}, "caller_email"),
        ({"caller_email": "a@b"}, "caller_email"),
        ({"caller": "reporter", "caller_email": "x@example.com"}, "caller_email"),
    ],
)
def test_bad_caller_is_422_naming_the_field(
    api: Any, extra: dict[str, str], field: str
) -> None:
    response = api.post("desk", "/incidents", {**REPORT, **extra})
    assert response.status_code == 422
    assert field in response.get_json()["details"]


def test_deactivated_user_cannot_be_the_caller(api: Any, ctx: Any) -> None:
    users.set_active(ctx, "reporter2", False)
    response = api.post("desk", "/incidents", {**REPORT, "caller": "reporter2"})
    assert response.status_code == 422 and "caller" in response.get_json()["details"]


@pytest.mark.parametrize("field", ["caller", "caller_email", "dedup_key"])
def test_reporter_cannot_name_a_caller_or_send_a_dedup_key(api: Any, field: str) -> None:
    value = "someone@example.com" if field == "caller_email" else "desk"
    response = api.post("reporter", "/incidents", {**REPORT, "channel": "web", field: value})
    assert response.status_code == 403
    assert field in response.get_json()["details"]


def test_staff_cannot_send_a_dedup_key(api: Any) -> None:
    response = api.post("desk", "/incidents", {**REPORT, "dedup_key": "disk-full"})
    assert response.status_code == 403 and "dedup_key" in response.get_json()["details"]


def test_dedup_key_makes_one_incident_while_it_is_open(api: Any, ctx: Any, gateway: str) -> None:
    alert = {"title": "Disk full on db1", "description": "96 %", "channel": "app"}
    first = api.post(gateway, "/incidents", {**alert, "dedup_key": "db1-disk"})
    assert first.status_code == 201
    incident_id = first.get_json()["id"]
    again = api.post(
        gateway, "/incidents", {**alert, "description": "98 %", "dedup_key": "db1-disk"}
    )
    assert again.status_code == 200
    assert again.get_json()["id"] == incident_id
    notes = api.ok(api.get("desk", f"/incidents/{incident_id}/notes"))
    assert [n["text"] for n in notes] == ["Disk full on db1\n\n98 %"]
    assert notes[0]["author"] == gateway and notes[0]["internal"] is False
    assert stored(ctx, incident_id).dedup_key == "db1-disk"
    # Another key: another incident.
    other = api.post(gateway, "/incidents", {**alert, "dedup_key": "db2-disk"})
    assert other.status_code == 201 and other.get_json()["id"] != incident_id
    assert api.ok(api.get("manager", "/incidents"))["total"] == 2


def test_dedup_key_of_a_closed_incident_opens_a_new_one(api: Any, ctx: Any, gateway: str) -> None:
    alert = {"title": "Disk full", "channel": "app", "dedup_key": "k1"}
    first = api.ok(api.post(gateway, "/incidents", alert), 201)
    with ctx.db.write() as session:
        session.get_one(Incident, first["id"]).status = "closed"
    second = api.post(gateway, "/incidents", alert)
    assert second.status_code == 201 and second.get_json()["id"] != first["id"]


@pytest.mark.parametrize("key", ["", "x" * 201, 5])
def test_bad_dedup_key_is_422(api: Any, gateway: str, key: Any) -> None:
    response = api.post(gateway, "/incidents", {**REPORT, "dedup_key": key})
    assert response.status_code == 422 and "dedup_key" in response.get_json()["details"]


def _awaiting_reporter(api: Any, incident_id: int) -> None:
    api.ok(
        api.post(
            "desk",
            f"/incidents/{incident_id}/suspend",
            {"reason": "Which printer?", "category": "awaiting_reporter"},
        )
    )


@pytest.mark.parametrize("who", ["alice", "ALICE@example.com"])
def test_note_on_behalf_of_the_caller_resumes_and_shows_via(
    api: Any, gateway: str, alice: str, who: str
) -> None:
    created = api.ok(api.post(gateway, "/incidents", {**REPORT, "caller": alice}), 201)
    incident_id = created["id"]
    _awaiting_reporter(api, incident_id)
    note = api.ok(
        api.post(
            gateway,
            f"/incidents/{incident_id}/notes",
            {"text": "The one by the lift", "on_behalf_of": who},
        ),
        201,
    )
    assert (note["author"], note["via"], note["internal"]) == (alice, gateway, False)
    incident = api.ok(api.get("desk", f"/incidents/{incident_id}"))
    assert incident["status"] != "suspended"
    assert incident["events"][-1]["type"] == "resumed"
    # The caller sees the note as their own.
    notes = api.ok(api.get(alice, f"/incidents/{incident_id}/notes"))
    assert [(n["author"], n["via"]) for n in notes] == [(alice, gateway)]


def test_note_on_behalf_of_an_address_only_caller(api: Any, gateway: str) -> None:
    created = api.ok(
        api.post(gateway, "/incidents", {**REPORT, "caller_email": "bob@example.org"}), 201
    )
    note = api.ok(
        api.post(
            gateway,
            f"/incidents/{created['id']}/notes",
            {"text": "Fixed itself", "on_behalf_of": "Bob@example.org"},
        ),
        201,
    )
    assert note["author"] == "bob@example.org" and note["via"] == gateway


@pytest.mark.parametrize("who", ["reporter", "someone@example.com", ""])
def test_note_on_behalf_of_someone_not_the_caller_is_422(
    api: Any, gateway: str, alice: str, who: str
) -> None:
    created = api.ok(api.post(gateway, "/incidents", {**REPORT, "caller": alice}), 201)
    response = api.post(
        gateway, f"/incidents/{created['id']}/notes", {"text": "hi", "on_behalf_of": who}
    )
    assert response.status_code == 422
    assert "on_behalf_of" in response.get_json()["details"]


@pytest.mark.parametrize("user", ["desk", "reporter"])
def test_only_programs_write_on_behalf(api: Any, user: str) -> None:
    created = api.ok(api.post("reporter", "/incidents", {**REPORT, "channel": "web"}), 201)
    response = api.post(
        user, f"/incidents/{created['id']}/notes", {"text": "hi", "on_behalf_of": "reporter"}
    )
    assert response.status_code == 403
    assert "on_behalf_of" in response.get_json()["details"]


def test_add_caller_note_runs_also_in_its_transaction(api: Any, ctx: Any) -> None:
    created = api.ok(
        api.post("desk", "/incidents", {**REPORT, "caller_email": "bob@example.org"}), 201
    )
    _awaiting_reporter(api, created["id"])
    seen: list[str] = []

    def also(session: Any, incident: Incident, at: Any) -> None:
        seen.append(incident.number)
        raise RuntimeError("the hook failed: nothing is kept")

    with pytest.raises(RuntimeError):
        add_caller_note(ctx, created["id"], "bob@example.org", "by mail", via=None, also=also)
    assert seen == [created["number"]]
    assert api.ok(api.get("desk", f"/incidents/{created['id']}/notes")) == []
    note = add_caller_note(ctx, created["id"], "bob@example.org", "by mail", via=None)
    assert note["author"] == "bob@example.org" and note["via"] is None
    assert api.ok(api.get("desk", f"/incidents/{created['id']}"))["status"] != "suspended"


def test_add_caller_note_refuses_someone_else(api: Any, ctx: Any) -> None:
    created = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": "reporter"}), 201)
    with pytest.raises(Exception, match="not the caller") as caught:
        add_caller_note(ctx, created["id"], "reporter2", "hi", via=None)
    assert caught.value.details == {"author": "is not the incident's caller"}  # type: ignore[attr-defined]


def test_create_incident_also_sees_the_numbered_incident(ctx: Any) -> None:
    desk = users.sign_in(ctx, "desk", PASSWORD)
    numbers: list[str] = []
    created = create_incident(
        ctx,
        desk,
        {**REPORT, "caller_email": "carol@example.net"},
        also=lambda session, incident, at: numbers.append(incident.number),
    )
    assert numbers == [created["number"]]


def test_caller_sees_it_in_the_portal(app: Any, api: Any) -> None:
    created = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": "reporter"}), 201)
    browser = Browser(app)
    browser.login("reporter")
    page = browser.get("/incidents")
    assert created["number"].encode() in page.data
    shown = browser.get(f"/incidents/{created['id']}")
    assert shown.status_code == 200 and b"Printer jams" in shown.data
    other = Browser(app)
    other.login("reporter2")
    assert created["number"].encode() not in other.get("/incidents").data
    assert other.get(f"/incidents/{created['id']}").status_code == 404


def test_desk_takes_a_call_for_a_looked_up_caller(app: Any, api: Any, alice: str) -> None:
    earlier = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": alice}), 201)
    browser = Browser(app)
    browser.login("desk")
    found = browser.get("/incidents/callers?q=EXAMPLE.com").get_data(as_text=True)
    assert "alice@example.com" in found and "/incidents/new?caller=alice" in found
    assert "reporter2" not in found  # no address, no match
    by_name = browser.get("/incidents/callers?q=ali").get_data(as_text=True)
    assert "/incidents/new?caller=alice" in by_name
    # The report page for that caller lists their open incident as a possible duplicate.
    page = browser.get("/incidents/new?caller=alice").get_data(as_text=True)
    assert earlier["number"] in page and 'name="caller" value="alice"' in page
    response = browser.post(
        "/incidents/new",
        {"caller": alice, "title": "Monitor flickers", "channel": "phone"},
        csrf_from="/incidents/new",
    )
    assert response.status_code == 302
    mine = api.ok(api.get(alice, "/incidents"))
    assert [i["title"] for i in mine["items"]] == ["Monitor flickers", "Printer jams"]


def test_desk_takes_a_call_from_an_address(app: Any, api: Any, ctx: Any) -> None:
    browser = Browser(app)
    browser.login("desk")
    response = browser.post(
        "/incidents/new",
        {"caller_email": "visitor@example.org", "title": "Wi-Fi", "channel": "phone"},
        csrf_from="/incidents/new",
    )
    assert response.status_code == 302
    incident_id = int(response.location.rsplit("/", 1)[1])
    assert stored(ctx, incident_id).caller_email == "visitor@example.org"
    bad = browser.post(
        "/incidents/new",
        {"caller_email": "visitor", "title": "Wi-Fi", "channel": "phone"},
        csrf_from="/incidents/new",
    )
    assert bad.status_code == 422 and 'id="caller_email-error"' in bad.get_data(as_text=True)


def test_unknown_chosen_caller_is_marked(app: Any) -> None:
    browser = Browser(app)
    browser.login("desk")
    page = browser.get("/incidents/new?caller=ghost").get_data(as_text=True)
    assert 'id="caller-error"' in page


def test_caller_search_needs_two_characters_and_pages(app: Any, ctx: Any) -> None:
    for n in range(23):
        users.create_user(ctx, f"zed{n:02d}", PASSWORD, ["reporter"], email=f"zed{n}@example.com")
    browser = Browser(app)
    browser.login("desk")
    assert browser.get("/incidents/callers?q=z").status_code == 422
    first = browser.get("/incidents/callers?q=zed").get_data(as_text=True)
    assert "zed00" in first and "zed19" in first and "zed20" not in first
    assert "offset=20" in first
    second = browser.get("/incidents/callers?q=zed&offset=20").get_data(as_text=True)
    assert "zed22" in second and "zed00" not in second


def test_reporter_has_no_caller_fields_nor_search(app: Any) -> None:
    browser = Browser(app)
    browser.login("reporter")
    page = browser.get("/incidents/new").get_data(as_text=True)
    assert 'name="caller_email"' not in page and "/incidents/callers" not in page
    assert browser.get("/incidents/callers?q=desk").status_code == 403
    # A caller field smuggled into the form is ignored: the reporter reports for themself.
    response = browser.post(
        "/incidents/new", {"caller": "desk", "title": "Mine"}, csrf_from="/incidents/new"
    )
    assert response.status_code == 302


def test_two_reports_with_one_key_at_once_make_one_incident(ctx: Any, gateway: str) -> None:
    program = users.sign_in(ctx, gateway, PASSWORD)
    alert = {"title": "Disk full", "channel": "app", "dedup_key": "same-moment"}
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def report() -> None:
        try:
            barrier.wait()
            outcomes.append(report_incident(ctx, program, alert)[1])
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(outcomes) == [False, True]
    with ctx.db.read() as session:
        keyed = session.scalars(select(Incident).where(Incident.dedup_key == "same-moment"))
        assert len(list(keyed)) == 1


def test_staff_page_shows_who_carried_a_note(app: Any, api: Any, gateway: str, alice: str) -> None:
    created = api.ok(api.post(gateway, "/incidents", {**REPORT, "caller": alice}), 201)
    api.ok(
        api.post(
            gateway,
            f"/incidents/{created['id']}/notes",
            {"text": "Sent from the app", "on_behalf_of": alice},
        ),
        201,
    )
    browser = Browser(app)
    browser.login("desk")
    browser.post("/preferences", {"language": "en"}, csrf_from="/preferences")
    page = browser.get(f"/incidents/{created['id']}").get_data(as_text=True)
    assert "via gateway" in page


def test_vendor_notes_never_reach_the_caller(app: Any, api: Any, ctx: Any) -> None:
    created = api.ok(api.post("desk", "/incidents", {**REPORT, "caller": "reporter"}), 201)
    with ctx.db.write() as session:
        session.add(
            Note(
                incident_id=created["id"], author="vendor", at=datetime.now(UTC),
                text="Vendor eyes only", internal=False, vendor=True,
            )
        )
    assert api.ok(api.get("reporter", f"/incidents/{created['id']}/notes")) == []
    desk_notes = api.ok(api.get("desk", f"/incidents/{created['id']}/notes"))
    assert [n["vendor"] for n in desk_notes] == [True]
    browser = Browser(app)
    browser.login("reporter")
    assert "Vendor eyes only" not in browser.get(f"/incidents/{created['id']}").get_data(
        as_text=True
    )
