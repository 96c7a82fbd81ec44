"""Rate limits on signing in (the /login form, POST /api/v1/auth/token, and the
current password asked by a password change).

Counted in a moving window by the `limits` package (the rate-limit library that
Flask-Limiter is built on), in this process's memory unless
ITSM_SIGNIN_LIMIT_STORAGE names a shared store:

- every attempt from one client address (ITSM_SIGNIN_ADDRESS_LIMIT);
- failed attempts from one client address, whatever the account
  (ITSM_SIGNIN_ADDRESS_FAILURE_LIMIT: password spraying);
- failed attempts for one account from one address (ITSM_SIGNIN_PAIR_LIMIT);
- failed attempts for one account from all addresses
  (ITSM_SIGNIN_ACCOUNT_LIMIT), enforced only on addresses that have failed for
  that account within its window: an attacker hammering an account never
  locks its owner out from an address that has not failed.

A refused attempt is answered at once (429 with Retry-After, no password is
checked); nothing sleeps in a request thread. A success clears the account's
failures from that address. Each value is a `limits` string such as
"5 per 15 minutes" or "10/second; 100/hour", read from the app's config or else
the environment when the app first signs someone in.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

DEFAULTS: dict[str, str] = {
    "ITSM_SIGNIN_ADDRESS_LIMIT": "120 per minute",
    "ITSM_SIGNIN_ADDRESS_FAILURE_LIMIT": "30 per 15 minutes",
    "ITSM_SIGNIN_PAIR_LIMIT": "5 per 15 minutes",
    "ITSM_SIGNIN_ACCOUNT_LIMIT": "20 per hour",
    "ITSM_SIGNIN_LIMIT_STORAGE": "memory://",
}
_EXTENSION = "itsm_signin_limits"
_create_lock = threading.Lock()


def setting(app: Flask, name: str) -> str:
    return str(app.config.get(name) or os.environ.get(name) or DEFAULTS[name])


@dataclass(frozen=True)
class Refused:
    """Too many attempts: try again after `retry_after` seconds."""

    retry_after: int


class SignInLimits:
    def __init__(
        self,
        *,
        address: str,
        address_failures: str,
        pair: str,
        account: str,
        storage: str = "memory://",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self._address = parse_many(address)
        self._address_failures = parse_many(address_failures)
        self._pair = parse_many(pair)
        self._account = parse_many(account)
        # "This address has failed for this account" for as long as the account's
        # longest window: the account limit applies to such addresses only.
        longest = max(self._account, key=lambda item: item.get_expiry())
        self._pair_seen = type(longest)(1, longest.multiples)

    @classmethod
    def from_config(cls, app: Flask) -> SignInLimits:
        return cls(
            address=setting(app, "ITSM_SIGNIN_ADDRESS_LIMIT"),
            address_failures=setting(app, "ITSM_SIGNIN_ADDRESS_FAILURE_LIMIT"),
            pair=setting(app, "ITSM_SIGNIN_PAIR_LIMIT"),
            account=setting(app, "ITSM_SIGNIN_ACCOUNT_LIMIT"),
            storage=setting(app, "ITSM_SIGNIN_LIMIT_STORAGE"),
        )

    def attempt(self, username: str, address: str) -> Refused | None:
        """Counts an attempt from `address`; refuses it before any password is checked
        when a limit is reached."""
        account = _account_key(username)
        for item in self._address:
            if not self._limiter.hit(item, "signin-address", address):
                return self._refused([(item, ("signin-address", address))])
        checks: list[tuple[RateLimitItem, tuple[str, ...]]] = [
            *((i, ("signin-address-failed", address)) for i in self._address_failures),
            *((i, ("signin-pair", account, address)) for i in self._pair),
        ]
        if not self._limiter.test(self._pair_seen, "signin-pair-seen", account, address):
            checks.extend((i, ("signin-account", account)) for i in self._account)
        over = [(item, ids) for item, ids in checks if not self._limiter.test(item, *ids)]
        if over:
            return self._refused(over)
        # The pair's count is taken now, not after the password check: guesses sent
        # at the same time cannot all pass the test first (a success clears it).
        for item in self._pair:
            if not self._limiter.hit(item, "signin-pair", account, address):
                return self._refused([(item, ("signin-pair", account, address))])
        return None

    def failed(self, username: str, address: str) -> None:
        account = _account_key(username)
        for items, ids in (
            (self._address_failures, ("signin-address-failed", address)),
            (self._account, ("signin-account", account)),
            ([self._pair_seen], ("signin-pair-seen", account, address)),
        ):
            for item in items:
                self._limiter.hit(item, *ids)

    def succeeded(self, username: str, address: str) -> None:
        """The owner got in from here: this address has not failed for this account."""
        account = _account_key(username)
        for item in self._pair:
            self._limiter.clear(item, "signin-pair", account, address)
        self._limiter.clear(self._pair_seen, "signin-pair-seen", account, address)

    def _refused(self, over: list[tuple[RateLimitItem, tuple[str, ...]]]) -> Refused:
        now = time.time()
        reset = max(self._limiter.get_window_stats(item, *ids).reset_time for item, ids in over)
        return Refused(retry_after=max(1, math.ceil(reset - now)))


def _account_key(username: str) -> str:
    return username.strip().casefold()


def limits_for(app: Flask) -> SignInLimits:
    """This app's counters, made from its settings on first use."""
    found = app.extensions.get(_EXTENSION)
    if found is None:
        with _create_lock:
            found = app.extensions.get(_EXTENSION)
            if found is None:
                found = app.extensions[_EXTENSION] = SignInLimits.from_config(app)
    return found  # type: ignore[no-any-return]


def current_limits() -> SignInLimits:
    return limits_for(current_app)


def client_address() -> str:
    """The peer's address. Behind a reverse proxy it is the proxy's unless `itsm serve`
    trusts it (ITSM_SERVER_TRUSTED_PROXY), which makes it the forwarded client's."""
    return request.remote_addr or "unknown"
