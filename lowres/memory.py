"""Peak-memory estimator for training and inference, from a model's config (nothing is downloaded).

A model is described by a `ModelSpec` (family, hidden size, layers, heads, FFN width, vocabulary), built from
a transformers config, a config dict, a local directory, or a name in `KNOWN_MODELS` (config.json excerpts of
the hub models the studies and the selector name, so estimates work offline). Parameters are counted
analytically per family (bert/roberta, distilbert, t5); `tests/unit/test_memory.py` checks them against
transformers models instantiated on the meta device.

Training peak (what `torch.cuda.max_memory_allocated` reports after a few AdamW steps), in bytes:

    peak = weights + optimizer_states + max(autocast_cache + activations + backward_transient,
                                            gradients + optimizer_step_temp)

- weights: P x bytes(precision): fp32 4, fp16/bf16 2 (full fine-tuning keeps fp32 master weights under
  mixed precision), int8 1 and int4 0.5 (+3% block scales) for the linear weights of a quantized base
  (bitsandbytes), whose other parameters stay in fp16;
- gradients and AdamW states (exp_avg, exp_avg_sq) are fp32 for every trainable parameter (4 + 8 bytes);
  the foreach AdamW step allocates one more fp32 copy (sqrt(exp_avg_sq)) while it runs;
- LoRA trains only the adapters (rank r on the attention query/value projections) and the classifier head;
- activations = the tensors autograd saves, counted per token per layer from the ops each family runs
  (`layer_activation_bytes`); frozen linears save no inputs, which is why LoRA stores fewer activations;
- autocast (fp16/bf16 mixed precision) caches half-precision copies of the linear weights for backward.

Inference peak = weights + the largest transient of one layer + KV caches (seq2seq generation) + logits.

`required_bytes` adds what the allocator reports nowhere: fragmentation (x1.10) and the CUDA context / the
Python process (`RUNTIME_OVERHEAD_BYTES`). Sizes are decimal (1 GB = 1e9 bytes): bert-base-uncased has
109.48M parameters = 438 MB of fp32 weights. `auto_batch_size` = the largest power of two whose
`required_bytes` stays under the budget minus a safety margin.

Gradient accumulation adds no activation memory: `batch_size` is always the micro-batch one forward/backward
holds (gradients accumulate in the same buffers), so an effective batch of 256 as 8 x 32 needs the memory of
batch 32; `accumulation_for(effective, micro)` is the number of micro-batches per optimizer step.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

GB = 1e9
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
METHODS = ("full", "lora", "inference")
DEVICES = ("cuda", "cpu")
WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5 * 1.03}
QUANTIZED = ("int8", "int4")
FRAGMENTATION = 1.10
RUNTIME_OVERHEAD_BYTES = {"cuda": 0.5 * GB, "cpu": 1.0 * GB}  # CUDA context / Python + torch + transformers
SAFETY_MARGIN = 0.10
BATCH_SIZES = tuple(2**k for k in range(11))  # 1 .. 1024
LORA_RANK = 8
LORA_DROPOUT = 0.1
NUM_LABELS = 2


class UnknownModel(LookupError):
    """A model name with no config here; the message lists the names that work offline."""


# config.json excerpts of hub models (parameters, shapes): estimates never need a download.
KNOWN_MODELS = {
    "bert-base-uncased": dict(model_type="bert", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              intermediate_size=3072, vocab_size=30522, max_position_embeddings=512, type_vocab_size=2),
    "bert-large-uncased": dict(model_type="bert", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                               intermediate_size=4096, vocab_size=30522, max_position_embeddings=512,
                               type_vocab_size=2),
    "distilbert-base-uncased": dict(model_type="distilbert", dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                    vocab_size=30522, max_position_embeddings=512),
    "roberta-base": dict(model_type="roberta", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, vocab_size=50265, max_position_embeddings=514, type_vocab_size=1),
    "sentence-transformers/all-MiniLM-L6-v2": dict(model_type="bert", hidden_size=384, num_hidden_layers=6,
                                                   num_attention_heads=12, intermediate_size=1536, vocab_size=30522,
                                                   max_position_embeddings=512, type_vocab_size=2),
    "google/flan-t5-small": dict(model_type="t5", d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_decoder_layers=8,
                                 num_heads=6, vocab_size=32128, feed_forward_proj="gated-gelu"),
    "google/flan-t5-base": dict(model_type="t5", d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12,
                                num_heads=12, vocab_size=32128, feed_forward_proj="gated-gelu"),
    "google/flan-t5-large": dict(model_type="t5", d_model=1024, d_kv=64, d_ff=2816, num_layers=24,
                                 num_decoder_layers=24, num_heads=16, vocab_size=32128,
                                 feed_forward_proj="gated-gelu"),
    "google/flan-t5-xl": dict(model_type="t5", d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_decoder_layers=24,
                              num_heads=32, vocab_size=32128, feed_forward_proj="gated-gelu"),
}
ALIASES = {"bert-base": "bert-base-uncased", "bert-large": "bert-large-uncased", "distilbert": "distilbert-base-uncased",
           "minilm": "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
           "flan-t5-small": "google/flan-t5-small", "flan-t5-base": "google/flan-t5-base",
           "flan-t5-large": "google/flan-t5-large", "flan-t5-xl": "google/flan-t5-xl"}
FAMILIES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "electra": "bert", "distilbert": "distilbert",
            "t5": "t5", "mt5": "t5"}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The shapes that decide memory. `decoder_layers` > 0 only for encoder-decoder (t5) models."""

    name: str
    family: str  # bert | distilbert | t5
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int = 512
    type_vocab: int = 0
    pooler: bool = False
    decoder_layers: int = 0
    kv_dim: int = 0  # heads x head dim (t5); = hidden elsewhere
    gated_ffn: bool = False
    tied_lm_head: bool = True

    @property
    def attention_dim(self) -> int:
        return self.kv_dim or self.hidden

    def parameter_counts(self) -> dict:
        """{embeddings, linear (weights of nn.Linear layers), other (biases, norms), total}."""
        return {"bert": bert_parameters, "distilbert": bert_parameters, "t5": t5_parameters}[self.family](self)

    @property
    def parameters(self) -> int:
        return self.parameter_counts()["total"]

    def lora_parameters(self, rank: int = LORA_RANK, num_labels: int = NUM_LABELS) -> int:
        """Adapters on the query and value projections of every attention block, plus the classifier head."""
        blocks = self.layers + 2 * self.decoder_layers  # t5 decoder: self- and cross-attention
        head = 0 if self.family == "t5" else self.hidden * num_labels + num_labels
        return blocks * 2 * rank * (self.hidden + self.attention_dim) + head


