"""Per-request inference latency estimate (batch 1), from a model's shapes and the device's speed.

    latency = embedding + sum over layers of (matmul FLOPs / throughput + per-layer overhead)
              [+ generated tokens x a decoder step, for seq2seq generation]

The device figures come from a micro-benchmark of this machine (`device_profile`: transformers' BERT encoders
of two widths and two depths timed at batch 1, solved for throughput, per-layer overhead and the fixed cost
outside the layers: small models are overhead-bound, large ones FLOP-bound) or, for a device that is not here, from the FLOP table of lowres.meters.flops at
a batch-1 efficiency of 25%. Where this machine has measured runs of the same model (run summaries with a
per-request latency), `calibrate` scales the estimate by their ratio and the plan cites them.
bench/estimator_vs_measured.py checks it against measured latency (tiny-bert, MiniLM; target within 30%).
"""
from __future__ import annotations

import dataclasses
import functools
import time

from lowres import memory

GPU_BATCH1_EFFICIENCY = 0.25  # of the tabled peak, for a device that is not here (batch-1 inference)
GPU_LAYER_OVERHEAD_S = 60e-6  # kernel launches of one layer at batch 1 on a GPU (order of magnitude)


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    flops_per_s: float
    layer_overhead_s: float
    source: str  # "measured on this machine (...)" or "tabled (...)"
    fixed_s: float = 0.0  # outside the layers: embeddings, pooler, head (measured), else one layer's overhead


def layer_flops(hidden: int, intermediate: int, tokens: int, keys: int | None = None) -> float:
    """Forward FLOPs of one Transformer layer on `tokens` tokens attending over `keys`: Q/K/V/O projections,
    attention scores and mix, the two FFN matmuls (2 FLOPs per multiply-add)."""
    keys = tokens if keys is None else keys
    return 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * tokens * keys * hidden


