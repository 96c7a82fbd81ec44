"""Drive one incident through the process over the JSON API."""

from __future__ import annotations

from typing import Any

# Who completes each task of the default process in the scenarios.
WORKER = {
    "record_incident": "desk",
    "manager_review": "manager",
    "director_review": "director",
    "initial_handling": "desk",
    "level2_investigation": "l2",
    "level3_investigation": "l3",
    "vendor_investigation": "vendor",
    "level2_resolve": "l2",
    "level3_resolve": "l3",
    "confirm_recovery": "desk",
    "record_feedback": "desk",
}


class Scenario:
    def __init__(self, api: Any, reporter: str = "reporter", channel: str = "web") -> None:
        self.api = api
        body = {
            "title": "Mail server down",
            "description": "No mail since 9:00",
            "contact": "ext. 1234",
            "channel": channel,
        }
        self.incident = api.ok(api.post(reporter, "/incidents", body), 201)
        self.id = self.incident["id"]

    def refresh(self) -> dict[str, Any]:
        self.incident = self.api.ok(self.api.get("manager", f"/incidents/{self.id}"))
        return self.incident

    def open_tasks(self) -> list[str]:
        return sorted(t["name"] for t in self.refresh()["tasks"])

    def task_id(self, name: str) -> str:
        matches = [t["id"] for t in self.refresh()["tasks"] if t["name"] == name]
        assert len(matches) == 1, (name, self.incident["tasks"])
        return matches[0]

    def complete(self, name: str, values: dict[str, Any], user: str | None = None) -> Any:
        task_id = self.task_id(name)
        response = self.api.post(user or WORKER[name], f"/tasks/{task_id}/complete", values)
        self.incident = self.api.ok(response)
        return self.incident

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.refresh()["events"]]

    # Common steps ------------------------------------------------------------

    def record(self, impact: str = "3", urgency: str = "3", category: str = "software") -> Any:
        return self.complete(
            "record_incident", {"category": category, "impact": impact, "urgency": urgency}
        )

    def desk_resolves(self) -> Any:
        return self.complete(
            "initial_handling", {"resolved_at_desk": True, "resolution": "Restarted the service"}
        )

    def desk_passes_on(self) -> Any:
        return self.complete("initial_handling", {"resolved_at_desk": False})

    def confirm(self, recovered: bool = True) -> Any:
        return self.complete("confirm_recovery", {"recovered": recovered})

    def feedback(self, satisfaction: str = "5") -> Any:
        return self.complete("record_feedback", {"satisfaction": satisfaction, "feedback": "ok"})

    def level2(self, outcome: str, **extra: Any) -> Any:
        return self.complete("level2_investigation", {"level2_outcome": outcome, **extra})

    def resolve(self, tier: str) -> Any:
        return self.complete(f"{tier}_resolve", {"resolution": f"{tier} fixed it"})