def bert_parameters(s: ModelSpec) -> dict:
    h, i = s.hidden, s.intermediate
    embeddings = (s.vocab + s.max_positions + s.type_vocab) * h
    linear_w = s.layers * (4 * h * h + 2 * h * i) + (h * h if s.pooler else 0)
    other = 2 * h + s.layers * (4 * h + i + h + 4 * h) + (h if s.pooler else 0)  # biases + LayerNorms
    return {"embeddings": embeddings, "linear": linear_w, "other": other, "total": embeddings + linear_w + other}


def t5_parameters(s: ModelSpec) -> dict:
    h, kv, i = s.hidden, s.attention_dim, s.intermediate
    ffn = (3 if s.gated_ffn else 2) * h * i
    linear_w = s.layers * (4 * h * kv + ffn) + s.decoder_layers * (8 * h * kv + ffn)
    embeddings = s.vocab * h * (1 if s.tied_lm_head else 2)
    other = (s.layers * 2 + s.decoder_layers * 3 + 2) * h + 2 * 32 * s.heads  # RMSNorm weights, position buckets
    return {"embeddings": embeddings, "linear": linear_w, "other": other, "total": embeddings + linear_w + other}


def spec_from_config(config, name: str | None = None) -> ModelSpec:
    """A transformers PretrainedConfig or a config.json dict -> ModelSpec."""
    c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    model_type = c.get("model_type", "bert")
    family = FAMILIES.get(model_type, "bert")
    name = name or c.get("_name_or_path") or model_type
    if family == "t5":
        return ModelSpec(name=name, family="t5", hidden=c["d_model"], layers=c["num_layers"], heads=c["num_heads"],
                         intermediate=c["d_ff"], vocab=c["vocab_size"], max_positions=0,
                         decoder_layers=c.get("num_decoder_layers") or c["num_layers"],
                         kv_dim=c["num_heads"] * c["d_kv"], gated_ffn=str(c.get("feed_forward_proj", "")).startswith("gated"),
                         tied_lm_head=True)  # transformers 5 always ties T5's lm_head to the shared embedding
    if family == "distilbert":
        return ModelSpec(name=name, family="distilbert", hidden=c["dim"], layers=c["n_layers"], heads=c["n_heads"],
                         intermediate=c["hidden_dim"], vocab=c["vocab_size"], max_positions=c["max_position_embeddings"])
    return ModelSpec(name=name, family="bert", hidden=c["hidden_size"], layers=c["num_hidden_layers"],
                     heads=c["num_attention_heads"], intermediate=c["intermediate_size"], vocab=c["vocab_size"],
                     max_positions=c.get("max_position_embeddings", 512), type_vocab=c.get("type_vocab_size", 0),
                     pooler=model_type in ("bert", "roberta", "xlm-roberta"))


