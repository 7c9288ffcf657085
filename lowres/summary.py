"""One run summary: a RunResult -> RunSummary, the figures every consumer reads (never re-derived elsewhere).

The selector, the report, the anchors table and the study analyses read `summarize(result)` (or the
`summary.*` columns `lowres.results.collect` adds) for: which strategy a run is, its headline quality, the
energy of its training and of the whole run (with source and scope), its latency (with its kind), its peak
memory (with its kind), its wall time, and whether it can stand beside a published figure.

Each study declares what only it knows in a `Headline` (its package's `HEADLINE`, `lowres.studies`):
which metric is its quality, which strategy a run is, which task it measures, which model it ran, and
where its latency comes from. Everything else is computed here from the windows, each counted once: a
run's energy is the sum over its top-level windows (a window opened inside another is part of its parent).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Optional

PER_REQUEST = "per request (batch 1)"
BATCHED = "batched, per example"
LATENCY_KINDS = (PER_REQUEST, BATCHED)
MEMORY_KINDS = ("gpu-allocator", "gpu-nvml", "cpu-rss", "cpu-rss (forked kernel)")  # the last reads lower:
# a kernel forked by lowres.warm shares its server's pages copy-on-write
TRAIN_WINDOW = "train"
ENERGY_PARTS = ("gpu_energy_j", "cpu_energy_j", "dram_energy_j")
# Results written before windows recorded their parent: these names were always opened inside another window.
LEGACY_SUBWINDOW = re.compile(r"(_epoch_\d+|^steps_\w+)$")


@dataclasses.dataclass(frozen=True)
class Headline:
    """What a study declares about its runs. Callables take the run's params dict (and metrics)."""

    quality: tuple  # metric names, first present wins; "@name_key" reads the name from metrics[name_key]
    strategy: Callable[[dict], str] | str  # one of lowres.selector.STRATEGIES, or "none" (not an adaptation)
    task: Callable[[dict], str] | str  # classification | qa | mlm | summarization | plan
    model: Callable[[dict], Optional[str]] = lambda params: params.get("model")
    latency: Callable[[dict, dict], tuple] | None = None  # (params, metrics) -> (ms or None, kind)
    latency_window: str | None = None  # else: wall time per sample of this window, batched
    measured: bool = True  # False: the run is a plan or a computation, not a measurement of a strategy


@dataclasses.dataclass(frozen=True)
class RunSummary:
    study: str
    run_id: str
    status: str
    profile: str | None
    strategy: str | None
    task: str | None
    model: str | None
    dataset: str | None
    seed: int | None
    effective_batch_size: int | None  # examples per optimizer step: batch x gradient accumulation (x DDP ranks)
    quality_metric: str | None
    quality: float | None
    quality_n: int | None  # examples the headline quality was measured on (its binomial interval needs it)
    train_energy_j: float | None
    energy_j: float | None  # the whole run: every top-level window
    energy_source: str | None  # where the energy figures came from (lowres.meters SOURCES), comma-joined
    energy_scope: str | None  # device (GPU counters) | machine (RAPL, codecarbon: the whole machine)
    latency_ms: float | None
    latency_kind: str | None
    peak_memory_bytes: float | None
    memory_kind: str | None
    wall_s: float | None  # measured time: every top-level window
    train_wall_s: float | None
    train_samples: int | None
    train_tokens: int | None
    train_power_w: float | None  # mean power while training: NVML average (GPUs summed) else energy / time
    train_power_source: str | None
    other_cpu_cores: float | None  # the most CPU cores other processes kept busy during any top-level window
    contended: bool  # a window carries lowres.meters.contention's warning: others' load distorts its figures
    hardware: str | None
    fingerprint: str | None
    comparable: bool
    comparability: str  # why it can (or cannot) stand beside a published figure

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- windows
def measurements_of(result) -> dict:
    return windows_from_dict(result.measurements or {})


