"""The loops that talk to other servers: sending mail, delivering webhooks, polling
the mailbox.  Each runs in a thread of its own beside the timer worker, so a slow
SMTP server or a hanging webhook never delays an SLA timer; each pass handles what
is due and says how much, and the loop sleeps only when a pass found nothing."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from engine.services.context import ServiceContext
from engine.services.intake import imap_poll
from engine.services.notify import sender, webhook_delivery
from engine.services.ops.health import worker_name
from engine.services.telemetry import correlation

log = logging.getLogger("itsm.channels")


@dataclass(frozen=True)
class ChannelLoop:
    name: str
    # One pass: handle what is due now, return how many items it handled.
    run_pass: Callable[[ServiceContext, str], int]
    interval: float
    enabled: Callable[[ServiceContext], bool]


# The loops of this installation, in start order: each sender's `LOOP`, named here.
CHANNEL_LOOPS: list[ChannelLoop] = [
    ChannelLoop("webhooks", webhook_delivery.deliver_due, 1.0, lambda ctx: True),
    ChannelLoop("mail", sender.send_due, 1.0, lambda ctx: ctx.channels.mail_enabled),
    ChannelLoop("imap", imap_poll.poll_once, imap_poll.INTERVAL, imap_poll.enabled),
]


class ChannelWorkers:
    def __init__(self, ctx: ServiceContext, loops: list[ChannelLoop] | None = None) -> None:
        self.ctx = ctx
        self.loops = [loop for loop in (CHANNEL_LOOPS if loops is None else loops)]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def run_loop(self, loop: ChannelLoop) -> None:
        name = f"{worker_name(0)}:{loop.name}"
        log.info("%s loop %s started", loop.name, name)
        while not self.stopping.is_set():
            token = correlation.bind(f"{loop.name}-{uuid.uuid4().hex[:12]}")
            handled = 0
            try:
                handled = loop.run_pass(self.ctx, name)
            except Exception:  # one bad item or a server down must not end the loop
                log.exception("%s pass failed", loop.name)
            finally:
                correlation.unbind(token)
            if not handled:
                self.stopping.wait(loop.interval)
        log.info("%s loop %s stopped", loop.name, name)

    def start(self) -> list[threading.Thread]:
        for loop in self.loops:
            if not loop.enabled(self.ctx):
                continue
            thread = threading.Thread(
                target=self.run_loop, args=(loop,), name=f"itsm-{loop.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        return self.threads

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
