"""The password rules' messages in the user's language (the service speaks English)."""

from __future__ import annotations

from flask_babel import gettext as _

from engine.domain.passwords import MAX_LENGTH, MESSAGES, MIN_LENGTH, Problem
from engine.services.people.users import SAME_AS_CURRENT


def policy_hint() -> str:
    return _(
        "At least %(n)d characters; not your username, not a common or easily guessed password.",
        n=MIN_LENGTH,
    )


def _problem_text(problem: Problem) -> str:
    return {
        Problem.TOO_SHORT: _("Use at least %(n)d characters.", n=MIN_LENGTH),
        Problem.TOO_LONG: _("Use at most %(n)d characters.", n=MAX_LENGTH),
        Problem.BLANK: _("A password cannot be only spaces."),
        Problem.USERNAME: _("Do not use the username in the password."),
        Problem.COMMON: _("This is a commonly used password; choose another."),
        Problem.GUESSABLE: _(
            "This password is easy to guess (repeats, sequences or a common word)."
        ),
    }[problem]


def translated(message: str) -> str:
    """The service's field message (problems joined by "; ") in the user's language."""
    by_english = {english: problem for problem, english in MESSAGES.items()}
    parts = []
    for part in message.split("; "):
        if part in by_english:
            parts.append(_problem_text(by_english[part]))
        elif part == SAME_AS_CURRENT:
            parts.append(_("Choose a password different from the current one."))
        else:
            parts.append(part)
    return " ".join(parts)