def windows_from_dict(measurements: dict) -> dict:
    """{name: Measurement} from a result's `measurements` mapping (window name -> its fields)."""
    from lowres.meters.core import Measurement

    return {name: Measurement.from_dict({**m, "name": name}) for name, m in measurements.items()}


def is_top_level(m) -> bool:
    if m.parent is not None:
        return False
    return m.top_level if m.top_level is not None else not LEGACY_SUBWINDOW.search(m.name)


def top_windows(result) -> list:
    return [m for m in measurements_of(result).values() if is_top_level(m)]


def total(values) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def energy_of(windows) -> tuple[float | None, str | None, str | None]:
    """(J, source, scope) over windows that do not overlap: each window's GPU + CPU package + DRAM figures."""
    joules = total(m.energy_j for m in windows)
    if joules is None:
        return None, None, None
    sources = sorted({s for m in windows for s in m.energy_sources()})
    scopes = sorted({m.scope.get(part) for m in windows for part in ENERGY_PARTS
                     if getattr(m, part) not in (None, []) and m.scope.get(part)})
    return joules, ", ".join(sources) or None, "+".join(scopes) or None


def peak_memory(windows) -> tuple[float | None, str | None]:
    """The largest peak of any window (bytes), of the best kind measured: GPU allocator, NVML, process RSS."""
    for field, kind in (("peak_gpu_mem_bytes", "gpu-allocator"), ("peak_gpu_mem_nvml_bytes", "gpu-nvml"),
                        ("peak_cpu_rss_bytes", "cpu-rss")):
        values = [v for m in windows for v in as_list(getattr(m, field)) if v is not None]
        if values:
            return max(values), kind
    return None, None


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def train_power(train) -> tuple[float | None, str | None]:
    """Mean power while training: the GPUs' NVML average (summed), else the window's energy / its time."""
    if train is None:
        return None, None
    gpu = total(train.gpu_power_avg_w or [])
    if gpu is not None:
        return gpu, train.sources.get("gpu_power_avg_w")
    if train.energy_j is None or not train.wall_s:
        return None, None
    return train.energy_j / train.wall_s, ", ".join(sorted(train.energy_sources()))


# ---------------------------------------------------------------------------------------------- headline
def lookup(metrics: dict, name: str):
    value = metrics
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def quality(headline: Headline, metrics: dict) -> tuple[str | None, float | None]:
    for name in headline.quality:
        label = name
        if name.startswith("@"):  # the study records its metric's name beside it
            label, name = lookup(metrics, name[1:] + "_name"), name[1:]
        value = number(lookup(metrics, name))
        if value is not None:
            return str(label), value
    return None, None


def evaluated_examples(metrics: dict, windows: dict) -> int | None:
    """How many examples the headline quality was scored on: the study's own count, else the evaluation
    window's samples, else the last validation window's."""
    for key in ("n_eval", "n_questions"):
        if number(metrics.get(key)):
            return int(metrics[key])
    validations = sorted((n for n in windows if re.fullmatch(r"validate_epoch_\d+", n)),
                         key=lambda n: int(n.rsplit("_", 1)[1]))
    for name in ["eval", *validations[-1:]]:
        if name in windows and windows[name].samples:
            return int(windows[name].samples)
    return None


def effective_batch(params: dict, metrics: dict, strategy: str | None) -> int | None:
    """Examples one optimizer step averages, for a run that trains: the total batch over ranks (the parallel
    plan's, where the study records one) times the gradient accumulation."""
    if strategy not in ("full_ft", "lora"):
        return None
    fitted = number(lookup(metrics, "batch_fit.effective_batch_size"))  # lowres.batch_fit: what the run trained with
    if fitted:
        return int(fitted)
    total = number(lookup(metrics, "parallel.total_batch_size")) or number(params.get("batch_size"))
    return int(total * (params.get("accumulate_grad_batches") or 1)) if total else None


def declared(value, params: dict):
    return value(params) if callable(value) else value


