#!/usr/bin/env python3
"""A small WeCom (WeChat Work, 企業微信) bridge for the ITSM desk. Standard library only.

Two directions, one HTTP server (see docs/integrations.md):

ITSM -> WeCom   `POST /itsm/webhook`: register this address as an ITSM webhook.
                Each event's body is checked against its `X-ITSM-Signature`
                (HMAC-SHA256 with the webhook's secret) and pushed as a text
                message to a WeCom group robot ("群機器人", its webhook URL with
                `?key=...`). A robot that fails makes the bridge answer 502, so
                ITSM retries the delivery later; a delivery seen before
                (`X-ITSM-Delivery`) is answered 200 and not pushed twice.

WeCom -> ITSM   `POST /wecom/message` with `Authorization: Bearer BRIDGE_TOKEN`
                and a JSON body `{"from": "<WeCom userid>", "text": "...",
                "email": "<optional address>"}`. A text naming an incident,
                e.g. `[INC-000123] it works again`, becomes a note on that
                incident on behalf of the sender (its caller); any other text
                becomes a new incident (channel `wechat`) whose caller is the
                sender. The bridge calls the ITSM API with an integration
                user's API key.

WeCom's own callback (the app's "接收消息" URL) is XML encrypted with AES, which
the standard library cannot decrypt: put WeCom's official SDK (or any relay
that decrypts the callback) in front and have it POST the plain message here.

Settings (environment):
  ITSM_API_URL          the API, e.g. https://itsm.example.com/api/v1
  ITSM_API_KEY          an API key of an integration user (itsm_key_...)
  ITSM_WEBHOOK_SECRET   the secret the webhook was registered with
  ITSM_BASE_URL         for links in the messages (default: ITSM_API_URL's site)
  WECOM_ROBOT_URL       https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
  BRIDGE_TOKEN          what the sender of /wecom/message must present
  BRIDGE_EMAIL_DOMAIN   the sender's address is <userid>@<domain> unless the
                        message carries "email" (e.g. example.com)
  BRIDGE_HOST, BRIDGE_PORT   where to listen (default 127.0.0.1:8088)

Run: `python3 docs/examples/wecom_bridge.py`.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 64 * 1024
TIMEOUT = 10  # seconds for each call to ITSM or WeCom
INCIDENT_NUMBER = re.compile(r"\bINC-\d{6,}\b")
# The text a WeCom group reads for the usual event types; others show their code.
EVENT_WORDS = {
    "created": "新事件單",
    "assigned": "已指派",
    "technical_escalation": "技術升級",
    "management_escalation": "管理升級",
    "sla_warning": "SLA 即將逾時",
    "sla_breached": "SLA 已逾時",
    "suspended": "已暫停",
    "resumed": "已恢復處理",
    "resolved": "已解決",
    "reopened": "重新開啟",
    "closed": "已結案",
    "note_added": "新增備註",
}


@dataclass(frozen=True)
class Config:
    api_url: str
    api_key: str
    webhook_secret: str
    wecom_robot_url: str
    bridge_token: str
    email_domain: str = ""
    base_url: str = ""

    @classmethod
    def from_environment(cls) -> Config:
        api_url = os.environ["ITSM_API_URL"].rstrip("/")
        return cls(
            api_url=api_url,
            api_key=os.environ["ITSM_API_KEY"],
            webhook_secret=os.environ["ITSM_WEBHOOK_SECRET"],
            wecom_robot_url=os.environ["WECOM_ROBOT_URL"],
            bridge_token=os.environ["BRIDGE_TOKEN"],
            email_domain=os.environ.get("BRIDGE_EMAIL_DOMAIN", ""),
            base_url=os.environ.get("ITSM_BASE_URL", ""),
        )

    @property
    def site(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self.api_url)
        return f"{parts.scheme}://{parts.netloc}"


class CallFailed(Exception):
    """ITSM or WeCom answered with an error (or did not answer)."""


# No proxy from the environment: the bridge talks to the two servers it is told of.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call_json(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json; charset=utf-8")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read(MAX_BODY) or b"null")
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read(MAX_BODY) or b"null")
        except ValueError:
            detail = None
        return error.code, detail
    except (OSError, ValueError) as error:
        raise CallFailed(f"{method} {url}: {error}") from error


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """Whether `X-ITSM-Signature` is `sha256=` + the HMAC-SHA256 of exactly this body."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip())


