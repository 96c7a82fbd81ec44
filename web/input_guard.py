"""Input that no handler may see: checked once, for every request, before the views.

- Text with NUL or an unpaired surrogate, in a query parameter, a form field or
  a path segment: 422 naming the field (PostgreSQL cannot store NUL; the JSON
  bodies get the same check in `web.api.common.json_body`).
- Numeric ids beyond the id columns (`engine/domain/ids.py`): an unknown id
  (404), not a database error. Checked after routing, not by the converter: a converter that refuses
  the value makes werkzeug answer 405 for the other methods of the same path.
"""

from __future__ import annotations

from flask import Flask, request

from engine.domain.ids import MAX_ID
from engine.domain.text import clean_text, text_problem
from engine.services.errors import Invalid, NotFound


def install_input_guard(app: Flask) -> None:
    @app.before_request
    def _refuse_ids_beyond_the_columns() -> None:
        for name, value in (request.view_args or {}).items():
            if isinstance(value, int) and value > MAX_ID:
                raise NotFound(f"{name} {value} not found")

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
