"""How a training run is spread over devices, and what numerics it really ran.

- `plan(strategy, batch_size, ...)` -> ParallelPlan: `single`, `dp` (torch.nn.DataParallel; Lightning 2 has no
  DP strategy) or `ddp` (Lightning; `ddp_notebook` inside a notebook kernel, gloo on CPU). Per-rank and total
  batch sizes are both kept. DP with fewer than 2 CUDA devices does nothing, and the plan says so.
- `wrap_data_parallel(module, plan)`: the honest DP wrapper (a no-op unless the plan made DP active).
- `precision_record(trainer, requested)`: the exact torch/Lightning setting behind a run. On CPU Lightning
  silently turns `16-mixed` into bf16 autocast and TF32 does not exist; the record says what ran.
- `RankZeroExport`: brings what the Meter measured inside DDP worker processes back to the notebook.
- `oom_as_finding(plan)`: an out-of-memory error keeps its type (the runner maps it to status `oom`) and
  names the batch size.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

import lightning as L
import torch
from torch.multiprocessing.spawn import ProcessRaisedException

STRATEGIES = ("single", "dp", "ddp")
ACCELERATORS = ("auto", "cpu", "gpu")
BATCH_SCOPES = ("total", "per_rank")
COUNT_FIELDS = ("samples", "tokens", "padded_tokens")
# Per-device lists the meter fills from NVML for this rank's own GPUs: concatenated over ranks.
NVML_DEVICE_FIELDS = ("gpu_indices", "gpu_names", "peak_gpu_mem_nvml_bytes", "gpu_energy_j", "gpu_energy_sampled_j",
                      "gpu_power_avg_w", "gpu_power_peak_w", "gpu_idle_power_w")
# Per-device lists indexed by CUDA ordinal (every rank sees every device): element-wise max over ranks.
ORDINAL_DEVICE_FIELDS = ("peak_gpu_mem_bytes", "peak_gpu_mem_reserved_bytes")


def check_choice(what: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, valid))}")


def cuda_device_count() -> int:
    """CUDA devices, counted without initialising CUDA (Lightning turns on NVML-based counting), so a later
    fork-based DDP still works."""
    from lightning.fabric.accelerators.cuda import num_cuda_devices

    return num_cuda_devices()


def interactive() -> bool:
    """The test Lightning applies to refuse `ddp` (it re-launches the script, impossible from a kernel)."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


@dataclasses.dataclass(frozen=True)
class ParallelPlan:
    strategy: str  # what was asked: single | dp | ddp
    accelerator: str  # cpu | gpu
    lightning_strategy: str  # what Lightning gets: auto | ddp | ddp_notebook
    lightning_devices: int  # Trainer(devices=...)
    processes: int  # OS processes that train (the DDP world size)
    devices_used: int  # devices doing the math (DP replicas or DDP ranks)
    loader_batch_size: int  # what each process's DataLoader yields
    per_rank_batch_size: int  # what one device computes per step
    total_batch_size: int  # samples per optimizer step over all devices
    dp_active: bool
    process_group_backend: str | None  # gloo | nccl (DDP only)
    torch_threads: int  # intra-op threads per process
    notes: tuple = ()

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "notes": list(self.notes)}


def resolve_accelerator(accelerator: str, cuda_devices: int) -> str:
    check_choice("accelerator", accelerator, ACCELERATORS)
    if accelerator == "auto":
        return "gpu" if cuda_devices else "cpu"
    if accelerator == "gpu" and not cuda_devices:
        raise ValueError("accelerator 'gpu' asked for but no CUDA device is visible; valid here: auto, cpu")
    return accelerator


