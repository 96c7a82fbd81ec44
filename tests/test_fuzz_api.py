"""The JSON API against its own OpenAPI document, fuzzed with schemathesis.

Every operation of /api/v1/openapi.json gets generated requests (valid and
invalid, as schemathesis makes them) from a user holding every staff role,
on a database with incidents at several steps. A run fails on any 5xx and on
any answer the document does not describe: an undeclared status, another
content type, a body that does not match its schema, a missing header.

Examples per operation and mode: ITSM_FUZZ_API_EXAMPLES (default 15, about a minute per
database in CI; `ITSM_FUZZ_API_EXAMPLES=200 pytest tests/test_fuzz_api.py`
fuzzes for long). Nothing leaves the process: requests go straight to the WSGI
app, and webhooks may only call 127.0.0.1.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.services.people import users
from tests.conftest import PASSWORD
from tests.scenario import Scenario
from tests.test_drafts import new_draft

EXAMPLES = int(os.environ.get("ITSM_FUZZ_API_EXAMPLES", "15"))
EVERY_STAFF_ROLE = [
    "service_desk",
    "level2",
    "level3",
    "incident_manager",
    "director",
    "designer",
    "admin",
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_app(app, api, ctx, monkeypatch):
    monkeypatch.setenv("ITSM_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    waiting = Scenario(api)
    waiting.record()
    passed_on = Scenario(api)
    passed_on.record(impact="1", urgency="1")
    passed_on.desk_passes_on()
    draft = new_draft(api)
    users.create_user(ctx, "fuzzer", PASSWORD, EVERY_STAFF_ROLE)
    app.config["ITSM_FUZZ_TOKEN"] = users.issue_token(ctx, "fuzzer", PASSWORD).token
    # Half of the generated path ids are replaced by ids that exist, so that the
    # fuzzer reaches real incidents, tasks and drafts, not only 404s.
    tasks = [t["id"] for s in (waiting, passed_on) for t in s.refresh()["tasks"]]
    app.config["ITSM_FUZZ_KNOWN"] = {
        "incident_id": [waiting.id, passed_on.id],
        "task_id": tasks,
        "draft_id": [draft["id"]],
        "key": ["incident_management"],
        "version": [1],
        "name": ["24x7", "taiwan_business_hours"],
        "priority": ["1", "3"],
    }
    return app


def _fuzz_operation(operation, mode, headers, known, failures):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def call(case, data):
        for name in list(case.path_parameters or {}):
            if name in known and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(known[name]))
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        call()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported after the others
        failures.append(f"{operation.label} [{mode.value}]: {exc}")


def test_every_operation_answers_as_documented(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.config['ITSM_FUZZ_TOKEN']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(operation, mode, headers, fuzz_app.config["ITSM_FUZZ_KNOWN"], failures)
    print(f"fuzzed {len(operations)} operations × 2 modes × {EXAMPLES} examples")
    assert len(operations) >= 30
    assert failures == [], "\n\n".join(failures[:10])


STATEFUL_EXAMPLES = int(os.environ.get("ITSM_FUZZ_STATEFUL_EXAMPLES", str(max(EXAMPLES, 5))))


def test_linked_sequences_answer_as_documented(fuzz_app):
    """Stateful: schemathesis follows the document's links (an answered incident's id
    into its notes, suspension, tasks, ...), so sequences reach what single
    requests with generated ids do not."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.config['ITSM_FUZZ_TOKEN']}"}
    base = schema.as_state_machine()

    class Sequences(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, headers=headers)

    Sequences.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
