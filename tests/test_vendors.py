"""Vendors kept apart: a vendor sees and works on only the incidents escalated to
their own organisation (contract Part 2, "People").

The test database's own vendors (`vendor`, `vendor2`) are in `default`, its
only organisation; the `two_orgs` fixture adds an ACME vendor and a Globex
vendor, so that three exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from engine.persistence.migrate import alembic_config
from engine.persistence.models import User, UserTaskRow, VendorOrganisation
from engine.services.context import ServiceContext
from engine.services.errors import Conflict, Invalid
from engine.services.incidents.vendors import organisation_for_vendor_task
from engine.services.people import organisations, users
from engine.services.tasks.commands import count_ready_by_lane
from tests.conftest import PASSWORD, Api, Browser
from tests.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PAGE = "/admin/users"


def _add_vendor(ctx: ServiceContext, api: Api, username: str, org: str) -> None:
    users.create_user(ctx, username, PASSWORD, ["vendor"], vendor_org=org, create_org_as="test")
    api.tokens[username] = users.issue_token(ctx, username, PASSWORD).token


@pytest.fixture
def two_orgs(ctx: ServiceContext, api: Api) -> Api:
    """The API with an ACME vendor (`acme`) and a Globex vendor (`globex`)."""
    # A copy of the tokens: the template's are shared by every test of the session.
    with_vendors = Api(api.client, dict(api.tokens))
    _add_vendor(ctx, with_vendors, "acme", "ACME")
    _add_vendor(ctx, with_vendors, "globex", "Globex")
    return with_vendors


def _at_level2(api: Api) -> Scenario:
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    return s


def _escalated_to(api: Api, org: str | None) -> Scenario:
    s = _at_level2(api)
    extra = {} if org is None else {"vendor_org": org}
    s.level2("escalate_vendor", **extra)
    return s


def _vendor_task(s: Scenario) -> dict[str, Any]:
    return next(t for t in s.refresh()["tasks"] if t["name"] == "vendor_investigation")


def _task_row(ctx: ServiceContext, task_id: str) -> dict[str, Any]:
    with ctx.db.read() as session:
        row = session.get(UserTaskRow, task_id)
        assert row is not None
        return {"vendor_org": row.vendor_org, "claimed_by": row.claimed_by, "state": row.state}


def _incident_ids(api: Api, user: str) -> list[int]:
    return [i["id"] for i in api.ok(api.get(user, "/incidents"))["items"]]


def _signed_in(app: Any, username: str) -> Browser:
    browser = Browser(app)
    browser.login(username)
    assert browser.post("/language", {"locale": "en"}).status_code == 302
    return browser


# -- who sees and works on what -------------------------------------------------------


def test_only_the_organisation_escalated_to_sees_and_works_on_it(
    two_orgs: Api, ctx: ServiceContext, app: Any
) -> None:
    api = two_orgs
    s = _escalated_to(api, "ACME")
    task = _vendor_task(s)
    assert _task_row(ctx, task["id"])["vendor_org"] == "ACME"
    escalation = [e for e in s.refresh()["events"] if e["type"] == "technical_escalation"]
    assert escalation[-1]["to"] == "vendor" and escalation[-1]["vendor_org"] == "ACME"

    # Globex's vendor and the `default` one: nothing of it, by any way in.
    for outsider in ("globex", "vendor"):
        assert s.id not in _incident_ids(api, outsider)
        assert api.get(outsider, f"/incidents/{s.id}").status_code == 404
        assert api.get(outsider, f"/incidents/{s.id}/notes").status_code == 404
        assert api.ok(api.get(outsider, "/tasks")) == []
        for method, path, body in (
            ("GET", f"/tasks/{task['id']}", None),
            ("POST", f"/tasks/{task['id']}/claim", None),
            ("POST", f"/tasks/{task['id']}/release", None),
            ("POST", f"/tasks/{task['id']}/assign", {"username": outsider}),
            ("POST", f"/tasks/{task['id']}/complete", {"solution": "not mine"}),
        ):
            response = api.call(outsider, method, path, body)
            assert response.status_code == 404, (outsider, path, response.get_json())
            assert "Mail server down" not in response.get_data(as_text=True)
        browser = _signed_in(app, outsider)
        assert browser.get(f"/incidents/{s.id}").status_code == 404
        assert browser.get(f"/tasks/{task['id']}").status_code == 404
        inbox = browser.get("/tasks")
        assert inbox.status_code == 200
        inbox_html = inbox.get_data(as_text=True)
        assert task["id"] not in inbox_html and "Mail server down" not in inbox_html
        claim = browser.post(f"/tasks/{task['id']}/claim", csrf_from="/tasks")
        assert claim.status_code == 404
    assert _task_row(ctx, task["id"])["claimed_by"] is None

    # ACME's vendor lists, reads, claims and completes it, in the API and the browser.
    assert s.id in _incident_ids(api, "acme")
    assert api.ok(api.get("acme", f"/incidents/{s.id}"))["id"] == s.id
    assert [t["id"] for t in api.ok(api.get("acme", "/tasks"))] == [task["id"]]
    assert api.ok(api.get("acme", f"/tasks/{task['id']}"))["name"] == "vendor_investigation"
    browser = _signed_in(app, "acme")
    assert browser.get(f"/incidents/{s.id}").status_code == 200
    assert "Mail server down" in browser.get("/tasks").get_data(as_text=True)
    assert api.ok(api.post("acme", f"/tasks/{task['id']}/claim"))["claimed_by"] == "acme"
    done = api.ok(api.post("acme", f"/tasks/{task['id']}/complete", {"solution": "patched"}))
    assert [t["name"] for t in done["tasks"]] == ["level2_resolve"]

    # Had a task for ACME: ACME still sees it, Globex still does not.
    assert api.ok(api.get("acme", f"/incidents/{s.id}"))["id"] == s.id
    assert api.get("globex", f"/incidents/{s.id}").status_code == 404


def test_each_vendor_lists_only_their_organisations_tasks(
    two_orgs: Api, app: Any, ctx: ServiceContext
) -> None:
    api = two_orgs
    for_acme = _escalated_to(api, "ACME")
    for_globex = _escalated_to(api, "Globex")
    acme_task, globex_task = _vendor_task(for_acme), _vendor_task(for_globex)
    assert [t["id"] for t in api.ok(api.get("acme", "/tasks"))] == [acme_task["id"]]
    assert [t["id"] for t in api.ok(api.get("globex", "/tasks"))] == [globex_task["id"]]
    assert _incident_ids(api, "acme") == [for_acme.id]
    assert _incident_ids(api, "globex") == [for_globex.id]
    # The inbox and its count per lane in the top bar agree.
    browser = _signed_in(app, "acme")
    html = browser.get("/tasks").get_data(as_text=True)
    assert acme_task["id"] in html and globex_task["id"] not in html
    assert count_ready_by_lane(ctx, users.sign_in(ctx, "acme", PASSWORD)) == {"vendor": 1}
    assert count_ready_by_lane(ctx, users.sign_in(ctx, "vendor", PASSWORD)) == {}


def test_a_vendor_who_is_also_staff_works_only_for_their_organisation(
    two_orgs: Api, ctx: ServiceContext
) -> None:
    api = two_orgs
    users.set_roles(ctx, "acme", ["vendor", "level2"])
    s = _escalated_to(api, "Globex")
    task = _vendor_task(s)
    # Staff see every incident, but another organisation's vendor task is not theirs.
    assert api.ok(api.get("acme", f"/incidents/{s.id}"))["id"] == s.id
    assert task["id"] not in [t["id"] for t in api.ok(api.get("acme", "/tasks"))]
    assert api.post("acme", f"/tasks/{task['id']}/claim").status_code == 404


# -- naming the organisation when escalating ------------------------------------------


def test_escalating_without_an_organisation_while_several_exist_is_422(
    two_orgs: Api, ctx: ServiceContext
) -> None:
    api = two_orgs
    s = _at_level2(api)
    before = s.refresh()
    task_id = s.task_id("level2_investigation")
    for body in (
        {"level2_outcome": "escalate_vendor"},
        {"level2_outcome": "escalate_vendor", "vendor_org": "   "},
    ):
        response = api.post("l2", f"/tasks/{task_id}/complete", body)
        assert response.status_code == 422, response.get_json()
        assert list(response.get_json()["details"]) == ["vendor_org"]
    after = s.refresh()
    assert [t["name"] for t in after["tasks"]] == ["level2_investigation"]
    assert after["events"] == before["events"] and after["updated_at"] == before["updated_at"]
    assert _task_row(ctx, task_id)["state"] == "ready"

    # Level 3 is held to the same rule.
    s.level2("escalate_level3")
    task_id = s.task_id("level3_investigation")
    response = api.post("l3", f"/tasks/{task_id}/complete", {"level3_outcome": "escalate_vendor"})
    assert response.status_code == 422 and "vendor_org" in response.get_json()["details"]
    s.complete(
        "level3_investigation", {"level3_outcome": "escalate_vendor", "vendor_org": "Globex"}
    )
    assert _task_row(ctx, _vendor_task(s)["id"])["vendor_org"] == "Globex"


def test_an_unknown_organisation_is_422_and_case_does_not_matter(
    two_orgs: Api, ctx: ServiceContext
) -> None:
    api = two_orgs
    s = _at_level2(api)
    task_id = s.task_id("level2_investigation")
    for name in ("Initech", "AC ME", "x" * 81):
        body = {"level2_outcome": "escalate_vendor", "vendor_org": name}
        response = api.post("l2", f"/tasks/{task_id}/complete", body)
        assert response.status_code == 422, (name, response.get_json())
        assert "vendor_org" in response.get_json()["details"]
    # Naming an unknown one is refused whatever the outcome.
    body = {"level2_outcome": "escalate_level3", "vendor_org": "Initech"}
    response = api.post("l2", f"/tasks/{task_id}/complete", body)
    assert response.status_code == 422
    assert "ACME" in response.get_json()["details"]["vendor_org"]
    assert s.open_tasks() == ["level2_investigation"]

    s.level2("escalate_vendor", vendor_org="acme")
    assert _task_row(ctx, _vendor_task(s)["id"])["vendor_org"] == "ACME"


def test_with_one_organisation_it_is_implied(api: Api, ctx: ServiceContext) -> None:
    with ctx.db.read() as session:
        assert organisations.only_organisation(session) == organisations.DEFAULT_ORGANISATION
    s = _escalated_to(api, None)
    task = _vendor_task(s)
    assert _task_row(ctx, task["id"])["vendor_org"] == "default"
    escalation = [e for e in s.refresh()["events"] if e["type"] == "technical_escalation"]
    assert escalation[-1]["vendor_org"] == "default"
    assert [t["id"] for t in api.ok(api.get("vendor", "/tasks"))] == [task["id"]]
    assert [t["id"] for t in api.ok(api.get("vendor2", "/tasks"))] == [task["id"]]


def test_the_vendors_step_stays_with_that_organisation(two_orgs: Api, ctx: ServiceContext) -> None:
    """A step nobody completes by hand keeps the incident with its vendor."""
    api = two_orgs
    s = _escalated_to(api, "Globex")
    with ctx.db.read() as session:
        assert organisation_for_vendor_task(session, s.id, None, {}) == "Globex"
        other = _at_level2(api)
        assert organisation_for_vendor_task(session, other.id, None, {}) is None
        vendor_row = session.get(UserTaskRow, _vendor_task(s)["id"])
        assert organisation_for_vendor_task(session, s.id, vendor_row, {}) == "Globex"
        with pytest.raises(Invalid) as refused:
            organisation_for_vendor_task(session, other.id, UserTaskRow(lane="level2"), {})
        assert refused.value.details == {"vendor_org": "is required"}


# -- organisations and their vendors ---------------------------------------------------


def test_organisation_names_and_membership(ctx: ServiceContext) -> None:
    by = users.sign_in(ctx, "admin", PASSWORD)
    assert organisations.create_organisation(ctx, by, "ACME") == "ACME"
    with pytest.raises(Conflict):
        organisations.create_organisation(ctx, by, "acme")
    for bad in ("", "AC ME", "-acme", "acme!", "x" * 81, "台積電"):
        with pytest.raises(Invalid) as refused:
            organisations.create_organisation(ctx, by, bad)
        assert list(refused.value.details) == ["name"]
    # A vendor joins `default` unless told otherwise; others belong to none.
    assert users.create_user(ctx, "v1", PASSWORD, ["vendor"]).vendor_org == "default"
    assert (
        users.create_user(ctx, "v2", PASSWORD, ["vendor"], vendor_org="acme").vendor_org == "ACME"
    )
    assert users.create_user(ctx, "d1", PASSWORD, ["service_desk"]).vendor_org is None
    for roles, org in ((["service_desk"], "ACME"), (["vendor"], "Initech"), (["vendor"], "a b")):
        with pytest.raises(Invalid) as refused:
            users.create_user(ctx, "nobody", PASSWORD, roles, vendor_org=org)
        assert "org" in refused.value.details
    assert not users.user_exists(ctx, "nobody")
    # Roles carry the membership along.
    users.set_roles(ctx, "d1", ["service_desk", "vendor"])
    assert users.sign_in(ctx, "d1", PASSWORD).vendor_org == "default"
    users.set_roles(ctx, "v2", ["level2"])
    assert users.sign_in(ctx, "v2", PASSWORD).vendor_org is None
    assert organisations.set_vendor_org(ctx, by, "v1", "acme") == "ACME"
    assert users.sign_in(ctx, "v1", PASSWORD).vendor_org == "ACME"
    with pytest.raises(Invalid):
        organisations.set_vendor_org(ctx, by, "d1", "Initech")
    with pytest.raises(Invalid):
        organisations.set_vendor_org(ctx, by, "v2", "ACME")  # no longer a vendor
    counts = {o["name"]: o["vendors"] for o in organisations.list_organisations(ctx)}
    assert counts == {"ACME": 1, "default": 3}  # v1; vendor, vendor2, d1


def test_a_moved_vendor_sees_what_their_new_organisation_sees(
    two_orgs: Api, ctx: ServiceContext
) -> None:
    api = two_orgs
    s = _escalated_to(api, "ACME")
    assert api.get("globex", f"/incidents/{s.id}").status_code == 404
    admin = users.sign_in(ctx, "admin", PASSWORD)
    organisations.set_vendor_org(ctx, admin, "globex", "ACME")
    # The same token: the actor is read on every request.
    assert api.ok(api.get("globex", f"/incidents/{s.id}"))["id"] == s.id


# -- the administration page ------------------------------------------------------------


def test_admin_page_creates_organisations_and_places_vendors(app: Any, ctx: ServiceContext) -> None:
    admin = _signed_in(app, "admin")
    page = admin.get(ADMIN_PAGE).get_data(as_text=True)
    assert "Vendor organisations" in page and ">default<" in page

    created = admin.post("/admin/organisations", {"name": "ACME"}, csrf_from=ADMIN_PAGE)
    assert created.status_code == 302
    again = admin.post("/admin/organisations", {"name": "acme"}, csrf_from=ADMIN_PAGE)
    assert again.status_code == 409 and "This organisation already exists." in again.get_data(
        as_text=True
    )
    bad = admin.post("/admin/organisations", {"name": "AC ME"}, csrf_from=ADMIN_PAGE)
    assert bad.status_code == 422
    assert 'value="AC ME" maxlength="80"' in bad.get_data(as_text=True)

    new_user = {
        "username": "acme1",
        "display_name": "",
        "password": "a long enough secret",
        "roles": ["vendor"],
        "org": "ACME",
    }
    assert admin.post(ADMIN_PAGE, new_user, csrf_from=ADMIN_PAGE).status_code == 302
    assert users.sign_in(ctx, "acme1", "a long enough secret").vendor_org == "ACME"
    not_a_vendor = dict(new_user, username="desk9", roles=["service_desk"])
    refused = admin.post(ADMIN_PAGE, not_a_vendor, csrf_from=ADMIN_PAGE)
    assert refused.status_code == 422
    assert "Only a vendor user belongs to an organisation." in refused.get_data(as_text=True)

    moved = admin.post("/admin/users/vendor/org", {"org": "ACME"}, csrf_from=ADMIN_PAGE)
    assert moved.status_code == 302
    assert users.sign_in(ctx, "vendor", PASSWORD).vendor_org == "ACME"
    unknown = admin.post("/admin/users/vendor/org", {"org": "Initech"}, csrf_from=ADMIN_PAGE)
    assert unknown.status_code == 422
    assert "Choose an organisation from the list." in unknown.get_data(as_text=True)
    assert (
        admin.post("/admin/users/desk/org", {"org": "ACME"}, csrf_from=ADMIN_PAGE).status_code
        == 422
    )
    assert (
        admin.post("/admin/users/nobody/org", {"org": "ACME"}, csrf_from=ADMIN_PAGE).status_code
        == 404
    )

    desk = _signed_in(app, "desk")
    assert (
        desk.post("/admin/organisations", {"name": "Evil"}, csrf_from="/tasks").status_code == 403
    )
    assert (
        desk.post("/admin/users/vendor/org", {"org": "default"}, csrf_from="/tasks").status_code
        == 403
    )
    no_csrf = admin.post("/admin/organisations", {"name": "Initech"}, with_csrf=False)
    assert no_csrf.status_code == 400
    names = [o["name"] for o in organisations.list_organisations(ctx)]
    assert names == ["ACME", "default"]


# -- the command line ---------------------------------------------------------------------


def _itsm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=ROOT,
        env=dict(os.environ, ITSM_DATABASE_URL=database_url),
        input="a long enough secret\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_user_create_with_org(database_url: str, ctx: ServiceContext) -> None:
    made = _itsm(
        "user", "create", "acme1", "--role", "vendor", "--org", "ACME", database_url=database_url
    )
    assert made.returncode == 0, made.stderr
    assert "organisation ACME" in made.stdout
    same = _itsm(
        "user", "create", "acme2", "--role", "vendor", "--org", "acme", database_url=database_url
    )
    assert same.returncode == 0, same.stderr
    plain = _itsm("user", "create", "plain", "--role", "vendor", database_url=database_url)
    assert plain.returncode == 0, plain.stderr
    for username, org in (("acme1", "ACME"), ("acme2", "ACME"), ("plain", "default")):
        assert users.sign_in(ctx, username, "a long enough secret").vendor_org == org
    not_vendor = _itsm(
        "user",
        "create",
        "deskx",
        "--role",
        "service_desk",
        "--org",
        "ACME",
        database_url=database_url,
    )
    assert not_vendor.returncode == 2 and "org: only a vendor user" in not_vendor.stderr
    bad = _itsm(
        "user", "create", "badorg", "--role", "vendor", "--org", "AC ME", database_url=database_url
    )
    assert bad.returncode == 2 and "org: must be 1-80 letters" in bad.stderr
    assert not users.user_exists(ctx, "deskx") and not users.user_exists(ctx, "badorg")
    help_text = _itsm("user", "create", "--help", database_url=database_url).stdout
    assert "created if it does not exist" in " ".join(help_text.split())


# -- migration 0010 ---------------------------------------------------------------------


def _migrate(ctx: ServiceContext, target: str, *, down: bool) -> None:
    config = alembic_config()
    with ctx.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


def test_migration_0010_round_trip_keeps_vendors_seeing_their_incidents(
    api: Api, ctx: ServiceContext
) -> None:
    s = _escalated_to(api, None)
    task = _vendor_task(s)
    admin = users.sign_in(ctx, "admin", PASSWORD)
    organisations.create_organisation(ctx, admin, "ACME")
    before_0010 = ScriptDirectory.from_config(alembic_config()).get_revision("0010").down_revision
    assert isinstance(before_0010, str)

    _migrate(ctx, before_0010, down=True)
    schema = inspect(ctx.db.engine)
    assert "vendor_organisations" not in schema.get_table_names()
    assert "vendor_org" not in {c["name"] for c in schema.get_columns("users")}
    assert "vendor_org" not in {c["name"] for c in schema.get_columns("user_tasks")}
    # Vendor data made before 0010: a user who became a vendor meanwhile.
    with ctx.db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO user_roles (user_id, role) "
                "SELECT id, 'vendor' FROM users WHERE username = 'reporter2'"
            )
        )

    _migrate(ctx, "head", down=False)
    with ctx.db.read() as session:
        assert session.scalars(select(VendorOrganisation.name)).all() == ["default"]
        orgs = {name: org for name, org in session.execute(select(User.username, User.vendor_org))}
        assert orgs["vendor"] == orgs["vendor2"] == orgs["reporter2"] == "default"
        assert orgs["desk"] is None and orgs["l2"] is None
        lanes = {
            lane: org
            for lane, org in session.execute(select(UserTaskRow.lane, UserTaskRow.vendor_org))
        }
        assert lanes["vendor"] == "default" and lanes["level2"] is None
    indexes = {i["name"] for i in inspect(ctx.db.engine).get_indexes("user_tasks")}
    assert "ix_user_tasks_vendor_org" in indexes
    assert api.ok(api.get("vendor", f"/incidents/{s.id}"))["id"] == s.id
    assert [t["id"] for t in api.ok(api.get("vendor", "/tasks"))] == [task["id"]]


def test_a_vendor_sees_neither_another_organisations_task_nor_its_name(api, ctx):
    """Follow-up: an incident that was with two organisations shows each vendor only
    their own vendor task, and no organisation's name in its history."""
    for name, org in (("acme1", "ACME"), ("globex1", "Globex")):
        users.create_user(ctx, name, PASSWORD, ["vendor"], vendor_org=org, create_org_as="admin")
        api.tokens[name] = users.issue_token(ctx, name, PASSWORD).token
    s = Scenario(api)
    s.record()
    s.desk_passes_on()
    s.level2("escalate_vendor", vendor_org="ACME")
    s.complete("vendor_investigation", {"solution": "patched"}, "acme1")
    s.resolve("level2")
    s.confirm(False)  # not recovered: back to level 2, which asks Globex this time
    s.level2("escalate_vendor", vendor_org="Globex")
    globex_task = s.task_id("vendor_investigation")
    api.ok(api.post("globex1", f"/tasks/{globex_task}/claim"))
    view = api.ok(api.get("acme1", f"/incidents/{s.id}"))
    # Not even the events of Globex's task (its claim) reach ACME.
    assert all(e.get("task_id") != globex_task for e in view["events"])
    assert "vendor_investigation" not in [t["name"] for t in view["tasks"]]
    assert all("vendor_org" not in e for e in view["events"])
    theirs = api.ok(api.get("globex1", f"/incidents/{s.id}"))
    assert [t["name"] for t in theirs["tasks"]] == ["vendor_investigation"]
    assert all("vendor_org" not in t for t in theirs["tasks"])
    staff = api.ok(api.get("manager", f"/incidents/{s.id}"))
    assert [t.get("vendor_org") for t in staff["tasks"]] == ["Globex"]


def test_organisations_created_and_vendors_moved_are_administration_events(api, ctx):
    users.create_user(ctx, "acme2", PASSWORD, ["vendor"], vendor_org="ACME", create_org_as="admin")
    admin = users.actor_for_token(ctx, api.tokens["admin"])
    organisations.create_organisation(ctx, admin, "Initech")
    organisations.set_vendor_org(ctx, admin, "acme2", "Initech")
    events = api.ok(api.get("admin", "/audit/admin-events"))["items"]
    recent = [(e["type"], e["actor"], e["data"]) for e in events[:3]]
    assert recent[0] == (
        "vendor_org_changed", "admin", {"username": "acme2", "before": "ACME", "after": "Initech"}
    )
    assert recent[1] == ("vendor_org_created", "admin", {"name": "Initech"})