def time_encoder(hidden: int, layers: int, seq: int, repeats: int = 30) -> float:
    """Seconds (20th percentile of `repeats`) of one forward of a randomly initialised BERT encoder (transformers' own layers, the
    ones the studies run) at batch 1 on this CPU, no grad."""
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                        intermediate_size=4 * hidden, vocab_size=1000)
    times = request_times(BertModel(config).eval(), seq, repeats, first_id=0, vocab=1000)
    return times[len(times) // 5]  # a low quantile: the machine's speed, not other processes' noise


def request_times(model, seq: int, repeats: int, first_id: int = 1000, vocab: int = 2000) -> list[float]:
    """Sorted seconds of `repeats` batch-1 forwards of `model` on `seq` random token ids, after 5 warm-ups."""
    import torch

    x = {"input_ids": torch.randint(first_id, vocab, (1, seq)), "attention_mask": torch.ones(1, seq, dtype=torch.long)}
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(**x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(**x)
            times.append(time.perf_counter() - start)
    return sorted(times)


PROFILE_DEPTHS = (1, 6)  # encoders this deep are timed: their difference is what one layer costs


def per_layer_s(hidden: int, seq: int) -> tuple[float, float]:
    """(seconds per layer, seconds outside the layers: embeddings, pooler) from a shallow and a deep encoder."""
    shallow, deep = PROFILE_DEPTHS
    t_shallow, t_deep = time_encoder(hidden, shallow, seq), time_encoder(hidden, deep, seq)
    layer = max((t_deep - t_shallow) / (deep - shallow), 1e-7)
    return layer, max(t_shallow - shallow * layer, 0.0)


TABLED_CPU = (100e9, 150e-6)  # a 4-core AVX2 laptop CPU at batch 1: ~100 GFLOP/s, ~150 us per layer


def tabled_profile(device: str) -> DeviceProfile:
    """For a device that is not this machine: a CUDA GPU at 25% of its tabled bf16 peak (an unnamed GPU: 100
    TFLOP/s), or a typical laptop CPU."""
    if device in ("cpu", "tabled-cpu"):
        return DeviceProfile(*TABLED_CPU, "tabled (a typical 4-core laptop CPU; not this machine)")
    from lowres.meters import flops

    peak = flops.peak_flops_per_s(device, "bf16") or 1e14
    return DeviceProfile(peak * GPU_BATCH1_EFFICIENCY, GPU_LAYER_OVERHEAD_S,
                         f"tabled ({device}: {GPU_BATCH1_EFFICIENCY:.0%} of a bf16 peak)")


def profile_seq(seq_len: int) -> int:
    """The sequence length a CPU profile is measured at: the power of two nearest `seq_len` (matmul efficiency
    grows with the tokens of a request, so a profile speaks for requests of about its length)."""
    return min((2**k for k in range(4, 11)), key=lambda p: abs(p - seq_len))


PROFILE_WIDTHS = (128, 768)


@functools.lru_cache(maxsize=16)
def device_profile(device: str = "cpu", seq: int = 64) -> DeviceProfile:
    """This machine's throughput, per-layer and fixed overhead (CPU: transformers' BERT layers of two widths
    timed at `seq` tokens, per-layer time against per-layer FLOPs: slope = 1 / throughput, intercept =
    per-layer overhead; ~2 s, cached per process); a CUDA device: tabled."""
    if device != "cpu":
        return tabled_profile(device)
    import numpy as np
    import torch

    timed = [per_layer_s(width, seq) for width in PROFILE_WIDTHS]
    flops = np.array([layer_flops(w, 4 * w, seq) for w in PROFILE_WIDTHS])
    seconds = np.array([layer for layer, _ in timed])
    slope, intercept = np.polyfit(flops, seconds, 1)
    flops_per_s, overhead = 1.0 / max(slope, 1e-15), max(float(intercept), 0.0)
    base = float(np.median([fixed for _, fixed in timed]))
    return DeviceProfile(flops_per_s, overhead, f"measured on this CPU ({torch.get_num_threads()} threads: "
                                                f"{flops_per_s / 1e9:.1f} GFLOP/s, {overhead * 1e6:.0f} us per layer, "
                                                f"{base * 1e3:.1f} ms fixed)", base)


@dataclasses.dataclass(frozen=True)
class LatencyEstimate:
    ms: float
    flops: float
    how: str


def estimate(model, device: str = "cpu", seq_len: int = 128, target_len: int = 0,
             profile: DeviceProfile | None = None) -> LatencyEstimate:
    """Per-request latency (ms) of `model` at batch 1 on `device`: encoder over seq_len tokens, plus
    target_len decoder steps (seq2seq generation, greedy, with a KV cache) for encoder-decoder models."""
    spec = memory.model_spec(model)
    profile = profile or device_profile(device, profile_seq(seq_len))
    per_layer = layer_flops(spec.hidden, spec.intermediate, seq_len)
    encoder = spec.layers * (per_layer / profile.flops_per_s + profile.layer_overhead_s)
    flops = spec.layers * per_layer
    seconds = encoder + (profile.fixed_s or profile.layer_overhead_s)  # embeddings, pooler, head
    if spec.decoder_layers and target_len:
        step = layer_flops(spec.hidden, spec.intermediate, 1, seq_len) + layer_flops(spec.hidden, spec.intermediate, 1)
        vocab = 2 * spec.hidden * spec.vocab  # the LM head, every step
        per_token = spec.decoder_layers * (step / profile.flops_per_s + 2 * profile.layer_overhead_s)
        seconds += target_len * (per_token + vocab / profile.flops_per_s)
        flops += target_len * (spec.decoder_layers * step + vocab)
    return LatencyEstimate(1000 * seconds, flops, f"{spec.name} at batch 1, {seq_len} tokens"
                           + (f" + {target_len} generated" if target_len else "") + f"; {profile.source}")


TRAIN_FORWARDS = 3.0  # one training example costs about three forwards: the forward and a backward of twice its FLOPs


def training_s_per_example(forward_ms: float) -> float:
    """Seconds one example takes to train (forward + backward), from its batch-1 forward estimate. On a CPU
    this is about right for models whose layers are FLOP-bound; probes of tiny-bert and MiniLM on this CPU
    measured 0.3-1.5x of it (bench/RESULTS.md), which `calibrate` corrects once a probe has run."""
    return TRAIN_FORWARDS * forward_ms / 1000


def calibrate(estimate_ms: float, measured: list[tuple[float, float, str]]) -> tuple[float, str]:
    """Scale an estimate by this machine's measured/estimated ratio for the same model (median over runs)."""
    if not measured:
        return estimate_ms, ""
    ratios = sorted(m / e for m, e, _ in measured if e)
    ratio = ratios[len(ratios) // 2]
    cited = ", ".join(run for _, _, run in measured[:3])
    return estimate_ms * ratio, f"calibrated x{ratio:.2f} by measured runs on this machine ({cited})"
