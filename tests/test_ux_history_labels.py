"""The incident's history shows the form's labels, not field ids and option codes, in both
languages (issue 10, item 8: the English history showed `level2_outcome: escalate_level3`).
The catalog's text by key comes first, as on the task form; the diagram's names follow."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.conftest import Browser
from tests.scenario import Scenario
from tests.test_ui_tasks import page, sign_in


def history_lines(html: str) -> list[str]:
    """The texts of the history's detail lines (`<ul class="details"><li>…`)."""
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', html, re.S)
    assert timeline, "no history on the page"
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", item)).split())
        for item in re.findall(r"<li>(.*?)</li>", timeline.group(1), re.S)
    ]


def walked(api: Any) -> Scenario:
    scenario = Scenario(api)
    scenario.record(impact="3", urgency="2", category="software")
    api.ok(api.patch("desk", f"/incidents/{scenario.id}", {"category": "network"}))
    scenario.desk_passes_on()
    scenario.level2("escalate_level3")
    scenario.complete("level3_investigation", {"level3_outcome": "solved"})
    scenario.resolve("level3")
    scenario.confirm(recovered=False)
    return scenario


def raw_codes(scenario: Scenario, lines: list[str]) -> list[str]:
    """History lines that show a field id, or an option code, as the events store them."""
    names, codes = set(), set()
    for event in scenario.refresh()["events"]:
        for name, value in (event.get("values") or {}).items():
            names.add(name)
            if isinstance(value, str) and re.fullmatch(r"[a-z0-9_]+", value):
                codes.add(value)
    shown = [line.split(": ", 1) for line in lines if ": " in line]
    return [f"{a}: {b}" for a, b in shown if a in names or b in codes]


@pytest.fixture
def scenario(api: Any) -> Scenario:
    return walked(api)


def test_the_english_history_shows_labels(scenario: Scenario, app: Any) -> None:
    lines = history_lines(page(sign_in(Browser(app), "l2").get(f"/incidents/{scenario.id}")))
    assert "Outcome: Escalate to level 3" in lines
    assert "Resolved at the desk: no" in lines
    assert "Category: Software" in lines and "Impact: Low" in lines
    assert "Urgency: Medium" in lines
    assert "Category: Network" in lines  # the reclassification, with record_incident's labels
    assert "The user confirms that the service has recovered: no" in lines
    assert "Resolution: level3 fixed it" in lines  # free text stays as typed
    assert raw_codes(scenario, lines) == []
    text = "\n".join(lines)
    assert "level2_outcome" not in text and "escalate_level3" not in text


def test_the_chinese_history_shows_labels(scenario: Scenario, app: Any) -> None:
    browser = Browser(app)
    browser.login("l2")  # zh-Hant is the default language
    html = page(browser.get(f"/incidents/{scenario.id}"))
    assert 'lang="zh-Hant' in html
    lines = history_lines(html)
    assert "處理結果: 升級至三線" in lines
    assert "使用者確認服務已恢復: 否" in lines
    assert raw_codes(scenario, lines) == []


def test_the_diagrams_names_stand_in_for_a_missing_translation(api: Any, app: Any) -> None:
    # level2_investigation's reassign_reason has no zh-Hant text of its own in every version
    # of the catalog; whatever the catalog holds, the line never shows the field id.
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_passes_on()
    scenario.level2("reassign", reassign_reason="needs the network team")
    for language in ("en", None):
        browser = Browser(app)
        if language:
            sign_in(browser, "l2")
        else:
            browser.login("l2")
        lines = history_lines(page(browser.get(f"/incidents/{scenario.id}")))
        reason = [line for line in lines if line.endswith(": needs the network team")]
        assert len(reason) == 1, lines
        assert not reason[0].startswith("reassign_reason")
