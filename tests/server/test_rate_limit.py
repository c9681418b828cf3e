"""Failed-login throttling per username and per address."""

from __future__ import annotations

from datetime import timedelta

from tokensmith.config.server import LoginSettings
from tokensmith.server.rate_limit import LoginThrottle, SlidingWindow


def test_sliding_window_forgets_old_events() -> None:
    now = [0.0]
    window = SlidingWindow(2, 10, clock=lambda: now[0])
    window.add("k")
    now[0] = 5
    window.add("k")
    assert window.exceeded("k")
    now[0] = 10.5  # the first event left the window
    assert not window.exceeded("k")
    window.add("k")
    assert window.exceeded("k")
    window.clear("k")
    assert not window.exceeded("k")


def test_window_is_bounded_in_keys() -> None:
    window = SlidingWindow(1, 60, max_keys=3)
    for key in "abcd":
        window.add(key)
    assert not window.exceeded("a")  # evicted
    assert window.exceeded("d")


def test_login_throttle_per_user_and_per_address() -> None:
    now = [0.0]
    settings = LoginSettings(max_failures_per_user=2, max_failures_per_address=3, failure_window=timedelta(minutes=1))
    throttle = LoginThrottle(settings, clock=lambda: now[0])
    throttle.failed("Alice", "10.0.0.1")
    throttle.failed("alice", "10.0.0.2")
    assert throttle.blocked("ALICE", "10.0.0.9")  # per user, case-insensitively
    assert not throttle.blocked("bob", "10.0.0.1")
    throttle.failed("bob", "10.0.0.1")
    throttle.failed("carol", "10.0.0.1")
    assert throttle.blocked("dave", "10.0.0.1")  # per address
    throttle.succeeded("alice")
    assert not throttle.blocked("alice", "10.0.0.3")
    now[0] = 61
    assert not throttle.blocked("dave", "10.0.0.1")
