"""The HTTP server `itsm serve` runs: waitress, set up so that idle and slow clients
cannot starve everyone else.

Waitress reads every request (head and body) on its single event-loop thread and
hands it to a worker thread only once it has arrived whole, so an idle, slow-header
or slow-body client holds a socket, never a worker thread. What such clients can
exhaust is the number of sockets, and the defaults leave that small: at most 100
connections (then waitress stops accepting), select() (which cannot watch a file
descriptor above 1,023), and two minutes before an idle socket is closed. Here:

- the event loop uses poll(), which has no descriptor ceiling;
- up to `connection_limit` connections (4,000) are accepted, and the soft
  RLIMIT_NOFILE is raised to the hard limit at start-up so the descriptors exist
  (the limit is lowered, with a warning, if they do not);
- a connection with nothing in progress is closed after `channel_timeout` seconds
  (60) without traffic, and one whose request has not arrived whole within
  `request_timeout` seconds (60) of its first byte is closed however steadily it
  trickles in (slowloris, slow bodies);
- request heads are capped at 64 KiB and bodies at the app's own limit, so a client
  announcing a huge Content-Length is answered 413 at once instead of being waited for.

Every figure is read from an ITSM_SERVER_* environment variable (docs/deployment.md).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from web.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
# A channel may hold its socket, a spilled request body and a spilled or streamed
# response file at once; the rest of the process (database, sandbox pipes, logs)
# gets a fixed reserve.
FDS_PER_CONNECTION = 3
FD_RESERVE = 256
# What to ask for when the hard limit is "unlimited" (Linux's default fs.nr_open).
UNLIMITED_FDS = 1024 * 1024

KNOWN_PROXY_HEADERS = (
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-by",
    "forwarded",
)
DEFAULT_PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto")


def body_limit(max_upload_bytes: int) -> int:
    """The largest request body accepted: the app's own MAX_CONTENT_LENGTH (web/app.py)."""
    return max_upload_bytes + 1024 * 1024


class ServerConfigError(ValueError):
    """An ITSM_SERVER_* variable holds a value the server cannot use."""


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServerConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ServerConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _proxy_headers(env: Mapping[str, str], proxy: str) -> tuple[str, ...]:
    raw = env.get("ITSM_SERVER_TRUSTED_PROXY_HEADERS", "").strip()
    if not raw:
        return DEFAULT_PROXY_HEADERS if proxy else ()
    if not proxy:
        raise ServerConfigError(
            "ITSM_SERVER_TRUSTED_PROXY_HEADERS has no meaning without ITSM_SERVER_TRUSTED_PROXY"
        )
    headers = tuple(part.lower() for part in raw.replace(",", " ").split())
    unknown = sorted(set(headers) - set(KNOWN_PROXY_HEADERS))
    if unknown:
        raise ServerConfigError(
            f"ITSM_SERVER_TRUSTED_PROXY_HEADERS: unknown {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_PROXY_HEADERS)})"
        )
    if "forwarded" in headers and len(headers) > 1:
        raise ServerConfigError(
            "ITSM_SERVER_TRUSTED_PROXY_HEADERS: 'forwarded' cannot be combined with x-forwarded-*"
        )
    return headers


