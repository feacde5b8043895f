"""The one error the operations raise: a problem an operator can act on, in one line."""

from __future__ import annotations


class OperationError(Exception):
    """Cannot do it; the message names the order and the problem (the CLI exits 2 with it)."""