def known_model_names() -> list[str]:
    from lowres.models import TINY_NAMES

    return sorted(KNOWN_MODELS) + sorted(ALIASES) + list(TINY_NAMES)


def offline_config(name: str) -> Path | None:
    """config.json of a model lowres.models can load here without the network (minilm, a cached hub id)."""
    from lowres.models import ModelNotAvailable, resolve

    try:
        config_file = Path(resolve(name)) / "config.json"
    except ModelNotAvailable:
        return None
    return config_file if config_file.is_file() else None


def model_spec(model) -> ModelSpec:
    """ModelSpec | transformers config | config dict | known name or alias | tiny-* | local dir with config.json."""
    if isinstance(model, ModelSpec):
        return model
    if not isinstance(model, str):
        return spec_from_config(model)
    name = ALIASES.get(model, model)
    if name in KNOWN_MODELS:
        return spec_from_config(KNOWN_MODELS[name], name)
    from lowres.models import TINY_NAMES, tiny_configs

    if name in TINY_NAMES:
        return spec_from_config(tiny_configs()[name][1], name)
    config_file = Path(name).expanduser() / "config.json"
    if config_file.is_file():
        return spec_from_config(json.loads(config_file.read_text()), name)
    resolved = offline_config(name)
    if resolved is not None:
        return spec_from_config(json.loads(resolved.read_text()), name)
    raise UnknownModel(f"no config for model {model!r}: pass a transformers config, a local directory with "
                       f"config.json, or one of: {', '.join(known_model_names())}")


@dataclasses.dataclass(frozen=True)
class Dtypes:
    """Bytes per element of what autograd saves, by kind of tensor.

    act: linear inputs/outputs and GELU; attn: q, k, v and attention tensors; norm: LayerNorm/RMSNorm inputs
    (fp32 under CUDA autocast); mask: hidden dropout masks (CUDA's fused dropout keeps bool masks, the CPU
    kernel a mask in the input dtype); adapter_mask: LoRA dropout masks (adapters stay fp32);
    qkv_in: copies of the attention input (autocast casts the fp32 LayerNorm output once per q/k/v linear).
    """

    act: float
    attn: float
    norm: float
    mask: float
    adapter_mask: float
    qkv_in: int

    @classmethod
    def for_run(cls, precision: str, method: str, device: str) -> "Dtypes":
        cuda = device == "cuda"
        if precision == "fp32" or not cuda and precision in QUANTIZED:
            return cls(act=4, attn=4, norm=4, mask=1 if cuda else 4, adapter_mask=1 if cuda else 4, qkv_in=1)
        if cuda:
            return cls(act=2, attn=2, norm=4, mask=1, adapter_mask=1, qkv_in=3)
        # CPU autocast: math attention in fp32; LayerNorm stays in the weights' dtype (half for a LoRA base)
        return cls(act=2, attn=4, norm=4 if method == "full" else 2, mask=2, adapter_mask=4, qkv_in=3)


