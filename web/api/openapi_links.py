"""OpenAPI links: where an answer's ids lead, for clients and the stateful fuzzer.

An operation that answers an incident links to every operation addressed by
that incident's id (read it, reclassify it, its notes, suspend, resume), an
answered task to the task's operations, and so on. The links are derived from
the document itself: an answer whose schema is one of the components below (or
a list of them) links to every operation whose only path parameter is the one
that component's id fills.
"""

from __future__ import annotations

from typing import Any

COMPONENT = "#/components/schemas/"
# Component → (JSON pointer into it, the path parameter it fills).
IDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Incident": (("/id", "incident_id"), ("/tasks/0/id", "task_id")),
    "IncidentSummary": (("/id", "incident_id"),),
    "IncidentPage": (("/items/0/id", "incident_id"),),
    "Task": (("/id", "task_id"), ("/incident_id", "incident_id")),
    "TaskSummary": (("/id", "task_id"), ("/incident_id", "incident_id")),
    "Draft": (("/id", "draft_id"),),
    "DraftSummary": (("/id", "draft_id"),),
    "Calendar": (("/name", "name"),),
}
SUCCESS = ("200", "201")


def _answered(operation: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(status, pointer, path parameter) of the ids the operation's success answers."""
    for status in SUCCESS:
        schema = (
            operation.get("responses", {})
            .get(status, {})
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )
        prefix = ""
        if schema.get("type") == "array":
            schema, prefix = schema.get("items", {}), "/0"
        name = str(schema.get("$ref", "")).removeprefix(COMPONENT)
        if name in IDS:
            return [(status, prefix + pointer, param) for pointer, param in IDS[name]]
    return []


def _addressed_by(paths: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Path parameter → the operationIds whose only path parameter it is."""
    targets: dict[str, list[str]] = {}
    for operations in paths.values():
        for operation in operations.values():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            if len(names) == 1:
                targets.setdefault(names[0], []).append(operation["operationId"])
    return targets


def add_links(paths: dict[str, dict[str, Any]]) -> None:
    targets = _addressed_by(paths)
    for operations in paths.values():
        for operation in operations.values():
            for status, pointer, param in _answered(operation):
                links = {
                    f"{target}_by_{param}": {
                        "operationId": target,
                        "parameters": {param: f"$response.body#{pointer}"},
                    }
                    for target in targets.get(param, [])
                    if target != operation["operationId"]
                }
                if links:
                    response = operation["responses"][status]
                    response.setdefault("links", {}).update(links)
