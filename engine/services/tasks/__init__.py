"""User tasks of running instances: the inbox, claim/release/assign and completion."""