def attention_kind(device: str, training: bool) -> str:
    """`efficient`: CUDA SDPA kernels keep q, k, v, out (no seq x seq matrix); `math`: the CPU fallback
    (training with dropout) keeps softmax, dropout mask and dropped probabilities, seq x seq per head."""
    return "efficient" if device == "cuda" or not training else "math"


def attention_core_bytes(s: ModelSpec, d: Dtypes, kind: str, keys: int) -> float:
    """Per query token: what the attention op itself saves (q, k, v are counted by the caller)."""
    if kind == "efficient":
        return d.attn * s.attention_dim + 4 * s.heads  # output + log-sum-exp
    return (2 * d.attn + (1 if d.mask == 1 else d.attn)) * s.heads * keys


def bert_layer_bytes(s: ModelSpec, d: Dtypes, method: str, kind: str, seq: int) -> float:
    """Saved bytes per token for one bert/distilbert layer (see the listing in docs/selector.md)."""
    h, i = s.hidden, s.intermediate
    qkv = 3 * d.attn * h + attention_core_bytes(s, d, kind, seq)
    dropouts = 1 if s.family == "distilbert" else 2  # distilbert has no dropout after the attention projection
    norms_and_masks = 2 * d.norm * h + dropouts * d.mask * h
    if method == "lora":  # frozen linears keep no inputs; the q and v adapters keep their (dropped) inputs
        return qkv + norms_and_masks + 2 * (d.act + d.adapter_mask) * h + d.act * i
    linear_inputs = (d.qkv_in + 2) * d.act * h  # q/k/v, output projection, fc1
    return qkv + norms_and_masks + linear_inputs + 2 * d.act * i  # + GELU input, fc2 input


def t5_ffn_bytes(s: ModelSpec, d: Dtypes, method: str) -> float:
    """T5 FFN (gated gelu, python tanh-gelu) keeps 7 activations of width d_ff + 1 mask; LoRA drops the wo input."""
    i = s.intermediate
    kept = 7 if s.gated_ffn else 3
    return (kept - (1 if method == "lora" else 0)) * d.act * i + d.mask * i


def t5_block_bytes(s: ModelSpec, d: Dtypes, method: str, kind: str, q_tokens: int, k_tokens: int,
                   cross: bool) -> float:
    """Per query token of one attention sub-layer (RMSNorm in fp32 keeps input + normalized output)."""
    h, kv = s.hidden, s.attention_dim
    qkv = (1 if cross else 3) * d.attn * kv
    frozen_inputs = 0 if method == "lora" else (d.qkv_in + 1) * d.act * h  # inputs of q/k/v and output projection
    lora_inputs = 2 * (d.act + d.adapter_mask) * h if method == "lora" else 0
    return 2 * d.norm * h + qkv + frozen_inputs + lora_inputs + d.mask * h + attention_core_bytes(s, d, kind, k_tokens)


def activation_bytes(s: ModelSpec, method: str, precision: str, device: str, batch: int, seq: int,
                     target_len: int = 0) -> dict:
    """Bytes autograd keeps for backward, by part: {layers, embeddings, logits}."""
    d = Dtypes.for_run(precision, method, device)
    kind = attention_kind(device, training=True)
    tokens = batch * seq
    if s.family == "t5":
        dec_tokens = batch * max(target_len, 1)
        enc = s.layers * tokens * (t5_block_bytes(s, d, method, kind, seq, seq, False) + t5_ffn_norm(s, d, method))
        dec_layer = (t5_block_bytes(s, d, method, kind, target_len, target_len, False)
                     + t5_block_bytes(s, d, method, kind, target_len, seq, True) + t5_ffn_norm(s, d, method))
        cross_kv = 2 * d.attn * s.attention_dim * tokens  # k, v of the encoder output, per decoder layer
        dec = s.decoder_layers * (dec_tokens * dec_layer + cross_kv)
        logits = dec_tokens * s.vocab * (4 + d.act)  # log-softmax output (fp32) + the logits the caller holds
        return {"layers": enc + dec, "embeddings": tokens * d.mask * s.hidden, "logits": logits}
    layers = s.layers * tokens * bert_layer_bytes(s, d, method, kind, seq)
    embeddings = 0 if method == "lora" else tokens * (d.norm + d.mask) * s.hidden
    return {"layers": layers, "embeddings": embeddings, "logits": 0.0}


