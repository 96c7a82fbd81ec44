"""GET /api/v1/tasks pages and filters (contract Part 2, "Lists"): the answer stays a
JSON array, its total in X-Total-Count; bad filters are 422 naming the parameter."""

from __future__ import annotations

import pytest

from tests.scenario import Scenario


@pytest.fixture
def three(api):
    """Three incidents, each with `initial_handling` ready for the desk."""
    scenarios = [Scenario(api) for _ in range(3)]
    for s in scenarios:
        s.record()
    return scenarios


def test_the_list_is_an_array_with_its_total_in_a_header(api, three):
    response = api.get("desk", "/tasks?limit=2")
    page = api.ok(response)
    assert isinstance(page, list) and len(page) == 2
    assert response.headers["X-Total-Count"] == "3"
    rest = api.get("desk", "/tasks?limit=2&offset=2")
    pages = [t["incident_id"] for t in page + api.ok(rest)]
    # Oldest first, ties in a fixed order: the pages split the list without overlap.
    assert sorted(pages) == sorted(s.id for s in three)
    assert rest.headers["X-Total-Count"] == "3"


def test_filters_by_incident_record_lane_and_claim(api, three):
    first, second = three[0], three[1]
    only = api.ok(api.get("desk", f"/tasks?incident_id={first.id}"))
    assert {t["incident_id"] for t in only} == {first.id}
    number = first.refresh()["number"]
    by_number = api.ok(api.get("desk", f"/tasks?record={number}"))
    assert [t["incident_id"] for t in by_number] == [first.id]
    assert api.ok(api.get("desk", "/tasks?record=PRB-000001")) == []
    assert len(api.ok(api.get("desk", "/tasks?lane=service_desk"))) == 3
    assert api.ok(api.get("desk", "/tasks?lane=level2")) == []

    api.ok(api.post("desk", f"/tasks/{second.task_id('initial_handling')}/claim"))
    mine = api.ok(api.get("desk", "/tasks?claimed=me"))
    assert [t["incident_id"] for t in mine] == [second.id]
    free = api.get("desk", "/tasks?claimed=none")
    assert {t["incident_id"] for t in api.ok(free)} == {first.id, three[2].id}
    assert free.headers["X-Total-Count"] == "2"
    # desk2 claimed nothing: the claim filter is about the caller of the API.
    assert api.ok(api.get("desk2", "/tasks?claimed=me")) == []


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("offset=-1", "offset"),
        ("incident_id=abc", "incident_id"),
        ("incident_id=99999999999", "incident_id"),
        ("claimed=someone", "claimed"),
        ("lane=" + "x" * 41, "lane"),
    ],
)
def test_a_bad_parameter_is_named(api, three, query, name):
    response = api.get("desk", f"/tasks?{query}")
    assert response.status_code == 422, response.get_json()
    assert name in response.get_json()["details"]


def test_another_lane_sees_none_of_them(api, three):
    response = api.get("l2", "/tasks")
    assert api.ok(response) == []
    assert response.headers["X-Total-Count"] == "0"
