"""Inference precision of a fine-tuned classifier: fp32, fp16 (CUDA), bf16, int8 -> accuracy, memory, latency.

`int8` is bitsandbytes LLM.int8 on CUDA (int8 weights, outlier features in fp16; loaded from a saved checkpoint
by transformers, the classification head kept in full precision) and, on CPU, PyTorch dynamic quantization of every
`nn.Linear` (int8 weights, activations quantized per batch; embeddings and LayerNorms stay fp32) on torch's
quantized engine, whose name goes into the result. Model memory is parameter + buffer bytes, except for a
dynamic-quantized model, whose packed int8 weights are not parameters: there it is the serialized state_dict
size. `state_dict_bytes` is recorded for every precision, so savings compare like with like.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import statistics
import time
import warnings

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
CUDA_ONLY = ("fp16",)  # fp16 matmuls on this kind of CPU are ~16x slower than fp32: not a saving
# The classification heads (fresh, or trainable beside LoRA, as BERT's pooler can be) stay in full precision: an 8-bit
# copy could not train.
# Names of their Linear layers, as transformers matches them (a prefix or a suffix of the module's full name).
INT8_SKIP_MODULES = ("pooler.dense", "pre_classifier", "classifier")
# what stays in full precision when bitsandbytes loads a base in 8 bits, per task: a classifier's new head, a
# seq2seq model's LM head (the output projection to the vocabulary, which int8 hurts most)
INT8_SKIP = {"classification": INT8_SKIP_MODULES, "seq2seq": ("lm_head",)}
LATENCY_BATCH_SIZES = (1, 32)
WARMUP_BATCHES = 3


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def default_device() -> str:
    return "cuda" if cuda_available() else "cpu"


def valid_precisions(cuda: bool) -> list[str]:
    return [p for p in PRECISIONS if cuda or p not in CUDA_ONLY]


def check_precisions(precisions, cuda: bool | None = None) -> None:
    """Raise ValueError naming the bad precision and the valid ones (checks CUDA only when it matters)."""
    if not precisions:
        raise ValueError(f"inference_precisions must name at least one of: {', '.join(PRECISIONS)}")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown inference precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if len(set(precisions)) != len(precisions):
        raise ValueError(f"inference_precisions lists a precision twice: {list(precisions)}")
    needs_cuda = [p for p in precisions if p in CUDA_ONLY]
    if needs_cuda and not (cuda_available() if cuda is None else cuda):
        raise ValueError(f"inference precision {needs_cuda[0]!r} needs a CUDA GPU (no CUDA device here); valid here: "
                         f"{', '.join(valid_precisions(False))}")


@dataclasses.dataclass
class Converted:
    """A copy of the model at one inference precision, and how its memory was measured."""

    model: object
    precision: str
    device: str
    backend: str
    memory_bytes: int
    memory_kind: str  # parameters+buffers | serialized-state-dict


def param_bytes(model) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def state_dict_bytes(model) -> int:
    """Size of `torch.save(model.state_dict())`: what the weights take on disk or in a buffer."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def convert(model, precision: str, device: str | None = None, checkpoint_dir=None) -> Converted:
    """A copy of `model` (fp32, on CPU) at `precision`; CUDA int8 reloads `checkpoint_dir` through bitsandbytes."""
    import torch

    check_precisions([precision], cuda=(device or default_device()) == "cuda")
    device = device or default_device()
    if precision == "int8" and device == "cuda":
        return bnb_int8(checkpoint_dir, model.config.num_labels)
    if precision == "int8":
        quantized = dynamic_int8(model)
        engine = torch.backends.quantized.engine
        return Converted(quantized, precision, "cpu", f"torch.ao dynamic int8 ({engine})", state_dict_bytes(quantized),
                         "serialized-state-dict")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    copied = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    return Converted(copied, precision, device, f"torch {precision} ({device})", param_bytes(copied),
                     "parameters+buffers")