def t5_ffn_norm(s: ModelSpec, d: Dtypes, method: str) -> float:
    return 2 * d.norm * s.hidden + (0 if method == "lora" else d.act * s.hidden) + d.mask * s.hidden + t5_ffn_bytes(s, d, method)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one configuration; `parts` in bytes, `peak_bytes` = allocator peak."""

    model: str
    method: str
    precision: str
    device: str
    batch_size: int
    seq_len: int
    parameters: int
    trainable_parameters: int
    parts: dict
    peak_bytes: float

    @property
    def required_bytes(self) -> float:
        """Peak + fragmentation + runtime overhead: what the device must actually have free."""
        return self.peak_bytes * FRAGMENTATION + RUNTIME_OVERHEAD_BYTES[self.device]

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / GB

    @property
    def required_gb(self) -> float:
        return self.required_bytes / GB

    def fits(self, budget_gb: float, margin: float = SAFETY_MARGIN) -> bool:
        return self.required_bytes <= budget_gb * GB * (1 - margin)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "peak_gb": self.peak_gb, "required_gb": self.required_gb}


def check_choice(what: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, valid))}")


def weight_bytes(s: ModelSpec, method: str, precision: str, device: str) -> float:
    counts = s.parameter_counts()
    if method == "full" or precision == "fp32":
        return counts["total"] * (4.0 if method == "full" else WEIGHT_BYTES[precision])
    if precision in QUANTIZED:  # linear weights quantized; the rest fp16 (bitsandbytes) or fp32 (CPU dynamic int8)
        rest = 4.0 if device == "cpu" else 2.0
        return counts["linear"] * WEIGHT_BYTES[precision] + (counts["total"] - counts["linear"]) * rest
    return counts["total"] * WEIGHT_BYTES[precision]


def estimate(model, method: str = "full", precision: str = "fp32", batch_size: int = 8, seq_len: int = 128,
             device: str = "cuda", target_len: int = 0, lora_rank: int = LORA_RANK) -> MemoryEstimate:
    """Peak memory of a training step (`full`, `lora`) or of inference (`inference`) at this configuration."""
    check_choice("method", method, METHODS)
    check_choice("precision", precision, PRECISIONS)
    check_choice("device", device, DEVICES)
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
    if method == "full" and precision in QUANTIZED:
        raise ValueError(f"full fine-tuning cannot train {precision} weights; valid: fp32, fp16, bf16 "
                         f"(or method='lora' on a quantized base)")
    s = model_spec(model)
    if s.family == "t5" and method != "inference":
        target_len = target_len or max(1, seq_len // 4)
    if method == "inference":
        return inference_estimate(s, precision, batch_size, seq_len, device, target_len)
    return training_estimate(s, method, precision, batch_size, seq_len, device, target_len, lora_rank)


def training_estimate(s, method, precision, batch_size, seq_len, device, target_len, lora_rank) -> MemoryEstimate:
    trainable = s.parameters if method == "full" else s.lora_parameters(lora_rank)
    acts = activation_bytes(s, method, precision, device, batch_size, seq_len, target_len)
    d = Dtypes.for_run(precision, method, device)
    tokens = batch_size * (seq_len + target_len)
    layer_grads = 4 * trainable / max(s.layers + s.decoder_layers, 1)
    parts = {
        "weights": weight_bytes(s, method, precision, device),
        "gradients": 4.0 * trainable,
        "optimizer_states": 8.0 * trainable,
        "optimizer_step_temp": 4.0 * trainable,
        "autocast_cache": 2.0 * s.parameter_counts()["linear"] if method == "full" and precision != "fp32" else 0.0,
        "activations": sum(acts.values()),
        "backward_transient": tokens * d.act * 2 * (s.hidden + s.intermediate) + layer_grads + acts["logits"],
    }
    forward_backward = parts["autocast_cache"] + parts["activations"] + parts["backward_transient"]
    step = parts["gradients"] + parts["optimizer_step_temp"]
    peak = parts["weights"] + parts["optimizer_states"] + max(forward_backward, step)
    return MemoryEstimate(s.name, method, precision, device, batch_size, seq_len, s.parameters, trainable, parts, peak)


def inference_estimate(s, precision, batch_size, seq_len, device, target_len) -> MemoryEstimate:
    """Weights + one layer's live tensors (+ KV caches and logits while a seq2seq model generates)."""
    d = Dtypes.for_run(precision, "inference", device)
    tokens = batch_size * seq_len
    attention = 2 * d.act * s.heads * seq_len if attention_kind(device, False) == "math" else 4 * d.act * s.hidden
    parts = {"weights": weight_bytes(s, "inference", precision, device),
             "activations": tokens * (d.act * (2 * s.hidden + 2 * s.intermediate) + attention)}
    if s.family == "t5":
        generated = max(target_len, 1)
        per_layer = 2 * d.act * s.attention_dim * batch_size * (generated + seq_len)  # self- + cross-attention cache
        parts["kv_cache"] = s.decoder_layers * per_layer
        parts["logits"] = batch_size * s.vocab * 4.0
    peak = sum(parts.values())
    return MemoryEstimate(s.name, "inference", precision, device, batch_size, seq_len, s.parameters, 0, parts, peak)


