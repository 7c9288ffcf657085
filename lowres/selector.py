"""Strategy selector: a task and an environment -> a ready adaptation plan with its reasons and evidence.

Pure functions, no widgets (the form is `lowres.widgets`, the command `lowres recommend`). The decision rules
are data (`STRATEGY_RULES`, `SIZE_RULES`, `PRECISION_RULES`: conditions on the facts, a conclusion, a reason);
`rules_table()` lists them. Resolution order (also in docs/selector.md):

0. Inputs are validated into facts; a bad value raises `SelectorError` naming it and the valid choices.
1. Strategy (design step 2): candidates start as all strategies (lora, full_ft, rag, prompting, in that
   preference order). Every matching strategy rule, in priority order, narrows them to the strategies it
   allows. A rule that would leave none is overruled by the higher-priority rules before it, and the plan
   says so.
2. Model size (design step 1): the first matching size rule (small, medium, large) picks the models for the
   task and role.
3. Precision (design step 3): the first matching precision rule gives the allowed precisions, highest first.
4. Memory fit (the estimator settles the conflicts between the rules): per candidate strategy, the highest
   allowed precision whose estimate (lowres.memory) fits the memory with a 10% margin; if none fits, lower
   precisions (down to int8/int4 bases for LoRA), then the next smaller model. The batch size is the largest
   power of two that fits. A strategy with no fitting configuration drops out (when all the rules' choices
   drop out, the other strategies are tried, and the plan says so).
5. Parallelism: DDP when training on more than one GPU, one replica per GPU for inference.
6. Choice: when measured results of any study exist for this hardware (same `lowres.env` fingerprint) and
   this task (each run's summary, `lowres.summary`, names its task, strategy, headline quality and costs;
   runs that cannot stand for real quality - smoke profile, tiny models, synthetic data - excluded), the remaining strategy
   that is best on the measured quality-cost Pareto front wins, compared on one dataset and metric: the
   highest quality with accuracy priority, otherwise the cheapest within 0.01 of the best quality.
   Otherwise the first remaining strategy in preference order (rules only).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import html
import json
import math
import operator
import sys
from pathlib import Path

from lowres import memory
from lowres.analysis import pareto_mask
from lowres.config import ParamsError
from lowres.results import number

TASKS = ("classification", "qa", "summarization", "chatbot")
HARDWARE = ("cpu", "gpu")
STRATEGIES = ("lora", "full_ft", "rag", "prompting")  # preference order when nothing else decides
STRATEGY_LABELS = {"lora": "LoRA fine-tuning", "full_ft": "full fine-tuning", "rag": "RAG (retrieval + generation)",
                   "prompting": "prompting (zero/few-shot)"}
TRAINING = ("lora", "full_ft")
LADDER = ("fp32", "fp16", "int8", "int4")  # precisions from highest to lowest
MIN_TRAIN_EXAMPLES = 100
SMALL_DATASET = 5_000
ENOUGH_LABELS = 1_000
LARGE_DATASET = 50_000
LOW_MEMORY_GB = 8
HIGH_MEMORY_GB = 16
LOW_LATENCY_MS = 100
QUALITY_TOLERANCE = 0.01
INFERENCE_MAX_BATCH = 64
RAG_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
RAG_MIN_CHUNKS = 100_000  # index size assumed when the corpus size is unknown
SEQ_LEN = {"classification": (128, 0), "qa": (384, 32), "summarization": (512, 128), "chatbot": (512, 128)}
MODELS = {  # (task kind, size) -> model
    ("classification", "small"): "distilbert-base-uncased", ("classification", "medium"): "bert-base-uncased",
    ("classification", "large"): "bert-large-uncased", ("generation", "small"): "google/flan-t5-small",
    ("generation", "medium"): "google/flan-t5-base", ("generation", "large"): "google/flan-t5-xl"}
SIZES = ("large", "medium", "small")


class SelectorError(ParamsError):
    """Bad selector input; the message names the value and the valid choices."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """`when`: (fact, operator, value) triples that must all hold; `then`: what the rule concludes."""

    id: str
    when: tuple
    then: tuple
    reason: str

    def matches(self, facts: dict) -> bool:
        return all(OPS[op](facts[fact], value) for fact, op, value in self.when)

    def describe_when(self) -> str:
        return " and ".join(f"{fact} {op} {value}" for fact, op, value in self.when) or "always"


OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
       ">=": operator.ge, "in": lambda a, b: a in b}

STRATEGY_RULES = (
    Rule("no_training_data", (("dataset_size", "<", MIN_TRAIN_EXAMPLES),), ("prompting", "rag"),
         "no labeled dataset (or under 100 examples): nothing to fine-tune on; prompt or retrieve instead"),
    Rule("cpu_small_data", (("hardware", "==", "cpu"), ("dataset_size", "<", SMALL_DATASET)), ("prompting", "rag"),
         "CPU only with a small dataset: a CPU cannot fine-tune efficiently; prompting or RAG need no training"),
    Rule("small_gpu", (("hardware", "==", "gpu"), ("memory_gb", "<", LOW_MEMORY_GB)), ("lora",),
         "GPU under 8 GB: LoRA (FP16 or INT8 base) instead of full fine-tuning"),
    Rule("accuracy_first", (("hardware", "==", "gpu"), ("memory_gb", ">", HIGH_MEMORY_GB),
                            ("accuracy_priority", "==", True)), ("full_ft",),
         "no resource limits and accuracy first: full fine-tuning"),
    Rule("large_dataset", (("dataset_size", ">", LARGE_DATASET),), ("lora",),
         "over 50k examples: LoRA reaches near full fine-tuning quality at a fraction of the memory and time"),
    Rule("knowledge_heavy", (("task", "in", ("qa", "chatbot")),), ("rag",),
         "knowledge-heavy task: retrieval grounds the answers in documents (factual answers)"),
    Rule("low_latency", (("latency_ms", "<", LOW_LATENCY_MS),), ("prompting", "lora", "full_ft"),
         "under 100 ms there is no time for retrieval: a small prompted model or an already fine-tuned model"),
    Rule("enough_labels", (("dataset_size", ">=", ENOUGH_LABELS),), ("lora", "full_ft"),
         "with {dataset_size:,} labeled examples fine-tuning gives better accuracy than prompting"),
)
SIZE_RULES = (
    Rule("fast_prompting", (("strategy", "==", "prompting"), ("latency_ms", "<", LOW_LATENCY_MS)), ("small",),
         "prompting under 100 ms: a small model"),
    Rule("cpu_small", (("hardware", "==", "cpu"),), ("small",), "CPU only: small models"),
    Rule("small_memory", (("memory_gb", "<", LOW_MEMORY_GB),), ("small",), "under 8 GB: small models"),
    Rule("medium_memory", (("memory_gb", "<=", HIGH_MEMORY_GB),), ("medium",), "8-16 GB: medium models"),
    Rule("large_needed", (("dataset_size", ">", LARGE_DATASET), ("accuracy_priority", "==", True)), ("large",),
         "over 16 GB with a large dataset and accuracy priority: a large model pays off"),
    Rule("medium_default", (), ("medium",), "over 16 GB: medium models (large only for a large dataset + accuracy)"),
)
PRECISION_RULES = (
    Rule("cpu_int8_inference", (("hardware", "==", "cpu"), ("strategy", "in", ("prompting", "rag"))), ("int8",),
         "CPU inference: INT8 dynamic quantization (CPU-optimized int8 kernels; FP16 has no fast CPU path)"),
    Rule("cpu_fp32_training", (("hardware", "==", "cpu"),), ("fp32",),
         "CPU training: FP32 (no fast FP16 kernels on CPUs); quantize to INT8 for serving"),
    Rule("small_gpu_precision", (("memory_gb", "<", LOW_MEMORY_GB),), ("fp16", "int8"),
         "under 8 GB: FP16 or INT8, the highest that fits"),
    Rule("medium_gpu_precision", (("memory_gb", "<=", HIGH_MEMORY_GB),), ("fp16",), "8-16 GB: FP16"),
    Rule("latency_critical", (("latency_ms", "<=", LOW_LATENCY_MS),), ("fp16",),
         "over 16 GB but latency-critical (100 ms or less): FP16 halves memory traffic"),
    Rule("full_precision", (), ("fp32",), "over 16 GB: full precision"),
)


def rules_table():
    """All rules as a DataFrame (step, priority, id, when, then, reason) in the order they are resolved."""
    import pandas as pd

    rows = []
    steps = (("1 strategy", STRATEGY_RULES), ("2 model size", SIZE_RULES),
             ("3 precision", PRECISION_RULES))
    for step, rules in steps:
        for priority, rule in enumerate(rules, 1):
            rows.append({"step": step, "priority": priority, "rule": rule.id, "when": rule.describe_when(),
                         "then": ", ".join(rule.then), "reason": rule.reason.replace("{dataset_size:,}", "N")})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- inputs
def check_choice(what: str, value, valid) -> str:
    """lowres.config.check_name (one "did you mean" for every choice), raised as a SelectorError."""
    from lowres.config import check_name

    try:
        check_name(what, value, list(valid))
    except ParamsError as err:
        raise SelectorError(str(err)) from None
    return value


# Upper bounds: beyond them an input is a typo, not a machine (a plan for 10^6 GPUs or a 1 ns budget is noise).
LIMITS = {"memory_gb": 16_384, "latency_ms": 3_600_000, "gpus": 1024, "dataset_size": 10**10, "seq_len": 1_000_000,
          "train_hours": 100_000}
MIN_LATENCY_MS = 0.1  # below this no model answers: the time of one kernel launch


def check_number(what: str, value, unit: str, minimum: float = 0.0, strict: bool = True, integer: bool = False):
    kind = "a whole number" if integer else "a number"
    maximum = LIMITS.get(what, math.inf)
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise SelectorError(f"{what} must be {kind} of {unit}, got {value!r}")
    if not integer and not math.isfinite(value):
        raise SelectorError(f"{what} must be a finite number of {unit}, got {value!r}")
    if value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise SelectorError(f"{what} must be {bound} {unit}, got {value!r}")
    if value > maximum:
        raise SelectorError(f"{what} must be at most {maximum:,} {unit}, got {value!r}")
    return value


def make_facts(task, hardware, memory_gb, gpus, latency_ms, dataset_size, accuracy_priority) -> dict:
    """Validate the inputs -> the facts the rules read. `latency_ms=None`: no latency requirement."""
    check_choice("task", task, TASKS)
    check_choice("hardware", hardware, HARDWARE)
    check_number("memory_gb", memory_gb, "GB")
    if latency_ms is not None:
        check_number("latency_ms", latency_ms, "ms", minimum=MIN_LATENCY_MS, strict=False)
    if dataset_size is not None:
        check_number("dataset_size", dataset_size, "examples", strict=False, integer=True)
    if hardware == "cpu" and gpus not in (None, 0):
        raise SelectorError(f"gpus={gpus!r} with hardware 'cpu': a GPU count needs hardware 'gpu' "
                            f"(for cpu leave gpus out or set 0); valid hardware: {', '.join(HARDWARE)}")
    if hardware == "gpu":
        gpus = 1 if gpus is None else check_number("gpus", gpus, "GPUs (hardware 'gpu' needs one or more)", minimum=1,
                                                   strict=False, integer=True)
    if not isinstance(accuracy_priority, bool):
        raise SelectorError(f"accuracy_priority must be true or false, got {accuracy_priority!r}")
    return {"task": task, "hardware": hardware, "memory_gb": float(memory_gb), "gpus": gpus or 0,
            "latency_ms": math.inf if latency_ms is None else float(latency_ms), "dataset_size": dataset_size or 0,
            "accuracy_priority": accuracy_priority, "device": "cuda" if hardware == "gpu" else "cpu"}


# ---------------------------------------------------------------------------------------------- rules
def fired(rule: Rule, facts: dict) -> str:
    return f"{rule.id}: {rule.reason.format(**facts)}"


def first_match(rules, facts: dict) -> Rule:
    return next(rule for rule in rules if rule.matches(facts))


def strategy_candidates(facts: dict) -> tuple[list[str], list[str], list[str]]:
    """(candidates in preference order, reasons of the rules that narrowed them, notes on overruled rules)."""
    candidates, reasons, notes, applied = list(STRATEGIES), [], [], []
    for rule in STRATEGY_RULES:
        if not rule.matches(facts):
            continue
        kept = [s for s in candidates if s in rule.then]
        if kept:
            candidates, applied = kept, applied + [rule.id]
            reasons.append(fired(rule, facts))
        else:
            notes.append(f"{rule.id} (-> {', '.join(rule.then)}) overruled by {', '.join(applied)}")
    return candidates, reasons, notes


# ---------------------------------------------------------------------------------------------- plans
@dataclasses.dataclass
class Plan:
    """One strategy's fitted configuration (internal; `Recommendation` is what users get)."""

    strategy: str
    models: dict
    precision: str
    batch_size: int
    estimate: memory.MemoryEstimate
    reasons: list
    latency_ms: float | None = None  # estimated per-request latency at batch 1 (lowres.latency)
    latency_how: str = ""
    epoch_s: float | None = None  # estimated time of one training epoch over the dataset (CPU only)


