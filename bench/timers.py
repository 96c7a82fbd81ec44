"""How late SLA thresholds fire, and what the worker costs, from one run.

Run: .venv/bin/python bench/timers.py [--incidents 1000]

Runs the timer worker in a thread while N incidents arrive whose response
targets fall due ten seconds after each (real time), and prints:
- the firing delay p50/p99 over every threshold (target: p99 <= 2 s);
- the worker's cost per pass over N open incidents with nothing due, and
  per threshold fired.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, update  # noqa: E402

from engine.persistence.db import Database  # noqa: E402
from engine.persistence.migrate import migrate  # noqa: E402
from engine.persistence.models import Event, SlaPolicy  # noqa: E402
from engine.services.context import ServiceContext  # noqa: E402
from engine.services.incidents import commands as incidents  # noqa: E402
from engine.services.incidents.timers import fire_due  # noqa: E402
from engine.services.ops.worker import TimerWorker  # noqa: E402
from engine.services.people import users  # noqa: E402
from engine.services.process import definitions  # noqa: E402

PASSWORD = "benchmark password"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1000)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='itsm-timers-')) / 'timers.db'}"
    db = Database(url)
    migrate(db.engine)
    ctx = ServiceContext(db=db)
    definitions.deploy_bundled_if_empty(ctx)
    users.create_user(ctx, "reporter", PASSWORD, ["reporter"])
    reporter = users.actor_for_token(ctx, users.issue_token(ctx, "reporter", PASSWORD).token)

    # Unclassified incidents run on P1 targets: make them short enough to watch.
    with db.write() as session:
        session.execute(
            update(SlaPolicy).where(SlaPolicy.priority == 1).values(
                response_seconds=10, resolution_seconds=3600
            )
        )
    # The worker runs while incidents arrive, as it does in production.
    worker = TimerWorker(ctx, interval=0.2)
    thread = worker.start_thread()
    start = time.perf_counter()
    for n in range(args.incidents):
        incidents.create_incident(ctx, reporter, {"title": f"bench {n}", "channel": "app"})
    created = time.perf_counter() - start
    print(f"created {args.incidents} incidents in {created:.1f} s")

    expected = args.incidents * 3  # the response clock's 50/75/100 %
    deadline = time.monotonic() + 120
    fired = 0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with db.read() as session:
            fired = len(
                session.scalars(
                    select(Event.id).where(Event.type.in_(("sla_warning", "sla_breached")))
                ).all()
            )
        if fired >= expected:
            break
    worker.stop()
    thread.join(timeout=10)

    with db.read() as session:
        delays = [
            data["delay_seconds"]
            for data in session.scalars(
                select(Event.data).where(Event.type.in_(("sla_warning", "sla_breached")))
            )
            if data.get("delay_seconds") is not None
        ]
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[int(len(delays) * 0.99) - 1]
    print(f"thresholds fired: {fired} of {expected}")
    print(f"firing delay p50 {p50:.3f} s, p99 {p99:.3f} s (target p99 <= 2 s)")

    # A pass over N open incidents with nothing due: the indexed query alone.
    passes = []
    for _ in range(50):
        t0 = time.perf_counter()
        fire_due(ctx)
        passes.append(time.perf_counter() - t0)
    print(
        f"idle worker pass over {args.incidents} open incidents: "
        f"{statistics.median(passes) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
