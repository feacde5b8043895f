"""Domain errors: what a service refuses, and why, independent of HTTP.

Services raise these; the API maps each kind to its status (`api/errors.py`), the console
renders the same message, and the CLI prints it. A message names the field or the thing
and the reason, in words a manager understands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]


class DomainError(Exception):
    """A request the domain refuses. `status` is the HTTP answer it maps to."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    """The request is well formed but clashes with what exists (a state, another row)."""

    status = 409


@dataclass(frozen=True)
class Problem:
    """One refused field: where it is (`("body", "store_id")`) and why."""

    loc: Loc
    msg: str


class Invalid(DomainError):
    """One or more fields name something that cannot be served; answered as a 422 in the
    same shape as FastAPI's own validation errors (`loc`, `msg`), so clients parse one."""

    status = 422

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))

    @classmethod
    def field(cls, *loc: str | int, msg: str) -> Invalid:
        return cls([Problem(loc, msg)])
