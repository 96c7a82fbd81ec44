"""The audit trail: the HMAC chains every event row is linked into when it is
written (`chains`), the administration events (`admin_events`), and checking
every chain (`verify`).  Innermost area: every other area may record here."""
