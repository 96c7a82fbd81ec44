"""`/favicon.ico` is served to everyone, cacheable, and the pages link the SVG icon."""

from __future__ import annotations

import struct
from typing import Any
from xml.etree import ElementTree

from tests.conftest import Browser
from web.ui.favicon import STATIC


def test_favicon_ico_is_served_and_cacheable(app: Any) -> None:
    response = app.test_client().get("/favicon.ico")  # no sign-in
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    cache = response.headers["Cache-Control"]
    assert "no-store" not in cache and "max-age=604800" in cache
    body = response.get_data()
    reserved, kind, count = struct.unpack("<HHH", body[:6])
    assert (reserved, kind, count) == (0, 1, 1)  # an icon file with one image
    width, height, _, _, _, _, size, offset = struct.unpack("<BBBBHHII", body[6:22])
    assert (width, height) == (32, 32)
    assert body[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + size == len(body)
    # Conditional requests work as for any static file.
    etag = response.headers["ETag"]
    again = app.test_client().get("/favicon.ico", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_pages_link_the_svg_icon(app: Any) -> None:
    html = Browser(app).get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    svg = app.test_client().get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    root = ElementTree.fromstring(svg.get_data())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (STATIC / "favicon.ico").stat().st_size < 4096
