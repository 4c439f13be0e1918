"""A token bucket that says how long to wait, for throttling what a peer sends us.

Theory of operation
-------------------
The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second. Taking
``n`` tokens always succeeds and may leave the bucket in debt; :meth:`TokenBucket.take`
returns how many seconds to wait until the debt is paid. The reader of a connection sleeps that
long before reading the next frame, so a peer that sends too fast is slowed down by TCP flow
control (its data waits in its own send buffer), never disconnected, and one frame larger than
the burst still gets through, just later. The clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def take(self, amount: float) -> float:
        """Take ``amount`` tokens; return the seconds to wait before going on (0 if none)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
