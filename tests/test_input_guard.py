"""Input no handler may see gets a 4xx, never a 500 (security test findings).

NUL characters (PostgreSQL refuses them), unpaired surrogates, deeply nested
JSON, ids beyond the id columns and racing deploys, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import threading

from tests.test_definitions_api_and_cli import BUNDLED, deploy


def _post_raw(api, user, path, raw: bytes):
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = f"Bearer {api.tokens[user]}"
    return api.client.post("/api/v1" + path, data=raw, headers=headers)


def _count(api) -> int:
    return api.ok(api.get("manager", "/incidents"))["total"]


def test_nul_in_json_text_is_422_naming_the_field_and_stores_nothing(api):
    before = _count(api)
    response = api.post("reporter", "/incidents", {"title": "a\x00b", "channel": "web"})
    assert response.status_code == 422
    assert "title" in response.get_json()["details"]
    assert _count(api) == before


def test_nul_in_a_nested_value_and_in_a_key(api):
    response = api.post("reporter", "/incidents", {"title": "ok", "channel": "web", "x\x00": 1})
    assert response.status_code == 422
    assert list(response.get_json()["details"]) == ["x"]


def test_nul_in_sign_in_is_422(api):
    response = api.post(None, "/auth/token", {"username": "desk\x00", "password": "x"})
    assert response.status_code == 422
    assert "username" in response.get_json()["details"]


def test_nul_in_the_login_form_is_422(browser):
    token = browser.csrf_token("/login")
    response = browser.client.post(
        "/login", data={"username": "desk\x00", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 422
    assert b"username" in response.data


def test_nul_in_a_query_parameter_is_422(api, browser):
    response = api.get("manager", "/incidents?status=new%00")
    assert response.status_code == 422
    assert "status" in response.get_json()["details"]
    browser.login("manager")
    assert browser.get("/incidents?q=mail%00").status_code == 422


def test_lone_surrogate_is_422(api):
    response = _post_raw(api, "reporter", "/incidents", b'{"title": "\\ud800", "channel": "web"}')
    assert response.status_code == 422
    assert "title" in response.get_json()["details"]


def test_deeply_nested_json_is_400(api):
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 40 + b"1" + b"}" * 40):
        response = _post_raw(api, "reporter", "/incidents", raw)
        assert response.status_code == 400, response.get_json()
        assert "nested" in response.get_json()["error"]


def test_ids_beyond_64_bits_are_unknown(api, browser):
    huge = 2**64 + 1
    for path in (f"/incidents/{huge}", f"/incidents/{huge}/notes"):
        assert api.get("manager", path).status_code == 404
    assert api.post("desk", f"/incidents/{huge}/resume").status_code == 404
    browser.login("manager")
    assert browser.get(f"/incidents/{huge}").status_code == 404


def test_concurrent_deploys_each_get_their_own_version(api, app):
    results: list[int] = []
    barrier = threading.Barrier(4)

    def deploy_one(n: int) -> None:
        client_api = type(api)(app.test_client(), api.tokens)
        barrier.wait()
        results.append(deploy(client_api, "designer", BUNDLED, f"race{n}").status_code)

    threads = [threading.Thread(target=deploy_one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [201] * 4
    versions = [d["version"] for d in api.ok(api.get("designer", "/process-definitions"))]
    assert versions == [1, 2, 3, 4, 5]


def test_ids_beyond_postgresqls_integer_columns_are_unknown(api):
    """Found by schemathesis on PostgreSQL: id columns are 32-bit there."""
    past = 2**31
    for user, method, path in (
        ("designer", "GET", f"/process-drafts/{past}"),
        ("designer", "GET", f"/incidents/{past}"),
        ("admin", "DELETE", f"/api-keys/{past}"),
    ):
        assert api.call(user, method, path).status_code == 404, path
    diff = api.get("designer", f"/process-definitions/incident_management/diff?from={past}&to=1")
    assert diff.status_code == 404


def test_ids_beyond_64_bits_in_queries_and_bodies_are_unknown(api):
    """Found by schemathesis: the diff's versions and migrate's incident ids reached
    the database (500)."""
    huge = 2**63
    diff = api.get("designer", f"/process-definitions/incident_management/diff?from={huge}&to=1")
    assert diff.status_code == 404
    migrate = api.post(
        "designer", "/process-definitions/incident_management/1/migrate", {"incident_ids": [huge]}
    )
    assert migrate.status_code == 422
    assert "incident_ids" in migrate.get_json()["details"]


def test_a_method_not_allowed_says_which_are(api):
    response = api.call("manager", "PATCH", "/tasks")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
