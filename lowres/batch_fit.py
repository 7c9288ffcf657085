"""The batch a training run uses: `batch_size: auto` fitted to the memory, and the gradient accumulation that
keeps the requested effective batch.

`auto` takes the largest power of two whose estimated peak (lowres.memory) fits the device memory with the
selector's margin, then confirms it with a short trial on the run's own model and its longest examples (two
optimizer steps of AdamW at learning rate 0, so no weight moves; the random state is restored): when the
measured peak is over the budget, or the step runs out of memory, the batch is halved and the reason recorded.
A fixed batch size passes through untouched (no trial). Either way the accumulation is derived here once:
`effective_batch_size` (when given) / the micro-batch, else `accumulate_grad_batches` as given.

Measured peak: the process's peak resident memory (VmHWM, reset before the trial) on CPU, against a budget that
is the whole process's; on CUDA the allocator's peak reserved memory plus the estimator's CUDA context allowance.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import gc
import re
from pathlib import Path

from lowres import memory

AUTO = "auto"
TRIAL_STEPS = 2  # the first step allocates the optimizer states, the second runs with them
PRECISION_OF = {"32-true": "fp32", "tf32": "fp32", "16-mixed": "fp16", "bf16-mixed": "bf16"}
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def estimator_precision(precision: str | None, device: str, method: str | None = None) -> str:
    """A run's Lightning precision (and lowres method) -> the estimator's: 8-bit LoRA's base weights are int8;
    on CPU Lightning runs `16-mixed` as bf16; a run that records no precision ran in fp32."""
    if method == "lora-8bit":
        return "int8"
    if not isinstance(precision, str):
        return "fp32"
    return "bf16" if device == "cpu" and precision == "16-mixed" else PRECISION_OF[precision]


def autocast_dtype(precision: str, device: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(estimator_precision(precision, device))


class BatchFitError(ValueError):
    """Even batch 1 does not fit the memory budget; the message says by how much and what would help."""


@dataclasses.dataclass
class Trial:
    batch: int
    outcome: str  # "fits", "over budget", "out of memory"
    peak_gb: float | None = None

    def describe(self) -> str:
        peak = f" (measured peak {self.peak_gb:.2f} GB)" if self.peak_gb is not None else ""
        return f"batch {self.batch}: {self.outcome}{peak}"


@dataclasses.dataclass
class BatchFit:
    """What the run trains with, and how it was decided (recorded in result.json under `batch_fit`)."""

    batch_size: int
    accumulate_grad_batches: int
    effective_batch_size: int  # per-device batch x accumulation (x devices where the study records them)
    requested_effective_batch_size: int | None
    auto: bool
    budget_gb: float | None = None
    budget_source: str | None = None
    memory_kind: str | None = None
    estimated_gb: float | None = None
    trials: list = dataclasses.field(default_factory=list)
    reason: str = ""

    def metrics(self) -> dict:
        values = dataclasses.asdict(self)
        values["trials"] = [t.describe() for t in self.trials]
        return {"batch_fit": {k: v for k, v in values.items() if v not in (None, [])}}

    def __str__(self) -> str:
        lines = [f"batch {self.batch_size} x accumulation {self.accumulate_grad_batches} = effective batch "
                 f"{self.effective_batch_size}" + (f" (requested {self.requested_effective_batch_size})"
                                                   if self.requested_effective_batch_size else "")]
        return "\n".join(lines + [f"  {self.reason}"] * bool(self.reason) + [f"  {t.describe()}" for t in self.trials])


def accumulation(micro_batch: int, accumulate: int, effective: int | None) -> tuple[int, int]:
    """(accumulate_grad_batches, effective batch) for a micro-batch: the requested effective batch when one is
    given (rounded up to a whole number of micro-batches), else the accumulation as given."""
    steps = memory.accumulation_for(effective, micro_batch) if effective else accumulate
    return steps, micro_batch * steps


def check_batch_params(batch_size, accumulate: int, effective: int | None, budget_gb: float | None) -> None:
    """Cross-field rules of the batch fields (Params' __post_init__); one line naming the values."""
    if effective is not None and accumulate != 1:
        raise ValueError(f"set effective_batch_size ({effective}) or accumulate_grad_batches ({accumulate}), not "
                         f"both: the accumulation is derived from the effective batch")
    if budget_gb is not None and batch_size != AUTO:
        raise ValueError(f"memory_budget_gb ({budget_gb}) applies to batch_size 'auto' only, got batch_size "
                         f"{batch_size}")


# ---------------------------------------------------------------------------------------------- memory
def process_rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    # glibc keeps freed heap resident; hand it back first so that the peak starts from what is live
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    CLEAR_REFS.write_text("5")  # Linux: resets this process's peak resident set size (VmHWM)


def peak_bytes(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_reserved() + memory.RUNTIME_OVERHEAD_BYTES["cuda"]
    return int(re.search(r"VmHWM:\s+(\d+) kB", STATUS.read_text()).group(1)) * 1024.0


MEMORY_KIND = {"cpu": "process peak RSS (VmHWM)",
               "cuda": "CUDA allocator peak reserved + 0.5 GB context allowance (estimate)"}


def device_budget(device: str, budget_gb: float | None) -> tuple[float, str]:
    """(budget in GB, where it came from): the given budget, else GPU 0's memory, else what this process can
    reach now (its resident memory + the memory available on the host, cgroup limits included by psutil)."""
    if budget_gb is not None:
        return float(budget_gb), "memory_budget_gb"
    if device == "cuda":
        import torch

        return torch.cuda.get_device_properties(0).total_memory / memory.GB, "GPU 0 total memory"
    import psutil

    reachable = psutil.virtual_memory().available + process_rss_bytes()
    return reachable / memory.GB, "this process's RSS + the host's available memory at the start of the run"


# ---------------------------------------------------------------------------------------------- trial
def longest_batch(datamodule, size: int) -> dict:
    """The `size` longest training examples, collated as training would (the peak batch under dynamic padding)."""
    dataset = datamodule.train_set
    order = sorted(range(len(dataset)), key=dataset.lengths().__getitem__, reverse=True)
    examples = [dataset[i] for i in (order * (size // len(order) + 1))[:size]]
    return dict(datamodule.make_collator(None)(examples))


def is_out_of_memory(err: BaseException) -> bool:
    from lowres.kernels import OOM_PATTERNS

    return isinstance(err, MemoryError) or bool(OOM_PATTERNS.search(str(err)))


def trial_peak(net, batch: dict, precision: str, device: str) -> float:
    """Peak memory (bytes) of TRIAL_STEPS training steps on `batch`; no weight changes (AdamW at lr 0, so the
    update is exactly zero) and the random state (dropout) is restored afterwards."""
    import torch

    from lowres.train import can_fuse

    was_training, params = net.training, [p for p in net.parameters() if p.requires_grad]
    batch = {k: v.to(device) for k, v in batch.items()}
    gc.collect()
    reset_peak(device)
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device == "cuda" else []):
        optimizer = torch.optim.AdamW(params, lr=0.0, fused=can_fuse(params))
        net.train()
        try:
            for _ in range(TRIAL_STEPS):
                dtype = autocast_dtype(precision, device)
                with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                    loss = net(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            return peak_bytes(device)
        finally:
            net.train(was_training)
            optimizer.zero_grad(set_to_none=True)
            del optimizer, batch
            gc.collect()


def predicted_bytes(est: memory.MemoryEstimate, device: str, resident: float) -> float:
    """What the step needs in all: on CPU this process's memory now (weights, data, libraries) + the step's
    estimated extra; on CUDA the estimator's requirement (the model moves there for the run)."""
    if device == "cuda":
        return est.required_bytes
    return resident + (est.peak_bytes - est.parts["weights"]) * memory.FRAGMENTATION


def estimated_start(spec, method, precision, seq, device, limit, cap, resident, lora_rank) -> tuple[int, float]:
    """(batch, predicted bytes): the largest power of two up to `cap` whose prediction fits `limit` bytes; batch 1
    when none does (its trial then measures by how much)."""
    chosen = None
    for batch in memory.BATCH_SIZES:
        if batch > cap:
            break
        est = memory.estimate(spec, method, precision, batch, seq, device, lora_rank=lora_rank)
        need = predicted_bytes(est, device, resident)
        if chosen is not None and need > limit:
            break
        chosen = (batch, need)
        if need > limit:
            break
    return chosen


def fit_batch_size(net, datamodule, precision: str, method: str, device: str, budget_gb: float, cap: int,
                   lora_rank: int | None = None, margin: float = memory.SAFETY_MARGIN) -> tuple[int, float, list[Trial], str]:
    """(batch, estimated GB at it, trials, reason) for `auto`; BatchFitError when batch 1 is over the budget."""
    limit = budget_gb * memory.GB * (1 - margin)
    seq = int(longest_batch(datamodule, 1)["input_ids"].shape[1])
    spec = memory.spec_from_config(net.config)
    est_precision = estimator_precision(precision, device, method)
    est_method = "full" if method == "full" else "lora"
    batch, need = estimated_start(spec, est_method, est_precision, seq, device, limit, cap, process_rss_bytes(),
                                  lora_rank or memory.LORA_RANK)
    trials, start = [], batch
    while batch >= 1:
        try:
            peak = trial_peak(net, longest_batch(datamodule, batch), precision, device)
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise
            trials.append(Trial(batch, "out of memory"))
        else:
            fits = peak <= limit
            trials.append(Trial(batch, "fits" if fits else "over budget", peak / memory.GB))
            if fits:
                return batch, need / memory.GB, trials, fit_reason(start, batch, seq, budget_gb, margin, trials)
        batch //= 2
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
    worst = trials[-1].describe()
    raise BatchFitError(f"batch_size auto: even batch 1 does not fit {budget_gb:.2f} GB with the {margin:.0%} "
                        f"margin ({worst}); valid: a larger memory_budget_gb, a shorter max_length, method lora, "
                        f"or a lower precision")


def fit_reason(start: int, batch: int, seq: int, budget_gb: float, margin: float, trials: list[Trial]) -> str:
    head = (f"largest power of two whose estimate fits {budget_gb:.2f} GB with a {margin:.0%} margin at "
            f"{seq} tokens: {start}")
    if batch == start:
        return head + "; confirmed by a trial on the longest examples"
    return head + f"; the trial halved it to {batch} (" + "; ".join(t.describe() for t in trials[:-1]) + ")"


# ---------------------------------------------------------------------------------------------- entry point
def resolve(params, datamodule, net, method: str = "full", device: str | None = None) -> BatchFit:
    """The run's batch: `params.batch_size` (a number, or `auto` fitted and confirmed here) and its
    accumulation. Sets the datamodule's batch sizes to the fitted batch."""
    from lowres.devices import pick_device

    requested = getattr(params, "effective_batch_size", None)
    if params.batch_size != AUTO:
        steps, effective = accumulation(params.batch_size, params.accumulate_grad_batches, requested)
        return BatchFit(params.batch_size, steps, effective, requested, auto=False)
    device = device or pick_device()
    budget_gb, source = device_budget(device, params.memory_budget_gb)
    cap = min(memory.BATCH_SIZES[-1], len(datamodule.train_set), requested or memory.BATCH_SIZES[-1])
    batch, estimated_gb, trials, reason = fit_batch_size(net, datamodule, params.precision, method, device,
                                                         budget_gb, cap, getattr(params, "lora_rank", None))
    datamodule.batch_size = datamodule.eval_batch_size = batch
    steps, effective = accumulation(batch, params.accumulate_grad_batches, requested)
    return BatchFit(batch, steps, effective, requested, True, round(budget_gb, 3), source, MEMORY_KIND[device],
                    round(estimated_gb, 3), trials, reason)
