"""The OpenAPI 3.1 document of the JSON API, built from the routes themselves.

Each API view carries its declaration, attached by `@operation(...)` beside the
route: summary, request body, the statuses it answers and their bodies (schemas from
`web.api.schemas`), query parameters. `build_document` walks `app.url_map` (every
rule under /api/v1 and its methods) and joins each rule with its view's declaration;
path parameters come from the rule's converters, so a renamed parameter or a new
route is never described by a copy that drifted. A route without a declaration is
left out of the document and listed by `undeclared_routes` (tests/test_openapi.py
fails on any).

What any route can answer is added here, once, rather than in every declaration:
- 401 and 403 on every bearer route (no or a bad token; an account whose password
  was reset may call nothing but the password change);
- 422 on every route: the input guard (web/input_guard.py) refuses text no column
  can store in any query parameter or path segment, and every view its invalid values;
- 400 (malformed JSON) and 413 (over the body limit) on every route reading JSON;
- `Retry-After` on every 429;
- an empty optional query parameter means "not given" (its schema also takes `""`).

Nothing here is hand-written YAML: the document is plain data built from Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any, TypeVar

from flask import Flask, Response, current_app
from werkzeug.routing import IntegerConverter, PathConverter, Rule

from engine.domain.ids import MAX_ID
from engine.workflow.safe_xml import MAX_BPMN_BYTES
from web.api import api_blueprint
from web.api.openapi_links import add_links
from web.api.schemas import COMPONENTS, INTEGER, STRING, Schema, ref

PREFIX = "/api/v1"
JSON = "application/json"
XML = "application/xml"
DECLARATION = "openapi_operation"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BEARER = "bearerAuth"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A query parameter. An optional one given empty (`?status=`) counts as not given,
    as every view reads them; `empty_is_absent=False` for one that would refuse it."""

    name: str
    schema: Schema
    description: str = ""
    required: bool = False
    empty_is_absent: bool = True


@dataclass(frozen=True)
class Content:
    """A body that is not JSON (a BPMN upload or download), or JSON with its own words."""

    media_type: str
    schema: Schema
    description: str = ""
    required: bool = True
    headers: Mapping[str, Schema] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A success answer: its words and its body (None: no body, as 204)."""

    description: str
    body: Schema | Content | None = None
    headers: Mapping[str, Schema] = field(default_factory=dict)


# A declared answer: a Reply, a bare JSON schema (a success), or the words of an error.
Answer = Reply | Schema | str


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, Answer]
    request: Schema | Content | None = None
    query: tuple[Param, ...] = ()
    path: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str = ""
    public: bool = False
    # Open to an account that must change its password (no 403 for that reason).
    for_reset_accounts: bool = False


def operation(
    *,
    summary: str,
    responses: Mapping[int, Answer],
    request: Schema | Content | None = None,
    query: tuple[Param, ...] | list[Param] = (),
    path: Mapping[str, str] | None = None,
    tags: tuple[str, ...] | list[str] = (),
    description: str | None = None,
    public: bool = False,
    for_reset_accounts: bool = False,
) -> Callable[[F], F]:
    """Attach the OpenAPI declaration of one view; the description defaults to the
    view's docstring. `public`: no bearer token needed."""

    def attach(view: F) -> F:
        declared = Operation(
            summary=summary,
            responses=dict(responses),
            request=request,
            query=tuple(query),
            path=dict(path or {}),
            tags=tuple(tags),
            description=description if description is not None else _docstring(view),
            public=public,
            for_reset_accounts=for_reset_accounts,
        )
        setattr(view, DECLARATION, declared)
        return view

    return attach


def _docstring(view: Callable[..., Any]) -> str:
    text = (view.__doc__ or "").strip()
    return re.sub(r"\s*\n\s*", " ", text)


# --- shared pieces ----------------------------------------------------------------------

LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
OFFSET = Param("offset", {"type": "integer", "minimum": 0, "default": 0})
PAGING = (LIMIT, OFFSET)
TOTAL_HEADER = {"X-Total-Count": {**INTEGER, "description": "how many items in all"}}
BPMN_UPLOAD = Content(
    XML,
    {"type": "string", "description": "a BPMN 2.0 document"},
    f"BPMN 2.0 XML in UTF-8, at most {MAX_BPMN_BYTES // (1024 * 1024)} MiB (larger → 422), "
    "no DOCTYPE",
    extensions={"x-max-bytes": MAX_BPMN_BYTES},
)
BPMN_DOWNLOAD = Content(
    XML,
    {"type": "string", "description": "a BPMN 2.0 document"},
    headers={"Content-Disposition": {**STRING, "description": "attachment; filename=…"}},
)


# --- the document -----------------------------------------------------------------------

_STANDARD = {
    400: "malformed request body (not JSON, or not UTF-8)",
    401: "not signed in: no bearer token, or an unknown, expired or revoked one",
    403: "not allowed for your roles (or your password must be changed first)",
    404: "unknown or malformed id",
    409: "the database was busy, or the record changed meanwhile: retry",
    413: "request body too large",
    422: "invalid values: `details` names each field (a path segment or query parameter "
    "holding text no column can store, such as NUL, included)",
    429: "too many requests: retry after `Retry-After` seconds",
}
# What an implied status also means when a declaration words it for its own case.
_ALSO = {
    403: "or your password must be changed first",
    409: "or the database was busy: retry",
    422: "or a path segment or query parameter holds text no column can store (NUL)",
}
_SUCCESS = {200: "OK", 201: "Created", 204: "Done; no body"}
_RULE_ARGUMENT = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def api_rules(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the JSON API, in a stable order."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/")
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]
    return sorted(found, key=lambda pair: (pair[0].rule, pair[1]))


def declaration_of(app: Flask, rule: Rule) -> Operation | None:
    view = app.view_functions.get(rule.endpoint)
    declared = getattr(view, DECLARATION, None)
    return declared if isinstance(declared, Operation) else None


def undeclared_routes(app: Flask) -> list[str]:
    return [f"{method} {rule.rule}" for rule, method in api_rules(app)
            if declaration_of(app, rule) is None]


