"""When `o2o dev` restarts a child that died: at once after a long run, with a doubling
backoff after quick deaths, and never again after MAX_FAST_FAILURES quick deaths in a row
(a child that cannot start — a bad setting, a port taken — would otherwise spin forever).

Pure: the stack's supervisor asks `after_exit` and sleeps or gives up as told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

FAST_FAILURE = timedelta(seconds=30)  # died sooner than this after its start: a fast failure
MAX_FAST_FAILURES = 5
FIRST_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(seconds=30)


@dataclass(frozen=True)
class Restart:
    delay: timedelta
    give_up: bool
    fast_failures: int


@dataclass
class RestartPolicy:
    fast_failures: int = 0

    def after_exit(self, *, ran_for: float) -> Restart:
        """The decision for a child that exited after running `ran_for` seconds."""
        if ran_for >= FAST_FAILURE.total_seconds():
            self.fast_failures = 0  # it ran well: this death is news, restart at once
            return Restart(FIRST_DELAY, give_up=False, fast_failures=0)
        self.fast_failures += 1
        delay = min(FIRST_DELAY * 2 ** (self.fast_failures - 1), MAX_DELAY)
        return Restart(
            delay, give_up=self.fast_failures >= MAX_FAST_FAILURES, fast_failures=self.fast_failures
        )
