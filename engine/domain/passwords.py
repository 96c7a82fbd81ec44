"""The password policy for new and changed passwords (existing ones are kept).

A password must be 12 to 1024 characters long, not only whitespace, must not
be or contain the username (usernames of three characters or more), must not
be one of the 30,000 most common passwords that the `zxcvbn` package ships,
and must not be easy to guess by zxcvbn's estimate (fewer than a million
guesses: repeats, sequences, keyboard walks, a common word with digits).
"""

from __future__ import annotations

from enum import StrEnum

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 1024
# Shorter usernames ("l2") are only refused as the whole password.
USERNAME_CONTAINED_FROM = 3
# zxcvbn's score 0 or 1: fewer than 10^6 guesses, within reach of an online attack.
MIN_ZXCVBN_SCORE = 2
# zxcvbn refuses longer input; the first 72 characters are what it scores.
ZXCVBN_MAX_INPUT = 72

COMMON_PASSWORDS: frozenset[str] = frozenset(FREQUENCY_LISTS["passwords"])


class Problem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BLANK = "blank"
    USERNAME = "username"
    COMMON = "common"
    GUESSABLE = "guessable"


MESSAGES: dict[Problem, str] = {
    Problem.TOO_SHORT: f"must be at least {MIN_LENGTH} characters",
    Problem.TOO_LONG: f"must be at most {MAX_LENGTH} characters",
    Problem.BLANK: "must not be only spaces",
    Problem.USERNAME: "must not contain the username",
    Problem.COMMON: "is a commonly used password",
    Problem.GUESSABLE: "is too easy to guess (repeats, sequences or a common word)",
}


def password_problems(password: str, username: str) -> list[Problem]:
    """Why `password` may not be chosen by `username`; empty when it may."""
    if not password.strip():
        return [Problem.BLANK]
    problems: list[Problem] = []
    if len(password) < MIN_LENGTH:
        problems.append(Problem.TOO_SHORT)
    if len(password) > MAX_LENGTH:
        problems.append(Problem.TOO_LONG)
    folded, name = password.casefold(), username.strip().casefold()
    if name and (folded == name or (len(name) >= USERNAME_CONTAINED_FROM and name in folded)):
        problems.append(Problem.USERNAME)
    if _normalised(password) in COMMON_PASSWORDS:
        problems.append(Problem.COMMON)
    elif not problems and _score(password, username) < MIN_ZXCVBN_SCORE:
        problems.append(Problem.GUESSABLE)
    return problems


def describe(problems: list[Problem]) -> str:
    """One English sentence fragment for an API's field message."""
    return "; ".join(MESSAGES[p] for p in problems)


def _normalised(password: str) -> str:
    """The list is lower case without spaces: "Pass Word" counts as "password"."""
    return "".join(password.split()).lower()


def _score(password: str, username: str) -> int:
    result = zxcvbn(password[:ZXCVBN_MAX_INPUT], user_inputs=[username] if username else [])
    return int(result["score"])
