"""SLA clocks: targets and calendars, policy snapshots, thresholds and their schedule
and suspended time. Never runs an engine step."""
