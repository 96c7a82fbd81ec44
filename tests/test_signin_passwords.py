"""Password hashing: the same cost for unknown users, never inside a transaction, and
the policy for new passwords."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from engine.domain.passwords import Problem, password_problems
from engine.services.context import ServiceContext
from engine.services.errors import Invalid, Unauthorized
from engine.services.people import users
from tests.conftest import PASSWORD, Browser

NEW = "a brand new passphrase"


def _median_seconds(attempt: Callable[[], object], n: int = 7) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with pytest.raises(Unauthorized):
            attempt()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_an_unknown_username_takes_as_long_as_a_wrong_password(ctx: ServiceContext) -> None:
    users.set_active(ctx, "vendor2", False)
    known = _median_seconds(lambda: users.sign_in(ctx, "desk", "a wrong password"))
    unknown = _median_seconds(lambda: users.sign_in(ctx, "no-such-user", "a wrong password"))
    inactive = _median_seconds(lambda: users.sign_in(ctx, "vendor2", PASSWORD))
    for other in (unknown, inactive):
        assert known / 3 < other < known * 3, (known, unknown, inactive)


def test_an_unknown_username_costs_one_password_check(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = users.check_password
    monkeypatch.setattr(users, "check_password", lambda s, p: checked.append(s) or real(s, p))
    for username in ("desk", "no-such-user"):
        with pytest.raises(Unauthorized):
            users.issue_token(ctx, username, "a wrong password")
    assert len(checked) == 2 and checked[1] == users.DUMMY_HASH


@pytest.fixture
def transactions(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every hash and check, with the number of transactions open around it."""
    open_now = {"n": 0}

    def counted(real: Callable[[], Any]) -> Callable[[], Any]:
        @contextmanager
        def wrapper() -> Iterator[Any]:
            open_now["n"] += 1
            try:
                with real() as session:
                    yield session
            finally:
                open_now["n"] -= 1

        return wrapper

    monkeypatch.setattr(ctx.db, "write", counted(ctx.db.write))
    monkeypatch.setattr(ctx.db, "read", counted(ctx.db.read))
    calls: list[tuple[str, int]] = []
    real_hash, real_check = users.hash_password, users.check_password

    def hash_password(password: str) -> str:
        calls.append(("hash", open_now["n"]))
        return real_hash(password)

    def check_password(stored: str, password: str) -> bool:
        calls.append(("check", open_now["n"]))
        return real_check(stored, password)

    monkeypatch.setattr(users, "hash_password", hash_password)
    monkeypatch.setattr(users, "check_password", check_password)
    return calls


def test_no_password_is_hashed_or_checked_inside_a_transaction(
    ctx: ServiceContext, app: Any, transactions: list[tuple[str, int]]
) -> None:
    admin = users.sign_in(ctx, "admin", PASSWORD)
    users.create_user(ctx, "newbie", NEW, ["level2"])
    with pytest.raises(Unauthorized):
        users.issue_token(ctx, "newbie", "a wrong password")
    users.issue_token(ctx, "newbie", NEW)
    newbie = users.sign_in(ctx, "newbie", NEW)
    users.change_password(ctx, newbie, NEW, "another new passphrase", new_token=True)
    users.reset_password(ctx, admin, "newbie")
    Browser(app).login("desk")
    kinds = {kind for kind, _ in transactions}
    assert kinds == {"hash", "check"}
    assert [depth for _, depth in transactions if depth] == []


def test_a_slow_password_check_holds_up_no_writer(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding: a flood of wrong passwords slowed every write, because each
    check ran in the write transaction (on SQLite, the database lock)."""
    entered, release = threading.Event(), threading.Event()
    real = users.check_password

    def slow_check(stored: str, password: str) -> bool:
        entered.set()
        release.wait(10)
        return real(stored, password)

    def sign_in() -> None:
        with pytest.raises(Unauthorized):
            users.issue_token(ctx, "desk", "a wrong password")

    monkeypatch.setattr(users, "check_password", slow_check)
    signing_in = threading.Thread(target=sign_in)
    signing_in.start()
    try:
        assert entered.wait(10)
        # The check is running: a write of another request goes through meanwhile.
        writer = threading.Thread(target=users.set_active, args=(ctx, "vendor2", False))
        writer.start()
        writer.join(5)
        assert not writer.is_alive()
    finally:
        release.set()
        signing_in.join(10)
    vendor2 = next(u for u in users.list_users(ctx) if u["username"] == "vendor2")
    assert vendor2["active"] is False


@pytest.mark.parametrize(
    ("password", "username", "problems"),
    [
        (" " * 8, "alice", [Problem.BLANK]),
        ("\t \n" * 5, "alice", [Problem.BLANK]),
        ("short", "alice", [Problem.TOO_SHORT]),
        ("x" * 1025, "alice", [Problem.TOO_LONG]),
        ("alice-in-wonderland", "alice", [Problem.USERNAME]),
        ("ALICE-in-wonderland", "Alice", [Problem.USERNAME]),
        ("q1w2e3r4t5y6", "alice", [Problem.COMMON]),
        ("Q1W2 E3R4 T5Y6", "alice", [Problem.COMMON]),
        ("passwordpassword", "alice", [Problem.GUESSABLE]),
        ("abcdefghijklmnop", "alice", [Problem.GUESSABLE]),
        ("password", "alice", [Problem.TOO_SHORT, Problem.COMMON]),
        ("l2 is fine here ok", "l2", []),  # a two-letter username is only refused whole
        (PASSWORD, "desk", []),
        ("a long enough secret", "alice", []),
        ("Summer 2024, at the lake", "alice", []),
    ],
)
def test_password_policy(password: str, username: str, problems: list[Problem]) -> None:
    assert password_problems(password, username) == problems


def test_new_users_need_a_policy_password(ctx: ServiceContext) -> None:
    for weak in (" " * 8, "eight ch", "newbie-2026-pass", "1qaz2wsx3edc"):
        with pytest.raises(Invalid) as refused:
            users.create_user(ctx, "newbie", weak, ["level2"])
        assert set(refused.value.details) == {"password"}
        assert not users.user_exists(ctx, "newbie")
    users.create_user(ctx, "newbie", NEW, ["level2"])
    assert users.sign_in(ctx, "newbie", NEW).username == "newbie"


def test_the_admin_page_names_the_password_problem(app: Any, ctx: ServiceContext) -> None:
    users.set_locale(ctx, users.sign_in(ctx, "admin", PASSWORD), "en")
    admin = Browser(app)
    admin.login("admin")
    form = {"username": "newbie", "password": " " * 8, "roles": ["level2"]}
    response = admin.post("/admin/users", form, csrf_from="/admin/users")
    assert response.status_code == 422
    assert "A password cannot be only spaces." in response.get_data(as_text=True)
    form["password"] = "short"
    response = admin.post("/admin/users", form, csrf_from="/admin/users")
    assert "Use at least 12 characters." in response.get_data(as_text=True)
    assert not users.user_exists(ctx, "newbie")


def test_generated_passwords_meet_the_policy() -> None:
    generated = {users.generate_password("desk") for _ in range(20)}
    assert len(generated) == 20
    assert all(len(p) >= 16 and password_problems(p, "desk") == [] for p in generated)
