"""The OpenAPI document: it covers every route, is valid OpenAPI 3.1, and tells the truth.

The truth is checked on real answers: `CheckedApi` is the tests' `Api` that, for
every call, finds the operation the URL map routed it to and asserts the status is
declared, the media type is one declared for it, and a JSON body validates against
the declared schema. The walks below drive incidents, tasks, the process, drafts and
the SLA settings through it, errors included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import NotFound

from engine.services.context import ServiceContext
from engine.services.people import users
from engine.services.process.definitions import BUNDLED_PROCESS
from tests.conftest import PASSWORD, Api
from tests.scenario import Scenario
from web.api.openapi import (
    api_rules,
    build_document,
    declaration_of,
    openapi_path,
    undeclared_routes,
)

DOCUMENT_URI = "urn:itsm:openapi"
BUNDLED = BUNDLED_PROCESS.read_bytes()
XML = {"Content-Type": "application/xml"}


def pointer(*parts: str) -> str:
    return "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="") for p in parts)


class CheckedApi(Api):
    """The JSON API, each answer checked against the document the app serves."""

    def __init__(self, api: Api, app: Flask) -> None:
        super().__init__(api.client, dict(api.tokens))  # a copy: tests may add keys
        self.app = app
        self.document = api.client.get("/api/v1/openapi.json").get_json()
        resource = Resource(contents=self.document, specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.seen: set[tuple[str, int]] = set()

    def call(self, user: str | None, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        response = super().call(user, method, path, json, **kw)
        self.check(method, "/api/v1" + path, response)
        return response

    def check(self, method: str, url: str, response: Any) -> None:
        adapter = self.app.url_map.bind("localhost")
        try:
            rule, _ = adapter.match(urlsplit(url).path, method=method, return_rule=True)
        except NotFound:  # no route at all (a malformed id): the JSON 404 of any path
            assert response.status_code == 404
            self.validate(response.get_json(), "components", "schemas", "Error")
            return
        template = openapi_path(rule)
        operation = self.document["paths"][template][method.lower()]
        status = str(response.status_code)
        where = f"{method} {url} → {status}"
        assert status in operation["responses"], f"{where}: undeclared status"
        declared = operation["responses"][status]
        for header in declared.get("headers", {}):
            assert header in response.headers, f"{where}: no {header} header"
        content = declared.get("content")
        if not content:
            assert response.data == b"", f"{where}: a body where none is declared"
        else:
            assert response.mimetype in content, f"{where}: {response.mimetype} not declared"
            if response.mimetype == "application/json":
                self.validate(
                    response.get_json(),
                    "paths", template, method.lower(), "responses", status,
                    "content", "application/json", "schema",
                )  # fmt: skip
        self.seen.add((operation["operationId"], response.status_code))

    def validate(self, instance: Any, *location: str) -> None:
        schema = {"$ref": f"{DOCUMENT_URI}#/{pointer(*location)}"}
        Draft202012Validator(schema, registry=self.registry).validate(instance)

    def xml(self, user: str, method: str, path: str, body: bytes, **kw: Any) -> Any:
        return self.call(user, method, path, data=body, headers=XML, **kw)


@pytest.fixture
def checked(api: Api, app: Flask) -> CheckedApi:
    return CheckedApi(api, app)


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
    }


# -- the document ---------------------------------------------------------------------


def test_every_api_route_is_documented_and_every_operation_exists(app: Flask) -> None:
    assert undeclared_routes(app) == []
    routes = {(openapi_path(rule), method) for rule, method in api_rules(app)}
    assert operations(build_document(app)) == routes
    assert len(routes) >= 39


def test_path_parameters_match_the_rules_and_their_converters(app: Flask) -> None:
    document = build_document(app)
    for rule, method in api_rules(app):
        if declaration_of(app, rule) is None:
            continue  # the test above names it
        operation = document["paths"][openapi_path(rule)][method.lower()]
        declared = {p["name"]: p["schema"] for p in operation.get("parameters", [])
                    if p["in"] == "path"}
        assert set(declared) == set(rule.arguments), rule.rule
    incident = document["paths"]["/incidents/{incident_id}"]["get"]["parameters"][0]
    assert incident["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    task = document["paths"]["/tasks/{task_id}"]["get"]["parameters"][0]
    assert task["schema"]["type"] == "string"


def test_the_document_is_valid_openapi_3_1_and_needs_no_token(api: Api, app: Flask) -> None:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()
    assert document == build_document(app)


def test_the_validator_refuses_a_broken_document(app: Flask) -> None:
    document = build_document(app)
    document["paths"]["/incidents"]["post"]["responses"]["201"]["content"][
        "application/json"
    ]["schema"] = {"$ref": "#/components/schemas/NoSuchThing"}
    with pytest.raises(Exception, match="NoSuchThing"):
        OpenAPIV31SpecValidator(document).validate()


def test_security_and_media_types_are_declared(app: Flask) -> None:
    paths = build_document(app)["paths"]
    assert paths["/auth/token"]["post"]["security"] == []
    assert paths["/openapi.json"]["get"]["security"] == []
    assert paths["/incidents"]["post"]["security"] == [{"bearerAuth": []}]
    upload = paths["/process-definitions"]["post"]["requestBody"]["content"]
    assert upload["application/xml"]["x-max-bytes"] == 5 * 1024 * 1024
    download = paths["/process-definitions/{key}/{version}.bpmn"]["get"]["responses"]["200"]
    assert set(download["content"]) == {"application/xml"}
    assert "Retry-After" in paths["/auth/token"]["post"]["responses"]["429"]["headers"]
    for item in paths.values():
        for operation in item.values():
            if operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]) or operation[
                    "operationId"
                ] == "change_own_password"


# -- the checks can fail ----------------------------------------------------------------


def test_a_wrong_answer_fails_the_checks(checked: CheckedApi) -> None:
    incident = checked.ok(checked.post("reporter", "/incidents", {"title": "x", "channel": "web"}),
                          201)
    broken = {k: v for k, v in incident.items() if k != "status"}
    with pytest.raises(ValidationError):
        checked.validate(broken, "components", "schemas", "Incident")
    with pytest.raises(ValidationError):
        checked.validate({**incident, "priority": "high"}, "components", "schemas", "Incident")
    teapot = checked.app.response_class(b"{}", status=418, mimetype="application/json")
    with pytest.raises(AssertionError, match="undeclared status"):
        checked.check("GET", f"/api/v1/incidents/{incident['id']}", teapot)


# -- real answers -------------------------------------------------------------------------


def test_an_incident_walk_answers_as_documented(checked: CheckedApi) -> None:
    api = checked
    s = Scenario(api)
    api.ok(api.post("desk", "/incidents", {"title": "Printer", "description": "jammed",
                                           "contact": "ext 1", "channel": "phone"}), 201)
    api.ok(api.get("reporter", f"/incidents/{s.id}"))
    api.ok(api.get("manager", f"/incidents/{s.id}"))
    api.ok(api.get("desk", "/incidents?status=new&priority=3&limit=5&offset=0"))
    assert api.get("desk", "/incidents?limit=0").status_code == 422
    tasks = api.ok(api.get("desk", "/tasks"))
    task_id = next(t["id"] for t in tasks if t["incident_id"] == s.id)
    api.ok(api.get("desk", f"/tasks/{task_id}"))
    api.ok(api.post("desk", f"/tasks/{task_id}/claim"))
    assert api.post("desk2", f"/tasks/{task_id}/complete", {}).status_code == 409
    api.ok(api.post("desk", f"/tasks/{task_id}/release"))
    api.ok(api.post("desk", f"/tasks/{task_id}/assign", {"username": "desk2"}))
    assert api.post("desk2", f"/tasks/{task_id}/assign", {"username": "l2"}).status_code == 422
    assert api.post("l2", f"/tasks/{task_id}/claim").status_code == 403
    assert api.post("desk2", f"/tasks/{task_id}/complete", {"impact": "9"}).status_code == 422
    s.complete("record_incident", {"category": "software", "impact": "2", "urgency": "2"},
               user="desk2")
    api.ok(api.patch("desk", f"/incidents/{s.id}", {"urgency": "1"}))
    assert api.patch("reporter", f"/incidents/{s.id}", {"urgency": "1"}).status_code == 403
    assert api.patch("desk", f"/incidents/{s.id}", {"colour": "red"}).status_code == 422

    api.ok(api.post("reporter", f"/incidents/{s.id}/notes", {"text": "any news?"}), 201)
    api.ok(api.post("desk", f"/incidents/{s.id}/notes", {"text": "ours", "internal": True}), 201)
    assert api.post("reporter", f"/incidents/{s.id}/notes",
                    {"text": "x", "internal": True}).status_code == 403
    api.ok(api.get("reporter", f"/incidents/{s.id}/notes"))
    api.ok(api.get("desk", f"/incidents/{s.id}/notes"))
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend",
                    {"reason": "waiting", "category": "awaiting_reporter"}))
    assert api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "again"}).status_code == 409
    api.ok(api.get("manager", f"/incidents/{s.id}"))
    api.ok(api.post("desk", f"/incidents/{s.id}/resume"))
    assert api.post("desk", f"/incidents/{s.id}/resume").status_code == 409

    s.desk_resolves()
    s.confirm(True)
    s.feedback()
    api.ok(api.get("reporter", f"/incidents/{s.id}"))
    assert api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "late"}).status_code == 409

    # Errors: no token, unknown or malformed ids, bodies that are not JSON.
    assert api.get(None, "/incidents").status_code == 401
    assert api.get("reporter2", f"/incidents/{s.id}").status_code == 404
    assert api.get("desk", "/incidents/99999999").status_code == 404
    assert api.get("desk", "/incidents/-1").status_code == 404
    assert api.get("desk", "/tasks/no-such-task").status_code == 404
    assert api.call("desk", "POST", "/incidents", data=b"{not json",
                    content_type="application/json").status_code == 400
    assert api.post("desk", "/incidents", {"title": "", "channel": "fax"}).status_code == 422
    assert api.get("desk", "/tasks/a%00b").status_code == 422

    export = api.get("manager", "/incidents.csv?status=closed&sort=priority")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert api.get("manager", "/incidents.csv?status=lost").status_code == 422
    api.ok(api.get("admin", "/audit/admin-events?limit=5"))
    assert api.get("desk", "/audit/admin-events").status_code == 403

    for operation_id in ("create_incident", "get_incident", "list_incidents", "list_tasks",
                         "get_task", "complete_task", "add_note", "list_notes", "suspend",
                         "export_incidents_csv", "list_admin_events"):
        assert any(op == operation_id for op, _ in api.seen), operation_id


def test_process_and_draft_answers_as_documented(checked: CheckedApi) -> None:
    api = checked
    closed = Scenario(api)
    closed.record()
    closed.desk_resolves()
    closed.confirm(True)
    closed.feedback()
    waiting = Scenario(api)
    waiting.record()

    api.ok(api.get("designer", "/process-definitions"))
    assert api.get("reporter", "/process-definitions").status_code == 403
    download = api.get("designer", "/process-definitions/incident_management/1.bpmn")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert api.get("designer", "/process-definitions/nope/1.bpmn").status_code == 404
    api.ok(api.get("designer", "/process-definitions/incident_management/diff?from=1&to=1"))
    assert api.get("designer", "/process-definitions/incident_management/diff?from=1&to=x"
                   ).status_code == 404
    refused = api.xml("designer", "POST", "/process-definitions", b"<definitions/>")
    assert refused.status_code == 422 and isinstance(refused.get_json()["details"], list)
    assert api.xml("desk", "POST", "/process-definitions", BUNDLED).status_code == 403

    draft = api.ok(api.xml("designer", "POST", "/process-drafts?name=copy", b""), 201)
    path = f"/process-drafts/{draft['id']}"
    api.ok(api.get("manager", "/process-drafts"))
    api.ok(api.get("manager", path))
    edited = BUNDLED.replace(b'name="Initial handling"', b'name="First-line handling"')
    api.ok(api.xml("designer", "PUT", f"{path}?revision={draft['revision']}", edited))
    assert api.xml("designer", "PUT", f"{path}?revision=1", edited).status_code == 409
    assert api.xml("designer", "PUT", f"{path}", edited).status_code == 422
    api.ok(api.get("designer", f"{path}/problems"))
    api.ok(api.get("manager", f"{path}/what-if?limit=5"))
    assert api.get("manager", f"{path}/what-if?limit=500").status_code == 422
    assert api.xml("designer", "POST", "/process-drafts", b"<not-closed").status_code == 422
    deployed = api.ok(api.post("designer", f"{path}/deploy?note=renamed"), 201)
    assert deployed["version"] == 2

    preview = f"/process-definitions/incident_management/{deployed['version']}"
    candidates = api.ok(api.get("manager", f"{preview}/migration-preview"))
    assert [c["incident_id"] for c in candidates] == [waiting.id]
    moved = api.ok(api.post("manager", f"{preview}/migrate", {"incident_ids": [waiting.id]}))
    assert moved[0]["ok"] is True
    assert api.post("manager", f"{preview}/migrate", {"incident_ids": []}).status_code == 422
    assert api.get("desk", f"{preview}/migration-preview").status_code == 403
    assert api.get("manager", "/process-definitions/incident_management/9/migration-preview"
                   ).status_code == 404

    other = api.ok(api.xml("designer", "POST", "/process-drafts", BUNDLED), 201)
    assert api.call("designer", "DELETE", f"/process-drafts/{other['id']}").status_code == 204
    assert api.get("designer", f"/process-drafts/{other['id']}").status_code == 404

    for operation_id in ("list_definitions", "download", "deploy", "diff", "create_draft",
                         "get_draft", "list_drafts", "save_draft", "draft_problems", "what_if",
                         "deploy_draft", "delete_draft", "migration_preview", "migrate"):
        assert any(op == operation_id for op, _ in api.seen), operation_id


def test_sla_answers_as_documented(checked: CheckedApi) -> None:
    api = checked
    s = Scenario(api)
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "waiting"}))
    api.ok(api.get("desk", "/sla/policies"))
    assert api.get("reporter", "/sla/policies").status_code == 403
    api.ok(api.call("manager", "PUT", "/sla/policies/2", {"response_seconds": 1200,
                                                           "stages": {"level2": {
                                                               "target_seconds": 3600}}}))
    assert api.call("manager", "PUT", "/sla/policies/9", {"response_seconds": 1}
                    ).status_code == 404
    assert api.call("manager", "PUT", "/sla/policies/2", {"response_seconds": -1}
                    ).status_code == 422
    assert api.call("desk", "PUT", "/sla/policies/2", {"response_seconds": 60}).status_code == 403

    office = {"name": "office", "timezone": "Asia/Taipei",
              "weekly": {"mon": [{"start": "09:00", "end": "18:00"}]},
              "holidays": ["2026-12-25"], "use_taiwan_holidays": False}
    api.ok(api.get("desk", "/sla/calendars"))
    api.ok(api.post("manager", "/sla/calendars", office), 201)
    assert api.post("manager", "/sla/calendars", office).status_code == 409
    assert api.post("manager", "/sla/calendars", {**office, "name": "Bad Name"}
                    ).status_code == 422
    api.ok(api.get("desk", "/sla/calendars/office"))
    api.ok(api.get("desk", "/sla/calendars/24x7"))
    assert api.get("desk", "/sla/calendars/none").status_code == 404
    api.ok(api.call("manager", "PUT", "/sla/calendars/office", {**office, "holidays": []}))
    api.ok(api.call("manager", "PUT", "/sla/policies/3", {"calendar": "office"}))
    in_use = api.call("manager", "DELETE", "/sla/calendars/office")
    assert in_use.status_code == 409 and in_use.get_json()["details"] == {"used_by": [3]}
    api.ok(api.call("manager", "PUT", "/sla/policies/3", {"calendar": "24x7"}))
    assert api.call("manager", "DELETE", "/sla/calendars/office").status_code == 204

    api.ok(api.get("manager", "/sla/suspensions"))
    api.ok(api.get("manager", "/sla/suspensions?since=2020-01-01T00:00:00%2B00:00"))
    assert api.get("manager", "/sla/suspensions?since=yesterday").status_code == 422
    assert api.get("desk", "/sla/suspensions").status_code == 403

    for operation_id in ("list_sla_policies", "update_sla_policy", "list_calendars",
                         "get_calendar", "create_calendar", "replace_calendar",
                         "delete_calendar", "suspended_time_per_person"):
        assert any(op == operation_id for op, _ in api.seen), operation_id


def test_sign_in_answers_as_documented(checked: CheckedApi) -> None:
    api = checked
    token = api.ok(api.post(None, "/auth/token", {"username": "desk", "password": PASSWORD}))
    assert set(token) >= {"token", "expires_at"}
    wrong = api.post(None, "/auth/token", {"username": "desk", "password": "wrong"})
    assert wrong.status_code == 401
    assert api.post(None, "/auth/token", {"username": "desk"}).status_code == 422
    changed = api.post("reporter2", "/auth/password", {
        "current_password": PASSWORD, "new_password": "seventeen quiet lanterns drift"})
    assert changed.status_code == 200, changed.get_json()
    weak = api.post(None, "/auth/password", {"current_password": "x", "new_password": "y"})
    assert weak.status_code == 401
    assert {("create_token", 200), ("create_token", 401), ("change_own_password", 200)} <= api.seen


def test_api_key_answers_as_documented(checked: CheckedApi, ctx: ServiceContext) -> None:
    api = checked
    users.create_user(ctx, "monitor", PASSWORD, ["integration"])
    issued = api.ok(api.post("admin", "/api-keys", {"username": "monitor", "name": "probe"}), 201)
    api.tokens["monitor"] = issued["key"]  # a key is a bearer token
    api.ok(api.post("monitor", "/incidents", {"title": "disk full", "channel": "app"}), 201)
    api.ok(api.get("admin", "/api-keys?limit=10"))
    assert api.post("admin", "/api-keys", {"username": "desk", "name": "x"}).status_code == 422
    assert api.get("desk", "/api-keys").status_code == 403
    api.ok(api.call("admin", "DELETE", f"/api-keys/{issued['id']}"))
    assert api.get("monitor", "/incidents").status_code == 401
    assert api.call("admin", "DELETE", "/api-keys/999999").status_code == 404
    assert {("issue_api_key", 201), ("list_api_keys", 200), ("revoke_api_key", 200)} <= api.seen