def task_kind(task: str, strategy: str) -> str:
    return "classification" if task == "classification" and strategy in TRAINING else "generation"


def precision_ladder(allowed: tuple, strategy: str) -> list[str]:
    """Allowed precisions first (highest first), then the lower rungs the strategy can still use
    (full fine-tuning stops at FP16, inference at INT8, LoRA at an INT4 base)."""
    floor = "fp16" if strategy == "full_ft" else "int8" if strategy in ("prompting", "rag") else "int4"
    usable = LADDER[:LADDER.index(floor) + 1]
    first = [p for p in usable if p in allowed] or [floor]
    return first + [p for p in usable if LADDER.index(p) > LADDER.index(first[-1])]


def fit_config(facts, strategy, size, precisions, seq, target):
    """First (precision, batch, estimate) that fits, else None; plus why higher precisions were skipped."""
    skipped = []
    for precision in precisions:
        batch, est = fit_strategy(facts, strategy, size, precision, seq, target)
        if batch is not None:
            return (precision, batch, est), skipped
        skipped.append(f"{precision.upper()} does not fit ({est.required_gb:.1f} GB needed at batch 1)")
    return None, skipped


def served_model(facts: dict, strategy: str, size: str) -> str:
    """The model the plan trains or serves: the one the user named (`model`), else the size rules' choice."""
    return facts.get("model") or MODELS[(task_kind(facts["task"], strategy), size)]


