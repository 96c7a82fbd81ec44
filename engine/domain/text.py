"""Text that the databases can store: what to refuse, and what to clean.

PostgreSQL refuses NUL in text columns and no database stores an unpaired
UTF-16 surrogate (JSON's "\\ud800" decodes to one). What people type is
refused with a message naming the field; text taken from mail and files is
cleaned instead, because nobody is there to retype it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON bodies nest a few levels (form values, id lists); deeper is an attack.
MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain a NUL character"
    if _SURROGATE.search(value):
        return "must not contain an unpaired surrogate (invalid Unicode)"
    return None


def clean_text(value: str) -> str:
    """`value` without NUL characters and with unpaired surrogates replaced."""
    return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))


class TooDeep(ValueError):
    pass


def json_text_problems(value: Any, path: str = "") -> dict[str, str]:
    """Every string (keys included) of a decoded JSON value that cannot be stored,
    by its path (`title`, `values.reason`, `incident_ids[2]`); `TooDeep` past
    MAX_JSON_DEPTH levels."""
    return dict(_walk(value, path, 0))


def _walk(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if depth > MAX_JSON_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield path or "body", problem
    elif isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            inner = f"{path}.{key_text}" if path else key_text
            problem = text_problem(key_text)
            if problem:
                yield clean_text(inner), f"field name {problem}"
                continue
            yield from _walk(item, inner, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1)
