"""Meter with named windows -> Measurement value objects (units in field names).

```python
meter = Meter(energy="auto", country_iso_code="ARG")   # auto: NVML -> RAPL -> codecarbon estimate
with meter.window("train", samples=n, tokens=t) as m:  # syncs CUDA (if in use) at both ends
    trainer.fit(module, datamodule)
m.tokens_per_s, m.j_per_token, meter.measurements["train"].to_dict()
```
Honesty rules: every energy/power figure names its source (`nvml-energy-counter`, `nvml-power-sampling`,
`rapl`, `codecarbon-estimate`, `unavailable`); a missing figure is None with the reason in `warnings`, never
0; two sources of one quantity are both kept and a >10% disagreement is a warning; device figures are per
rank, machine-level ones (RAPL, codecarbon) are taken on rank 0 only and labelled `machine` in `scope`.
An exception inside a window stops every sampler and tracker, marks the window failed and re-raises.
"""
from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime, timezone

from lowres.meters import carbon as carbon_mod
from lowres.meters.contention import CpuClock, contention_warning, job_root
from lowres.meters import flops as flops_mod
from lowres.meters import nvml, rapl
from lowres.meters.sampler import Sampler

ENERGY_MODES = ("auto", "nvml", "rapl", "codecarbon", "off")
SOURCES = ("nvml-energy-counter", "nvml-power-sampling", "rapl", "codecarbon-estimate", "unavailable")
MIN_WINDOW_S = 0.1  # NVML's power/energy counters update about every 100 ms
MIN_SAMPLES = 5
DISAGREEMENT = 0.10


