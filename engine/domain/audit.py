"""Tamper evidence for event logs: an HMAC chain per log, and its verification.

Every event belongs to one chain (``incident:123``, ``admin``, ...) and has a
sequence number in it, starting at 1.  Its hash is the HMAC-SHA256, under a key
kept outside the database, of a canonical JSON of its content together with
the hash of the event before it in the same chain.  Whoever can write to the
database but does not hold the key can neither change an event, nor drop,
insert or reorder one, without the verification naming the first broken link.

Pure functions only: the caller reads the rows and the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The "previous hash" of a chain's first event.
GENESIS_HASH = "0" * 64
ADMIN_CHAIN = "admin"

# What a break is, as verification names it.
CONTENT_CHANGED = "content changed"
LINK_BROKEN = "link broken"
MISSING_SEQUENCE = "missing sequence"
HEAD_MISMATCH = "head mismatch"


def incident_chain(incident_id: int) -> str:
    return f"incident:{incident_id}"


@dataclass(frozen=True)
class ChainContent:
    """What an event's hash covers, besides the previous hash."""

    chain: str
    sequence: int
    at: datetime
    actor: str
    type: str
    task: str | None
    data: Mapping[str, Any]


def text_digest(text: str) -> str:
    """What an administration event says about a document it does not copy (a BPMN)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime in an audited event")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(content: ChainContent, previous_hash: str) -> bytes:
    """One byte string per content: sorted keys, no whitespace, ASCII only.

    The data goes through a JSON round trip first so that what the database
    gives back (lists for tuples, string keys for numbers) hashes the same as
    what was written."""
    data = json.loads(json.dumps(dict(content.data)))
    document = {
        "actor": content.actor,
        "at": utc_iso(content.at),
        "chain": content.chain,
        "data": data,
        "previous": previous_hash,
        "sequence": content.sequence,
        "task": content.task,
        "type": content.type,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def link_hash(key: bytes, content: ChainContent, previous_hash: str) -> str:
    return hmac.new(key, canonical_json(content, previous_hash), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    """The newest link of a chain, as the head row records it."""

    chain: str
    sequence: int
    hash: str


def next_link(key: bytes, head: ChainHead, content: ChainContent) -> ChainHead:
    """The head after appending `content` (whose sequence must follow the head's)."""
    if content.chain != head.chain or content.sequence != head.sequence + 1:
        raise ValueError(f"{content.chain} #{content.sequence} does not follow {head}")
    return ChainHead(head.chain, content.sequence, link_hash(key, content, head.hash))


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back: its row id, content and the hashes stored with it."""

    id: int
    content: ChainContent
    previous_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    chain: str
    event_id: int | None
    problem: str
    detail: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "chain head"
        return f"chain {self.chain}, {where}: {self.problem} ({self.detail})"


@dataclass
class VerifiedCount:
    chains: int = 0
    events: int = 0


class ChainVerifier:
    """Checks events fed in (chain, sequence) order; stops at the first break.

    Each event must (1) carry the next sequence number of its chain, (2) name
    the previous event's hash as its previous hash, and (3) have the hash its
    content and that previous hash give under the key.  A chain's last event
    must match its head row, so that dropping the newest events shows too."""

    def __init__(self, key: bytes, heads: Mapping[str, ChainHead]) -> None:
        self._key = key
        self._heads = heads
        self._chain: str | None = None
        self._last = ChainHead("", 0, GENESIS_HASH)
        self._seen: set[str] = set()
        self.count = VerifiedCount()

    def feed(self, event: StoredEvent) -> ChainBreak | None:
        content = event.content
        if content.chain != self._chain:
            if self._chain is not None and (failure := self._close()) is not None:
                return failure
            if content.chain in self._seen:
                return ChainBreak(
                    content.chain, event.id, LINK_BROKEN, "the chain continues after another one"
                )
            self._chain = content.chain
            self._seen.add(content.chain)
            self._last = ChainHead(content.chain, 0, GENESIS_HASH)
            self.count.chains += 1
        expected = self._last.sequence + 1
        if content.sequence != expected:
            return ChainBreak(
                content.chain,
                event.id,
                MISSING_SEQUENCE,
                f"expected sequence {expected}, found {content.sequence}",
            )
        if event.previous_hash != self._last.hash:
            return ChainBreak(
                content.chain,
                event.id,
                LINK_BROKEN,
                f"its previous hash is not the hash of sequence {self._last.sequence}",
            )
        if not hmac.compare_digest(link_hash(self._key, content, event.previous_hash), event.hash):
            return ChainBreak(
                content.chain, event.id, CONTENT_CHANGED, "its hash does not match its content"
            )
        self._last = ChainHead(content.chain, content.sequence, event.hash)
        self.count.events += 1
        return None

    def finish(self) -> ChainBreak | None:
        """After the last event: the last chain's head, then heads with no events."""
        if self._chain is not None and (failure := self._close()) is not None:
            return failure
        for chain, head in sorted(self._heads.items()):
            if chain not in self._seen and head.sequence > 0:
                return ChainBreak(
                    chain, None, MISSING_SEQUENCE, f"head at sequence {head.sequence}, no events"
                )
        return None

    def _close(self) -> ChainBreak | None:
        head = self._heads.get(self._last.chain)
        if head is None:
            return ChainBreak(self._last.chain, None, HEAD_MISMATCH, "the chain has no head row")
        if head.sequence > self._last.sequence:
            return ChainBreak(
                head.chain,
                None,
                MISSING_SEQUENCE,
                f"head at sequence {head.sequence}, last event at {self._last.sequence}",
            )
        if head != self._last:
            return ChainBreak(
                head.chain,
                None,
                HEAD_MISMATCH,
                f"head at sequence {head.sequence} does not match the last event",
            )
        return None


def verify_events(
    key: bytes, heads: Mapping[str, ChainHead], events: Iterable[StoredEvent]
) -> tuple[VerifiedCount, ChainBreak | None]:
    verifier = ChainVerifier(key, heads)
    for event in events:
        if (failure := verifier.feed(event)) is not None:
            return verifier.count, failure
    return verifier.count, verifier.finish()
