"""Which vendor organisation an incident is handed to (contract Part 2, "People").

The names of the bundled process that mean "escalate to the vendor" live here,
once: the investigation tasks, their outcome fields and the outcome value, and
the form field naming the organisation. A designer's version that keeps these
names gets the same checks; the check is the app's, not the form's, because a
form cannot know how many organisations exist.

Every vendor-lane task records its organisation when it becomes ready; who
may see the incident and work on the task follows from that (`visibility`).
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import UserTaskRow
from engine.services.errors import Invalid
from engine.services.people import organisations

VENDOR_LANE = "vendor"
VENDOR_ORG_FIELD = "vendor_org"
# Bundled process: task id → its outcome field; this outcome value hands it to the vendor.
ESCALATING_TASKS = {
    "level2_investigation": "level2_outcome",
    "level3_investigation": "level3_outcome",
}
ESCALATE_TO_VENDOR = "escalate_vendor"

# The form's own wording, so that pages show these next to the field in the user's language.
ORG_REQUIRED = "is required"
NAMES_LISTED = 20


def named_organisation(values: dict[str, Any]) -> str | None:
    """The organisation a completion names, if any (blank counts as none)."""
    value = values.get(VENDOR_ORG_FIELD)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def escalates_to_vendor(task_name: str, values: dict[str, Any]) -> bool:
    outcome_field = ESCALATING_TASKS.get(task_name)
    return outcome_field is not None and values.get(outcome_field) == ESCALATE_TO_VENDOR


def check_completion(session: Session, task_name: str, values: dict[str, Any]) -> None:
    """Refuse (422 naming `vendor_org`) an unknown organisation, and an escalation to
    the vendor that names none while more than one organisation exists (with one,
    it is implied)."""
    named = named_organisation(values)
    if named is not None:
        _known(session, named)
        return
    if escalates_to_vendor(task_name, values) and organisations.only_organisation(session) is None:
        _refuse_without_organisation()


def _known(session: Session, named: str) -> str:
    found = organisations.find(session, named)
    if found is None:
        names = organisations.names(session, limit=NAMES_LISTED + 1)
        listed = ", ".join(names[:NAMES_LISTED]) + (", ..." if len(names) > NAMES_LISTED else "")
        raise Invalid(
            f"there is no vendor organisation {named!r}",
            {VENDOR_ORG_FIELD: f"must be one of: {listed}"},
        )
    return found


def _refuse_without_organisation() -> NoReturn:
    raise Invalid(
        "an escalation to the vendor must name the vendor organisation while several exist",
        {VENDOR_ORG_FIELD: ORG_REQUIRED},
    )


def organisation_for_vendor_task(
    session: Session,
    incident_id: int,
    completed: UserTaskRow | None,
    values: dict[str, Any],
) -> str | None:
    """The organisation a vendor-lane task that just became ready belongs to.

    In order: the one the completing task named; the completing vendor task's own
    (a vendor step that leads to another stays with that vendor); the only
    organisation. A step nobody completed (a timer, a signal, a migration) keeps the
    incident with the vendor of its latest vendor task, else gives the task to no
    organisation (no vendor sees it). A person's completion that leads to the vendor
    without saying which, while several exist, is refused (422 naming `vendor_org`).
    """
    named = named_organisation(values)
    if named is not None:
        return _known(session, named)
    if completed is not None and completed.lane == VENDOR_LANE and completed.vendor_org:
        return completed.vendor_org
    only = organisations.only_organisation(session)
    if only is not None:
        return only
    if completed is not None:
        _refuse_without_organisation()
    return session.scalar(
        select(UserTaskRow.vendor_org)
        .where(
            UserTaskRow.incident_id == incident_id,
            UserTaskRow.lane == VENDOR_LANE,
            UserTaskRow.vendor_org.is_not(None),
        )
        .order_by(UserTaskRow.created_at.desc(), UserTaskRow.id.desc())
        .limit(1)
    )