@dataclasses.dataclass
class Measurement:
    """Figures of one named window. Per-device lists follow `gpu_indices` (NVML) / CUDA device order."""

    name: str
    status: str = "running"  # running | ok | failed
    parent: str | None = None  # the window this one was opened inside (its figures are part of the parent's)
    top_level: bool | None = None  # opened with no other window open (None: written before windows knew)
    started_at: str | None = None
    wall_s: float | None = None
    steps: int | None = None
    samples: int | None = None
    tokens: int | None = None
    padded_tokens: int | None = None
    epochs: float | None = None
    rank: int = 0
    world_size: int = 1
    gpu_indices: list | None = None
    gpu_names: list | None = None
    peak_gpu_mem_bytes: list | None = None  # torch allocator max_memory_allocated per CUDA device
    peak_gpu_mem_reserved_bytes: list | None = None  # torch allocator max_memory_reserved
    peak_gpu_mem_nvml_bytes: list | None = None  # NVML device memory used (all processes), sampled
    peak_cpu_rss_bytes: int | None = None  # this process + children, sampled
    gpu_energy_j: list | None = None
    gpu_energy_sampled_j: list | None = None  # integrated power, kept beside the counter as a check
    gpu_power_avg_w: list | None = None
    gpu_power_peak_w: list | None = None
    gpu_idle_power_w: list | None = None
    cpu_energy_j: float | None = None
    dram_energy_j: float | None = None
    cpu_idle_power_w: float | None = None
    co2_kg: float | None = None
    codecarbon: dict | None = None  # codecarbon's own figures (J, W, kg), recorded beside ours
    flops: float | None = None
    flops_per_step: float | None = None
    mfu: float | None = None
    peak_flops_per_s: float | None = None
    device_name: str | None = None
    precision: str | None = None
    sampler_samples: int | None = None
    other_cpu_s: float | None = None  # CPU seconds other processes used during the window (lowres.meters.contention)
    other_cpu_cores: float | None = None  # ... per second of wall time: cores they kept busy on average
    load_avg_1m: float | None = None  # the machine's 1-minute load average at the window's end
    scope: dict = dataclasses.field(default_factory=dict)  # figure -> device | machine | process
    sources: dict = dataclasses.field(default_factory=dict)  # figure -> one of SOURCES (per device: a,b)
    warnings: list = dataclasses.field(default_factory=list)

    def to_dict(self, derived: bool = False) -> dict:
        out = dataclasses.asdict(self)
        return {**out, **self.derived()} if derived else out

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def measurement(self) -> "Measurement":
        """`with meter.window(...) as w: ...; w.measurement` (DESIGN.md spelling) is the object itself."""
        return self

    def warn(self, message: str | None) -> None:
        if message and message not in self.warnings:
            self.warnings.append(message)

    # Derived figures: computed from the stored ones, never stored.
    def rate(self, numerator: str, denominator: str = "wall_s") -> float | None:
        top, bottom = getattr(self, numerator), getattr(self, denominator)
        return top / bottom if top is not None and bottom else None

    @property
    def tokens_per_s(self):
        return self.rate("tokens")

    @property
    def padded_tokens_per_s(self):
        return self.rate("padded_tokens")

    @property
    def samples_per_s(self):
        return self.rate("samples")

    @property
    def steps_per_s(self):
        return self.rate("steps")

    def epochs_per_min(self, epochs: float | None = None) -> float | None:
        epochs = self.epochs if epochs is None else epochs
        return 60.0 * epochs / self.wall_s if epochs is not None and self.wall_s else None

    @property
    def energy_j(self) -> float | None:
        """GPU (all devices of this rank) + CPU package + DRAM energy, over the figures present."""
        parts = [*(self.gpu_energy_j or []), self.cpu_energy_j, self.dram_energy_j]
        parts = [p for p in parts if p is not None]
        return sum(parts) if parts else None

    def energy_sources(self) -> set[str]:
        """Where the figures summed by `energy_j` came from (labels of SOURCES; per-device labels split)."""
        parts = {"gpu_energy_j": self.gpu_energy_j, "cpu_energy_j": self.cpu_energy_j,
                 "dram_energy_j": self.dram_energy_j}
        present = [k for k, v in parts.items() if v not in (None, []) and (not isinstance(v, list) or
                                                                           any(x is not None for x in v))]
        return {label for k in present for label in str(self.sources.get(k, "unknown")).split(",")}

    @property
    def j_per_token(self):
        return self.energy_j / self.tokens if self.energy_j is not None and self.tokens else None

    @property
    def j_per_sample(self):
        return self.energy_j / self.samples if self.energy_j is not None and self.samples else None

    @property
    def gpu_energy_above_idle_j(self) -> list | None:
        if not self.gpu_energy_j or not self.gpu_idle_power_w or self.wall_s is None:
            return None
        return [e - p * self.wall_s if e is not None and p is not None else None
                for e, p in zip(self.gpu_energy_j, self.gpu_idle_power_w)]

    @property
    def cpu_energy_above_idle_j(self) -> float | None:
        if self.cpu_energy_j is None or self.cpu_idle_power_w is None or self.wall_s is None:
            return None
        return self.cpu_energy_j - self.cpu_idle_power_w * self.wall_s

    def derived(self) -> dict:
        return {"tokens_per_s": self.tokens_per_s, "samples_per_s": self.samples_per_s,
                "steps_per_s": self.steps_per_s, "epochs_per_min": self.epochs_per_min(),
                "energy_j": self.energy_j, "j_per_token": self.j_per_token, "j_per_sample": self.j_per_sample,
                "gpu_energy_above_idle_j": self.gpu_energy_above_idle_j,
                "cpu_energy_above_idle_j": self.cpu_energy_above_idle_j}


def cuda_in_use() -> bool:
    """True when this process already initialised CUDA (never initialise it: a fork-based DDP needs that)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_initialized()


def cuda_sync() -> None:
    import torch

    if cuda_in_use():
        for i in range(torch.cuda.device_count()):
            torch.cuda.synchronize(i)


def dist_info() -> tuple[int, int, int | None]:
    """(rank, world size, local rank or None when not distributed) from torch.distributed or launcher env."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
            return rank, world, int(os.environ.get("LOCAL_RANK", rank)) if world > 1 else None
    except (ImportError, RuntimeError, ValueError):  # no distributed build, a torn-down group, a bad LOCAL_RANK
        pass
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return rank, world, int(os.environ.get("LOCAL_RANK", rank)) if world > 1 else None


def disagreement(what: str, primary: float | None, check: float | None, primary_src: str, check_src: str,
                 tolerance: float = DISAGREEMENT) -> str | None:
    if primary is None or check is None or primary <= 0:
        return None
    rel = abs(check - primary) / primary
    if rel <= tolerance:
        return None
    return (f"{what}: {primary_src} says {primary:.4g} J but {check_src} says {check:.4g} J "
            f"({rel:.0%} apart, more than {tolerance:.0%}); trust neither blindly")


