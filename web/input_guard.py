"""Input that no handler may see: checked once, for every request, before the views.

- Text with NUL or an unpaired surrogate, in a query parameter, a form field or
  a path segment: 422 naming the field (PostgreSQL cannot store NUL; the JSON
  bodies get the same check in `web.api.common.json_body`).
- Numeric ids beyond the 64-bit columns: the `int` URL converter stops at
  2**63 - 1, so such a path is an unknown id (404), not a database error.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from engine.domain.text import clean_text, text_problem
from engine.services.errors import Invalid

MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` with the range of a BIGINT primary key."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # type: ignore[no-untyped-def]  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install_input_guard(app: Flask) -> None:
    """Call before registering blueprints: the converter applies to rules as they are added."""
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _refuse_unstorable_text() -> None:
        problems: dict[str, str] = {}
        sources = [request.args.items(multi=True), (request.view_args or {}).items()]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sources.append(request.form.items(multi=True))
        for pairs in sources:
            for name, value in pairs:
                for text in (str(name), value if isinstance(value, str) else ""):
                    problem = text_problem(text)
                    if problem:
                        problems[clean_text(str(name))] = problem
        if problems:
            raise Invalid("invalid text", problems)
