"""The one background thread a window runs: GPU power and memory (NVML), RAPL polls, process-tree RSS.

It samples at `hz` (default 10) with an Event wait, so stopping is immediate; the window also takes one
sample synchronously at each end, so even a short window has its endpoints.
"""
from __future__ import annotations

import os
import threading
import time

import psutil

CHILD_REFRESH_S = 2.0  # re-list child processes (DDP workers, dataloader workers) this often


class ProcessTreeRss:
    """RSS of this process plus its children (shared pages are counted once per process: an upper bound)."""

    def __init__(self):
        import psutil

        self.psutil = psutil
        self.proc = psutil.Process(os.getpid())
        self.children, self.listed_at = [], -1e9

    def __call__(self) -> int | None:
        now = time.monotonic()
        if now - self.listed_at > CHILD_REFRESH_S:
            try:
                self.children = self.proc.children(recursive=True)
            except self.psutil.Error:
                self.children = []
            self.listed_at = now
        try:
            total = self.proc.memory_info().rss
        except self.psutil.Error:
            return None
        for child in self.children:
            try:
                total += child.memory_info().rss
            except self.psutil.Error:
                pass
        return total


class Sampler:
    """Samples `gpus` (lowres.meters.nvml.Gpu), polls `rapl` (RaplCounter or None), tracks peak RSS."""

    def __init__(self, gpus=(), rapl=None, hz: float = 10.0, power: bool = True, name: str = "lowres-meter-sampler"):
        self.gpus, self.rapl, self.period, self.power = list(gpus), rapl, 1.0 / max(hz, 0.1), power
        self.rss = ProcessTreeRss()
        self.times: list[float] = []
        self.power_w: list[list] = [[] for _ in self.gpus]  # per GPU: (t, watts) pairs
        self.peak_gpu_mem: list[int | None] = [None for _ in self.gpus]
        self.peak_rss: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def sample(self) -> None:
        t = time.perf_counter()
        self.times.append(t)
        for i, gpu in enumerate(self.gpus):
            if self.power:
                watts = gpu.power_w()
                if watts is not None:
                    self.power_w[i].append((t, watts))
            used = gpu.memory_used_bytes()
            if used is not None and (self.peak_gpu_mem[i] is None or used > self.peak_gpu_mem[i]):
                self.peak_gpu_mem[i] = used
        if self.rapl is not None:
            self.rapl.poll()
        rss = self.rss()
        if rss is not None and (self.peak_rss is None or rss > self.peak_rss):
            self.peak_rss = rss

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.sample()
            except (OSError, ValueError, psutil.Error):  # a counter file or process gone mid-read; the endpoints
                pass  # still get sampled (NVML errors are handled inside nvml.call)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the thread, then take the closing sample. Safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._thread.ident is not None and not getattr(self, "_closed", False):
            self._closed = True
            self.sample()

    @property
    def count(self) -> int:
        return len(self.times)

    def gpu_power(self, i: int) -> tuple[float | None, float | None, float | None]:
        """(energy J integrated by the trapezoid rule, average W, peak W) of GPU i; Nones without 2 samples."""
        points = self.power_w[i]
        if len(points) < 2:
            return None, None, (max(w for _, w in points) if points else None)
        energy = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(points, points[1:]))
        span = points[-1][0] - points[0][0]
        return energy, (energy / span if span > 0 else None), max(w for _, w in points)
