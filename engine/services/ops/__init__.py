"""Running the service: the background worker, its heartbeat and health, backup and
restore."""