def default_threads(processes: int) -> int:
    """torch's threads (which honour OMP_NUM_THREADS) shared evenly between the training processes."""
    return max(1, torch.get_num_threads() // processes)


def split_batch(batch_size: int, ways: int, scope: str) -> tuple[int, int]:
    """(per-device batch, total batch) for `ways` devices; `total` scope splits batch_size evenly."""
    check_choice("batch_size_scope", scope, BATCH_SCOPES)
    if scope == "per_rank":
        return batch_size, batch_size * ways
    if batch_size % ways:
        raise ValueError(f"batch_size {batch_size} (total) does not split evenly over {ways} devices; use a multiple "
                         f"of {ways} or batch_size_scope='per_rank'")
    return batch_size // ways, batch_size


def plan(strategy: str, batch_size: int, processes: int = 2, accelerator: str = "auto",
         batch_size_scope: str = "total", torch_threads: int = 0, cuda_devices: int | None = None) -> ParallelPlan:
    """Resolve a strategy for this machine. `processes`: DDP ranks, or GPUs for DP. Raises ValueError naming the
    bad value and the valid ones before any work starts."""
    check_choice("strategy", strategy, STRATEGIES)
    if batch_size < 1 or processes < 1 or torch_threads < 0:
        raise ValueError(f"batch_size and processes must be >= 1 and torch_threads >= 0 (0 = auto); got "
                         f"{batch_size}, {processes}, {torch_threads}")
    cuda_devices = cuda_device_count() if cuda_devices is None else cuda_devices
    accel = resolve_accelerator(accelerator, cuda_devices)
    if strategy == "ddp":
        return plan_ddp(batch_size, processes, accel, batch_size_scope, torch_threads, cuda_devices)
    if strategy == "dp":
        return plan_dp(batch_size, processes, accel, batch_size_scope, torch_threads, cuda_devices)
    return ParallelPlan("single", accel, "auto", 1, 1, 1, batch_size, batch_size, batch_size, False, None,
                        torch_threads or default_threads(1))


def plan_dp(batch_size, processes, accel, scope, threads, cuda_devices) -> ParallelPlan:
    replicas = min(processes, cuda_devices) if accel == "gpu" else 0
    if replicas < 2:
        note = (f"dp asked for, but DataParallel needs >= 2 CUDA devices and this run has {cuda_devices} visible "
                f"(accelerator {accel}): DataParallel was NOT applied; this run is a single-device run")
        return ParallelPlan("dp", accel, "auto", 1, 1, 1, batch_size, batch_size, batch_size, False, None,
                            threads or default_threads(1), (note,))
    per_device, total = split_batch(batch_size, replicas, scope)
    note = (f"DataParallel over {replicas} GPUs in one process: the loader batch of {total} is scattered "
            f"{per_device} per GPU")
    return ParallelPlan("dp", accel, "auto", 1, 1, replicas, total, per_device, total, True, None,
                        threads or default_threads(1), (note,))


def plan_ddp(batch_size, processes, accel, scope, threads, cuda_devices) -> ParallelPlan:
    if processes < 2:
        raise ValueError(f"ddp needs processes >= 2, got {processes}; valid: an integer >= 2, or strategy 'single'")
    if accel == "gpu" and processes > cuda_devices:
        raise ValueError(f"ddp with processes={processes} on GPUs needs {processes} CUDA devices, {cuda_devices} "
                         f"visible; valid: processes <= {cuda_devices}, or accelerator='cpu'")
    per_rank, total = split_batch(batch_size, processes, scope)
    # Lightning's `ddp` re-launches the script (impossible in a kernel, wrong under pytest or `python -c`); the
    # fork-based `ddp_notebook` is safe wherever CUDA is not initialised before the fork, so always on CPU.
    lightning_strategy = "ddp_notebook" if interactive() or accel == "cpu" else "ddp"
    backend = "nccl" if accel == "gpu" else "gloo"  # Lightning's choice for each device type
    notes = [f"{processes} processes ({lightning_strategy}, {backend}), {per_rank} samples per rank per step"]
    if accel == "cpu":
        notes.append("DDP on CPU: every process is a CPU worker sharing this machine's cores")
    return ParallelPlan("ddp", accel, lightning_strategy, processes, processes, processes, per_rank, per_rank, total,
                        False, backend, threads or default_threads(processes), tuple(notes))


def wrap_data_parallel(module, parallel_plan: ParallelPlan, attribute: str = "net"):
    """Wrap the submodule that computes the step (`module.<attribute>`, e.g. lowres.mlm.MLMForward) in
    torch.nn.DataParallel when the plan made DP active; else a no-op. The optimizer keeps seeing the same
    parameters (DataParallel replicates them from device 0 every step)."""
    inner = getattr(module, attribute)
    if parallel_plan.dp_active and not isinstance(inner, torch.nn.DataParallel):
        setattr(module, attribute, torch.nn.DataParallel(inner, device_ids=list(range(parallel_plan.devices_used))))
    return module


def scaled_lr(lr: float, total_batch_size: int, rule: str = "none", reference_batch_size: int = 16) -> float:
    """The learning rate to use: as given, or scaled linearly with the total batch (Goyal et al. 2017)."""
    check_choice("lr_scaling", rule, ("none", "linear"))
    return lr if rule == "none" else lr * total_batch_size / reference_batch_size


# -- precision -----------------------------------------------------------------------------------------------
AUTOCAST_NAMES = {"16-mixed": "float16", "bf16-mixed": "bfloat16"}


def tf32_active(accelerator: str) -> bool:
    """TF32 matmuls exist only on Ampere-or-newer CUDA GPUs, and only when allowed."""
    if accelerator != "gpu" or not torch.backends.cuda.matmul.allow_tf32:
        return False
    return torch.cuda.get_device_capability(0)[0] >= 8


def precision_record(trainer: L.Trainer, requested: str, accelerator: str) -> dict:
    """What really ran: Lightning's precision after its substitutions, the autocast dtype, loss scaling, TF32.

    Call after `fit` (the TF32 check may initialise CUDA, which a fork-based DDP must not find done)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    plugin = trainer.precision_plugin
    lightning = str(trainer.precision)
    autocast = AUTOCAST_NAMES.get(plugin.precision) if isinstance(plugin, MixedPrecision) else None
    tf32 = requested == "tf32" and tf32_active(accelerator)
    effective = {"float16": "16-mixed", "bfloat16": "bf16-mixed"}.get(autocast) or ("tf32" if tf32 else lightning)
    notes = []
    if requested == "16-mixed" and effective == "bf16-mixed":
        notes.append(f"Lightning replaced 16-mixed by bf16-mixed: fp16 AMP is not supported on {accelerator}; "
                     "this run used bfloat16 autocast and no loss scaling")
    if requested == "tf32" and not tf32:
        notes.append(f"tf32 asked for, but TF32 matmuls need an Ampere-or-newer CUDA GPU (accelerator {accelerator}): "
                     "this run is plain FP32")
    return {"requested": requested, "effective": effective, "lightning": lightning, "param_dtype": "float32",
            "autocast_dtype": autocast, "autocast_device": getattr(plugin, "device", None) if autocast else None,
            "grad_scaler": getattr(plugin, "scaler", None) is not None, "tf32_matmul": tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(), "notes": notes}


# -- DDP: bring rank 0's record back -----------------------------------------------------------------------------
class TorchThreads(L.Callback):
    """Set intra-op threads in every training process (after Lightning's own DDP default, so ours wins)."""

    def __init__(self, threads: int):
        self.threads = threads

    def setup(self, trainer, pl_module, stage):
        torch.set_num_threads(self.threads)


def merge_rank_windows(per_rank: list[dict]) -> dict:
    """One Measurement dict from every rank's copy: counts summed, per-device lists combined, machine-level and
    timing figures from rank 0 (rank 0's wall time is the run's: every step waits for the slowest rank)."""
    merged = dict(per_rank[0])
    if len(per_rank) == 1:
        return merged
    for key in COUNT_FIELDS:
        values = [r.get(key) for r in per_rank]
        merged[key] = sum(values) if None not in values else None
    for key in NVML_DEVICE_FIELDS:
        lists = [r.get(key) for r in per_rank]
        merged[key] = [v for values in lists for v in values] if all(lists) else None
    for key in ORDINAL_DEVICE_FIELDS:
        lists = [r.get(key) for r in per_rank]
        merged[key] = [max(vs) for vs in zip(*lists)] if all(lists) else None
    merged["scope"] = {**merged.get("scope", {}), **{k: "all-ranks" for k in COUNT_FIELDS}}
    merged["warnings"] = list(merged.get("warnings", [])) + [
        f"gathered from {len(per_rank)} DDP ranks: samples/tokens summed over ranks, per-GPU figures from every rank, "
        "time and machine-level figures (CPU energy, CO2, RSS) from rank 0"]
    return merged


class RankZeroExport(L.Callback):
    """Writes the windows this fit opened, plus the module's per-epoch history, to a JSON file from global rank 0,
    after gathering every rank's figures. List it after the MeterCallback, whose windows it reads."""

    def __init__(self, meter, path: Path):
        self.meter, self.path = meter, Path(path)
        self.before: set[int] = set()

    def setup(self, trainer, pl_module, stage):
        self.before = {id(m) for m in self.meter.measurements.values()}

    def on_train_end(self, trainer, pl_module):
        mine = {name: m.to_dict() for name, m in sorted(self.meter.measurements.items()) if id(m) not in self.before}
        gathered = [mine]
        if trainer.world_size > 1:
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, mine)
        if trainer.global_rank == 0:
            windows = {name: merge_rank_windows([rank[name] for rank in gathered]) for name in mine}
            record = {"pid": os.getpid(), "world_size": trainer.world_size, "measurements": windows,
                      "history": list(getattr(pl_module, "history", []))}
            self.path.write_text(json.dumps(record, default=str))

    def collect(self) -> dict:
        """In the notebook's process after fit: adopt rank 0's windows when they were measured in other processes."""
        from lowres.meters import Measurement

        if not self.path.is_file():
            raise RuntimeError(f"fit ended without rank 0 writing {self.path}; see the worker processes' errors above")
        record = json.loads(self.path.read_text())
        if record["pid"] != os.getpid():
            for name, data in record["measurements"].items():
                self.meter.measurements[name] = Measurement.from_dict(data)
        return record


# -- out of memory ---------------------------------------------------------------------------------------------
OOM_MARKERS = ("OutOfMemoryError", "out of memory", "MemoryError")  # in a DDP worker's traceback text


@contextlib.contextmanager
def oom_as_finding(parallel_plan: ParallelPlan):
    """Re-raise any out-of-memory error as torch.OutOfMemoryError naming the batch size (the runner records status
    `oom`). A DDP worker's error reaches the notebook as a ProcessRaisedException holding its traceback text."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as err:
        raise torch.OutOfMemoryError(oom_message(parallel_plan, err)) from err
    except ProcessRaisedException as err:
        if not any(marker in str(err) for marker in OOM_MARKERS):
            raise
        raise torch.OutOfMemoryError(oom_message(parallel_plan, err)) from err


def oom_message(parallel_plan: ParallelPlan, err: BaseException) -> str:
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
    return (f"out of memory at batch size {parallel_plan.total_batch_size} ({parallel_plan.per_rank_batch_size} per "
            f"device, strategy {parallel_plan.strategy}): {first_line}")
