"""Meter with named windows -> Measurement value objects (units in field names).

Minimal version: wall time (device synced), counts, peak CUDA memory. NVML/RAPL/codecarbon/FLOPs land
with the meters issue; until then every energy figure is None with source `unavailable`, never 0.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time


@dataclasses.dataclass
class Measurement:
    name: str
    status: str = "running"  # running | ok | failed
    wall_s: float | None = None
    steps: int | None = None
    samples: int | None = None
    tokens: int | None = None
    padded_tokens: int | None = None
    peak_gpu_mem_bytes: list | None = None
    peak_cpu_rss_bytes: int | None = None
    gpu_energy_j: list | None = None
    cpu_energy_j: float | None = None
    gpu_power_avg_w: list | None = None
    gpu_power_peak_w: list | None = None
    co2_kg: float | None = None
    flops: float | None = None
    mfu: float | None = None
    sources: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def rate(self, numerator: str, denominator: str = "wall_s") -> float | None:
        top, bottom = getattr(self, numerator), getattr(self, denominator)
        return top / bottom if top is not None and bottom else None

    @property
    def tokens_per_s(self):
        return self.rate("tokens")

    @property
    def samples_per_s(self):
        return self.rate("samples")


def cuda_sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Meter:
    def __init__(self, energy: str = "auto", country_iso_code: str = "USA", sample_hz: float = 10.0):
        self.energy = energy
        self.country_iso_code = country_iso_code
        self.sample_hz = sample_hz
        self.measurements: dict[str, Measurement] = {}

    @contextlib.contextmanager
    def window(self, name: str, steps=None, samples=None, tokens=None, padded_tokens=None):
        m = Measurement(name=name, steps=steps, samples=samples, tokens=tokens, padded_tokens=padded_tokens)
        self.measurements[name] = m  # re-entering a name replaces it
        cuda_sync()
        start = time.perf_counter()
        try:
            yield m
            m.status = "ok"
        except BaseException:
            m.status = "failed"
            raise
        finally:
            cuda_sync()
            m.wall_s = time.perf_counter() - start
            for key in ("gpu_energy_j", "cpu_energy_j", "co2_kg"):
                m.sources[key] = "unavailable"
            m.warnings.append("energy meters not wired yet: energy figures unavailable")

    def to_dict(self) -> dict:
        return {name: m.to_dict() for name, m in self.measurements.items()}