@dataclass(frozen=True)
class ServerSettings:
    """How the embedded server treats connections; `from_env` reads ITSM_SERVER_*."""

    threads: int = 8
    connection_limit: int = 4000
    channel_timeout: int = 60
    request_timeout: int = 60
    max_body_bytes: int = 0  # 0: the app's own limit (body_limit)
    trusted_proxy: str = ""
    trusted_proxy_headers: tuple[str, ...] = field(default=())

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, max_upload_bytes: int | None = None
    ) -> ServerSettings:
        """Read ITSM_SERVER_*; `max_upload_bytes` is the app's (Settings.max_upload_bytes)."""
        env = os.environ if env is None else env
        proxy = env.get("ITSM_SERVER_TRUSTED_PROXY", "").strip()
        return cls(
            threads=_env_int(env, "ITSM_SERVER_THREADS", cls.threads, 1),
            connection_limit=_env_int(env, "ITSM_SERVER_CONNECTION_LIMIT", cls.connection_limit, 1),
            channel_timeout=_env_int(env, "ITSM_SERVER_CHANNEL_TIMEOUT", cls.channel_timeout, 1),
            request_timeout=_env_int(env, "ITSM_SERVER_REQUEST_TIMEOUT", cls.request_timeout, 1),
            max_body_bytes=body_limit(
                Settings.max_upload_bytes if max_upload_bytes is None else max_upload_bytes
            ),
            trusted_proxy=proxy,
            trusted_proxy_headers=_proxy_headers(env, proxy),
        )

    @property
    def cleanup_interval(self) -> int:
        """How often the event loop looks for connections to close (whole seconds)."""
        return max(1, min(10, self.channel_timeout // 4, self.request_timeout // 4))


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_FDS if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return UNLIMITED_FDS if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def affordable_connections(wanted: int, open_files: int) -> int:
    """The connection limit the open-files limit can carry (at least 1)."""
    return max(1, min(wanted, (open_files - FD_RESERVE) // FDS_PER_CONNECTION))


class DeadlineChannel(HTTPChannel):
    """A waitress channel that remembers when the request it is reading began."""

    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if data and self.request is None:
            self.request_started = time.time()
        return bool(super().received(data))

    def service(self) -> None:
        # (A worker thread.) The start of a pipelined request read while the one before
        # it ran gets its full time from now, when the channel reads again.
        super().service()
        self.request_started = time.time()


class DeadlineServer(TcpWSGIServer):
    """Waitress's TCP server, which also closes requests that take too long to arrive."""

    channel_class = DeadlineChannel
    request_timeout = 60.0

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = now - self.request_timeout
        for channel in list(self.active_channels.values()):
            if (
                channel.request is not None
                and not channel.requests
                and getattr(channel, "request_started", now) < cutoff
            ):
                channel.will_close = True


def adjustments(
    settings: ServerSettings, host: str, port: int, open_files: int | None = None
) -> dict[str, Any]:
    """The waitress adjustments for `settings` (keyword arguments of Adjustments)."""
    limit = settings.connection_limit
    if open_files is not None:
        limit = affordable_connections(limit, open_files)
        if limit < settings.connection_limit:
            log.warning(
                "the open-files limit (%d) carries only %d connections, not %d",
                open_files,
                limit,
                settings.connection_limit,
            )
    kw: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": settings.threads,
        "connection_limit": limit,
        "channel_timeout": settings.channel_timeout,
        "cleanup_interval": settings.cleanup_interval,
        "asyncore_use_poll": True,
        "max_request_header_size": MAX_HEADER_BYTES,
        "max_request_body_size": settings.max_body_bytes or body_limit(Settings.max_upload_bytes),
        "ident": "itsm",
    }
    if settings.trusted_proxy:
        kw["trusted_proxy"] = settings.trusted_proxy
        kw["trusted_proxy_headers"] = set(settings.trusted_proxy_headers or DEFAULT_PROXY_HEADERS)
    return kw


class Server:
    """The listening sockets (one per address `host` resolves to), their event loop
    and the worker threads."""

    def __init__(
        self,
        listeners: list[DeadlineServer],
        socket_map: dict[int, Any],
        dispatcher: ThreadedTaskDispatcher,
        adj: Adjustments,
    ) -> None:
        self.listeners = listeners
        self.adj = adj
        self._map = socket_map
        self._dispatcher = dispatcher

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(str(s.effective_host), int(s.effective_port)) for s in self.listeners]

    def run(self) -> None:
        """Serve until close() (or Ctrl-C)."""
        try:
            wasyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self._map, use_poll=True)
        except (SystemExit, KeyboardInterrupt):
            pass
        finally:
            self._dispatcher.shutdown(timeout=5)

    def close(self) -> None:
        """Close every socket, which ends run(); safe from another thread."""
        wasyncore.close_all(self._map)


def create_server(
    app: Callable[..., Any],
    settings: ServerSettings,
    host: str,
    port: int,
    open_files: int | None = None,
) -> Server:
    """Bind and listen on `host`:`port`; `run()` then serves."""
    adj = Adjustments(**adjustments(settings, host, port, open_files))
    socket_map: dict[int, Any] = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    listeners = []
    for sockinfo in adj.listen:
        listener = DeadlineServer(
            app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo
        )
        listener.request_timeout = float(settings.request_timeout)
        listeners.append(listener)
    return Server(listeners, socket_map, dispatcher, adj)
