"""How fast mail goes out, and what queuing it costs a task completion.

Run: .venv/bin/python bench/notifications.py [--incidents 1000] [--rounds 100]
     [--in-process]

A fresh SQLite database, a real SMTP server (aiosmtpd on 127.0.0.1, in a process
of its own as a real mail server would be: in this one it would share the GIL with
the app) and the mail loop: `itsm worker` in its own process, or with
`--in-process` a thread of the reporting process, as `itsm serve` runs it.

1. Delivery: `--incidents` incidents are reported one after another (each queues
   the reporter's acknowledgement and a task mail to each of three desk agents)
   while the loop sends; for every mail, the time from its queuing (the event's
   moment) to its arrival at the SMTP server: p50, p99, max (target p99 <= 5 s).
2. Cost: the loop is stopped; round by round, interleaved, a desk agent completes
   `record_incident` on a database connection whose settings have mail on (the
   outbox producer queues the next task's mails in the transaction) and on one with
   mail off; p50 of each and the ratio (target <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from engine.persistence.db import Database  # noqa: E402
from engine.persistence.migrate import migrate  # noqa: E402
from engine.persistence.models import Notification  # noqa: E402
from engine.services.context import ChannelSettings, ServiceContext  # noqa: E402
from engine.services.incidents import commands as incidents  # noqa: E402
from engine.services.notify import committed, outbox  # noqa: E402
from engine.services.notify.committed import Written  # noqa: E402
from engine.services.ops.channels import CHANNEL_LOOPS, ChannelWorkers  # noqa: E402
from engine.services.people import users  # noqa: E402
from engine.services.process import definitions  # noqa: E402
from engine.services.tasks import commands as tasks  # noqa: E402
from tests.mail_servers import Collector, SmtpServer, free_port  # noqa: E402  (the tests' server)

PASSWORD = "benchmark password 1"
MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE | re.IGNORECASE)
NEW = {"title": "Mail server down", "description": "since 9:00", "channel": "web"}
RECORD = {"category": "software", "impact": "3", "urgency": "3"}


class TimedCollector(Collector):
    """Writes when each message arrived, by its Message-ID, one line each; it parses
    nothing else (a mail server does not parse MIME either)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log.open("a", buffering=1, encoding="utf-8")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        found = MESSAGE_ID.search(envelope.original_content or envelope.content)
        message_id = found.group(1).decode() if found else "?"
        self.log.write(f"{message_id} {datetime.now(UTC).isoformat()}\n")
        return "250 2.0.0 accepted"


def serve_smtp(port: int, log: Path) -> None:
    """The SMTP server process: runs until its parent ends it."""
    SmtpServer(port, collector=TimedCollector(log)).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def arrivals(log: Path) -> dict[str, datetime]:
    found = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        message_id, _, at = line.partition(" ")
        found[message_id] = datetime.fromisoformat(at)
    return found


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def prepare(url: str) -> None:
    db = Database(url)
    migrate(db.engine)
    ctx = ServiceContext(db=db)
    definitions.deploy_bundled_if_empty(ctx)
    users.create_user(ctx, "reporter", PASSWORD, ["reporter"], email="reporter@bench.test")
    for n in range(3):
        users.create_user(ctx, f"desk{n}", PASSWORD, ["service_desk"], email=f"desk{n}@bench.test")
    db.dispose()


