"""The incident list as CSV: `GET /api/v1/incidents.csv` and `/incidents.csv` in the browser."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
from sqlalchemy import update

from engine.persistence.models import Incident
from engine.services.context import ServiceContext
from engine.services.incidents import export, pages
from engine.services.people import users
from tests.conftest import Api, Browser
from tests.scenario import Scenario

BOM = b"\xef\xbb\xbf"


def rows_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="incidents.csv"'
    assert response.data.startswith(BOM)
    reader = csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline=""))
    header, *rows = list(reader)
    assert header == list(export.COLUMNS)
    return [dict(zip(header, row, strict=True)) for row in rows]


def csv_from_api(api: Api, user: str, query: str = "") -> list[dict[str, str]]:
    return rows_of(api.get(user, f"/incidents.csv{query}"))


def test_every_column_in_iso_utc_with_a_bom(api: Api) -> None:
    done = Scenario(api, channel="web")
    done.record(impact="1", urgency="2", category="network")
    done.desk_resolves()
    fresh = Scenario(api, reporter="reporter2", channel="phone")
    response = api.get("desk", "/incidents.csv")
    assert response.is_streamed
    by_number = {row["number"]: row for row in rows_of(response)}
    resolved = by_number[done.refresh()["number"]]
    incident = done.incident
    assert resolved == {
        "number": incident["number"],
        "title": "Mail server down",
        "status": "resolved",
        "phase": incident["phase"],
        "priority": "2",
        "impact": "1",
        "urgency": "2",
        "major": "true",
        "category": "network",
        "channel": "web",
        "caller": "reporter",
        "created_at": resolved["created_at"],
        "resolved_at": resolved["resolved_at"],
        "closed_at": "",
        "response_due": resolved["response_due"],
        "resolution_due": resolved["resolution_due"],
        "breached": "false",
    }
    for name in ("created_at", "resolved_at", "response_due", "resolution_due"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", resolved[name])
    waiting = by_number[fresh.incident["number"]]
    assert (waiting["status"], waiting["priority"], waiting["caller"]) == ("new", "", "reporter2")
    assert list(by_number) == sorted(by_number, reverse=True)  # the list's order: newest first


def test_cells_a_spreadsheet_would_run_are_text(api: Api, ctx: ServiceContext) -> None:
    titles = {
        '=HYPERLINK("http://evil","x")': '\'=HYPERLINK("http://evil","x")',
        "+1+1": "'+1+1",
        "-2+3": "'-2+3",
        "@SUM(A1:A2)": "'@SUM(A1:A2)",
        "\tcmd": "'\tcmd",
        "\r=1": "'\r=1",
        "印表機無法列印": "印表機無法列印",
        "a = b": "a = b",
    }
    ids = {}
    for title in titles:
        body = {"title": "x", "description": "", "contact": "", "channel": "web"}
        ids[title] = api.ok(api.post("reporter", "/incidents", body), 201)["id"]
    with ctx.db.write() as session:  # reports are stripped; a stored title may still start so
        for title, incident_id in ids.items():
            session.execute(update(Incident).where(Incident.id == incident_id).values(title=title))
    shown = {row["title"] for row in csv_from_api(api, "desk")}
    assert shown == set(titles.values())
    assert export.cell("-") == "'-" and export.cell(-1) == "'-1" and export.cell(None) == ""


QUERIES = [
    "",
    "?status=new",
    "?priority=3",
    "?priority=3&status=in_progress",
    "?channel=phone",
    "?category=network&major=yes",
    "?major=no&sort=priority&direction=asc",
    "?q=printer",
    "?sort=created&direction=asc",
]


def test_same_filters_sort_and_visibility_as_the_list(api: Api, ctx: ServiceContext) -> None:
    a = Scenario(api)
    a.record(impact="3", urgency="2")
    a.desk_passes_on()
    b = Scenario(api, reporter="reporter2", channel="phone")
    b.record(impact="1", urgency="1", category="network")
    body = {"title": "Printer jam", "description": "", "contact": "", "channel": "email"}
    api.ok(api.post("reporter", "/incidents", body), 201)
    Scenario(api, channel="app").record(impact="2", urgency="2", category="hardware")
    for user in ("desk", "manager", "reporter", "reporter2", "vendor"):
        actor = users.actor_for_token(ctx, api.tokens[user])
        for query in QUERIES:
            args = dict(pair.split("=") for pair in query[1:].split("&") if pair)
            listed = pages.search_incidents(ctx, actor, pages.parse_query(args))
            exported = [row["number"] for row in csv_from_api(api, user, query)]
            assert exported == [item["number"] for item in listed.items], (user, query)
    assert len(csv_from_api(api, "desk")) == 4
    assert {r["caller"] for r in csv_from_api(api, "reporter2")} == {"reporter2"}
    assert csv_from_api(api, "vendor") == []


def test_a_bad_filter_is_422_naming_it(api: Api, browser: Browser) -> None:
    response = api.get("desk", "/incidents.csv?priority=9&status=lost")
    assert response.status_code == 422
    assert set(response.get_json()["details"]) == {"priority", "status"}
    assert api.get(None, "/incidents.csv").status_code == 401
    browser.login("desk")
    page = browser.get("/incidents.csv?phase=nowhere")
    assert page.status_code == 422
    assert page.mimetype == "text/html"


def test_a_large_export_streams_batch_by_batch(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "BATCH_ROWS", 2)
    for _ in range(5):
        body = {"title": "batch", "description": "", "contact": "", "channel": "web"}
        api.ok(api.post("reporter", "/incidents", body), 201)
    response = api.get("desk", "/incidents.csv", buffered=False)
    chunks = list(response.response)
    response.close()
    assert len(chunks) == 1 + 3  # the header, then batches of 2, 2 and 1 rows
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    assert text.startswith("\ufeffnumber,title,")
    assert text.count("\r\n") == 6 and text.count(",batch,") == 5


def test_the_list_page_links_its_filters_to_the_download(api: Api, browser: Browser) -> None:
    Scenario(api).record(impact="3", urgency="3")
    Scenario(api, channel="phone")
    assert browser.get("/incidents.csv").status_code == 302  # sign in first
    browser.login("desk")
    page = browser.get("/incidents?status=in_progress&priority=5&sort=created")
    assert page.status_code == 200
    match = re.search(rb'<a id="download-csv" href="([^"]+)"', page.data)
    assert match, page.data[-2000:]
    link = unescape(match.group(1).decode())
    assert link.startswith("/incidents.csv?")
    assert set(link.split("?", 1)[1].split("&")) == {
        "status=in_progress",
        "priority=5",
        "sort=created",
    }
    rows = rows_of(browser.get(link))
    assert [(r["status"], r["priority"]) for r in rows] == [("in_progress", "5")]
    assert rows == csv_from_api(api, "desk", "?status=in_progress&priority=5&sort=created")
