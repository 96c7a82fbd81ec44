"""The HMAC chain itself (engine.domain.audit), as properties: an oracle written
here recomputes every hash, and any change to any field, any reordering or any
dropped event is named at the event where it happened."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.audit import (
    CONTENT_CHANGED,
    GENESIS_HASH,
    HEAD_MISMATCH,
    LINK_BROKEN,
    MISSING_SEQUENCE,
    ChainContent,
    ChainHead,
    StoredEvent,
    canonical_json,
    next_link,
    verify_events,
)

KEY = b"k" * 32
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def event_logs(draw: Any) -> list[StoredEvent]:
    """Events of one to three chains, stored in (chain, sequence) order, ids 1, 2, ..."""
    chains = draw(
        st.lists(
            st.sampled_from(["admin", "incident:1", "incident:22"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    contents = []
    for chain in sorted(chains):
        for sequence in range(1, draw(st.integers(1, 5)) + 1):
            contents.append(
                ChainContent(
                    chain=chain,
                    sequence=sequence,
                    at=draw(moments),
                    actor=draw(st.sampled_from(["desk", "system", "管理員"])),
                    type=draw(st.sampled_from(["created", "note_added", "user_created"])),
                    task=draw(st.none() | st.sampled_from(["initial_handling", "level2"])),
                    data=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
                )
            )
    return _stored(contents)


def _stored(contents: list[ChainContent], key: bytes = KEY) -> list[StoredEvent]:
    heads: dict[str, ChainHead] = {}
    stored = []
    for number, content in enumerate(contents, start=1):
        head = heads.get(content.chain, ChainHead(content.chain, 0, GENESIS_HASH))
        heads[content.chain] = next_link(key, head, content)
        stored.append(StoredEvent(number, content, head.hash, heads[content.chain].hash))
    return stored


def _heads(events: list[StoredEvent]) -> dict[str, ChainHead]:
    heads = {}
    for event in events:
        heads[event.content.chain] = ChainHead(
            event.content.chain, event.content.sequence, event.hash
        )
    return heads


def oracle_hashes(key: bytes, contents: list[ChainContent]) -> list[str]:
    """The chain as the documentation describes it, recomputed without the module."""
    previous: dict[str, str] = {}
    hashes = []
    for c in contents:
        document = {
            "chain": c.chain,
            "sequence": c.sequence,
            "at": c.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
            "actor": c.actor,
            "type": c.type,
            "task": c.task,
            "data": json.loads(json.dumps(dict(c.data))),
            "previous": previous.get(c.chain, "0" * 64),
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        digest = hmac.new(key, text.encode("ascii"), hashlib.sha256).hexdigest()
        previous[c.chain] = digest
        hashes.append(digest)
    return hashes


@SETTINGS
@given(event_logs())
def test_the_chain_matches_an_independent_oracle_and_verifies(events):
    assert [e.hash for e in events] == oracle_hashes(KEY, [e.content for e in events])
    count, failure = verify_events(KEY, _heads(events), events)
    assert failure is None
    assert (count.chains, count.events) == (len(_heads(events)), len(events))


def _changed(content: ChainContent, field: str, data: Any) -> ChainContent:
    if field == "chain":
        return dataclasses.replace(content, chain=content.chain + "x")
    if field == "sequence":
        return dataclasses.replace(
            content, sequence=content.sequence + data.draw(st.sampled_from([-1, 1, 7]))
        )
    if field == "at":
        return dataclasses.replace(content, at=content.at + timedelta(microseconds=1))
    if field == "actor":
        return dataclasses.replace(content, actor=content.actor + "!")
    if field == "type":
        return dataclasses.replace(content, type="deleted")
    if field == "task":
        return dataclasses.replace(content, task=None if content.task else "review")
    key = data.draw(st.text(max_size=4))
    value = data.draw(json_values.filter(lambda v: v != content.data.get(key, object())))
    return dataclasses.replace(content, data={**content.data, key: value})


CONTENT_FIELDS = ["chain", "sequence", "at", "actor", "type", "task", "data"]


@SETTINGS
@given(event_logs(), st.data())
def test_any_change_to_any_field_is_named_at_that_event(events, data):
    index = data.draw(st.integers(0, len(events) - 1))
    target = events[index]
    field = data.draw(st.sampled_from([*CONTENT_FIELDS, "previous_hash", "hash"]))
    if field == "previous_hash":
        tampered = dataclasses.replace(target, previous_hash="f" * 64)
    elif field == "hash":
        tampered = dataclasses.replace(target, hash=target.hash[::-1])
    else:
        tampered = dataclasses.replace(target, content=_changed(target.content, field, data))
    if tampered == target:  # reversing a palindromic hash: nothing changed
        return
    log = [*events[:index], tampered, *events[index + 1 :]]
    if field in ("chain", "sequence"):
        # Read back in (chain, sequence) order, the moved event may first show as a gap
        # behind it or at the head; whichever comes first, its chain is named.
        log.sort(key=lambda e: (e.content.chain, e.content.sequence, e.id))
        _, failure = verify_events(KEY, _heads(events), log)
        assert failure is not None
        assert failure.chain in (target.content.chain, tampered.content.chain)
        return
    _, failure = verify_events(KEY, _heads(events), log)
    assert failure is not None
    assert failure.event_id == target.id, (field, failure)


@SETTINGS
@given(event_logs(), st.data())
def test_swapping_two_events_of_a_chain_is_named(events, data):
    pairs = [
        i for i in range(len(events) - 1) if events[i].content.chain == events[i + 1].content.chain
    ]
    if not pairs:
        return
    i = data.draw(st.sampled_from(pairs))
    log = [*events[:i], events[i + 1], events[i], *events[i + 2 :]]
    _, failure = verify_events(KEY, _heads(events), log)
    assert failure is not None and failure.event_id == events[i + 1].id
    assert failure.problem == MISSING_SEQUENCE


@SETTINGS
@given(event_logs(), st.data())
def test_a_dropped_event_is_named_by_the_gap_or_the_head(events, data):
    i = data.draw(st.integers(0, len(events) - 1))
    log = [*events[:i], *events[i + 1 :]]
    _, failure = verify_events(KEY, _heads(events), log)
    assert failure is not None and failure.problem == MISSING_SEQUENCE
    following = events[i + 1] if i + 1 < len(events) else None
    if following is not None and following.content.chain == events[i].content.chain:
        assert failure.event_id == following.id
    else:  # the newest event of its chain: only the head shows it
        assert (failure.chain, failure.event_id) == (events[i].content.chain, None)


@SETTINGS
@given(event_logs())
def test_another_key_breaks_the_first_event(events):
    _, failure = verify_events(b"another key of at least 32 bytes", _heads(events), events)
    assert failure is not None
    assert (failure.event_id, failure.problem) == (events[0].id, CONTENT_CHANGED)


def test_a_head_that_disagrees_with_the_last_event_is_named():
    events = _stored([_content("admin", 1), _content("admin", 2)])
    heads = {"admin": ChainHead("admin", 2, "e" * 64)}
    _, failure = verify_events(KEY, heads, events)
    assert failure is not None and (failure.event_id, failure.problem) == (None, HEAD_MISMATCH)
    _, failure = verify_events(KEY, {}, events)
    assert failure is not None and failure.problem == HEAD_MISMATCH


def test_a_head_without_events_is_a_missing_sequence():
    _, failure = verify_events(KEY, {"incident:9": ChainHead("incident:9", 3, "a" * 64)}, [])
    assert failure is not None
    assert (failure.chain, failure.problem) == ("incident:9", MISSING_SEQUENCE)
    assert "chain incident:9, chain head: missing sequence" in str(failure)


def test_a_forged_previous_hash_is_a_broken_link():
    first, second = _stored([_content("admin", 1), _content("admin", 2)])
    forged = dataclasses.replace(second, previous_hash=GENESIS_HASH)
    _, failure = verify_events(KEY, _heads([first, second]), [first, forged])
    assert failure is not None and (failure.event_id, failure.problem) == (2, LINK_BROKEN)


def _content(chain: str, sequence: int, **changes: Any) -> ChainContent:
    fields: dict[str, Any] = {
        "chain": chain,
        "sequence": sequence,
        "at": datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC),
        "actor": "admin",
        "type": "user_created",
        "task": None,
        "data": {"username": "alice", "roles": ["level2"]},
    }
    fields.update(changes)
    return ChainContent(**fields)


def test_canonical_json_is_one_text_per_content():
    taipei = timezone(timedelta(hours=8))
    base = _content("admin", 1)
    same_instant = dataclasses.replace(base, at=base.at.astimezone(taipei))
    as_read_back = dataclasses.replace(base, data={"roles": ("level2",), "username": "alice"})
    assert canonical_json(base, GENESIS_HASH) == canonical_json(same_instant, GENESIS_HASH)
    assert canonical_json(base, GENESIS_HASH) == canonical_json(as_read_back, GENESIS_HASH)
    assert b" " not in canonical_json(base, GENESIS_HASH)
    assert b'"at":"2026-12-01T08:30:00.123456+00:00"' in canonical_json(base, GENESIS_HASH)
    assert canonical_json(_content("admin", 1, data={1: "x"}), GENESIS_HASH) == canonical_json(
        _content("admin", 1, data={"1": "x"}), GENESIS_HASH
    )


def test_a_naive_time_or_a_skipped_sequence_is_refused():
    with pytest.raises(ValueError, match="naive"):
        canonical_json(_content("admin", 1, at=datetime(2026, 1, 1)), GENESIS_HASH)
    with pytest.raises(ValueError, match="does not follow"):
        next_link(KEY, ChainHead("admin", 0, GENESIS_HASH), _content("admin", 2))
