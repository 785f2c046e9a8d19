"""Token buckets per key: how the HTTP API limits each API key's requests and each address's failed logins.

A bucket holds up to `burst` tokens and gains `per_minute / 60` a second; a request (or a failure) takes one. An empty
bucket answers with the seconds until the next token (a 429's Retry-After). In memory, per process: behind a load
balancer each process limits on its own. Buckets that have refilled completely are dropped, so idle keys and
addresses cost nothing."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Buckets:
    def __init__(self, per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Seconds until `key` has a token again (0: it has one now). Takes nothing."""
        with self._lock:
            tokens = self._tokens(key, self.clock())
        return 0 if tokens >= 1 else math.ceil((1 - tokens) / self.rate)

    def take(self, key: str) -> int:
        """Take a token for `key`: 0 when there was one, else the seconds to wait (nothing is taken then)."""
        now = self.clock()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1:
                return math.ceil((1 - tokens) / self.rate)
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            self._buckets[key] = (tokens - 1, now)
            return 0

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def _prune(self, now: float) -> None:
        full = [key for key in self._buckets if self._tokens(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # still full of busy keys: forget the oldest
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]