def source_of(per_device: list[str]) -> str:
    """One source label for a per-device figure: the shared one, or the per-device labels in order."""
    return per_device[0] if len(set(per_device)) == 1 else ",".join(per_device)


class Meter:
    """Named measurement windows; `measurements` maps window name -> Measurement (re-entry replaces)."""

    def __init__(self, energy: str = "auto", country_iso_code: str = "USA", sample_hz: float = 10.0,
                 idle_baseline_s: float = 0.0, precision: str | None = None, rapl_root: str | None = None,
                 codecarbon_interval_s: float = 1.0, codecarbon_save_to_file: bool = False,
                 codecarbon_output_dir: str | None = None, rank: int | None = None, world_size: int | None = None,
                 local_rank: int | None = None):
        if energy not in ENERGY_MODES:
            raise ValueError(f"unknown energy mode {energy!r}; valid: {', '.join(ENERGY_MODES)}")
        self.energy, self.country_iso_code, self.sample_hz = energy, country_iso_code, sample_hz
        self.idle_baseline_s, self.precision, self.rapl_root = idle_baseline_s, precision, rapl_root
        self.codecarbon_options = dict(measure_power_secs=codecarbon_interval_s, save_to_file=codecarbon_save_to_file,
                                       output_dir=codecarbon_output_dir)
        self._dist = (rank, world_size, local_rank)
        self.measurements: dict[str, Measurement] = {}
        self.idle: dict | None = None
        self.open_windows: list[Window] = []

    def window(self, name: str, steps=None, samples=None, tokens=None, padded_tokens=None, epochs=None,
               flops_per_step=None, precision: str | None = None) -> "Window":
        """A context manager yielding the window's Measurement; counts may also be set on it inside."""
        return Window(self, Measurement(name=name, steps=steps, samples=samples, tokens=tokens,
                                        padded_tokens=padded_tokens, epochs=epochs, flops_per_step=flops_per_step,
                                        precision=precision or self.precision))

    def to_dict(self) -> dict:
        return {name: m.to_dict() for name, m in self.measurements.items()}

    def uses(self, meter_kind: str) -> bool:
        return self.energy == meter_kind or (self.energy == "auto" and meter_kind != "off")

    def distributed(self) -> tuple[int, int, int | None]:
        rank, world, local = dist_info()
        given_rank, given_world, given_local = self._dist
        rank = rank if given_rank is None else given_rank
        world = world if given_world is None else given_world
        local = local if given_local is None else given_local
        return rank, world, (local if local is not None else rank) if world > 1 else None

    def measure_idle(self, seconds: float | None = None) -> dict:
        """Idle power per GPU and of the CPU package (RAPL) over `seconds` with nothing else running."""
        seconds = seconds or self.idle_baseline_s or 5.0
        _, _, local = self.distributed()
        gpus, _ = nvml.open_gpus(local) if self.uses("nvml") else ([], None)
        domains, _ = rapl.discover(self.rapl_root) if self.uses("rapl") else ([], None)
        counter = rapl.RaplCounter(domains) if domains else None
        sampler = Sampler(gpus, counter, hz=self.sample_hz)
        start = time.perf_counter()
        sampler.start()
        try:
            time.sleep(seconds)
        finally:
            sampler.stop()
        span = time.perf_counter() - start
        self.idle = {"seconds": span, "gpu_power_w": [sampler.gpu_power(i)[1] for i in range(len(gpus))] or None,
                     "cpu_power_w": counter.energy_j("package") / span if counter else None}
        return self.idle


