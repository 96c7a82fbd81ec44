"""Telemetry: the process's Prometheus counters and histograms that any area counts
into (`metrics`), and the correlation id that the log lines of the current request
or worker pass carry (`correlation`).

The innermost area, so that every other may use it: it imports no other area and
nothing of the engine, only prometheus_client and SQLAlchemy's session events (a
figure about a write is counted only once that write has committed).
"""
