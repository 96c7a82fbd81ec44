"""An upload near the default 10 MiB limit through the real server (`itsm serve`,
waitress): its own body cap must not be the app's smaller one for other routes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.conftest import Api
from tests.scenario import Scenario
from tests.servers import Server


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def _post(url: str, token: str, name: str, data: bytes) -> tuple[int, dict]:
    body, boundary = _multipart(name, data)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    })  # fmt: skip
    try:
        # No proxy from the environment: the server is on loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_nine_mib_through_itsm_serve(api: Api, database_url: str, tmp_path: Path) -> None:
    incident = Scenario(api).id
    server = Server(database_url, env={"ITSM_ATTACHMENT_DIR": str(tmp_path / "files")})
    try:
        url = f"{server.base}/incidents/{incident}/attachments"
        token = api.tokens["reporter"]
        status, created = _post(url, token, "dump.bin", b"\x00" * (9 * 1024 * 1024))
        assert status == 201, created
        assert created["size"] == 9 * 1024 * 1024
        status, refused = _post(url, token, "big.bin", b"\x00" * (10 * 1024 * 1024 + 1))
        assert status == 413 and "file" in refused["details"]
    finally:
        server.stop()
