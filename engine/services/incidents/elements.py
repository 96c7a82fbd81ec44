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

# The reporter's answers (contract Part 2 *(ours)*): boundary timers of 5 working days on
# confirm_recovery and record_feedback. Passing RECOVERY_ASSUMED_ELEMENT means nobody
# answered: `system` completed confirm_recovery with these values; passing
# SURVEY_SKIPPED_ELEMENT means the incident closed without a survey.
CONFIRM_RECOVERY_TIMEOUT = "confirm_recovery_timeout"
RECORD_FEEDBACK_TIMEOUT = "record_feedback_timeout"
RECOVERY_ASSUMED_ELEMENT = "recovery_assumed"
RECOVERY_ASSUMED_VALUES = {"recovered": True}
SURVEY_SKIPPED_ELEMENT = "survey_not_answered"
NO_SURVEY = "none"
# The n of the bundled answer timers' itsm_working_days_later(n).
ANSWER_WORKING_DAYS = 5
