"""Process definitions over the API and the `itsm` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.domain.roles import ALL_ROLES
from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.servers import ROOT

BUNDLED = BUNDLED_PROCESS.read_bytes()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol3;</definitions>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="&xxe;"/>"""


def deploy(api, user, body, note=""):
    return api.client.post(
        "/api/v1/process-definitions" + (f"?note={note}" if note else ""),
        data=body,
        headers={"Authorization": f"Bearer {api.tokens[user]}", "Content-Type": "application/xml"},
    )


def test_list_and_download(api):
    listing = api.ok(api.get("desk", "/process-definitions"))
    assert [(d["key"], d["version"], d["deployed_by"]) for d in listing] == [
        ("incident_management", 1, "system")
    ]
    response = api.get("desk", "/process-definitions/incident_management/1.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.data == BUNDLED
    assert api.get("reporter", "/process-definitions").status_code == 403
    assert api.get("vendor", "/process-definitions").status_code == 403


def test_designer_deploys_new_version_running_incidents_stay(api):
    running = Scenario(api)
    created = deploy(api, "designer", BUNDLED, note="second")
    assert created.status_code == 201, created.get_json()
    assert created.get_json() == {"key": "incident_management", "version": 2}
    listing = api.ok(api.get("desk", "/process-definitions"))
    assert [(d["version"], d["note"], d["deployed_by"]) for d in listing][-1] == (
        2,
        "second",
        "designer",
    )
    assert running.refresh()["process"]["version"] == 1
    fresh = Scenario(api)
    assert fresh.incident["process"]["version"] == 2
    running.record()
    fresh.record()
    assert running.open_tasks() == fresh.open_tasks() == ["initial_handling"]


def test_only_designers_deploy(api):
    response = deploy(api, "manager", BUNDLED)
    assert response.status_code == 403
    assert len(api.ok(api.get("desk", "/process-definitions"))) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (BUNDLED[: len(BUNDLED) // 2], ""),
        (BILLION_LAUGHS, "DOCTYPE"),
        (XXE, "DOCTYPE"),
        (b"<html><body>hi</body></html>", "definitions"),
        (b"", ""),
        (BUNDLED.replace(b'id="record_incident"', b'id="Start"'), "Start"),
        (BUNDLED.replace(b"itsm_priority(impact, urgency)", b"__import__('os')"), "__import__"),
    ],
)
def test_hostile_or_broken_bpmn_is_422_and_nothing_deployed(api, body, fragment):
    response = deploy(api, "designer", body)
    assert response.status_code == 422, response.get_json()
    payload = response.get_json()
    assert isinstance(payload["details"], list) and payload["details"]
    problem = payload["details"][0]
    assert set(problem) == {"element", "line", "message", "level"}
    assert problem["level"] == "error"
    assert fragment in str(payload["details"])
    assert "root:" not in str(payload)  # nothing of /etc/passwd leaks
    assert len(api.ok(api.get("desk", "/process-definitions"))) == 1


def test_oversize_upload_is_422(api):
    body = BUNDLED + b"<!--" + b"x" * (5 * 1024 * 1024) + b"-->"
    response = deploy(api, "designer", body)
    assert response.status_code == 422
    assert "too large" in response.get_json()["error"]


# -- the command line ----------------------------------------------------------


def itsm(*args: str, database_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ITSM_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_user_create_reads_password_from_stdin(database_url, api):
    result = itsm(
        "user",
        "create",
        "newbie",
        "--role",
        "level2",
        "--role",
        "level3",
        database_url=database_url,
        stdin="a long password\n",
    )
    assert result.returncode == 0, result.stderr
    token = api.client.post(
        "/api/v1/auth/token", json={"username": "newbie", "password": "a long password"}
    )
    assert token.status_code == 200
    again = itsm(
        "user",
        "create",
        "newbie",
        "--role",
        "level2",
        database_url=database_url,
        stdin="a long password\n",
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    short = itsm(
        "user", "create", "other", "--role", "level2", database_url=database_url, stdin="short\n"
    )
    assert short.returncode == 2 and "password" in short.stderr


def test_cli_demo_creates_missing_users_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = itsm("demo", database_url=url)
    assert first.returncode == 0, first.stderr
    assert "desk" in first.stdout and "incident_manager" in first.stdout
    assert all(role in first.stdout for role in ALL_ROLES)  # one demo user per role
    second = itsm("demo", database_url=url)
    assert second.returncode == 0
    assert second.stdout.count("exists") >= len(ALL_ROLES)


def test_cli_lint_and_deploy(database_url, tmp_path):
    ok = itsm("lint", str(BUNDLED_PROCESS), database_url=database_url)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "broken.bpmn"
    broken.write_bytes(BUNDLED.replace(b'id="initial_handling"', b'id="End"'))
    bad = itsm("lint", str(broken), database_url=database_url)
    assert bad.returncode == 1
    assert str(broken) in bad.stderr and "[End]" in bad.stderr
    line_numbers = [part.split(":")[1] for part in bad.stderr.splitlines() if str(broken) in part]
    assert any(n.isdigit() for n in line_numbers)
    missing = itsm("lint", str(tmp_path / "nope.bpmn"), database_url=database_url)
    assert missing.returncode == 2 and "nope.bpmn" in missing.stderr

    deployed = itsm(
        "deploy", str(BUNDLED_PROCESS), "--note", "from the CLI", database_url=database_url
    )
    assert deployed.returncode == 0, deployed.stderr
    assert "version 2" in deployed.stdout
    refused = itsm("deploy", str(broken), database_url=database_url)
    assert refused.returncode == 2
    assert "[End]" in refused.stderr


def test_serve_creates_schema_and_deploys_on_empty_database(tmp_path):
    from tests.servers import Server, free_port

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    server = Server(url, free_port())
    try:
        import urllib.request

        with urllib.request.urlopen(f"{server.base}/process-definitions", timeout=10) as r:
            raise AssertionError(f"expected 401, got {r.status}")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    finally:
        server.stop()
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from process_definitions")).scalar() == 1
        assert conn.execute(text("select count(*) from users")).scalar() == 0
    engine.dispose()
    assert Path(tmp_path / "fresh.db").exists()
