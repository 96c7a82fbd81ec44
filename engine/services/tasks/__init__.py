"""User tasks of running instances: the inbox, claim/release/assign and completion, and
the caller's own answers (confirmation and survey) that complete them (`answers`)."""