def dynamic_int8(model, inplace: bool = False):
    """torch's dynamic INT8 quantization of the linear layers (CPU); `inplace` converts `model` itself rather
    than a copy (no second model in memory: what a memory probe wants)."""
    import torch

    target = (model if inplace else copy.deepcopy(model)).float().cpu().eval()
    with warnings.catch_warnings():  # torch.ao eager quantization is deprecated for torchao, not a dependency here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(target, {torch.nn.Linear}, dtype=torch.qint8, inplace=inplace)


def bnb_int8(checkpoint_dir, num_labels: int) -> Converted:
    import torch
    from transformers import BitsAndBytesConfig

    from lowres import models

    if checkpoint_dir is None:
        raise ValueError("bitsandbytes int8 loads a saved checkpoint: pass checkpoint_dir (lowres.lora.export writes one)")
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(INT8_SKIP_MODULES))
    model = models.load_model(str(checkpoint_dir), "classification", num_labels=num_labels, quantization_config=config,
                              device_map={"": torch.cuda.current_device()}).eval()
    return Converted(model, "int8", "cuda", "bitsandbytes LLM.int8", param_bytes(model), "parameters+buffers")


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def latency_per_example(model, dataset, collator, batch_size: int, device: str, batches: int = 20,
                        warmup: int = WARMUP_BATCHES) -> dict:
    """p50/p95 of batch wall time / batch size (ms per example) over `batches` timed batches after `warmup`."""
    import torch

    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    n, times = len(dataset), []
    model.eval()
    with torch.inference_mode():
        for i in range(warmup + batches):
            rows = [dict(dataset[(i * batch_size + j) % n]) for j in range(batch_size)]
            batch = {k: v.to(device) for k, v in collator(rows).items() if k != "labels"}
            sync(device)
            start = time.perf_counter()
            model(**batch)
            sync(device)
            if i >= warmup:
                times.append(1000 * (time.perf_counter() - start) / batch_size)
    return {"p50": statistics.median(times), "p95": percentile(times, 95)}


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def measure(converted: Converted, datamodule, meter=None, latency_batches: int = 20) -> dict:
    """Accuracy/F1 over the validation set (inside Meter window `infer_<precision>`) and latency at batch 1 and 32."""
    import contextlib

    from lowres import train
    from lowres.data.modules import fill_counts

    datamodule.val_counter.reset()
    window = meter.window(f"infer_{converted.precision}") if meter is not None else contextlib.nullcontext()
    with window as measurement:
        scores = train.evaluate_classifier(converted.model, datamodule.val_dataloader(), converted.device)
        if measurement is not None:
            fill_counts(measurement, datamodule.val_counter)
    record = {"precision": converted.precision, "backend": converted.backend, "device": converted.device,
              "accuracy": scores["accuracy"], "f1": scores["f1"], "memory_bytes": converted.memory_bytes,
              "memory_kind": converted.memory_kind, "state_dict_bytes": state_dict_bytes(converted.model)}
    collator = datamodule.make_collator(None)
    for size in LATENCY_BATCH_SIZES:
        latency = latency_per_example(converted.model, datamodule.val_set, collator, size, converted.device,
                                      latency_batches)
        record[f"latency_ms_b{size}_p50"], record[f"latency_ms_b{size}_p95"] = latency["p50"], latency["p95"]
    return record


def compare_precisions(model, datamodule, precisions, meter=None, checkpoint_dir=None, latency_batches: int = 20,
                       device: str | None = None) -> dict:
    """{precision: record} for an fp32 model; fp32 is always measured first, as the reference of the deltas."""
    import gc

    check_precisions(precisions, cuda=(device or default_device()) == "cuda")
    records = {}
    for precision in ["fp32", *(p for p in precisions if p != "fp32")]:
        converted = convert(model, precision, device, checkpoint_dir)
        records[precision] = measure(converted, datamodule, meter, latency_batches)
        del converted
        gc.collect()
    return records
