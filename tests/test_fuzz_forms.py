"""Every HTML form takes generated values without a server error.

The forms are found as a person finds them: each role signs in and follows the
site's own links (breadth first, a bounded number of pages); every POST form
on those pages is then submitted with generated values (hostile text, numbers,
dates, picked options, missing and extra fields) and a valid CSRF token. Any
answer is fine except a 5xx. Examples per form: ITSM_FUZZ_FORM_EXAMPLES
(default 6; raise it to fuzz for longer locally).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Browser
from tests.scenario import Scenario
from tests.test_drafts import new_draft

EXAMPLES = int(os.environ.get("ITSM_FUZZ_FORM_EXAMPLES", "6"))
PAGES_PER_ROLE = 40
# Signed-in roles in this order: the admin's forms (which can deactivate people) last.
ROLES = ("reporter", "vendor", "desk", "l2", "manager", "director", "designer", "admin")
# Links not followed: they leave the site, download files, or end the session.
SKIP_LINK = re.compile(r"^/(static|api|logout)\b|\.(bpmn|csv|json|js|css|png|svg)(\?|$)")
SKIP_ACTION = re.compile(r"^/logout\b")


@dataclass(frozen=True)
class Form:
    page: str
    action: str
    fields: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, kind, options or value)


def _forms_on(page: str, html: bytes) -> list[Form]:
    tree = lxml.html.fromstring(html)
    found = []
    for form in tree.iter("form"):
        if (form.get("method") or "get").lower() != "post":
            continue
        action = urljoin(page, form.get("action") or page)
        fields = []
        for element in form.iter("input", "select", "textarea"):
            name = element.get("name")
            if not name or name == "csrf_token":
                continue
            if element.tag == "select":
                options = tuple(o.get("value", o.text_content()) for o in element.iter("option"))
                fields.append((name, "select", options))
            elif element.tag == "textarea":
                fields.append((name, "text", ()))
            else:
                kind = (element.get("type") or "text").lower()
                fields.append((name, kind, (element.get("value") or "",)))
        found.append(Form(page, urlsplit(action).path, tuple(fields)))
    return found


def _crawl(browser: Browser) -> list[Form]:
    seen: set[str] = set()
    queue = deque(["/"])
    forms: list[Form] = []
    while queue and len(seen) < PAGES_PER_ROLE:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = browser.get(path, follow_redirects=True)
        if response.status_code != 200 or "text/html" not in response.content_type:
            continue
        path = response.request.path + (
            f"?{response.request.query_string.decode()}" if response.request.query_string else ""
        )
        seen.add(path)
        forms.extend(_forms_on(path, response.data))
        for href in lxml.html.fromstring(response.data).xpath("//a/@href"):
            target = urlsplit(urljoin(path, href))
            if target.netloc or not target.path.startswith("/") or SKIP_LINK.search(target.path):
                continue
            link = target.path + (f"?{target.query}" if target.query else "")
            if link not in seen:
                queue.append(link)
    # The same form on another incident or task is the same form.
    unique = {(_shape(f.action), tuple(n for n, _, _ in f.fields)): f for f in forms}
    return [f for f in unique.values() if not SKIP_ACTION.search(f.action)]


def _shape(path: str) -> str:
    return re.sub(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27})(?=/|$)", "/<id>", path)


HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=400),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "../../etc/passwd",
            "=HYPERLINK(\"http://x\")",
            "9" * 40,
            "-1",
            "0",
            "2026-02-30",
            "2026-12-04T25:61",
            "P99999999Y",
            "x" * 30_000,
            "１２３",
            "null",
            "true",
        ]
    ),
)


def _value_for(kind: str, options: tuple[str, ...]) -> st.SearchStrategy[str]:
    if kind in ("select", "radio", "checkbox", "hidden") and any(options):
        return st.one_of(st.sampled_from([o for o in options if o is not None]), HOSTILE_TEXT)
    if kind == "number":
        return st.one_of(st.integers(-(10**20), 10**20).map(str), HOSTILE_TEXT)
    if kind in ("date", "datetime-local", "time"):
        dates = st.datetimes().map(lambda d: d.isoformat(timespec="minutes"))
        return st.one_of(dates, st.dates().map(str), HOSTILE_TEXT)
    return HOSTILE_TEXT


def _payload(form: Form) -> st.SearchStrategy[dict[str, str]]:
    present = st.fixed_dictionaries(
        {},
        optional={name: _value_for(kind, options) for name, kind, options in form.fields},
    )
    extra = st.dictionaries(st.text(min_size=1, max_size=12), HOSTILE_TEXT, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, present, extra)


@pytest.fixture
def site(api, clock):
    """Incidents at several steps, a draft, so that the pages have their forms."""
    waiting = Scenario(api)
    waiting.record()
    at_level2 = Scenario(api)
    at_level2.record(impact="1", urgency="1")
    at_level2.desk_passes_on()
    resolved = Scenario(api)
    resolved.record()
    resolved.desk_resolves()
    Scenario(api, reporter="reporter2")
    new_draft(api)


def _fuzz(form: Form, browser: Browser, role: str, failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(values=_payload(form))
    def submit(values: dict[str, str]) -> None:
        token = browser.csrf_token(form.page)
        response = browser.client.post(form.action, data={**values, "csrf_token": token})
        if response.status_code >= 500:
            failures.append(f"{role} {form.action} {values!r}: {response.status_code}")
            raise AssertionError(failures[-1])

    submit()


def test_every_form_takes_generated_values_without_a_server_error(app, site):
    failures: list[str] = []
    tried = 0
    for role in ROLES:
        browser = Browser(app)
        browser.login(role)
        forms = _crawl(browser)
        assert forms or role in ("vendor", "director"), f"{role} found no form"
        for form in forms:
            tried += 1
            with contextlib.suppress(AssertionError):
                _fuzz(form, browser, role, failures)  # a failure is recorded; go on
            # "/" redirects everyone to their start page: ask a page that needs a session.
            if browser.get("/incidents").status_code != 200:
                print("signed in again after", role, form.action)
                browser = Browser(app)  # a form ended the session (a password change)
                browser.login(role)
    print(f"fuzzed {tried} forms × {EXAMPLES} examples")
    assert tried >= 15
    assert failures == []
