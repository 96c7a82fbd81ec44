"""The words of a mail: its subject (made when it is queued, so lists show it) and
its plain-text and HTML bodies (rendered by the sender, outside any transaction,
from the context stored with the row).

Templates are Jinja2 files in `templates/<language>/<template>.{txt,html}`; HTML is
autoescaped.  zh-Hant (zh_Hant_TW) is the default language; 服務臺 is the one term
for the service desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from engine.persistence.models import DEFAULT_LOCALE

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES = (
    "created",
    "task_ready",
    "assigned",
    "management_escalation",
    "director_review",
    "sla_warning",
    "sla_breached",
    "note",
    "resolved",
    "closed",
)

SUBJECTS: dict[str, dict[str, str]] = {
    "zh_Hant_TW": {
        "created": "[{number}] 已收到您的事件報告：{title}",
        "task_ready": "[{number}] 有新工作待處理：{task_label}",
        "assigned": "[{number}] 工作已指派給您：{title}",
        "management_escalation": "[{number}] 管理升級：{title}",
        "director_review": "[{number}] 請分管領導知悉：{title}",
        "sla_warning": "[{number}] SLA 即將逾期（{percent}%）：{title}",
        "sla_breached": "[{number}] 已違反 SLA：{title}",
        "note": "[{number}] 您的事件有新的回覆：{title}",
        "resolved": "[{number}] 事件已解決，請確認：{title}",
        "closed": "[{number}] 事件已關閉：{title}",
    },
    "en": {
        "created": "[{number}] We have received your incident: {title}",
        "task_ready": "[{number}] A task is ready for you: {task_label}",
        "assigned": "[{number}] A task was assigned to you: {title}",
        "management_escalation": "[{number}] Management escalation: {title}",
        "director_review": "[{number}] For the director's information: {title}",
        "sla_warning": "[{number}] SLA warning ({percent}%): {title}",
        "sla_breached": "[{number}] SLA breached: {title}",
        "note": "[{number}] New reply on your incident: {title}",
        "resolved": "[{number}] Your incident is resolved, please confirm: {title}",
        "closed": "[{number}] Your incident is closed: {title}",
    },
}

LABELS: dict[str, dict[str, str]] = {
    "zh_Hant_TW": {
        "new": "新建",
        "in_progress": "處理中",
        "suspended": "已掛起",
        "resolved": "已解決",
        "closed": "已關閉",
        "response": "回應",
        "resolution": "解決",
        "service_desk": "服務臺",
        "level2": "二線工程師",
        "level3": "三線工程師",
        "vendor": "供應商",
        "incident_manager": "事件經理",
        "director": "分管領導",
    },
    "en": {
        "new": "New",
        "in_progress": "In progress",
        "suspended": "Suspended",
        "resolved": "Resolved",
        "closed": "Closed",
        "response": "response",
        "resolution": "resolution",
        "service_desk": "Service desk",
        "level2": "Level-2 engineer",
        "level3": "Level-3 engineer",
        "vendor": "Vendor",
        "incident_manager": "Incident manager",
        "director": "Director in charge",
    },
}
SUBJECT_LIMIT = 400

_environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
)


def _language(language: str) -> str:
    return language if language in SUBJECTS else DEFAULT_LOCALE


def subject_of(template: str, language: str, context: dict[str, Any]) -> str:
    """The subject: always the number in brackets, `[INC-000123]`, first."""
    pattern = SUBJECTS[_language(language)][template]
    values = {
        "number": context.get("number", ""),
        "title": " ".join(str(context.get("title", "")).split()),
        "task_label": context.get("task_label") or context.get("task") or "",
        "percent": context.get("percent") or "",
    }
    subject = pattern.format(**values)
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 1] + "…"


@dataclass(frozen=True)
class Body:
    text: str
    html: str


def render(template: str, language: str, context: dict[str, Any]) -> Body:
    language = _language(language)
    labels = LABELS[language]
    values = {
        **context,
        "label": lambda code: labels.get(str(code), str(code)) if code is not None else "",
    }
    text = _environment.get_template(f"{language}/{template}.txt").render(values)
    html = _environment.get_template(f"{language}/{template}.html").render(values)
    return Body(text, html)