def start_sender(ctx: ServiceContext, in_process: bool) -> Callable[[], None]:
    """The installation's own mail loop (its interval and pass): a thread of this
    process, as `itsm serve` runs it, or `itsm worker` in a process of its own."""
    if in_process:
        loop = next(loop for loop in CHANNEL_LOOPS if loop.name == "mail")
        workers = ChannelWorkers(ctx, [loop])
        workers.start()
        return workers.stop
    env = {
        **os.environ,
        "ITSM_DATABASE_URL": ctx.db.url,
        "ITSM_SMTP_URL": ctx.channels.smtp_url,
        "ITSM_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen([str(Path(sys.executable).parent / "itsm"), "worker"], env=env)

    def stop() -> None:
        worker.terminate()
        worker.wait(20)

    return stop


def delivery(ctx: ServiceContext, log: Path, count: int, in_process: bool) -> list[float]:
    reporter = users.sign_in(ctx, "reporter", PASSWORD)
    stop_sender = start_sender(ctx, in_process)
    started = time.perf_counter()
    try:
        for _ in range(count):
            incidents.create_incident(ctx, reporter, dict(NEW))
        created_in = time.perf_counter() - started
        with ctx.db.read() as session:
            expected = session.scalar(select(Notification.id).order_by(Notification.id.desc()))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(arrivals(log)) < (expected or 0):
            time.sleep(0.2)
    finally:
        stop_sender()
    with ctx.db.read() as session:
        rows = session.execute(select(Notification.message_id, Notification.created_at))
        queued = {message_id: at for message_id, at in rows}
    arrived = arrivals(log)
    latencies = [(arrived[m] - at).total_seconds() for m, at in queued.items() if m in arrived]
    print(
        f"delivery: {count} incidents reported in {created_in:.1f} s, {len(queued)} mails queued, "
        f"{len(latencies)} delivered"
    )
    return latencies


def completion_cost(
    url: str, smtp_url: str, rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Completion times with mail on and off, and the outbox producer's own time in
    each completion with mail on (timed around it, inside the transaction)."""
    producer_times: list[float] = []
    producer = outbox.queue_mails

    def timed_producer(session: Session, written: Written) -> None:
        started = time.perf_counter()
        producer(session, written)
        producer_times.append(time.perf_counter() - started)

    # The bench swaps in a timed copy of the registered producer (private on purpose).
    position = committed._PRODUCERS.index(producer)
    committed._PRODUCERS[position] = timed_producer
    mail_on = ServiceContext(db=Database(url), channels=ChannelSettings(smtp_url=smtp_url))
    mail_off = ServiceContext(db=Database(url), channels=ChannelSettings())
    reporter = users.sign_in(mail_on, "reporter", PASSWORD)
    desk = users.sign_in(mail_on, "desk0", PASSWORD)
    timings: dict[bool, list[float]] = {True: [], False: []}
    own: list[float] = []
    for round_number in range(rounds + 5):
        order = (True, False) if round_number % 2 == 0 else (False, True)
        for on in order:
            ctx = mail_on if on else mail_off
            incident = incidents.create_incident(ctx, reporter, dict(NEW))
            task_id = incident["tasks"][0]["id"]
            started = time.perf_counter()
            producer_times.clear()
            tasks.complete_task(ctx, desk, task_id, dict(RECORD))
            if round_number >= 5:  # the first rounds warm caches
                timings[on].append(time.perf_counter() - started)
                if on:
                    own.append(sum(producer_times))
    committed._PRODUCERS[position] = producer
    mail_on.db.dispose()
    mail_off.db.dispose()
    return timings[True], timings[False], own


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--in-process", action="store_true", help="the mail loop as a thread of this process"
    )
    parser.add_argument("--smtp-server", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smtp_server:
        serve_smtp(int(args.smtp_server[0]), Path(args.smtp_server[1]))
        return
    folder = Path(tempfile.mkdtemp(prefix="itsm-mail-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    prepare(url)
    port, log = free_port(), folder / "arrivals.log"
    smtp = subprocess.Popen(
        [sys.executable, __file__, "--smtp-server", str(port), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert smtp.stdout is not None and smtp.stdout.readline().strip() == "ready"
    smtp_url = f"smtp://127.0.0.1:{port}"
    ctx = ServiceContext(db=Database(url), channels=ChannelSettings(smtp_url=smtp_url))
    try:
        latencies = delivery(ctx, log, args.incidents, args.in_process)
        print(
            f"event to delivery: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        on, off, own = completion_cost(url, smtp_url, args.rounds)
        on_p50, off_p50, own_p50 = (
            statistics.median(on),
            statistics.median(off),
            statistics.median(own),
        )
        print(
            f"record_incident completion ({args.rounds} rounds each, interleaved): "
            f"mail on p50 {on_p50 * 1000:.1f} ms, mail off p50 {off_p50 * 1000:.1f} ms, "
            f"ratio {on_p50 / off_p50:.3f}; the producer's own time p50 {own_p50 * 1000:.2f} ms "
            f"({own_p50 / off_p50:.1%} of a completion with mail off)"
        )
    finally:
        ctx.db.dispose()
        smtp.terminate()
        smtp.wait(10)


if __name__ == "__main__":
    main()
