"""Roles of the contract.  A lane's name is one of LANE_ROLES."""

from __future__ import annotations

LANE_ROLES: frozenset[str] = frozenset(
    {"reporter", "service_desk", "level2", "level3", "vendor", "incident_manager", "director"}
)
ALL_ROLES: frozenset[str] = LANE_ROLES | {"designer", "admin"}
# Staff: every role except reporter and vendor (contract).
STAFF_ROLES: frozenset[str] = ALL_ROLES - {"reporter", "vendor"}
# Who may change impact/urgency/category and suspend or resume an incident.
HANDLER_ROLES: frozenset[str] = frozenset({"service_desk", "level2", "level3", "incident_manager"})


def is_staff(roles: frozenset[str]) -> bool:
    return bool(roles & STAFF_ROLES)
