"""Sample the worker with py-spy while orders flow, and boil the samples down to a table.

py-spy reads the worker's memory from outside (ptrace): every thread is seen — the asyncio
loop that runs the activities and the threads that run workflow tasks in the sandbox —
and the worker is not changed or slowed beyond `--nonblocking` sampling.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
PROJECT_DIRS = ("activities/", "workflows/", "models/", "notify/", "dispatch/", "geo/")

# (category, substrings of a frame's file); the first that matches a stack wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("workflow sandbox: module import/restriction proxies", ("workflow_sandbox/",)),
    ("workflow code and SDK workflow instance", ("_workflow_instance", "workflows/dispatch")),
    ("payload conversion (dataclasses <-> JSON)", ("temporalio/converter",)),
    ("SQLAlchemy ORM/Core", ("sqlalchemy/",)),
    ("psycopg driver", ("psycopg/",)),
    ("templates and e-mail building", ("jinja2/", "email/", "notify/templates")),
    ("SMTP/HTTP clients", ("aiosmtplib/", "httpx/", "httpcore/")),
    ("SDK activity worker and bridge", ("temporalio/worker/_activity", "temporalio/bridge")),
    ("project activities (own code)", ("activities/", "dispatch/", "notify/")),
    ("pydantic/SQLModel validation", ("pydantic/", "sqlmodel/")),
    ("asyncio event loop", ("asyncio/",)),
)


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: int, out: Path, *, rate: int = 50) -> str:
    """py-spy record in raw (collapsed) format; returns "" or why it could not run."""
    binary = py_spy()
    if binary is None:
        return "py-spy is not installed"
    process = await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--nonblocking",
        "--threads",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        text, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        return "py-spy did not finish in time"
    if process.returncode != 0 or not await asyncio.to_thread(out.exists):
        return f"py-spy failed ({process.returncode}): {text.decode(errors='replace')[-500:]}"
    return ""


def _frame(raw: str) -> tuple[str, str]:
    m = _FRAME.match(raw.strip())
    if m is None:
        return raw.strip(), ""
    return m["func"], m["file"]


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    for d in PROJECT_DIRS:
        i = file.find("/" + d)
        if i >= 0:
            return file[i + 1 :]
    return file


def _category(files: list[str]) -> str:
    """The category of the deepest frame that belongs to one (leaf first)."""
    for frame_file in reversed(files):
        for name, needles in CATEGORIES:
            if any(n in frame_file for n in needles):
                return name
    return "other"


def summarize(collapsed: Path, *, top: int = 25) -> dict[str, Any]:
    """Self time by function, inclusive time of the project's functions, time by category."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    category: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else ""
        if thread:
            frames = frames[1:]
        if not frames:
            continue
        total += count
        parsed = [_frame(f) for f in frames]
        files = [f for _, f in parsed]
        threads["workflow task thread" if any("workflow" in f for f in files) else "other"] += count
        func, file = parsed[-1]
        self_time[f"{func} ({_short(file)})"] += count
        seen = set()
        for func, file in parsed:
            short = _short(file)
            if short.startswith(PROJECT_DIRS):
                name = f"{func} ({short})"
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += count
        category[_category(files)] += count

    def pct(c: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"name": k, "samples": v, "pct": round(100 * v / max(total, 1), 1)}
            for k, v in c.most_common(n)
        ]

    return {
        "samples": total,
        "by_category": pct(category, 20),
        "self_top": pct(self_time, top),
        "project_inclusive_top": pct(inclusive, top),
        "threads": pct(threads, 5),
    }


def markdown(summary: dict[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"{summary['samples']} samples of the worker (py-spy, all threads).",
        "",
    ]
    for key, heading in (
        ("by_category", "Where the worker's CPU goes (deepest matching frame)"),
        ("project_inclusive_top", "Project functions, inclusive"),
        ("self_top", "Functions, self time"),
    ):
        lines += [f"## {heading}", "", "| % | samples | what |", "|---:|---:|---|"]
        lines += [f"| {r['pct']} | {r['samples']} | `{r['name']}` |" for r in summary[key]]
        lines.append("")
    return "\n".join(lines)
