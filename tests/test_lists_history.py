"""An incident's notes and history in pages (contract Part 2, "Lists"): notes stay
an array with X-Total-Count; the detail holds the newest 100 events with
`events_total`; /events pages through all of them, oldest first, counting only what
the reader may see."""

from __future__ import annotations

from tests.scenario import Scenario


def _many_notes(api, incident_id: int, count: int, *, internal: bool = False) -> None:
    for number in range(count):
        api.ok(
            api.post(
                "desk",
                f"/incidents/{incident_id}/notes",
                {"text": f"note {number}", "internal": internal},
            ),
            201,
        )


def test_notes_page_with_their_total_in_a_header(api):
    s = Scenario(api)
    s.record()
    _many_notes(api, s.id, 5)
    first = api.get("reporter", f"/incidents/{s.id}/notes?limit=2")
    assert [n["text"] for n in api.ok(first)] == ["note 0", "note 1"]
    assert first.headers["X-Total-Count"] == "5"
    last = api.ok(api.get("reporter", f"/incidents/{s.id}/notes?limit=2&offset=4"))
    assert [n["text"] for n in last] == ["note 4"]
    bad = api.get("reporter", f"/incidents/{s.id}/notes?limit=0")
    assert bad.status_code == 422 and "limit" in bad.get_json()["details"]


def test_the_detail_holds_the_newest_hundred_events(api):
    s = Scenario(api)
    s.record()
    _many_notes(api, s.id, 120)
    detail = s.refresh()
    events = detail["events"]
    assert len(events) == 100
    assert detail["events_total"] > 120
    # The newest, in time order: the last note's event closes the list.
    assert events[-1]["type"] == "note_added"
    everything = api.ok(api.get("desk", f"/incidents/{s.id}/events?limit=200"))
    assert everything["total"] == detail["events_total"]
    assert everything["items"][-100:] == events
    assert everything["items"][0]["type"] == "created"


def test_events_page_oldest_first_as_the_reader_sees_them(api):
    s = Scenario(api)
    s.record()
    _many_notes(api, s.id, 3, internal=True)
    _many_notes(api, s.id, 2)
    staff = api.ok(api.get("desk", f"/incidents/{s.id}/events?limit=3"))
    assert staff["items"][0]["type"] == "created" and len(staff["items"]) == 3
    caller = api.ok(api.get("reporter", f"/incidents/{s.id}/events"))
    assert caller["total"] < staff["total"]
    assert all(not e.get("internal") for e in caller["items"])
    assert [e["type"] for e in caller["items"]].count("note_added") == 2
    detail = api.ok(api.get("reporter", f"/incidents/{s.id}"))
    assert detail["events_total"] == caller["total"]
    assert api.get("reporter2", f"/incidents/{s.id}/events").status_code == 404
    bad = api.get("desk", f"/incidents/{s.id}/events?offset=x")
    assert bad.status_code == 422 and "offset" in bad.get_json()["details"]