def memory_method(strategy: str) -> str:
    return "lora" if strategy == "lora" else "full" if strategy == "full_ft" else "inference"


def memory_scale(facts: dict, model: str, strategy: str, precision: str) -> tuple[float, str]:
    """(measured/estimated peak ratio, the probe runs it comes from) for this model and configuration on this
    machine; (1.0, "") when no probe measured it."""
    found = facts.get("measured_memory", {}).get((model, memory_method(strategy), precision), [])
    if not found:
        return 1.0, ""
    ratios = sorted(ratio for ratio, _ in found)
    return ratios[len(ratios) // 2], ", ".join(run for _, run in found[:3])


def fit_strategy(facts, strategy, size, precision, seq, target):
    budget, device = facts["memory_gb"], facts["device"]
    model = served_model(facts, strategy, size)
    scale, _ = memory_scale(facts, model, strategy, precision)
    if strategy in TRAINING:
        max_batch = facts["dataset_size"] or None
        return memory.auto_batch_size(model, memory_method(strategy), precision, budget, seq, device, target,
                                      max_batch=max_batch, scale=scale)
    best = (None, None)
    for batch in memory.BATCH_SIZES:
        if batch > INFERENCE_MAX_BATCH:
            break
        est = memory.calibrated(inference_estimate(facts, strategy, size, precision, batch, seq, target), scale)
        if not est.fits(budget):
            return best if best[0] else (None, est)
        best = (batch, est)
    return best


def inference_estimate(facts, strategy, size, precision, batch, seq, target) -> memory.MemoryEstimate:
    """Generator (+ embedder and vector index for RAG) in one process."""
    device = facts["device"]
    generator = memory.estimate(served_model(facts, strategy, size), "inference", precision, batch, seq, device,
                                target)
    if strategy != "rag":
        return generator
    embedder = memory.estimate(RAG_EMBEDDER, "inference", precision, batch, 128, device)
    chunks = max(facts["dataset_size"], RAG_MIN_CHUNKS)
    parts = {**{f"generator_{k}": v for k, v in generator.parts.items()},
             "embedder_weights": embedder.parts["weights"], "vector_index": chunks * 384 * 4.0}
    return dataclasses.replace(generator, model=f"{RAG_EMBEDDER} + {generator.model}", parts=parts,
                               parameters=generator.parameters + embedder.parameters,
                               peak_bytes=sum(parts.values()))


def models_for(facts, strategy, size) -> dict:
    if strategy == "rag":
        return {"embedder": RAG_EMBEDDER, "generator": served_model(facts, strategy, size)}
    role = "model" if strategy in TRAINING else "generator"
    return {role: served_model(facts, strategy, size)}


def cannot_serve(facts: dict, strategy: str) -> str | None:
    """Why the user's model cannot carry this strategy (an encoder cannot generate), else None."""
    if not facts.get("model") or facts["model_family"] == "t5" or task_kind(facts["task"], strategy) != "generation":
        return None
    return (f"{STRATEGY_LABELS[strategy]} needs a text generator for {facts['task']}; {facts['model']} is an encoder "
            f"({facts['model_family']})")


def build_plan(facts: dict, strategy: str, seq_len: int | None = None):
    """The strategy's plan (size -> precision -> batch, shrinking until it fits) or the reason it cannot fit."""
    facts = {**facts, "strategy": strategy}
    unusable = cannot_serve(facts, strategy)
    if unusable:
        return unusable
    size_rule, precision_rule = first_match(SIZE_RULES, facts), first_match(PRECISION_RULES, facts)
    seq, target = SEQ_LEN[facts["task"]]
    seq = seq_len or seq
    size_index = SIZES.index(size_rule.then[0])
    too_slow = []
    for size in SIZES[size_index:size_index + 1] if facts.get("model") else SIZES[size_index:]:
        found, skipped = fit_config(facts, strategy, size, precision_ladder(precision_rule.then, strategy), seq, target)
        if not found:
            continue
        models = models_for(facts, strategy, size)
        ms, how = request_latency(facts, strategy, models, seq, target)
        if ms is not None and ms > facts["latency_ms"]:
            too_slow.append(f"{size} models ({fmt_models(models)}): estimated {ms:.0f} ms per request, "
                            f"{ms / facts['latency_ms']:.1f}x the {facts['latency_ms']:g} ms budget")
            continue
        epoch_s, epoch_how = training_time(facts, strategy, models, seq)
        if epoch_s is not None and epoch_s > facts["train_hours"] * 3600:
            too_slow.append(f"{size} models ({fmt_models(models)}): estimated {fmt_duration(epoch_s)} per training "
                            f"epoch, {epoch_s / 3600 / facts['train_hours']:.1f}x the {facts['train_hours']:g} h "
                            f"budget")
            continue
        precision, batch, est = found
        reasons = [f"model given: {facts['model']} (the size rules do not apply)" if facts.get("model")
                   else fired(size_rule, facts)]
        reasons += [] if size == size_rule.then[0] else [f"{size_rule.then[0]} models do not fit: {size} instead"]
        reasons += too_slow + [fired(precision_rule, facts)] + fit_reason(facts, strategy, precision, batch, est,
                                                                           precision_rule, skipped)
        reasons += memory_note(facts, served_model(facts, strategy, size), strategy, precision)
        if ms is not None:
            reasons.append(f"estimated {ms:.1f} ms per request at batch 1, within the {facts['latency_ms']:g} ms "
                           f"budget ({how})")
        reasons += training_time_note(facts, epoch_s, epoch_how)
        return Plan(strategy, models, precision, batch, est, reasons, ms, how, epoch_s)
    if too_slow:
        return f"{STRATEGY_LABELS[strategy]} misses the time budget: " + "; ".join(too_slow)
    return f"{STRATEGY_LABELS[strategy]} does not fit {facts['memory_gb']:g} GB with any model size or precision"


RAG_QUERY_TOKENS, SEARCH_MS = 32, 1.0  # a question embedded at ~32 tokens; an ANN search: ~1 ms (bench/retrieval.py)


def latency_profile(facts: dict):
    """The speed figures of the plan's device: this CPU measured (when the request describes this machine), a
    typical laptop CPU, or a GPU's tabled peak (lowres.latency)."""
    from lowres import latency

    device = facts["device"] if facts.get("this_machine") or facts["device"] != "cpu" else "tabled-cpu"
    return latency.device_profile("cpu") if device == "cpu" else latency.tabled_profile(device)


def request_latency(facts: dict, strategy: str, models: dict, seq: int, target: int) -> tuple[float | None, str]:
    """Estimated per-request latency of the plan's served model at batch 1 (lowres.latency): the fine-tuned
    model, the prompted generator, or for RAG the query embedding + search + the generator over the context;
    calibrated by this machine's measured runs of the same model where there are some."""
    from lowres import latency

    profile = latency_profile(facts)
    served = models.get("model") or models.get("generator")
    generating = task_kind(facts["task"], strategy) == "generation"
    try:  # generation: the budget is the time to the first token (an answer streams); the whole answer is said
        est = latency.estimate(served, facts["device"], seq, 1 if generating else 0, profile)
        whole = latency.estimate(served, facts["device"], seq, target, profile).ms if generating and target else None
    except memory.UnknownModel:
        return None, ""
    ms, how = est.ms, est.how.replace("+ 1 generated", "to the first generated token")
    if whole is not None:
        how += f"; the whole {target}-token answer: about {whole:.0f} ms"
    if strategy == "rag":
        ms += latency.estimate(RAG_EMBEDDER, facts["device"], RAG_QUERY_TOKENS, 0, profile).ms + SEARCH_MS
        how += "; + the query embedding and an ANN search"
    ms, calibrated = latency.calibrate(ms, facts.get("measured_latency", {}).get(served, []))
    return ms, how + (f"; {calibrated}" if calibrated else "")


LONG_EPOCH_S = 3600  # a CPU plan whose epoch is estimated longer than this is flagged: probe it before the hours


def training_time(facts: dict, strategy: str, models: dict, seq: int) -> tuple[float | None, str]:
    """Estimated seconds of one training epoch over `dataset_size` examples on a CPU (lowres.latency: three
    forwards per example), calibrated by this machine's probes of the same model; None where nothing trains,
    the dataset size is not given, or on a GPU (batching changes its speed too much for a batch-1 profile)."""
    from lowres import latency

    if strategy not in TRAINING or not facts["dataset_size"] or facts["device"] != "cpu":
        return None, ""
    try:
        forward = latency.estimate(models["model"], "cpu", seq, 0, latency_profile(facts)).ms
    except memory.UnknownModel:
        return None, ""
    per_example, calibrated = latency.calibrate(latency.training_s_per_example(forward),
                                                facts.get("measured_training", {}).get(models["model"], []))
    how = (f"{facts['dataset_size']:,} examples x {per_example * 1000:.1f} ms: {latency.TRAIN_FORWARDS:g} forwards "
           f"of {forward:.1f} ms each" + (f"; {calibrated}" if calibrated else ""))
    return per_example * facts["dataset_size"], how


def training_time_note(facts: dict, epoch_s: float | None, how: str) -> list[str]:
    if epoch_s is None:
        return []
    within = (f", within the {facts['train_hours']:g} h budget" if facts["train_hours"] != math.inf else "")
    warn = ("; hours of training: probe it first (lowres recommend --probe) to measure, or set a train_hours budget"
            if epoch_s > LONG_EPOCH_S and facts["train_hours"] == math.inf else "")
    return [f"estimated {fmt_duration(epoch_s)} per training epoch on this CPU{within} ({how}){warn}"]


def memory_note(facts: dict, model: str, strategy: str, precision: str) -> list[str]:
    scale, runs = memory_scale(facts, model, strategy, precision)
    if not runs:
        return []
    return [f"memory estimate x{scale:.2f}: the probe on this machine ({runs}) measured {model}'s own peak at "
            f"{scale:.2f}x the estimate for {memory_method(strategy)} {precision.upper()}"]


def fit_reason(facts, strategy, precision, batch, est, precision_rule, skipped) -> list[str]:
    label = "LoRA" if strategy == "lora" else STRATEGY_LABELS[strategy]
    lines = list(skipped)
    lines.append(f"{label} + {precision.upper()} fits {facts['memory_gb']:g} GB: estimated {est.required_gb:.2f} GB "
                 f"at batch size {batch} (peak {est.peak_gb:.2f} GB + allocator/runtime overhead, "
                 f"{memory.SAFETY_MARGIN:.0%} margin kept)")
    lower = [p.upper() for p in precision_rule.then if LADDER.index(p) > LADDER.index(precision)]
    if lower and not skipped:
        lines.append(f"so {' / '.join(lower)} is not needed: the highest precision that fits wins")
    if precision in ("fp16",) and facts["hardware"] == "gpu":
        lines.append("use BF16 instead of FP16 where the GPU supports it (Ampere or newer): same memory, "
                     "no loss scaling")
    return lines


def parallelism(facts: dict, strategy: str, batch: int) -> str:
    gpus = facts["gpus"]
    if facts["hardware"] == "cpu":
        return "single process on the CPU (torch threads = physical cores)"
    if strategy in TRAINING:
        if gpus > 1:
            return f"DDP data parallelism across {gpus} GPUs (batch {batch} per GPU, {batch * gpus} global)"
        return "single GPU (DDP data parallelism if more than one GPU)"
    return f"one model replica per GPU ({gpus} GPUs)" if gpus > 1 else "single GPU"


# ---------------------------------------------------------------------------------------------- evidence
@dataclasses.dataclass
class Evidence:
    """One measured run that informed the choice (units in the field names)."""

    study: str
    run_id: str
    strategy: str
    model: str | None
    metric: str
    quality: float
    dataset: str | None = None
    quality_n: int | None = None  # examples the quality was measured on (its binomial interval)
    peak_memory_gb: float | None = None  # the model's own peak: CUDA allocator, else estimated for the run's config
    memory_basis: str | None = None
    latency_ms: float | None = None
    energy_j: float | None = None
    on_front: bool = False
    chosen: bool = False

    def describe(self) -> str:
        memory_text = f"{self.peak_memory_gb:.2f} GB" + (f" ({self.memory_basis})" if self.memory_basis else "")
        costs = [memory_text if self.peak_memory_gb is not None else None,
                 f"{self.latency_ms:.1f} ms/sample" if self.latency_ms is not None else None,
                 f"{self.energy_j:.0f} J" if self.energy_j is not None else None]
        cost = ", ".join(c for c in costs if c) or "cost not measured"
        n = f" on {self.quality_n:,}" if self.quality_n else ""
        return (f"{self.strategy} run {self.run_id} ({self.model}, {self.dataset}): {self.metric} "
                f"{self.quality:.3f}{n}, {cost}")


def row_evidence(study: str, row, facts: dict, include_smoke: bool):
    """A collected run as Evidence, from its summary (lowres.summary); else a short reason it cannot inform
    this task (what the plan says about the runs it did not use)."""
    if row.get("status") != "ok":
        return f"did not succeed ({row.get('status')})"
    if row.get("summary.task") != facts["task"]:
        return "measured another task"
    if not include_smoke and row.get("summary.comparable") is not True:
        return "cannot stand for real quality (smoke profile, tiny model or synthetic data)"
    quality, strategy = number(row, "summary.quality"), row.get("summary.strategy")
    if quality is None or strategy not in STRATEGIES:
        return "no headline quality or no adaptation strategy"
    peak_gb, basis = model_memory_gb(row, strategy)
    n = number(row, "summary.quality_n")
    return Evidence(study, row["run_id"], strategy, row.get("summary.model"), row.get("summary.quality_metric"),
                    quality, row.get("summary.dataset"), int(n) if n else None, peak_gb, basis,
                    latency_ms=number(row, "summary.latency_ms"), energy_j=number(row, "summary.energy_j"))


def model_memory_gb(row, strategy: str) -> tuple[float | None, str | None]:
    """(GB, basis) of the model's own peak in a run: the CUDA allocator's figure when the run measured one;
    otherwise the estimator's for the run's configuration (a process's RSS also holds the Python runtime,
    libraries and data, so it would charge every CPU run a gigabyte that the plan's estimate counts apart)."""
    peak = number(row, "summary.peak_memory_bytes")
    if peak and row.get("summary.memory_kind") == "gpu-allocator":
        return peak / memory.GB, "CUDA allocator peak"
    from lowres.batch_fit import estimator_precision

    batch = number(row, "metrics.batch_fit.batch_size") or number(row, "params.batch_size") or 1
    seq = number(row, "params.max_length") or number(row, "params.seq_len") or 128
    device = "cuda" if row.get("summary.hardware") == "gpu" else "cpu"
    precision = estimator_precision(row.get("params.precision"), device, row.get("params.method"))
    try:
        est = memory.estimate(row.get("summary.model"), memory_method(strategy), precision, int(batch), int(seq), device)
    except (memory.UnknownModel, ValueError):
        return None, None
    return est.peak_gb, f"estimated for its config: {precision.upper()}, batch {int(batch)}, {int(seq)} tokens"


def load_evidence(facts: dict, fingerprint: str, outputs=None, studies=None,
                  include_smoke: bool = False) -> tuple[list[Evidence], dict]:
    """Measured runs of the studies (default: every study) on this hardware (same fingerprint) that speak to
    this task, and {reason: count} for the runs on this hardware that do not."""
    from collections import Counter

    from lowres import studies as registry
    from lowres.results import collect

    found, skipped = [], Counter()
    for study in studies or registry.names():
        if not registry.headline(study).measured:  # a plan, not a measurement of a strategy
            continue
        frame = collect(study, outputs)
        if frame.empty or "env.fingerprint" not in frame:
            continue
        for _, row in frame[frame["env.fingerprint"] == fingerprint].iterrows():
            item = row_evidence(study, row, facts, include_smoke)
            if isinstance(item, Evidence):
                found.append(item)
            else:
                skipped[item] += 1
    return found, dict(skipped)


def satisfies(item: Evidence, facts: dict) -> bool:
    fits = item.peak_memory_gb is None or item.peak_memory_gb <= facts["memory_gb"]
    fast = item.latency_ms is None or item.latency_ms <= facts["latency_ms"]
    return fits and fast


def comparable(usable: list[Evidence]) -> list[Evidence]:
    """Quality is only comparable on one dataset and metric: the group measuring the most strategies
    (then the most runs) is compared."""
    groups: dict = {}
    for e in usable:
        groups.setdefault((e.dataset or "", e.metric), []).append(e)
    return max(groups.values(), key=lambda g: (len({e.strategy for e in g}), len(g), g[0].dataset or ""))


def pareto_choice(evidence: list[Evidence], candidates: list[str], facts: dict):
    """Mark the front; return (chosen Evidence or None, reason)."""
    usable = [e for e in evidence if e.strategy in candidates and satisfies(e, facts)]
    if not usable:
        return None, None
    usable = comparable(usable)
    costs = ([getattr(e, name) for e in usable] for name in ("peak_memory_gb", "latency_ms", "energy_j"))
    front = [e for e, on in zip(usable, pareto_mask([e.quality for e in usable], *costs)) if on]
    for e in front:
        e.on_front = True
    best = max(front, key=lambda e: e.quality)
    if facts["accuracy_priority"]:
        chosen, why = best, "highest measured quality (accuracy priority)"
    else:
        near = {e.run_id: equally_good(e, best) for e in front if e is not best}
        chosen = min([best] + [e for e in front if e is not best and near[e.run_id][0]],
                     key=lambda e: (e.peak_memory_gb or math.inf, e.energy_j or math.inf, -e.quality))
        why = (f"cheapest on the quality-cost Pareto front whose quality is not distinguishable from the best "
               f"({best.describe()}): {near[chosen.run_id][1]}" if chosen is not best
               else "best measured quality on the Pareto front")
    chosen.chosen = True
    compared = f"{len(usable)} runs on {usable[0].dataset} ({usable[0].metric}) compared"
    return chosen, f"measured on this hardware, {compared}: {chosen.describe()}: {why}"


def equally_good(item: Evidence, best: Evidence) -> tuple[bool, str]:
    """Whether `item`'s quality is within the measurement's uncertainty of `best`'s: the 95% interval of the
    difference (binomial, on each run's evaluated examples) includes 0; without the counts, within
    QUALITY_TOLERANCE. Returns (equal, how it was decided)."""
    from lowres.stats import diff_ci

    low, high = diff_ci(best.quality, item.quality, best.quality_n, n2=item.quality_n)
    proportions = 0 <= item.quality <= 1 and 0 <= best.quality <= 1
    if proportions and low == low:  # not NaN: both counts known
        gap = item.quality - best.quality
        verdict = "includes 0" if low <= 0 <= high else "excludes 0"
        return low <= 0 <= high, (f"difference {gap:+.3f}, 95% interval [{low:+.3f}, {high:+.3f}] on "
                                  f"{item.quality_n:,} and {best.quality_n:,} examples {verdict}")
    within = item.quality >= best.quality - QUALITY_TOLERANCE
    return within, (f"{'within' if within else 'more than'} {QUALITY_TOLERANCE} of the best (the examples each "
                    f"was scored on are not recorded, so no interval)")


def model_note(chosen: Evidence | None, plan: Plan) -> list[str]:
    if chosen is None or not chosen.model or chosen.model in plan.models.values():
        return []
    return [f"the measured run used {chosen.model}; the plan keeps {fmt_models(plan.models)} from the size rules "
            f"and its memory and latency figures are estimated for that model, not taken from the run"]


# ---------------------------------------------------------------------------------------------- recommendation
def field(label: str, fmt=None, **kwargs):
    return dataclasses.field(metadata={"label": label, "format": fmt}, **kwargs)


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "-"
    return (f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200
            else f"{seconds / 3600:.1f} h")


def fmt_gb(v):
    return f"{v:.2f} GB (incl. allocator + runtime overhead)"


def fmt_parts(parts):
    return ", ".join(f"{k.replace('_', ' ')} {v:.2f}" if v >= 0.01 else f"{k.replace('_', ' ')} {v * 1000:.1f} MB"
                     for k, v in parts.items() if v)


def fmt_models(models):
    return ", ".join(f"{role} {name}" for role, name in models.items())


@dataclasses.dataclass
class Recommendation:
    """A ready plan. `to_dict`, `__str__` and `_repr_html_` are derived from the fields and their labels."""

    strategy: str = field("Strategy", STRATEGY_LABELS.get)
    models: dict = field("Models", fmt_models)
    precision: str = field("Precision", str.upper)
    quantization: str | None = field("Quantization")
    batch_size: int | None = field("Batch size")
    parallelism: str = field("Parallelism")
    estimated_memory_gb: float = field("Estimated memory", fmt_gb)
    estimated_latency_ms: float | None = field("Estimated latency per request", lambda v: f"{v:.1f} ms at batch 1")
    estimated_epoch_s: float | None = field("Estimated training time per epoch", fmt_duration)
    measure_with: str | None = field("Measure it on your machine")
    memory_breakdown_gb: dict = field("Memory breakdown (GB unless marked)", fmt_parts)
    reasons: list = field("Reasons")
    basis: str = field("Basis")
    evidence: list = field("Evidence")
    alternatives: list = field("Alternatives")
    overruled: list = field("Overruled rules")
    inputs: dict = field("Inputs", lambda d: ", ".join(f"{k}={v}" for k, v in d.items()))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def rows(self):
        """(label, text or list of texts) for every non-empty field, in declaration order."""
        for f in dataclasses.fields(self):
            raw = getattr(self, f.name)
            if raw is None or (isinstance(raw, (list, dict)) and not raw):
                continue
            fmt = f.metadata.get("format")
            if isinstance(raw, list):
                yield f.metadata["label"], [x.describe() if hasattr(x, "describe") else str(x) for x in raw]
            else:
                yield f.metadata["label"], fmt(raw) if fmt else str(raw)

    def __str__(self) -> str:
        lines = ["Recommendation"]
        for label, text in self.rows():
            if isinstance(text, list):
                lines += [f"  {label}:"] + [f"    - {t}" for t in text]
            else:
                lines.append(f"  {label}: {text}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = []
        for label, text in self.rows():
            body = ("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in text) + "</ul>"
                    if isinstance(text, list) else html.escape(text))
            cells.append(f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(label)}</th>"
                         f"<td style='text-align:left'>{body}</td></tr>")
        return f"<table class='lowres-plan'>{''.join(cells)}</table>"


QUANTIZATION = {("int8", "cpu"): "torch dynamic INT8 quantization of the linear layers (CPU-optimized inference)",
                ("int8", "cuda"): "bitsandbytes 8-bit base weights", ("int4", "cuda"): "bitsandbytes 4-bit (NF4) base"}


def recommend(task: str, hardware: str | None = None, memory_gb: float | None = None, latency_ms: float | None = None,
              dataset_size: int | None = None, gpus: int | None = None, accuracy_priority: bool = False,
              seq_len: int | None = None, fingerprint: str | None = None, outputs=None,
              include_smoke: bool = False, model: str | None = None, train_hours: float | None = None,
              exclude: tuple = ()) -> Recommendation:
    """A plan for `task` on this environment. `hardware`/`memory_gb`/`gpus` default to detection; measured
    results (outputs/<study>/*/result.json) count only with a `fingerprint` (lowres.env) that matches theirs.
    `model`: plan with this model instead of the size rules' choice. `train_hours`: the most one training epoch
    over `dataset_size` examples may take (checked on a CPU; None: no bound). `exclude`: strategies ruled out
    already (a probe found them not to fit)."""
    if hardware is None or memory_gb is None:
        hardware, memory_gb, gpus = fill_from_detection(hardware, memory_gb, gpus)
    facts = make_facts(task, hardware, memory_gb, gpus, latency_ms, dataset_size, accuracy_priority)
    inputs = {"task": task, "hardware": hardware, "memory_gb": memory_gb, "gpus": facts["gpus"],
              "latency_ms": latency_ms, "dataset_size": dataset_size, "accuracy_priority": accuracy_priority}
    facts["train_hours"] = math.inf if train_hours is None else check_train_hours(train_hours)
    if train_hours is not None:
        inputs["train_hours"] = train_hours
    if model is not None:
        facts["model"], facts["model_family"] = model, check_model(model).family
        inputs["model"] = model
        if facts["model_family"] != "t5" and task != "classification":
            raise SelectorError(f"model {model!r} is an encoder ({facts['model_family']}): it cannot generate answers "
                                f"for task {task!r}; valid: a seq2seq model (google/flan-t5-small, tiny-t5, a local T5 "
                                f"directory), or task classification")
    if seq_len is not None:
        check_number("seq_len", seq_len, "tokens", minimum=1, strict=False, integer=True)
    if outputs is not None and not Path(outputs).is_dir():
        raise SelectorError(f"outputs {str(outputs)!r} is not a folder; valid: a results folder such as outputs/ "
                            f"(outputs/<study>/<run_id>/result.json), or leave it out")
    facts["this_machine"] = fingerprint is not None  # measured latency profile of this CPU, not a tabled one
    facts["measured_latency"] = measured_latencies(fingerprint, outputs, facts["device"]) if fingerprint else {}
    facts["measured_memory"] = measured_memory(fingerprint, outputs, facts["device"]) if fingerprint else {}
    facts["measured_training"] = measured_training(fingerprint, outputs) if fingerprint else {}
    candidates, reasons, overruled = strategy_candidates(facts)
    candidates, excluded = [s for s in candidates if s not in exclude], [s for s in candidates if s in exclude]
    reasons += [f"{STRATEGY_LABELS[s]} ruled out by a probe on this machine" for s in excluded]
    plans, dropped = fit_plans(facts, candidates, seq_len)
    if not plans:  # what the rules prefer does not fit: fall back to the other strategies, and say so
        plans, more = fit_plans(facts, [s for s in STRATEGIES if s not in candidates + excluded], seq_len)
        dropped += more
        reasons.append(f"none of the rules' choices ({', '.join(candidates)}) fits: fell back to what does")
    if not plans:
        budget = "" if facts["latency_ms"] == math.inf else f" within {facts['latency_ms']:g} ms per request"
        raise SelectorError(f"nothing fits {facts['memory_gb']:g} GB{budget} ({'; '.join(dropped)}); valid: more "
                            f"memory, a larger latency or training-time budget, a shorter seq_len, or another "
                            f"hardware")
    evidence, skipped = load_evidence(facts, fingerprint, outputs, include_smoke=include_smoke) if fingerprint \
        else ([], {})
    chosen, evidence_reason = pareto_choice(evidence, list(plans), facts)
    if evidence and not chosen:  # measured, but nothing the plan may choose: say so rather than "no results"
        skipped = {**skipped, UNUSABLE: len(evidence)}
        evidence = []
    by_rules = next(s for s in STRATEGIES if s in plans)
    strategy = chosen.strategy if chosen else by_rules
    if chosen:
        change = (f"the measurements changed the strategy: the rules alone pick {STRATEGY_LABELS[by_rules]}"
                  if strategy != by_rules else "the measurements confirm the rules' choice")
        evidence_reason = "; ".join([evidence_reason, change] + model_note(chosen, plans[strategy]))
    return assemble(facts, inputs, plans, strategy, reasons, overruled, dropped, evidence, evidence_reason, fingerprint,
                    skipped)


def check_train_hours(hours) -> float:
    return float(check_number("train_hours", hours, "hours per training epoch"))


def check_model(model) -> memory.ModelSpec:
    """The user's model as the estimators see it; SelectorError naming it when it has no config here."""
    if not isinstance(model, str) or not model.strip():
        raise SelectorError(f"model must be a model name or a local directory, got {model!r}")
    try:
        return memory.model_spec(model)
    except memory.UnknownModel as err:
        raise SelectorError(str(err)) from None


def probe_rows(fingerprint: str, outputs):
    """This machine's successful probes (`lowres recommend --probe`: results of the selector study)."""
    from lowres.results import collect

    frame = collect("selector", outputs)
    if frame.empty or "params.probe" not in frame:
        return frame.iloc[0:0]
    return frame[(frame["env.fingerprint"] == fingerprint) & (frame["params.probe"] == True)  # noqa: E712
                 & (frame["status"] == "ok")]


def measured_memory(fingerprint: str, outputs, device: str) -> dict:
    """{(model, method, precision): [(measured/estimated peak ratio, run id)]} from this machine's probes."""
    found: dict = {}
    for _, row in probe_rows(fingerprint, outputs).iterrows():
        ratio = number(row, "metrics.probe.memory_ratio")
        if ratio and row.get("metrics.probe.device") == device:
            key = (row["params.model"], row["metrics.probe.method"], row["metrics.probe.precision"])
            found.setdefault(key, []).append((ratio, row["run_id"]))
    return found


def measured_training(fingerprint: str, outputs) -> dict:
    """{model: [(measured s, estimated s per training example, run id)]} from this machine's CPU training probes
    (a step's time over its batch, beside the training estimate at the probe's sequence length)."""
    from lowres import latency

    found: dict = {}
    for _, row in probe_rows(fingerprint, outputs).iterrows():
        step, batch, seq = (number(row, f"metrics.probe.{k}") for k in ("step_s", "batch_size", "seq_len"))
        if row.get("metrics.probe.device") != "cpu" or row.get("metrics.probe.method") == "inference" \
                or not (step and batch and seq) or row.get("metrics.probe.step_s_includes_warmup") is True:
            continue
        try:
            forward = latency.estimate(row["params.model"], "cpu", int(seq)).ms
        except (memory.UnknownModel, OSError, ValueError):
            continue
        found.setdefault(row["params.model"], []).append((step / batch, latency.training_s_per_example(forward),
                                                          row["run_id"]))
    return found


def measured_latencies(fingerprint: str, outputs, device: str) -> dict:
    """{model: [(measured ms, estimated ms, run id)]}: this machine's runs with a per-request latency, each beside
    the estimate for its own model and sequence length (what calibrates the plans' latency estimates)."""
    from lowres import latency
    from lowres import studies as registry
    from lowres.results import collect
    from lowres.summary import PER_REQUEST

    found: dict = {}
    for study in registry.names():
        frame = collect(study, outputs)
        if frame.empty or "summary.latency_kind" not in frame:
            continue
        rows = frame[(frame["env.fingerprint"] == fingerprint) & (frame["summary.latency_kind"] == PER_REQUEST)]
        for _, row in rows.iterrows():
            model, measured = row.get("summary.model"), number(row, "summary.latency_ms")
            seq = int(number(row, "params.max_length") or number(row, "metrics.probe.seq_len") or 128)
            try:
                estimate = latency.estimate(model, device, seq).ms
            except (memory.UnknownModel, OSError, ValueError):
                continue
            if measured:
                found.setdefault(model, []).append((measured, estimate, row["run_id"]))
    return found


def fit_plans(facts: dict, strategies, seq_len) -> tuple[dict, list]:
    plans, dropped = {}, []
    for strategy in strategies:
        plan = build_plan(facts, strategy, seq_len)
        if isinstance(plan, Plan):
            plans[strategy] = plan
        else:
            dropped.append(plan)
    return plans, dropped


def fill_from_detection(hardware, memory_gb, gpus):
    found = detect()
    if hardware not in (None, found["hardware"]):
        raise SelectorError(f"memory_gb is required for hardware {hardware!r}: this machine is {found['hardware']} "
                            f"only, so its memory cannot be detected")
    hardware = hardware or found["hardware"]
    memory_gb = found["memory_gb"] if memory_gb is None else memory_gb
    return hardware, memory_gb, found["gpus"] if gpus is None and hardware == "gpu" else gpus


UNUSABLE = "measured a strategy the plan cannot use here, or over the memory/latency budget"


def not_used(skipped: dict) -> str:
    return "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items(), key=lambda kv: -kv[1]))


# The study that measures a plan on the user's machine, per (task, strategy): its `cpu` or `gpu` profile narrowed
# to the plan's model and method. Generative QA and chatbot fine-tuning are measured as SQuAD generative QA.
MEASURING_STUDY = {("classification", "full_ft"): "lora", ("classification", "lora"): "lora",
                   ("classification", "prompting"): "prompting", ("qa", "rag"): "rag", ("chatbot", "rag"): "rag",
                   **{(task, s): "seq2seq" for task in ("qa", "summarization", "chatbot") for s in ("full_ft", "lora")}}
STUDY_METHOD = {"full_ft": "full", "lora": "lora"}


def measuring_command(task: str, strategy: str, models: dict, device: str) -> str | None:
    """`lowres run ...` that measures this plan here (None where no study measures it: e.g. prompting a generator)."""
    study = MEASURING_STUDY.get((task, strategy))
    if study is None:
        return None
    settings = {}
    if study == "rag":
        settings["generator"] = models.get("generator")
    elif study in ("lora", "seq2seq"):
        settings.update(model=models.get("model"), method=STUDY_METHOD[strategy])
        if study == "seq2seq" and task != "summarization":
            settings["dataset"] = "squad"
    profile = "gpu" if device == "cuda" else "cpu"
    return " ".join([f"lowres run {study} --profile {profile}"] +
                    [f"--set {key}={value}" for key, value in settings.items() if value])


def assemble(facts, inputs, plans, strategy, reasons, overruled, dropped, evidence, evidence_reason, fingerprint,
             skipped=None):
    plan = plans[strategy]
    all_reasons = reasons + plan.reasons + ([evidence_reason] if evidence_reason else [])
    alternatives = [f"{STRATEGY_LABELS[s]}: also fits ({fmt_models(p.models)}, {p.precision.upper()}, batch "
                    f"{p.batch_size}, {p.estimate.required_gb:.2f} GB); not chosen" for s, p in plans.items()
                    if s != strategy] + dropped
    if evidence_reason:
        basis = f"measured: {len(evidence)} runs on this hardware (fingerprint {fingerprint}) + rules"
        if skipped:
            basis += f"; {sum(skipped.values())} other runs here were not used: {not_used(skipped)}"
    elif fingerprint:
        basis = ("rules only: the results measured for this task on this hardware cannot decide this plan"
                 if (skipped or {}).get(UNUSABLE) else "rules only: no measured results for this task on this "
                 "hardware") + f" (fingerprint {fingerprint})"
        if skipped:
            basis += f"; {sum(skipped.values())} runs measured here were not used: {not_used(skipped)}"
    else:
        basis = "rules only: no hardware fingerprint given, measured results not consulted"
    if any("calibrated x" in r or "the probe on this machine" in r for r in plan.reasons):
        basis += "; its memory and latency estimates are calibrated by measurements on this machine (reasons)"
    return Recommendation(
        strategy=strategy, models=plan.models, precision=plan.precision,
        quantization=QUANTIZATION.get((plan.precision, facts["device"])), batch_size=plan.batch_size,
        parallelism=parallelism(facts, strategy, plan.batch_size),
        estimated_memory_gb=round(plan.estimate.required_gb, 3),
        estimated_latency_ms=round(float(plan.latency_ms), 2) if plan.latency_ms is not None else None,
        estimated_epoch_s=round(float(plan.epoch_s), 1) if plan.epoch_s is not None else None,
        measure_with=measuring_command(facts["task"], strategy, plan.models, facts["device"]),
        memory_breakdown_gb={k: round(v / memory.GB, 3) for k, v in plan.estimate.parts.items()},
        reasons=all_reasons, basis=basis, evidence=sorted(evidence, key=lambda e: (not e.chosen, not e.on_front)),
        alternatives=alternatives, overruled=overruled, inputs=inputs)


# ---------------------------------------------------------------------------------------------- examples
WORKED_EXAMPLES = (  # the design's worked examples: inputs -> the plan they must produce
    (dict(task="classification", hardware="gpu", memory_gb=4, latency_ms=200, dataset_size=10_000),
     dict(strategy="lora", models={"model": "distilbert-base-uncased"}, precision="fp16")),
    (dict(task="qa", hardware="cpu", memory_gb=16, latency_ms=400),
     dict(strategy="rag", models={"embedder": RAG_EMBEDDER, "generator": "google/flan-t5-small"}, precision="int8")),
    (dict(task="summarization", hardware="gpu", memory_gb=24, latency_ms=100, dataset_size=100_000),
     dict(strategy="lora", models={"model": "google/flan-t5-base"}, precision="fp16")),
)


def plan_metrics(rec: Recommendation) -> dict:
    """The plan's headline numbers, flat (for run.save and tables)."""
    return {"strategy": rec.strategy, "models": fmt_models(rec.models), "precision": rec.precision,
            "batch_size": rec.batch_size, "estimated_memory_gb": rec.estimated_memory_gb,
            "basis": rec.basis.split(":")[0]}


def examples_table():
    """The worked examples through `recommend` (rules only), with whether each matches the design."""
    import pandas as pd

    rows = []
    for index, (inputs, expected) in enumerate(WORKED_EXAMPLES, 1):
        rec = recommend(**inputs)
        matches = all(getattr(rec, key) == value for key, value in expected.items())
        rows.append({"example": index, **{k: inputs.get(k) for k in ("task", "hardware", "memory_gb", "latency_ms",
                                                                         "dataset_size")},
                     **plan_metrics(rec), "matches": matches})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- detection, CLI
def detect() -> dict:
    """{hardware, memory_gb (GPU 0's memory, or RAM when CPU-only), gpus} of this machine."""
    try:
        import torch

        if torch.cuda.is_available():
            total = torch.cuda.get_device_properties(0).total_memory
            return {"hardware": "gpu", "memory_gb": round(total / memory.GB, 1), "gpus": torch.cuda.device_count()}
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    import psutil

    return {"hardware": "cpu", "memory_gb": round(psutil.virtual_memory().total / memory.GB, 1), "gpus": 0}


def number_argument(kind):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            example = "16" if kind is float else "2"
            raise argparse.ArgumentTypeError(f"expected {'a number' if kind is float else 'a whole number'}, "
                                             f"got {text!r} (e.g. {example})") from None

    parse.__name__ = kind.__name__
    return parse


def add_recommend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    parser.add_argument("--hardware", default=None, help="cpu or gpu (default: detected)")
    parser.add_argument("--memory-gb", type=number_argument(float), default=None,
                        help="GPU memory per GPU, or RAM when CPU-only (default: detected)")
    parser.add_argument("--latency-ms", type=number_argument(float), required=True,
                        help="latency requirement per request")
    parser.add_argument("--dataset-size", type=number_argument(int), default=None,
                        help="labeled examples (default: none)")
    parser.add_argument("--gpus", type=number_argument(int), default=None,
                        help="number of GPUs (default: detected, gpu only)")
    parser.add_argument("--accuracy-priority", action="store_true", help="accuracy first")
    parser.add_argument("--seq-len", type=number_argument(int), default=None,
                        help="tokens per example (default: per task)")
    parser.add_argument("--train-hours", type=number_argument(float), default=None,
                        help="the most one training epoch over --dataset-size may take, in hours (checked on a CPU; "
                             "default: no bound)")
    parser.add_argument("--model", default=None,
                        help="plan with this model (offline name, hub id or local directory) instead of the size "
                             "rules' choice")
    parser.add_argument("--probe", action="store_true",
                        help="run the plan on this machine for a few steps and requests (a fresh process, time "
                             "capped), print measured beside estimated and save it to calibrate the next plan")
    parser.add_argument("--probe-seconds", type=number_argument(int), default=None,
                        help="the probe's time cap in seconds (default: 120)")
    parser.add_argument("--outputs", default=None, help="results folder to calibrate from (default: outputs/)")
    parser.add_argument("--rules-only", action="store_true", help="ignore measured results")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def matching_fingerprint(hardware: str | None, memory_gb: float | None, detected: dict) -> str | None:
    """This machine's fingerprint when the request describes this machine (else measured runs do not apply)."""
    if hardware not in (None, detected["hardware"]):
        return None
    if memory_gb is not None and abs(memory_gb - detected["memory_gb"]) > 0.1 * detected["memory_gb"]:
        return None
    from lowres.env import fingerprint

    return fingerprint()["fingerprint"]


def run_recommend(args) -> int:
    """`lowres recommend`: the plan as text or JSON; bad input -> one line on stderr, exit code 2."""
    try:
        detected = detect()
        fp = None if args.rules_only else matching_fingerprint(args.hardware, args.memory_gb, detected)
        if args.probe:
            check_probe_request(args, detected, fp)

        def plan(exclude=()):
            return recommend(args.task, args.hardware, args.memory_gb, args.latency_ms, args.dataset_size, args.gpus,
                             args.accuracy_priority, args.seq_len, fingerprint=fp, outputs=args.outputs,
                             model=args.model, train_hours=args.train_hours, exclude=exclude)

        with contextlib.redirect_stdout(sys.stderr):  # warnings while reading results must not break --json
            rec = plan()
            report = probe_plan(rec, args, plan) if args.probe else None
    except SelectorError as err:
        print(f"lowres recommend: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**rec.to_dict(), **({"probe": report.to_dict()} if report else {})}, indent=2, default=str))
    else:
        print(str(rec) + (f"\n\n{report}" if report else ""))
    return 0


def check_probe_request(args, detected: dict, fingerprint: str | None) -> None:
    """A probe measures this machine: the request must describe it (and use measured results, not rules only);
    its time cap is checked before anything is planned."""
    from lowres.probe import check_seconds

    if args.probe_seconds is not None:
        check_seconds(args.probe_seconds)
    if args.rules_only or fingerprint is None:
        raise SelectorError(f"--probe runs the plan on this machine ({detected['hardware']}, {detected['memory_gb']:g} "
                            f"GB), so the request must describe it; valid: leave --hardware/--memory-gb out (or "
                            f"match them) and drop --rules-only")


def probe_plan(rec, args, plan):
    from lowres import probe

    print(f"probing {STRATEGY_LABELS[rec.strategy]} on this machine (up to {args.probe_seconds or probe.DEFAULT_SECONDS}"
          f" s) ...", file=sys.stderr)
    return probe.probe(rec, args.probe_seconds, args.seq_len, recommend_again=plan, outputs=args.outputs)