def latency(headline: Headline, result, windows: dict) -> tuple[float | None, str | None]:
    if headline.latency is not None:
        ms, kind = headline.latency(result.params, result.metrics or {})
        if number(ms) is not None:
            return number(ms), kind
    window = windows.get(headline.latency_window) if headline.latency_window else None
    if window is not None and window.wall_s and window.samples:
        return 1000 * window.wall_s / window.samples, BATCHED
    return None, None


def comparability(result, model: str | None, dataset: str | None, headline: Headline) -> tuple[bool, str]:
    """Whether the run can stand beside a published figure at all (a study's anchors may ask for more)."""
    if result.status != "ok":
        return False, f"the run did not succeed ({result.status})"
    if not headline.measured:
        return False, "a plan, not a measurement"
    reasons = []
    if result.profile == "smoke":
        reasons.append("smoke profile")
    if model and model.startswith("tiny-"):
        reasons.append(f"tiny random-init model ({model})")
    if dataset and dataset.startswith("synthetic-"):
        reasons.append(f"synthetic data ({dataset})")
    return (False, "; ".join(reasons)) if reasons else (True, "real data and a pretrained model")


def summarize(result) -> RunSummary:
    """The one summary of a run (see the module docstring); never stored, always derived."""
    from lowres import studies

    headline = studies.headline(result.study)
    params, metrics, env = result.params or {}, result.metrics or {}, result.env or {}
    windows = measurements_of(result)
    tops = [m for m in windows.values() if is_top_level(m)]
    train = windows.get(TRAIN_WINDOW)
    train_energy = energy_of([train]) if train is not None else (None, None, None)
    energy, source, scope = energy_of(tops)
    memory, memory_kind = peak_memory(tops)
    if memory_kind == "cpu-rss" and env.get("kernel_mode") == "forked":  # copy-on-write pages not counted
        memory_kind = "cpu-rss (forked kernel)"
    model, dataset = headline.model(params), params.get("dataset")
    metric, value = quality(headline, metrics)
    latency_ms, latency_kind = latency(headline, result, windows)
    comparable, why = comparability(result, model, dataset, headline)
    power, power_source = train_power(train)
    return RunSummary(
        study=result.study, run_id=result.run_id, status=result.status, profile=result.profile,
        strategy=declared(headline.strategy, params), task=declared(headline.task, params), model=model,
        dataset=dataset, seed=params.get("seed"), quality_metric=metric, quality=value,
        effective_batch_size=effective_batch(params, metrics, declared(headline.strategy, params)),
        quality_n=evaluated_examples(metrics, windows) if value is not None else None,
        train_energy_j=train_energy[0], energy_j=energy, energy_source=source, energy_scope=scope,
        latency_ms=latency_ms, latency_kind=latency_kind, peak_memory_bytes=memory, memory_kind=memory_kind,
        wall_s=total(m.wall_s for m in tops), train_wall_s=train.wall_s if train else None,
        train_samples=train.samples if train else None, train_tokens=train.tokens if train else None,
        train_power_w=power, train_power_source=power_source,
        other_cpu_cores=max((m.other_cpu_cores for m in tops if m.other_cpu_cores is not None), default=None),
        contended=any(w.startswith("contention:") for m in windows.values() for w in m.warnings),
        hardware=hardware(env), fingerprint=env.get("fingerprint"),
        comparable=comparable, comparability=why)


def hardware(env: dict) -> str | None:
    """The GPUs a run used (lowres.env names them), else its CPU."""
    return env.get("gpu_names") or env.get("cpu_model")


def summary_columns(result) -> dict[str, Any]:
    """`summary.<field>` columns for collect()."""
    identity = ("study", "run_id", "status", "profile")  # already the row's own columns
    return {f"summary.{k}": v for k, v in summarize(result).to_dict().items() if k not in identity}


GENERIC = Headline(quality=("accuracy", "f1", "exact_match"), strategy=lambda params: None,
                   task=lambda params: None)  # results in a folder that no registered study owns