def openapi_path(rule: Rule) -> str:
    """`/api/v1/incidents/<int:incident_id>` → `/incidents/{incident_id}`."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule.rule[len(PREFIX):])


def _path_schema(converter: Any) -> Schema:
    if isinstance(converter, IntegerConverter):
        # Beyond an id column an id is unknown (404; engine/domain/ids.py).
        maximum = MAX_ID if converter.max is None else min(converter.max, MAX_ID)
        return {"type": "integer", "minimum": converter.min or 0, "maximum": maximum}
    if isinstance(converter, PathConverter):
        return {"type": "string", "minLength": 1}
    # The default converter: one path segment, no slash.
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _parameters(rule: Rule, declared: Operation) -> list[dict[str, Any]]:
    converters = rule._converters  # werkzeug keeps each argument's converter here
    unknown = set(declared.path) - set(converters)
    if unknown:
        raise ValueError(f"{rule.rule}: no path parameter {sorted(unknown)}")
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _path_schema(converters[name]),
            **({"description": declared.path[name]} if name in declared.path else {}),
        }
        for name in _RULE_ARGUMENT.findall(rule.rule)
    ]
    for param in declared.query:
        schema = param.schema
        if param.empty_is_absent and not param.required and not _takes_empty(schema):
            schema = {"anyOf": [schema, {"const": ""}]}
        entry: dict[str, Any] = {"name": param.name, "in": "query", "schema": schema}
        if param.description:
            entry["description"] = param.description
        if param.required:
            entry["required"] = True
        params.append(entry)
    return params


def _takes_empty(schema: Schema) -> bool:
    """Whether `""` already validates: a plain string with no constraint."""
    constraints = ("enum", "const", "format", "pattern", "minLength", "anyOf", "oneOf")
    return schema.get("type") == "string" and not any(k in schema for k in constraints)


def _content(body: Schema | Content) -> dict[str, Any]:
    if isinstance(body, Content):
        return {body.media_type: {"schema": body.schema, **body.extensions}}
    return {JSON: {"schema": body}}


def _headers(headers: Mapping[str, Schema]) -> dict[str, Any]:
    return {
        name: {"schema": {k: v for k, v in schema.items() if k != "description"},
               "description": schema.get("description", "")}
        for name, schema in headers.items()
    }


def _response(status: int, answer: Answer) -> dict[str, Any]:
    if isinstance(answer, str):
        entry: dict[str, Any] = {"description": answer, "content": _content(ref("Error"))}
        if status == 429:
            entry["headers"] = _headers({"Retry-After": {**INTEGER, "description": "seconds"}})
        return entry
    reply = answer if isinstance(answer, Reply) else Reply(_SUCCESS.get(status, "OK"), answer)
    entry = {"description": reply.description}
    if reply.body is not None:
        entry["content"] = _content(reply.body)
    headers = {**reply.headers, **(reply.body.headers if isinstance(reply.body, Content) else {})}
    if headers:
        entry["headers"] = _headers(headers)
    return entry


def _responses(rule: Rule, method: str, declared: Operation) -> dict[str, Any]:
    """The declared answers and those any such route can give (module docstring)."""
    implied: dict[int, str] = {422: _STANDARD[422]}
    if not declared.public:
        implied[401] = _STANDARD[401]
        if not declared.for_reset_accounts:
            implied[403] = _STANDARD[403]
    if rule.arguments:
        implied[404] = _STANDARD[404]
    if method in WRITES:
        # A write that finds the database locked (SQLite) or hits a serialization failure
        # (PostgreSQL) answers 409 (web/errors.py).
        implied[409] = _STANDARD[409]
    reads_json = declared.request is not None and (
        not isinstance(declared.request, Content) or declared.request.media_type == JSON
    )
    if reads_json:
        implied.update({400: _STANDARD[400], 413: _STANDARD[413]})
    answers: dict[int, Answer] = dict(implied)
    for status, answer in declared.responses.items():
        also = _ALSO.get(status) if status in implied else None
        answers[status] = f"{answer}; {also}" if isinstance(answer, str) and also else answer
    return {str(status): _response(status, answers[status]) for status in sorted(answers)}


def _operation_object(rule: Rule, method: str, declared: Operation) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": rule.endpoint.removeprefix("api."),
        "summary": declared.summary,
        "tags": list(declared.tags),
        "security": [] if declared.public else [{BEARER: []}],
    }
    if declared.description:
        entry["description"] = declared.description
    parameters = _parameters(rule, declared)
    if parameters:
        entry["parameters"] = parameters
    if declared.request is not None:
        request = declared.request
        entry["requestBody"] = {
            "required": request.required if isinstance(request, Content) else True,
            "content": _content(request),
            **(
                {"description": request.description}
                if isinstance(request, Content) and request.description
                else {}
            ),
        }
    entry["responses"] = _responses(rule, method, declared)
    return entry


def _info() -> dict[str, Any]:
    try:
        version = package_version("itsm-incident")
    except PackageNotFoundError:  # run from a checkout that was never installed
        version = "unreleased"
    return {
        "title": "ITSM incident management: JSON API",
        "version": version,
        "description": (
            "The JSON API of the incident-management service. Sign in with "
            "`POST /auth/token` and send the token as `Authorization: Bearer <token>`. "
            "Every error is `{error, details}`. Timestamps are ISO 8601 with a UTC offset."
        ),
    }


def build_document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule, method in api_rules(app):
        declared = declaration_of(app, rule)
        if declared is None:
            continue
        paths.setdefault(openapi_path(rule), {})[method.lower()] = _operation_object(
            rule, method, declared
        )
    add_links(paths)
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer"}},
        },
    }


@api_blueprint.get("/openapi.json")
@operation(
    summary="This document",
    tags=["documentation"],
    public=True,
    responses={200: Reply("The OpenAPI 3.1 document", {"type": "object"})},
)
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API, generated from its routes; it holds no
    data, so no token is needed."""
    # Not jsonify: it sorts keys, and the declared order (id first, paths by rule) reads better.
    text = json.dumps(build_document(current_app), ensure_ascii=False)
    return current_app.response_class(text, mimetype=JSON)