class Bridge:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    # ITSM -> WeCom ---------------------------------------------------------------

    def itsm_event(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        if not signature_ok(self.config.webhook_secret, body, headers.get("X-ITSM-Signature", "")):
            return 401, {"error": "bad signature"}
        delivery = headers.get("X-ITSM-Delivery", "")
        with self._lock:
            if delivery and delivery in self._seen:
                return 200, {"pushed": False, "reason": "seen before"}
        event = json.loads(body)
        try:
            status, answer = call_json(
                "POST", self.config.wecom_robot_url,
                {"msgtype": "text", "text": {"content": self.message(event)}},
            )
        except CallFailed as error:
            return 502, {"error": str(error)}
        if status != 200 or not isinstance(answer, dict) or answer.get("errcode") != 0:
            return 502, {"error": f"WeCom answered {status}: {answer}"}
        with self._lock:
            self._seen[delivery] = None
            while len(self._seen) > 1000:
                self._seen.popitem(last=False)
        return 200, {"pushed": True}

    def message(self, event: dict[str, Any]) -> str:
        incident = event.get("incident") or {}
        words = EVENT_WORDS.get(event.get("type", ""), event.get("type", ""))
        priority = incident.get("priority")
        lines = [
            f"[{incident.get('number')}] {words}",
            f"狀態 status: {incident.get('status')} · 優先 priority: "
            + (f"P{priority}" if priority else "—"),
            f"{self.config.site}/incidents/{incident.get('id')}",
        ]
        return "\n".join(lines)

    # WeCom -> ITSM ---------------------------------------------------------------

    def wecom_message(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        given = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, self.config.bridge_token):
            return 401, {"error": "bad token"}
        try:
            message = json.loads(body)
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        sender = str(message.get("from") or "").strip()
        text = str(message.get("text") or "").strip()
        if not sender or not text:
            return 400, {"error": "from and text are required"}
        email = str(message.get("email") or "").strip()
        if not email and self.config.email_domain:
            email = f"{sender}@{self.config.email_domain}"
        caller = email or sender
        try:
            named = INCIDENT_NUMBER.search(text)
            if named:
                return self._note(named.group(0), caller, text)
            return self._incident(sender, caller, email, text)
        except CallFailed as error:
            return 502, {"error": str(error)}

    def _note(self, number: str, caller: str, text: str) -> tuple[int, dict[str, Any]]:
        api, key = self.config.api_url, self.config.api_key
        query = urllib.parse.urlencode({"q": number, "limit": 5})
        status, found = call_json("GET", f"{api}/incidents?{query}", token=key)
        items = found.get("items", []) if status == 200 and isinstance(found, dict) else []
        match = next((i for i in items if i.get("number") == number), None)
        if match is None:
            return 404, {"error": f"no incident {number}"}
        status, note = call_json(
            "POST", f"{api}/incidents/{match['id']}/notes",
            {"text": text, "on_behalf_of": caller}, token=key,
        )
        if status != 201:
            return 422 if status in (403, 422) else 502, {"error": note}
        return 201, {"action": "noted", "incident_id": match["id"], "number": number}

    def _incident(self, sender: str, caller: str, email: str, text: str
                  ) -> tuple[int, dict[str, Any]]:
        first_line = text.splitlines()[0][:300]
        report: dict[str, Any] = {
            "title": first_line,
            "description": text,
            "contact": f"WeCom {sender}",
            "channel": "wechat",
        }
        if email:
            report["caller_email"] = email
        else:
            report["caller"] = caller
        status, incident = call_json(
            "POST", f"{self.config.api_url}/incidents", report, token=self.config.api_key
        )
        if status not in (200, 201):
            return 422 if status in (403, 422) else 502, {"error": incident}
        return 201, {"action": "created", "incident_id": incident["id"],
                     "number": incident["number"]}


def make_server(bridge: Bridge, host: str = "127.0.0.1", port: int = 8088) -> ThreadingHTTPServer:
    routes = {"/itsm/webhook": bridge.itsm_event, "/wecom/message": bridge.wecom_message}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            handle = routes.get(urllib.parse.urlsplit(self.path).path)
            length = int(self.headers.get("Content-Length") or 0)
            if handle is None:
                status, answer = 404, {"error": "no such path"}
            elif length > MAX_BODY:
                status, answer = 413, {"error": "too large"}
            else:
                status, answer = handle(self.headers, self.rfile.read(length))
            data = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            print(f"wecom-bridge: {self.address_string()} {format % args}", flush=True)

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    server = make_server(
        Bridge(Config.from_environment()),
        os.environ.get("BRIDGE_HOST", "127.0.0.1"),
        int(os.environ.get("BRIDGE_PORT", "8088")),
    )
    print(f"wecom-bridge listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
