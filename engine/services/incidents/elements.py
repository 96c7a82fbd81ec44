"""Names of the bundled process's elements that the app itself acts on.

The app sends `MANAGEMENT_ESCALATION_SIGNAL` when a change makes an incident priority
1 or 2 or major (contract Part 2, "People, callers and contact"); the bundled diagram
catches it in the non-interrupting event subprocess `management_escalation_handler`
(manager_review, then director_review) and throws it itself at classification. A
designer's version without a catcher only records the event.
"""

from __future__ import annotations

MANAGEMENT_ESCALATION_SIGNAL = "management_escalation"
MANAGER_REVIEW_TASK = "manager_review"
DIRECTOR_REVIEW_TASK = "director_review"

RECORD_INCIDENT_TASK = "record_incident"
CONFIRM_RECOVERY_TASK = "confirm_recovery"
RECORD_FEEDBACK_TASK = "record_feedback"
