"""Every mail template renders in both languages: plain text and an HTML alternative
with the incident's words escaped; every subject starts with the number in brackets."""

from __future__ import annotations

import pytest

from engine.services.notify.mail_text import SUBJECTS, TEMPLATES, render, subject_of

CONTEXT = {
    "number": "INC-000123",
    "title": "<script>alert(1)</script> & co",
    "status": "in_progress",
    "priority": 2,
    "major": True,
    "incident_url": "https://itsm.example.test/incidents/123",
    "confirm_url": "https://itsm.example.test/incidents/123#confirmation",
    "survey_url": "https://itsm.example.test/incidents/123#survey",
    "task": "initial_handling",
    "task_label": "Initial handling",
    "lane": "service_desk",
    "task_url": "https://itsm.example.test/tasks/abc",
    "clock": "resolution",
    "percent": 75,
    "note": "Please <b>reboot</b>",
    "resolution": "Restarted",
    "survey_open": True,
}


@pytest.mark.parametrize("language", ["zh_Hant_TW", "en"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_in_both_languages(template: str, language: str) -> None:
    body = render(template, language, CONTEXT)
    assert "<script>alert(1)</script>" in body.text  # plain text is not HTML
    assert "<script>" not in body.html and "&lt;script&gt;" in body.html
    assert CONTEXT["incident_url"] in body.text and CONTEXT["incident_url"] in body.html
    assert "服務台" not in body.text + body.html  # one term: 服務臺
    subject = subject_of(template, language, CONTEXT)
    assert subject.startswith("[INC-000123] ")


def test_every_template_has_both_languages_subjects() -> None:
    assert set(SUBJECTS["zh_Hant_TW"]) == set(SUBJECTS["en"]) == set(TEMPLATES)


def test_an_unknown_language_falls_back_to_zh_hant() -> None:
    assert render("created", "fr", CONTEXT).text == render("created", "zh_Hant_TW", CONTEXT).text
    assert subject_of("created", "fr", CONTEXT).startswith("[INC-000123] 已收到")


def test_the_survey_link_only_while_the_survey_is_open() -> None:
    assert CONTEXT["survey_url"] in render("closed", "en", CONTEXT).text
    answered = render("closed", "en", {**CONTEXT, "survey_open": False})
    assert CONTEXT["survey_url"] not in answered.text
