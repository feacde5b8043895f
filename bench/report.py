"""Write a run's figures: JSON (everything), a Markdown table, a PNG plot; print a rich table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

OUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def _ms(p: dict[str, Any], q: str) -> str:
    v = p.get(q)
    return "—" if v is None else f"{1000 * v:.0f} ms"


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures as (what, value) pairs, shared by the console and Markdown."""
    out: list[tuple[str, str]] = []
    o = result["orders"]
    t = result["throughput"]
    out.append(
        (
            "orders",
            f"{o['submitted']} submitted ({o['submit_failures']} failed), {o['assigned']} assigned,"
            f" {o['notified']} notified, {o['completed']} completed",
        )
    )
    out.append(("submitted/s (sustained)", f"{t['submitted_per_s']:.1f}"))
    out.append(("assigned/s (dispatch throughput)", f"{t['assigned_per_s']:.1f}"))
    if t.get("ceiling_per_s"):
        limited = " (rate-limited: run with --rate 0 for the maximum)" if t["rate_limited"] else ""
        out.append(("no-op workflow ceiling/s", f"{t['ceiling_per_s']:.1f}"))
        out.append(("dispatch / ceiling", f"{t['ratio']:.2f}{limited}"))
    for key, label in (
        ("created_to_assigned", "intake→assigned"),
        ("created_to_notified", "intake→staff notified"),
        ("submitted_to_assigned", "submit→assigned (client clock)"),
        ("submitted_to_notified", "submit→notified (client clock)"),
        ("accept_answered", "staff accept answered (request→200)"),
    ):
        p = result["latency_s"].get(key, {})
        out.append(
            (
                f"{label} p50 / p95 / p99",
                f"{_ms(p, 'p50')} / {_ms(p, 'p95')} / {_ms(p, 'p99')}  (n={p.get('n', 0)})",
            )
        )
    tm = result["timers"]
    if tm["accept_timeouts"]:
        for key, label in (
            ("timer_lateness_s", "accept timer lateness (fired − due)"),
            ("reassignment_lateness_s", "reassignment lateness (next round − due)"),
        ):
            p = tm[key]
            out.append(
                (
                    f"{label} p50 / p99",
                    f"{_ms(p, 'p50')} / {_ms(p, 'p99')}  (n={p.get('n', 0)}, max {_ms(p, 'max')})",
                )
            )
    if result.get("open_peak"):
        out.append(("open orders at once (peak)", str(result["open_peak"])))
    res = result["resources"]
    for role, label in (("worker", "worker"), ("activity-worker", "activities worker")):
        if role in res:
            w = res[role]
            out.append(
                (
                    f"{label} CPU mean / peak, RSS peak",
                    f"{w['cpu_mean_pct']:.0f}% / {w['cpu_peak_pct']:.0f}%,"
                    f" {w['rss_peak_mb']:.0f} MB",
                )
            )
    for role, label in (
        ("temporal", "Temporal server"),
        ("postgres", "PostgreSQL"),
        ("api", "API"),
    ):
        if role in res:
            r = res[role]
            out.append(
                (f"{label} CPU mean / peak", f"{r['cpu_mean_pct']:.0f}% / {r['cpu_peak_pct']:.0f}%")
            )
    return out


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"o2o-dispatch benchmark: {result['label']}", title_justify="left")
    table.add_column("what")
    table.add_column("value")
    for what, value in rows(result):
        table.add_row(what, value)
    console.print(table)
    latency = sdk_latency_table(result.get("sdk_latency") or [])
    if latency:
        console.print("\n".join(latency[1:]), markup=False)


def sdk_latency_table(rows: list[dict[str, Any]]) -> list[str]:
    """The worker's own latency histograms (bench/sdk_metrics.py) as a Markdown table."""
    if not rows:
        return []
    out = [
        "",
        "Where the worker's time waits (core SDK histograms; bucket bounds, ms):",
        "",
        "| what | of | count | p50 ≤ | p99 ≤ |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['what']} | {r['of']} | {r['count']} | {r['p50_ms_at_most']:g}"
            f" | {r['p99_ms_at_most']:g} |"
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    c = result["config"]
    lines = [
        f"# Benchmark `{result['label']}`",
        "",
        f"`{result['command']}` — {result['started_at']}, {result['machine']['cores']} cores,"
        f" load average at start {result['machine']['load_at_start']}.",
        "",
        f"Mode {c['mode']}, {c['orders']} orders at {c['rate'] or 'max'}/s,"
        f" accept timeout {c['accept_timeout']} s, staff "
        + (
            "never accept"
            if c["accept_after"] is None
            else f"accept after {c['accept_after']} s (+ up to {c['accept_jitter']} s)"
        )
        + (", no notices" if c.get("no_notices") else ", SMS + e-mail notices")
        + ".",
        "",
        "| what | value |",
        "|---|---|",
    ]
    lines += [f"| {what} | {value} |" for what, value in rows(result)]
    if result.get("worker_variant"):
        lines += ["", f"Worker variant: `{result['worker_variant']}`."]
    lines += sdk_latency_table(result.get("sdk_latency") or [])
    if result.get("profile"):
        lines += ["", f"Profile: {result['profile']}."]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], per_order: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = result["_t0"]
    samples = result["_samples"]
    timers = result["_timeouts"]
    panels = 3 if timers else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), sharex=True)
    ax = axes[0]
    for key, label, colour in (
        ("assigned", "intake→assigned", "tab:blue"),
        ("notified", "intake→staff notified", "tab:orange"),
    ):
        xs = [o["created"] - t0 for o in per_order if o[key] is not None]
        ys = [o[key] - o["created"] for o in per_order if o[key] is not None]
        ax.scatter(xs, ys, s=6, alpha=0.6, label=label, color=colour)
    ax.set_ylabel("latency (s)")
    ax.set_title(f"{result['label']}: latency by intake time")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)

    ax = axes[1]
    ts = [s["t"] for s in samples]
    for role, colour in (
        ("worker", "tab:blue"),
        ("activity-worker", "tab:cyan"),
        ("temporal", "tab:green"),
        ("postgres", "tab:purple"),
        ("api", "tab:gray"),
    ):
        ys = [s.get(role, {}).get("cpu", 0.0) for s in samples]
        ax.plot(ts, ys, label=f"{role} CPU %", color=colour, linewidth=1)
    ax.set_ylabel("CPU % (100 = 1 core)")
    ax.grid(alpha=0.3)
    rss = ax.twinx()
    rss.plot(
        ts,
        [s.get("worker", {}).get("rss_mb", 0.0) for s in samples],
        color="tab:red",
        linestyle="--",
        label="worker RSS MB",
    )
    rss.set_ylabel("worker RSS (MB)")
    lines, labels = ax.get_legend_handles_labels()
    l2, lb2 = rss.get_legend_handles_labels()
    ax.legend(lines + l2, labels + lb2, loc="upper left", fontsize=8)

    if timers:
        ax = axes[2]
        ax.scatter(
            [x["deadline"] for x in timers],
            [x["late"] for x in timers],
            s=6,
            alpha=0.6,
            color="tab:red",
            label="reassignment lateness",
        )
        ax.set_ylabel("next round − due (s)")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds since the first submission")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict[str, Any], per_order: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    label = result["label"]
    json_path = out_dir / f"{label}.json"
    md_path = out_dir / f"{label}.md"
    png_path = out_dir / f"{label}.png"
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    public["resource_samples"] = result["_samples"]
    json_path.write_text(json.dumps(public, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    plot(result, per_order, png_path)
    return [json_path, md_path, png_path]
