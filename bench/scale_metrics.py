"""What the scale-out benches read about their processes: where the CPU went, the dev server's
process, and a worker's workflow cache from its Prometheus metrics."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

# The SDK core's gauge of workflows held in the worker's cache (max_cached_workflows bounds it),
# and its counters of workflow tasks that found their workflow cached or had to replay it.
CACHE_SIZE = "temporal_sticky_cache_size"
CACHE_COUNTERS = ("temporal_sticky_cache_hit", "temporal_sticky_cache_miss")


def dev_server_pid() -> int | None:
    """The Temporal dev server this process started (the SDK spawns it; it gives no pid)."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == me and b"start-dev" in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


MACHINE = "(machine)"  # the key of the whole machine's busy CPU time in a `used` dict
TICKS = os.sysconf("SC_CLK_TCK")


def machine_seconds() -> float:
    """The machine's busy CPU time so far, all processes (ours or not), in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / TICKS


def cpu_lines(title: str, used: dict[str, float], wall: float, builds: int) -> list[str]:
    """Where the CPU went: per process, seconds, share of a core and milliseconds per build.
    What the machine spent beyond the named processes is "other": on an otherwise idle
    machine, the sandboxes' commands (bubblewrap's namespaces keep them out of the worker's
    child times)."""
    cores = os.cpu_count() or 1
    named = {name: seconds for name, seconds in used.items() if name != MACHINE}
    total = used.get(MACHINE, sum(named.values()))
    named["other"] = max(total - sum(named.values()), 0.0)
    lines = [
        f"{title}: {total:.0f}s of {wall * cores:.0f}s on {cores} cores"
        f" ({total / (wall * cores):.0%} busy), {total / builds * 1000:.0f} ms per build:"
    ]
    for name, seconds in sorted(named.items(), key=lambda item: -item[1]):
        lines.append(
            f"    {name:10} {seconds:7.1f}s  {seconds / wall:5.0%} of a core"
            f"  {seconds / builds * 1000:6.1f} ms per build"
        )
    return lines


async def scrape(port: int) -> dict[str, float]:
    """A worker's metrics, summed by name over their labels (histograms left out)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0].removesuffix("_total")
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


async def sticky_cache(port: int) -> str:
    """The worker's cache now: workflows held, and hits and misses so far."""
    found = await scrape(port)
    hits, misses = (int(found.get(name, 0)) for name in CACHE_COUNTERS)
    size = found.get(CACHE_SIZE)
    held = "not reported" if size is None else f"{int(size)} workflows held"
    return f"{held}; {hits} workflow tasks found theirs cached, {misses} replayed it"
