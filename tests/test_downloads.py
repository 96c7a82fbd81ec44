"""What leaves the server as BPMN: downloads, and the diagram people outside the staff see.

Before the fix a draft's XML came back inline as application/xml, so an
`<html:script>` a designer put in it ran in the app's origin for everyone who
opened the link; a process key with a quote or a newline went unquoted into
the Content-Disposition header (a newline even gave a 500); and a reporter read
the whole definition, scripts and conditions included, in /incidents/ID/diagram.json.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import pytest

from engine.persistence.models import ProcessDefinition
from engine.services.context import ServiceContext
from engine.services.process.definitions import BUNDLED_PROCESS
from tests.conftest import Browser
from tests.scenario import Scenario
from web.security import DOWNLOAD_POLICY, content_disposition, outsider_diagram_xml

BUNDLED = BUNDLED_PROCESS.read_bytes()
SCRIPT = (
    b'<html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(document.cookie)</html:script>'
)
HOSTILE_XML = BUNDLED.replace(b"</bpmn:definitions>", SCRIPT + b"</bpmn:definitions>")
HOSTILE_NAME = 'evil"; filename="x.html\r\nSet-Cookie: a=b'


def _assert_download(response: Any) -> str:
    """The response is a file to save; returns the plain filename it suggests."""
    assert response.status_code == 200, response.data[:300]
    headers = response.headers
    assert headers["Content-Type"].startswith("application/xml")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == DOWNLOAD_POLICY
    assert headers["Cache-Control"] == "no-store"
    disposition = headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('attachment; filename="')
    assert "Set-Cookie" not in headers
    # Exactly two parameters: the plain name holds no quote, backslash or semicolon.
    plain = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in plain), plain
    assert disposition == f'attachment; filename="{plain}"; ' + disposition.split("; ", 2)[2]
    assert disposition.split("; ", 2)[2].startswith("filename*=UTF-8''")
    return plain


def _draft(api: Any, xml: bytes, name: str) -> dict[str, Any]:
    response = api.client.post(
        "/api/v1/process-drafts",
        query_string={"name": name},
        data=xml,
        headers={
            "Authorization": f"Bearer {api.tokens['designer']}",
            "Content-Type": "application/xml",
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_a_draft_with_a_script_is_a_download_not_a_page(api: Any, browser: Browser) -> None:
    draft = _draft(api, HOSTILE_XML, "草稿 with <script>")
    browser.login("designer")
    response = browser.get(f"/process/drafts/{draft['id']}.bpmn")
    plain = _assert_download(response)
    assert plain.endswith(".bpmn")
    # The full (UTF-8) name survives in filename*.
    star = response.headers["Content-Disposition"].split("filename*=UTF-8''", 1)[1]
    assert unquote(star) == "草稿 with <script>.bpmn"
    # The bytes are unchanged: the modeler loads exactly what was saved.
    assert response.data == HOSTILE_XML


def test_the_incident_manager_reads_a_draft_as_a_download(api: Any, browser: Browser) -> None:
    draft = _draft(api, HOSTILE_XML, "a draft")
    browser.login("manager")
    _assert_download(browser.get(f"/process/drafts/{draft['id']}.bpmn"))


def test_a_draft_name_cannot_inject_into_the_header(api: Any, browser: Browser) -> None:
    draft = _draft(api, BUNDLED, HOSTILE_NAME)
    browser.login("designer")
    response = browser.get(f"/process/drafts/{draft['id']}.bpmn")
    plain = _assert_download(response)
    assert plain == "evil___filename__x.htmlSet-Cookie__a_b.bpmn"


def test_version_downloads_api_and_page(api: Any, browser: Browser) -> None:
    key = api.ok(api.get("designer", "/process-definitions"))[0]["key"]
    plain = _assert_download(api.get("designer", f"/process-definitions/{key}/1.bpmn"))
    assert plain == f"{key}-v1.bpmn"
    browser.login("designer")
    assert _assert_download(browser.get(f"/process/versions/{key}/1.bpmn")) == plain


@pytest.fixture
def hostile_key(ctx: ServiceContext) -> str:
    """A stored version whose key holds a quote, a semicolon and a line break."""
    key = 'p"; filename="evil.html\nX-Injected: 1'
    with ctx.db.write() as session:
        source = session.query(ProcessDefinition).order_by(ProcessDefinition.id).first()
        assert source is not None
        session.add(
            ProcessDefinition(
                key=key,
                version=1,
                bpmn_xml=source.bpmn_xml,
                spec_json=source.spec_json,
                deployed_by="test",
                deployed_at=source.deployed_at,
                note="",
            )
        )
    return key


def test_a_hostile_process_key_cannot_inject(api: Any, browser: Browser, hostile_key: str) -> None:
    path = f"/process-definitions/{quote(hostile_key, safe='')}/1.bpmn"
    response = api.get("designer", path)
    plain = _assert_download(response)
    assert plain == "p___filename__evil.htmlX-Injected__1-v1.bpmn"
    assert "X-Injected" not in response.headers
    browser.login("designer")
    page = browser.get(f"/process/versions/{quote(hostile_key, safe='')}/1.bpmn")
    assert _assert_download(page) == plain


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("incident_management-v1.bpmn", "incident_management-v1.bpmn"),
        ('a"b.bpmn', "a_b.bpmn"),
        ("a\\b;c=d.bpmn", "a_b_c_d.bpmn"),
        ("a\r\nb.bpmn", "ab.bpmn"),
        ("事件.bpmn", "__.bpmn"),
        ("", "download"),
    ],
)
def test_content_disposition_quotes_every_name(name: str, plain: str) -> None:
    header = content_disposition(name)
    assert header.startswith(f"attachment; filename=\"{plain}\"; filename*=UTF-8''")
    assert "\r" not in header and "\n" not in header
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert all(c.isascii() and (c.isalnum() or c in "%-_.~") for c in encoded), encoded


# -- the diagram a reporter or a vendor reads ------------------------------------------

LOGIC = (
    "itsm_priority(impact, urgency)",  # a script body
    "<bpmn:script>",
    'level2_outcome == "solved"',  # a condition
    "management_escalation</bpmn:conditionExpression>",
    "camunda:",  # forms, properties
    "formField",
    "<bpmn:documentation",
    "1.2 Record the incident",  # documentation text
    "extensionElements",
)


def _diagram(browser: Browser, user: str, incident_id: int) -> dict[str, Any]:
    browser.login(user)
    response = browser.get(f"/incidents/{incident_id}/diagram.json")
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def test_a_reporter_reads_the_shapes_but_not_the_logic(api: Any, browser: Browser) -> None:
    incident = Scenario(api)
    data = _diagram(browser, "reporter", incident.id)
    xml = data["xml"]
    for secret in LOGIC:
        assert secret not in xml, secret
    # Still a diagram: every shape and flow, the current step, the (translated) names.
    bundled = BUNDLED.decode()
    for element_id in ("record_incident", "determine_priority", "flow_escalation_yes"):
        assert f'id="{element_id}"' in bundled and f'id="{element_id}"' in xml
        assert f'bpmnElement="{element_id}"' in xml
    assert xml.count("<bpmndi:BPMNShape") == bundled.count("<bpmndi:BPMNShape")
    assert xml.count("<bpmndi:BPMNEdge") == bundled.count("<bpmndi:BPMNEdge")
    assert data["current"] == ["record_incident"]
    assert data["names"]["record_incident"]


def test_staff_still_read_the_whole_definition(api: Any, browser: Browser) -> None:
    incident = Scenario(api)
    xml = _diagram(browser, "desk", incident.id)["xml"]
    for logic in LOGIC:
        assert logic in xml, logic


OUTSIDE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- designer's note: the vendor contract number is 1234 -->
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:html="http://www.w3.org/1999/xhtml"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs">
  <bpmn:process id="p" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:documentation>internal: call Bob</bpmn:documentation>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="t" name="Work" camunda:assignee="${secretAssignee}">
      <bpmn:extensionElements><camunda:formData/></bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopCardinality>secret_count</bpmn:loopCardinality>
        <bpmn:completionCondition>secret_done</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="timer" attachedToRef="t">
      <bpmn:timerEventDefinition id="td"><bpmn:timeDuration>PT4H_secret</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:timerEventDefinition><bpmn:timeDate>2030-secret</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="cond">
      <bpmn:conditionalEventDefinition>
        <bpmn:condition xsi:type="bpmn:tFormalExpression">secret_flag</bpmn:condition>
      </bpmn:conditionalEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="s" scriptFormat="python"><bpmn:script>secret_script()</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="python"
        >secret_condition</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <html:script>alert(1)</html:script>
    <?php secret ?>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="pl" bpmnElement="p">
    <bpmndi:BPMNShape id="t_di" bpmnElement="t"><dc:Bounds x="1" y="2" width="3" height="4"/>
    </bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_outsider_diagram_keeps_shapes_and_drops_every_kind_of_logic() -> None:
    xml = outsider_diagram_xml(OUTSIDE_XML)
    assert "secret" not in xml and "Bob" not in xml and "1234" not in xml
    for gone in ("camunda", "html", "alert", "<?php", "timeDuration", "timeDate", "language="):
        assert gone not in xml, gone
    # The shapes, the names, the timer icons and the conditional marker remain.
    for kept in (
        'id="t"',
        'name="Work"',
        'bpmnElement="t"',
        'x="1"',
        "timerEventDefinition",
        "conditionalEventDefinition",
        "multiInstanceLoopCharacteristics",
    ):
        assert kept in xml, kept
    assert '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"/>' in xml


def test_outsider_diagram_drops_designers_annotations_and_engine_codes() -> None:
    """Found in review: a text annotation's words and error/escalation codes reached
    reporters and vendors."""
    xml = outsider_diagram_xml(
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
        '<bpmn:error id="e" errorCode="VENDOR_PW_ON_WIKI"/>'
        '<bpmn:process id="p" isExecutable="true">'
        '<bpmn:textAnnotation id="a"><bpmn:text>internal: vendor X password is on the wiki'
        "</bpmn:text></bpmn:textAnnotation></bpmn:process></bpmn:definitions>"
    )
    assert "wiki" not in xml and "VENDOR_PW" not in xml
    assert 'id="a"' in xml and 'id="e"' in xml  # the shapes stay, empty
