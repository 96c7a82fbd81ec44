"""What became of received mail, for /metrics: counted when its row commits."""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy.orm import Session

from engine.services.telemetry.metrics import after_commit

ACTIONS = ("created", "noted", "ignored")
# Every reason `receive` gives (a bounded label set: never the sender's words).
IGNORED_REASONS = (
    "no_from",
    "bad_sender",
    "loop",
    "auto_submitted",
    "precedence",
    "duplicate",
    "dmarc_failed",
    "unknown_sender",
    "flood",
    "too_large",
    "unreadable",
)

INBOUND_MAILS = Counter(
    "itsm_inbound_mails",
    "Mails received (endpoint and IMAP), by what became of them (committed).",
    ["action"],
)
INBOUND_IGNORED = Counter(
    "itsm_inbound_mails_ignored",
    "Mails received and ignored, by reason (committed).",
    ["reason"],
)
for _action in ACTIONS:  # exported as 0 before the first mail
    INBOUND_MAILS.labels(action=_action)
for _reason in IGNORED_REASONS:
    INBOUND_IGNORED.labels(reason=_reason)


def count_mail(session: Session, action: str, reason: str | None) -> None:
    def count() -> None:
        INBOUND_MAILS.labels(action=action).inc()
        if action == "ignored" and reason in IGNORED_REASONS:
            INBOUND_IGNORED.labels(reason=reason).inc()

    after_commit(session, count)