class Window:
    """Context manager behind `Meter.window`: starts samplers/trackers, fills the Measurement on exit."""

    def __init__(self, meter: Meter, measurement: Measurement):
        self.meter, self.m = meter, measurement
        self.sampler = self.carbon = self.rapl = None
        self.gpus, self.gpu_reason, self.rapl_reason = [], None, None
        self.energy_start: list = []
        self.cuda_peak_carry: dict[int, tuple[int, int]] = {}
        self.cpu_clock = None
        self.t0 = None

    @property
    def measurement(self) -> Measurement:
        return self.m

    # -- opening ---------------------------------------------------------------------------------------------
    def __enter__(self) -> Measurement:
        meter, m = self.meter, self.m
        meter.measurements.pop(m.name, None)  # re-entering a name replaces it
        meter.measurements[m.name] = m
        m.parent = meter.open_windows[-1].m.name if meter.open_windows else None
        m.top_level = m.parent is None
        m.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rank, m.world_size, local = meter.distributed()
        m.rank = rank
        try:
            if meter.idle_baseline_s and meter.idle is None and meter.energy != "off":
                meter.measure_idle(meter.idle_baseline_s)
            self._open_devices(local)
            self._open_machine_meters()
            self.sampler = Sampler(self.gpus, self.rapl, hz=meter.sample_hz, power=meter.uses("nvml"))
            cuda_sync()
            self._reset_cuda_peaks()
            self.energy_start = [g.energy_j() if g.has_energy_counter else None for g in self.gpus]
            self.cpu_clock = CpuClock(job_root(m.world_size)) if m.rank == 0 else None
            self.sampler.start()
        except BaseException:
            self._stop_all()
            meter.measurements.pop(m.name, None)
            raise
        meter.open_windows.append(self)
        self.t0 = time.perf_counter()
        return m

    def _open_devices(self, local_rank: int | None) -> None:
        self.gpus, self.gpu_reason = nvml.open_gpus(local_rank)
        self.m.gpu_indices = [g.index for g in self.gpus] or None
        self.m.gpu_names = [g.name for g in self.gpus] or None

    def _open_machine_meters(self) -> None:
        meter, m = self.meter, self.m
        if m.rank != 0:
            return  # machine-level meters run once per machine, on rank 0
        if meter.uses("rapl"):
            domains, self.rapl_reason = rapl.discover(meter.rapl_root)
            self.rapl = rapl.RaplCounter(domains) if domains else None
        if meter.uses("codecarbon"):
            self.carbon = carbon_mod.CarbonTracker(meter.country_iso_code, **meter.codecarbon_options)
            try:
                self.carbon.start()
            except Exception as err:
                self.carbon.stop()
                self.carbon.error = f"codecarbon failed to start ({type(err).__name__}: {err})"

    def _reset_cuda_peaks(self) -> None:
        """Reset allocator peaks; windows already open (nested) keep what they saw so far."""
        if not cuda_in_use():
            return
        import torch

        for i in range(torch.cuda.device_count()):
            now = (torch.cuda.max_memory_allocated(i), torch.cuda.max_memory_reserved(i))
            for outer in self.meter.open_windows:
                old = outer.cuda_peak_carry.get(i, (0, 0))
                outer.cuda_peak_carry[i] = (max(old[0], now[0]), max(old[1], now[1]))
            torch.cuda.reset_peak_memory_stats(i)

    # -- closing ---------------------------------------------------------------------------------------------
    def __exit__(self, exc_type, exc, tb) -> bool:
        m, fill_error = self.m, None
        try:
            try:
                cuda_sync()
            finally:
                m.wall_s = time.perf_counter() - self.t0
                self._stop_all()
            try:
                self._fill()
            except Exception as err:  # a meter bug must not mask the run's own outcome
                fill_error = f"meter could not compute all figures ({type(err).__name__}: {err})"
        finally:
            m.status = "failed" if exc_type is not None else "ok"
            if exc_type is not None:
                m.warn(f"window failed: {exc_type.__name__}: {exc}"[:300])
            elif fill_error is not None:
                m.warn(fill_error)
            if self in self.meter.open_windows:
                self.meter.open_windows.remove(self)
        return False

    def _stop_all(self) -> None:
        """Stop every thread and tracker this window started (each attempted even if one fails)."""
        try:
            if self.sampler is not None:
                self.sampler.stop()
        finally:
            if self.carbon is not None:
                self.carbon.stop()

    def _fill(self) -> None:
        m = self.m
        self._fill_cuda_memory()
        self._fill_gpu()
        self._fill_machine()
        self._fill_flops()
        m.peak_cpu_rss_bytes = self.sampler.peak_rss
        m.scope["peak_cpu_rss_bytes"] = "process"
        self._fill_contention()
        self._fill_scheduler_scope()
        m.sampler_samples = self.sampler.count
        if m.wall_s < MIN_WINDOW_S:
            m.warn(f"window lasted {m.wall_s * 1000:.0f} ms, shorter than the ~{MIN_WINDOW_S * 1000:.0f} ms "
                   "update period of power/energy counters: energy and power figures are unreliable")
        if m.sampler_samples < MIN_SAMPLES:
            m.warn(f"the sampler got only {m.sampler_samples} samples at {self.meter.sample_hz:g} Hz: average/peak "
                   "power and peak memory may miss what happened between samples")

    def _fill_scheduler_scope(self) -> None:
        """Under SLURM, say what the figures cover: NVML reads only the job's GPUs, machine figures the node."""
        job = os.environ.get("SLURM_JOB_ID")
        if not job:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
        self.m.scope["scheduler"] = f"slurm job {job}"
        self.m.warn(f"SLURM job {job}: GPU energy and power cover this job's devices only (CUDA_VISIBLE_DEVICES="
                    f"{visible}); CPU, DRAM and CO2 figures cover the whole node, other jobs on it included")

    def _fill_contention(self) -> None:
        """Other processes' CPU use during the window (rank 0: a machine-level figure, like CPU energy)."""
        if self.cpu_clock is None:
            return
        figures = self.cpu_clock.figures(self.m.wall_s)
        self.m.other_cpu_s, self.m.other_cpu_cores = figures["other_cpu_s"], figures["other_cpu_cores"]
        self.m.load_avg_1m = figures["load_avg_1m"]
        self.m.scope.update({"other_cpu_s": "machine", "load_avg_1m": "machine"})
        self.m.warn(contention_warning(self.m.other_cpu_cores, figures["cpu_cores"]))

    def _fill_cuda_memory(self) -> None:
        m = self.m
        if not cuda_in_use():
            m.warn("peak_gpu_mem_bytes: CUDA not in use in this process (no allocator peaks)")
            return
        import torch

        n = torch.cuda.device_count()
        carry = [self.cuda_peak_carry.get(i, (0, 0)) for i in range(n)]
        m.peak_gpu_mem_bytes = [max(carry[i][0], torch.cuda.max_memory_allocated(i)) for i in range(n)]
        m.peak_gpu_mem_reserved_bytes = [max(carry[i][1], torch.cuda.max_memory_reserved(i)) for i in range(n)]
        m.scope["peak_gpu_mem_bytes"] = "device"

    def _fill_gpu(self) -> None:
        m, meter = self.m, self.meter
        if not self.gpus:
            for key in ("gpu_energy_j", "gpu_power_avg_w", "gpu_power_peak_w"):
                m.sources[key] = "unavailable"
            m.warn(f"gpu_energy_j, gpu_power_*: no GPU measured ({self.gpu_reason})")
            return
        m.peak_gpu_mem_nvml_bytes = list(self.sampler.peak_gpu_mem)
        m.scope.update({k: "device" for k in ("peak_gpu_mem_nvml_bytes", "gpu_energy_j", "gpu_power_avg_w",
                                              "gpu_power_peak_w")})
        if not meter.uses("nvml"):
            for key in ("gpu_energy_j", "gpu_power_avg_w", "gpu_power_peak_w"):
                m.sources[key] = "unavailable"
            m.warn(f"gpu_energy_j, gpu_power_*: not metered (energy={meter.energy!r}; use 'auto' or 'nvml')")
            return
        energy, sampled, avg, peak, sources = [], [], [], [], []
        for i, gpu in enumerate(self.gpus):
            integrated, avg_w, peak_w = self.sampler.gpu_power(i)
            start, end = self.energy_start[i], (gpu.energy_j() if gpu.has_energy_counter else None)
            if start is not None and end is not None:
                energy.append(end - start)
                sampled.append(integrated)
                sources.append("nvml-energy-counter")
                m.warn(disagreement(f"gpu_energy_j[{i}] (GPU {gpu.index})", end - start, integrated,
                                    "nvml-energy-counter", "nvml-power-sampling"))
            else:
                energy.append(integrated)
                sampled.append(None)
                sources.append("nvml-power-sampling" if integrated is not None else "unavailable")
                if integrated is None:
                    m.warn(f"gpu_energy_j[{i}] (GPU {gpu.index}): no energy counter and fewer than 2 power samples")
            avg.append(avg_w)
            peak.append(peak_w)
        m.gpu_energy_j, m.gpu_power_avg_w, m.gpu_power_peak_w = energy, avg, peak
        m.gpu_energy_sampled_j = sampled if any(s is not None for s in sampled) else None
        m.sources["gpu_energy_j"] = source_of(sources)
        power_source = "nvml-power-sampling" if any(a is not None for a in avg) else "unavailable"
        m.sources["gpu_power_avg_w"] = m.sources["gpu_power_peak_w"] = power_source
        if m.gpu_energy_sampled_j is not None:
            m.sources["gpu_energy_sampled_j"] = "nvml-power-sampling"
        if meter.idle and meter.idle.get("gpu_power_w"):
            m.gpu_idle_power_w = meter.idle["gpu_power_w"]
            m.sources["gpu_idle_power_w"] = "nvml-power-sampling"

    def _fill_machine(self) -> None:
        m, meter = self.m, self.meter
        keys = ("cpu_energy_j", "dram_energy_j", "co2_kg")
        m.scope.update({k: "machine" for k in keys})
        if meter.energy == "off":
            m.sources.update({k: "unavailable" for k in keys})
            m.warn("energy metering is off (energy='off'): cpu_energy_j, dram_energy_j, co2_kg not measured")
            return
        if m.rank != 0:
            m.sources.update({k: "unavailable" for k in keys})
            m.warn(f"cpu_energy_j, dram_energy_j, co2_kg: machine-level figures are measured once, on rank 0 "
                   f"(this is rank {m.rank} of {m.world_size}); never sum them across ranks")
            return
        cc = self.carbon.result() if self.carbon is not None else None
        m.codecarbon = cc
        if self.rapl is not None:
            m.cpu_energy_j, m.dram_energy_j = self.rapl.energy_j("package"), self.rapl.energy_j("dram")
            m.sources["cpu_energy_j"] = "rapl"
            m.sources["dram_energy_j"] = "rapl" if m.dram_energy_j is not None else "unavailable"
            if m.dram_energy_j is None:
                m.warn("dram_energy_j: this machine's RAPL has no dram domain")
            if cc is not None:
                m.warn(disagreement("cpu_energy_j", m.cpu_energy_j, cc["cpu_energy_j"], "rapl",
                                    f"codecarbon ({cc['hardware']})"))
            if meter.idle and meter.idle.get("cpu_power_w") is not None:
                m.cpu_idle_power_w = meter.idle["cpu_power_w"]
                m.sources["cpu_idle_power_w"] = "rapl"
        elif cc is not None and meter.uses("codecarbon"):
            m.cpu_energy_j = cc["cpu_energy_j"]
            m.sources["cpu_energy_j"], m.sources["dram_energy_j"] = "codecarbon-estimate", "unavailable"
            why = self.rapl_reason or f"energy={meter.energy!r}"
            if cc["cpu_estimated"]:
                m.warn(f"cpu_energy_j is an ESTIMATE, not a measurement: no RAPL counters ({why}); codecarbon "
                       f"derived it from CPU load x TDP ({cc['hardware']})")
            else:
                m.warn(f"cpu_energy_j comes from codecarbon's own reading ({cc['hardware']}), not lowres' RAPL ({why})")
            m.warn("dram_energy_j: no RAPL dram counter; codecarbon's RAM figure is a fixed-power estimate "
                   "(codecarbon.ram_energy_j)")
        else:
            m.sources["cpu_energy_j"] = m.sources["dram_energy_j"] = "unavailable"
            m.warn(f"cpu_energy_j, dram_energy_j: unavailable ({self.rapl_reason or 'RAPL not used'}"
                   f"{'' if meter.uses('codecarbon') else '; codecarbon not used'})")
        if cc is not None:
            m.co2_kg = cc["co2_kg"]
            m.sources["co2_kg"] = "codecarbon-estimate"
        else:
            m.sources["co2_kg"] = "unavailable"
            reason = (self.carbon.error or "codecarbon returned no data") if self.carbon else \
                f"codecarbon not used (energy={meter.energy!r})"
            m.warn(f"co2_kg: unavailable ({reason})")
        if meter.idle and m.cpu_idle_power_w is None:
            m.warn("cpu_idle_power_w: idle baseline needs RAPL counters; cpu_energy_above_idle_j unavailable")

    def _fill_flops(self) -> None:
        m = self.m
        if m.flops is None and m.flops_per_step is not None and m.steps:
            m.flops = m.flops_per_step * m.steps
        if m.flops is None:
            return
        m.device_name = m.device_name or flops_mod.device_name()
        m.mfu, m.peak_flops_per_s, warning = flops_mod.mfu(m.flops, m.wall_s, m.device_name, m.precision)
        if warning:
            m.warn(warning)
