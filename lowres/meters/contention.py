"""Other processes' load during a window: a measurement on a shared machine is only as good as its quiet.

`CpuClock` snapshots the machine's busy CPU seconds (psutil.cpu_times, all cores) and this process tree's
(this process, its live children, its reaped children; for forked DDP ranks, their common parent's tree:
`job_root`); over a window, the machine's busy time minus ours is what other processes used.
`other_cpu_cores` = that / wall time: 1.0 means another process kept one core busy the whole window.

Threshold: a window counts as contended when others used more than a quarter of the machine's cores on
average (`CONTENDED_SHARE`). The studies use every core (torch threads = cores), so others' share slows a
CPU-bound run by about that share and bills their load to the run's machine-scope energy estimate; a quarter
is well above the idle noise of a quiet machine (a few %, measured at 0.02-0.05 cores here) and below the
half core that turned a 30 s LoRA smoke run into 140-177 s on the 2-core development machine.
"""
from __future__ import annotations

import os

import psutil

CONTENDED_SHARE = 0.25


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot, over all cores (idle and iowait excluded)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def own_cpu_s(process: psutil.Process | None = None) -> float:
    """CPU seconds of this process tree: itself, its live children, and the children it has reaped."""
    process = process or psutil.Process()
    t = process.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in process.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def job_root(world_size: int = 1) -> psutil.Process:
    """The process whose tree is "ours": this process, or - for DDP ranks forked side by side from one parent
    (Lightning's `ddp_notebook` in a kernel) - that parent, so the sibling ranks of this run are not counted
    as other processes. (With the subprocess launcher rank 0 is the other ranks' parent: its own tree.)"""
    me = psutil.Process()
    if world_size > 1:
        parent = me.parent()
        if parent is not None and len(parent.children()) >= world_size:
            return parent
    return me


class CpuClock:
    """Start at a window's opening; `figures(wall_s)` at its close. `root`: the process tree counted as ours."""

    def __init__(self, root: psutil.Process | None = None):
        self.root = root or psutil.Process()
        self.machine0, self.own0 = machine_busy_s(), own_cpu_s(self.root)

    def figures(self, wall_s: float) -> dict:
        other = max(0.0, (machine_busy_s() - self.machine0) - (own_cpu_s(self.root) - self.own0))
        cores = os.cpu_count() or 1
        return {"other_cpu_s": other, "other_cpu_cores": other / wall_s if wall_s else None,
                "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None, "cpu_cores": cores}


def contention_warning(other_cores: float | None, cores: int, share: float = CONTENDED_SHARE) -> str | None:
    """The warning a contended window carries (None when the machine was quiet enough)."""
    if other_cores is None or other_cores <= share * cores:
        return None
    return (f"contention: other processes used {other_cores:.2f} of {cores} CPU cores on average during this "
            f"window (more than {share:.0%}): its time and machine-scope energy include their load")