def calibrated(est: MemoryEstimate, scale: float) -> MemoryEstimate:
    """`est` with its peak scaled by a measured/estimated ratio (a probe on this machine); the difference is a
    part of its own, so the breakdown still sums to the peak."""
    if scale == 1.0:
        return est
    extra = est.peak_bytes * (scale - 1.0)
    return dataclasses.replace(est, parts={**est.parts, "measured_correction": extra}, peak_bytes=est.peak_bytes + extra)


def auto_batch_size(model, method: str, precision: str, budget_gb: float, seq_len: int = 128, device: str = "cuda",
                    target_len: int = 0, margin: float = SAFETY_MARGIN, max_batch: int | None = None,
                    scale: float = 1.0):
    """Largest power-of-two batch whose estimate (x `scale`, a measured correction) fits `budget_gb` with
    `margin`; (batch, estimate) or (None, estimate at batch 1)."""
    best = None
    for batch in BATCH_SIZES:
        if max_batch is not None and batch > max(max_batch, 1):
            break
        est = calibrated(estimate(model, method, precision, batch, seq_len, device, target_len), scale)
        if not est.fits(budget_gb, margin):
            break
        best = (batch, est)
    if best is None:
        return None, calibrated(estimate(model, method, precision, 1, seq_len, device, target_len), scale)
    return best


def estimate_table(models, methods=("full", "lora"), precisions=("fp32", "fp16"), batch_sizes=BATCH_SIZES[:8],
                   seq_len: int = 128, device: str = "cuda"):
    """Long DataFrame (model, method, precision, batch_size, peak_gb, required_gb) for plots."""
    import pandas as pd

    rows = []
    for model in models:
        for method in methods:
            for precision in precisions:
                if method == "full" and precision in QUANTIZED:
                    continue
                for batch in batch_sizes:
                    est = estimate(model, method, precision, batch, seq_len, device)
                    rows.append({"model": model_spec(model).name, "method": method, "precision": precision,
                                 "batch_size": batch, "peak_gb": est.peak_gb, "required_gb": est.required_gb})
    return pd.DataFrame(rows)


def parameter_summary(model) -> dict:
    """Parameter count and fp32 weight size (decimal MB) of a model: bert-base-uncased -> 109.48M, 438 MB."""
    s = model_spec(model)
    return {"model": s.name, "parameters_m": round(s.parameters / 1e6, 2),
            "fp32_weights_mb": round(s.parameters * 4 / 1e6, 1), "layers": s.layers + s.decoder_layers,
            "hidden": s.hidden, "heads": s.heads, "vocab": s.vocab}


def accumulation_for(effective_batch: int, micro_batch: int) -> int:
    """Micro-batches per optimizer step so that micro_batch x steps reaches the requested effective batch."""
    if effective_batch < 1 or micro_batch < 1:
        raise ValueError(f"need batches >= 1, got effective {effective_batch}, micro {micro_batch}")
    return max(1, -(-effective_batch // micro_batch))
