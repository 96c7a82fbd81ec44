"""docs/examples/wecom_bridge.py, run on loopback against the app: a webhook reaches
the bridge, which checks its signature and pushes to a fake WeCom group robot; a
WeCom message through the bridge becomes an incident (channel wechat) or a note on
behalf of the caller.  Nothing leaves 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.serving import make_server

from engine.persistence.db import Database
from engine.services.context import Actor, ChannelSettings, ServiceContext
from engine.services.notify.webhook_delivery import deliver_due
from engine.services.people import api_keys, users
from tests.conftest import PASSWORD, TestClock
from tests.scenario import Scenario

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "wecom_bridge.py"
SECRET = "bridge-webhook-secret-0123"
BRIDGE_TOKEN = "bridge-inbound-token"
ADMIN = Actor(id=0, username="admin", roles=frozenset({"admin"}))


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wecom_bridge", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["wecom_bridge"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


class FakeRobot:
    """WeCom's group robot endpoint (`/cgi-bin/webhook/send?key=...`) on loopback."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.errcode = 0
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                robot.paths.append(self.path)
                robot.messages.append(json.loads(body))
                answer = json.dumps({"errcode": robot.errcode, "errmsg": "ok"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=k1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ctx(database_url: str, clock: TestClock) -> Iterator[ServiceContext]:
    channels = ChannelSettings(webhook_allowed_hosts=("127.0.0.1",))
    context = ServiceContext(db=Database(database_url), now=clock, channels=channels)
    yield context
    context.db.dispose()


@pytest.fixture
def itsm(app) -> Iterator[str]:
    """The app itself on a loopback port, for the bridge's calls."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def robot() -> Iterator[FakeRobot]:
    fake = FakeRobot()
    yield fake
    fake.close()


@pytest.fixture
def bridge(ctx, itsm, robot) -> Iterator[tuple[str, Any]]:
    module = load_example()
    users.create_user(ctx, "wecom", PASSWORD, ["integration"])
    key = api_keys.issue_key(ctx, ADMIN, {"username": "wecom", "name": "WeCom bridge"})["key"]
    config = module.Config(
        api_url=f"{itsm}/api/v1",
        api_key=key,
        webhook_secret=SECRET,
        wecom_robot_url=robot.url,
        bridge_token=BRIDGE_TOKEN,
        email_domain="example.com",
        base_url="https://itsm.example.com",
    )
    server = module.make_server(module.Bridge(config), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", module
    server.shutdown()
    server.server_close()


def test_an_event_reaches_the_wecom_group_through_the_bridge(api, ctx, bridge, robot):
    base, _module = bridge
    hook = api.ok(api.post("admin", "/webhooks", {"url": f"{base}/itsm/webhook",
                                                  "events": ["created", "resolved"],
                                                  "secret": SECRET}), 201)
    s = Scenario(api)
    assert deliver_due(ctx, "w1") == 1
    (message,) = robot.messages
    assert robot.paths == ["/cgi-bin/webhook/send?key=k1"]
    assert message["msgtype"] == "text"
    content = message["text"]["content"]
    assert content.startswith(f"[{s.incident['number']}] 新事件單")
    assert f"https://itsm.example.com/incidents/{s.id}" in content
    (row,) = api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries"))["items"]
    assert row["status"] == "delivered" and row["response_status"] == 200


def test_the_bridge_refuses_a_forged_event_and_asks_again_when_wecom_fails(api, ctx, bridge,
                                                                          robot, clock):
    base, module = bridge
    status, answer = module.call_json("POST", f"{base}/itsm/webhook", {"id": 1, "type": "x"})
    assert status == 401 and robot.messages == []

    hook = api.ok(api.post("admin", "/webhooks", {"url": f"{base}/itsm/webhook",
                                                  "events": ["created"], "secret": SECRET}), 201)
    robot.errcode = 93000  # WeCom refuses (e.g. an invalid robot key)
    Scenario(api)
    deliver_due(ctx, "w1")
    (row,) = api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries"))["items"]
    assert row["status"] == "queued" and row["response_status"] == 502
    robot.errcode = 0
    clock.advance(seconds=10)
    deliver_due(ctx, "w1")
    (row,) = api.ok(api.get("admin", f"/webhooks/{hook['id']}/deliveries"))["items"]
    assert row["status"] == "delivered" and len(robot.messages) == 2


def test_a_wecom_message_becomes_an_incident_then_a_note_for_its_caller(api, ctx, bridge):
    base, module = bridge
    users.create_user(ctx, "zhang", PASSWORD, ["reporter"], email="zhang@example.com")
    status, created = module.call_json(
        "POST", f"{base}/wecom/message",
        {"from": "zhang", "text": "印表機無法列印\n三樓的印表機從早上開始卡紙"},
        token=BRIDGE_TOKEN,
    )
    assert status == 201 and created["action"] == "created", created
    detail = api.ok(api.get("manager", f"/incidents/{created['incident_id']}"))
    assert detail["channel"] == "wechat" and detail["title"] == "印表機無法列印"
    assert detail["caller"]["username"] == "zhang"
    # The caller sees it as their own.
    mine = api.client.get("/api/v1/incidents", headers={
        "Authorization": f"Bearer {users.issue_token(ctx, 'zhang', PASSWORD).token}"})
    assert [i["id"] for i in mine.get_json()["items"]] == [created["incident_id"]]

    status, noted = module.call_json(
        "POST", f"{base}/wecom/message",
        {"from": "zhang", "text": f"[{created['number']}] 換了碳粉匣後可以了"},
        token=BRIDGE_TOKEN,
    )
    assert status == 201 and noted["action"] == "noted", noted
    notes = api.ok(api.get("manager", f"/incidents/{created['incident_id']}/notes"))
    items = notes["items"] if isinstance(notes, dict) else notes
    assert any(n["author"] == "zhang" and "碳粉匣" in n["text"] for n in items), items


def test_the_bridge_refuses_messages_without_its_token(bridge):
    base, module = bridge
    status, _ = module.call_json("POST", f"{base}/wecom/message", {"from": "a", "text": "b"},
                                 token="wrong")
    assert status == 401
