"""A sliding-window cap on messages per second and per hour, for relays with quotas."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class _Window:
    """At most `capacity` messages in any `span` seconds."""

    def __init__(self, capacity: int, span: float) -> None:
        self.capacity = capacity
        self.span = span
        self.sent: deque[tuple[float, int]] = deque()
        self.used = 0

    def wait_for(self, count: int, now: float) -> float:
        """Seconds until `count` more messages fit (0 when they fit now)."""
        while self.sent and self.sent[0][0] <= now - self.span:
            self.used -= self.sent.popleft()[1]
        if self.used + count <= self.capacity:
            return 0.0
        excess = self.used + count - self.capacity
        for stamp, amount in self.sent:
            excess -= amount
            if excess <= 0:
                return stamp + self.span - now
        return self.span

    def take(self, count: int, now: float) -> None:
        self.sent.append((now, count))
        self.used += count


class RateLimiter:
    """Blocks callers so that no sliding window ever holds more than its cap."""

    def __init__(
        self,
        per_second: float | None = None,
        per_hour: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows: list[_Window] = []
        if per_second:
            # A fractional rate (0.5/s) becomes one message per 1/rate seconds.
            if per_second >= 1:
                self._windows.append(_Window(math.floor(per_second), 1.0))
            else:
                self._windows.append(_Window(1, 1.0 / per_second))
        if per_hour:
            self._windows.append(_Window(max(1, math.floor(per_hour)), 3600.0))
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether any cap is set."""
        return bool(self._windows)

    @property
    def largest_batch(self) -> int | None:
        """The most messages one call may ask for (the smallest window's capacity)."""
        return min((w.capacity for w in self._windows), default=None)

    def try_acquire(self, count: int = 1) -> bool:
        """Count `count` messages if they may go right now; never waits."""
        if not self._windows:
            return True
        with self._lock:
            now = self._clock()
            if any(window.wait_for(count, now) > 0 for window in self._windows):
                return False
            for window in self._windows:
                window.take(count, now)
            return True

    def acquire(self, count: int = 1, stop: threading.Event | None = None) -> bool:
        """Wait until `count` messages may go, and count them; False if `stop` was set meanwhile."""
        if not self._windows:
            return True
        limit = self.largest_batch or count
        if count > limit:
            raise ValueError(f"a batch of {count} exceeds the rate cap of {limit}")
        while True:
            with self._lock:
                now = self._clock()
                delay = max(window.wait_for(count, now) for window in self._windows)
                if delay <= 0:
                    for window in self._windows:
                        window.take(count, now)
                    return True
            if stop is not None:
                if stop.wait(delay):
                    return False
            else:
                time.sleep(delay)
