"""Translations live with the diagram (issue 11, item 0).

The process file carries its own names, labels and instructions per language
(`name@zh_Hant_TW`, `label@zh_Hant_TW`, `option:<id>@zh_Hant_TW`, ...); the pages show
the version an incident runs on, and the catalog only stands in for texts the diagram
does not translate.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from engine.domain.roles import LANE_ROLES
from engine.domain.script_helpers import HELPER_NAMES
from engine.services.process.definitions import BUNDLED_PROCESS, deploy_as
from engine.workflow.lint import ERROR, WARNING, LintProblem, lint_bytes
from engine.workflow.translations import DiagramTexts, diagram_texts, split_property
from tests.conftest import Browser
from tests.scenario import Scenario
from tests.test_definitions_api_and_cli import itsm

BUNDLED = BUNDLED_PROCESS.read_text(encoding="utf-8")
ZH = "zh_Hant_TW"
TITLE = "Mail server down"  # every Scenario's incident


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return unescape(str(response.get_data(as_text=True)))


def signed_in(app: Any, username: str, language: str) -> Browser:
    browser = Browser(app)
    browser.login(username)
    # The choice is kept on the user: set it either way.
    response = browser.post("/language", {"locale": language, "next": "/tasks"}, csrf_from="/login")
    assert response.status_code == 302
    return browser


def renamed_initial_handling(english: str, chinese: str) -> str:
    """The bundled diagram with initial_handling and one of its field labels renamed in
    both languages (each text occurs once in the bundled file)."""
    replacements = [
        ('name="Initial handling"', f'name="{english}"'),
        (
            '<camunda:property name="name@zh_Hant_TW" value="初步處理" />',
            f'<camunda:property name="name@zh_Hant_TW" value="{chinese}" />',
        ),
        ('label="Resolved at the desk"', 'label="Fixed on the first call"'),
        ('value="已由服務臺解決" />', 'value="首次來電即解決" />'),
    ]
    xml = BUNDLED
    for old, new in replacements:
        assert xml.count(old) == 1, old
        xml = xml.replace(old, new)
    return xml


def heading(html: str) -> str:
    match = re.search(r"<h1>([^<]*)<small>", html)
    assert match, html[:500]
    return match.group(1).strip()


def inbox_step_names(browser: Browser, number: str) -> list[str]:
    html = page(browser.get("/tasks"))
    rows = [row for row in html.split("<tr") if number in row]
    assert rows, number
    links = [
        re.sub(r"\s+", " ", text).strip()
        for row in rows
        for text in re.findall(r'data-label="[^"]*">\s*<a href="/tasks/[^"]+">([^<]+)</a>', row)
    ]
    return [text for text in links if text != TITLE]  # the step, not the incident's title


# -- reading the file ------------------------------------------------------------------------


def test_the_bundled_diagram_carries_its_chinese_texts() -> None:
    texts = diagram_texts(BUNDLED)
    assert texts.text("initial_handling", "name", ZH) == "初步處理"
    assert texts.text("initial_handling", "name", "en") == "Initial handling"
    assert texts.text("record_incident", "label:category", ZH) == "分類"
    assert texts.text("record_incident", "option:category:hardware", ZH) == "硬體"
    assert texts.text("record_incident", "option:category:hardware", "en") == "Hardware"
    assert (texts.text("initial_handling", "documentation", ZH) or "").startswith("2.1 ")
    assert texts.text("lane_level2", "name", ZH) == "二線工程師"
    assert texts.text("phase_identify_name", "name", "en") == "1 Identify and record"
    assert texts.text("phase_identify_name", "name", ZH) == "1 識別與記錄"
    # Every user task, field and option of the bundled file has its zh-Hant text.
    for (element, what), own in texts.own.items():
        if what.startswith(("label:", "option:")):
            assert ZH in texts.languages(element, what), (element, what, own)


def test_a_text_without_translations_leaves_other_languages_to_the_catalog() -> None:
    texts = DiagramTexts(
        own={("a", "name"): "Alpha", ("b", "name"): "Beta"},
        translated={("a", "name"): {ZH: "甲"}},
    )
    assert texts.text("a", "name", ZH) == "甲"
    assert texts.text("a", "name", "en") == "Alpha"
    assert texts.text("a", "name", "fr") == "Alpha"  # translated, not into French
    assert texts.text("b", "name", "en") == "Beta"  # the diagram's own language
    assert texts.text("b", "name", ZH) is None  # the catalog's turn
    assert texts.text("missing", "name", ZH) is None


def test_translation_property_names() -> None:
    assert split_property("name@zh_Hant_TW") == ("name", ZH)
    assert split_property("option:escalate_level3@en") == ("option:escalate_level3", "en")
    assert split_property("phase") is None
    assert split_property("@zh_Hant_TW") is None
    assert split_property("name@") is None


# -- a rename in either language is seen after deploy ----------------------------------------


def test_a_renamed_step_shows_in_both_languages_and_old_incidents_keep_their_names(
    api: Any, app: Any, ctx: Any
) -> None:
    old = Scenario(api)
    old.record()  # initial_handling is ready on version 1
    deploy_as(ctx, "designer", renamed_initial_handling("First look", "初步檢視").encode(), "x")
    new = Scenario(api)
    new.record()
    assert new.incident["number"] != old.incident["number"]

    expected = {
        "en": (
            ("First look", "Fixed on the first call"),
            ("Initial handling", "Resolved at the desk"),
        ),
        ZH: (("初步檢視", "首次來電即解決"), ("初步處理", "已由服務臺解決")),
    }
    for language, ((new_name, new_label), (old_name, old_label)) in expected.items():
        browser = signed_in(app, "desk", language)
        assert inbox_step_names(browser, new.incident["number"]) == [new_name]
        assert inbox_step_names(browser, old.incident["number"]) == [old_name]
        new_page = page(browser.get(f"/tasks/{new.task_id('initial_handling')}"))
        assert heading(new_page) == new_name
        assert new_label in new_page and old_label not in new_page
        old_page = page(browser.get(f"/tasks/{old.task_id('initial_handling')}"))
        assert heading(old_page) == old_name
        assert old_label in old_page and new_label not in old_page
        # The incident page's task list and its diagram too.
        incident_page = page(browser.get(f"/incidents/{new.id}"))
        assert new_name in incident_page
        diagram = browser.get(f"/incidents/{new.id}/diagram.json").get_json()["xml"]
        assert f'name="{new_name}"' in diagram
        old_diagram = browser.get(f"/incidents/{old.id}/diagram.json").get_json()["xml"]
        assert f'name="{old_name}"' in old_diagram and new_name not in old_diagram


def test_the_history_shows_the_renamed_option_of_its_version(api: Any, app: Any, ctx: Any) -> None:
    xml = BUNDLED.replace(
        '<camunda:property id="option:escalate_level3@zh_Hant_TW" value="升級至三線" />',
        '<camunda:property id="option:escalate_level3@zh_Hant_TW" value="交給三線專家" />',
    )
    assert xml != BUNDLED
    deploy_as(ctx, "designer", xml.encode(), "renamed option")
    scenario = Scenario(api)
    scenario.record()
    scenario.desk_passes_on()
    scenario.level2("escalate_level3")
    html = page(signed_in(app, "l2", ZH).get(f"/incidents/{scenario.id}"))
    assert "交給三線專家" in html
    assert "升級至三線" not in html


# -- lint warns where a translation the others have is missing -------------------------------


def lint(xml: str) -> list[LintProblem]:
    return lint_bytes(xml.encode("utf-8"), helper_names=HELPER_NAMES, roles=LANE_ROLES)


def without(text: str, xml: str = BUNDLED) -> str:
    assert xml.count(text) == 1, text
    return xml.replace(text, "")


def test_the_bundled_diagram_is_fully_translated() -> None:
    assert lint(BUNDLED) == []


def test_a_step_without_the_chinese_name_the_others_have_is_a_warning() -> None:
    xml = without('<camunda:property name="name@zh_Hant_TW" value="初步處理" />')
    assert lint(xml) == [
        LintProblem(
            "initial_handling",
            lint(xml)[0].line,
            "userTask 'initial_handling' has no name@zh_Hant_TW translation, "
            "which other elements of the process have",
            WARNING,
        )
    ]


def test_a_field_label_and_an_option_without_translation_are_warnings() -> None:
    xml = without('<camunda:property id="label@zh_Hant_TW" value="轉派理由" />')
    option = '<camunda:property id="option:escalate_level3@zh_Hant_TW" value="升級至三線" />'
    xml = without(option, xml)
    problems = lint(xml)
    assert [(p.element, p.level) for p in problems] == [("level2_investigation", WARNING)] * 2
    messages = sorted(p.message for p in problems)
    assert "(form field 'level2_outcome') has no option:escalate_level3@zh_Hant_TW" in messages[0]
    assert "(form field 'reassign_reason') has no label@zh_Hant_TW" in messages[1]


def test_a_language_only_one_element_has_asks_for_it_everywhere() -> None:
    xml = BUNDLED.replace(
        '<camunda:property name="name@zh_Hant_TW" value="初步處理" />',
        '<camunda:property name="name@zh_Hant_TW" value="初步處理" />'
        '<camunda:property name="name@en" value="First look" />',
    )
    problems = lint(xml)
    assert problems and all(p.level == WARNING for p in problems)
    assert all("name@en" in p.message for p in problems)
    assert "initial_handling" not in [p.element for p in problems]
    assert {"record_incident", "lane_level2", "incident_management"} <= {
        p.element for p in problems
    }


def test_an_unknown_field_translation_is_an_error() -> None:
    xml = BUNDLED.replace(
        '<camunda:property id="label@zh_Hant_TW" value="轉派理由" />',
        '<camunda:property id="hint@zh_Hant_TW" value="說明" />',
    )
    errors = [p for p in lint(xml) if p.level == ERROR]
    assert len(errors) == 1 and "hint@zh_Hant_TW" in errors[0].message


def test_warnings_are_shown_in_the_check_and_do_not_stop_the_deployment(api: Any) -> None:
    xml = without('<camunda:property name="name@zh_Hant_TW" value="初步處理" />')
    response = api.client.open(
        "/api/v1/process-drafts",
        method="POST",
        data=xml.encode("utf-8"),
        headers={
            "Authorization": f"Bearer {api.tokens['designer']}",
            "Content-Type": "application/xml",
        },
    )
    assert response.status_code == 201, response.get_json()
    draft = response.get_json()
    report = api.ok(api.get("designer", f"/process-drafts/{draft['id']}/problems"))
    assert report["deployable"] is True
    assert [(p["element"], p["level"]) for p in report["problems"]] == [
        ("initial_handling", "warning")
    ]
    deployed = api.post("designer", f"/process-drafts/{draft['id']}/deploy", {"note": "w"})
    assert deployed.status_code == 201, deployed.get_json()


def test_itsm_lint_prints_warnings_and_succeeds(database_url: str, tmp_path: Any) -> None:
    untranslated = tmp_path / "untranslated.bpmn"
    untranslated.write_text(
        without('<camunda:property name="name@zh_Hant_TW" value="初步處理" />'), encoding="utf-8"
    )
    result = itsm("lint", str(untranslated), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "no problems" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "[initial_handling]" in warnings[0]
    assert "name@zh_Hant_TW" in warnings[0]
