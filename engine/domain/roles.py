"""Roles of the contract.  A lane's name is one of LANE_ROLES."""

from __future__ import annotations

LANE_ROLES: frozenset[str] = frozenset(
    {"reporter", "service_desk", "level2", "level3", "vendor", "incident_manager", "director"}
)
# `integration`: programs (mail gateway, chat bridge, monitoring); not staff, no lane.
INTEGRATION = "integration"
ALL_ROLES: frozenset[str] = LANE_ROLES | {"designer", "admin", INTEGRATION}
# Staff: every role except reporter, vendor and integration (contract).
STAFF_ROLES: frozenset[str] = ALL_ROLES - {"reporter", "vendor", INTEGRATION}
# Who may change impact/urgency/category and suspend or resume an incident.
HANDLER_ROLES: frozenset[str] = frozenset({"service_desk", "level2", "level3", "incident_manager"})


def is_staff(roles: frozenset[str]) -> bool:
    return bool(roles & STAFF_ROLES)


# How staff and vendors appear to callers and vendors: by the first lane role they hold.
SHOWN_ROLE_ORDER = ("service_desk", "level2", "level3", "vendor", "incident_manager", "director")


def shown_role(roles: frozenset[str]) -> str:
    """The lane role a person outside the desk sees instead of a staff member's name."""
    return next((role for role in SHOWN_ROLE_ORDER if role in roles), "staff")
