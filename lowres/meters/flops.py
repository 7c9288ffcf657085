"""FLOPs of a training step (torch's FlopCounterMode) and model FLOPs utilisation (MFU).

MFU = achieved FLOP/s / the device's peak for the precision in use. Peaks are dense tensor-core figures
(no structured sparsity) from the vendors' datasheets, SXM variants unless named; an unknown device or
precision gives MFU None with a warning, never a guess.
"""
from __future__ import annotations

import re

TERA = 1e12

# (pattern on the NVML/torch device name, {precision: dense peak TFLOP/s}); first match wins.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    (r"H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    (r"H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    (r"H100.*(PCIe|PCIE)", {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    (r"H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    (r"H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    (r"A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    (r"A30\b", {"fp32": 10.3, "tf32": 82.0, "bf16": 165.0, "fp16": 165.0}),
    (r"A10\b", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0}),
    (r"L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.1, "fp16": 362.1}),
    (r"\bL4\b", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}),
    (r"V100", {"fp32": 15.7, "fp16": 125.0}),
    (r"\bT4\b", {"fp32": 8.1, "fp16": 65.0}),
    (r"RTX 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}),
    (r"RTX 3090", {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0, "fp16": 71.0}),
]

PRECISION_KEYS = {"32-true": "fp32", "32": "fp32", "fp32": "fp32", "float32": "fp32", "tf32": "tf32",
                  "16-mixed": "fp16", "16-true": "fp16", "16": "fp16", "fp16": "fp16", "float16": "fp16",
                  "bf16-mixed": "bf16", "bf16-true": "bf16", "bf16": "bf16", "bfloat16": "bf16"}


def precision_key(precision: str | None) -> str | None:
    """Lightning/torch precision name -> fp32 | tf32 | fp16 | bf16 (fp32 matmuls allowed to use TF32 count as tf32)."""
    key = PRECISION_KEYS.get(str(precision)) if precision is not None else "fp32"
    if key == "fp32":
        import torch

        if torch.get_float32_matmul_precision() != "highest" or torch.backends.cuda.matmul.allow_tf32:
            key = "tf32"
    return key


def peak_flops_per_s(device_name: str | None, precision: str | None) -> float | None:
    """Dense peak FLOP/s of one device at a precision, or None when the table does not know it."""
    key = precision_key(precision)
    for pattern, peaks in PEAK_TFLOPS:
        if device_name and re.search(pattern, device_name):
            return peaks[key] * TERA if key in peaks else None
    return None


def device_name() -> str:
    """The current torch device's name (CUDA only if already initialised, so forking stays possible)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return "cpu"


def mfu(flops: float | None, wall_s: float | None, device: str | None, precision: str | None
        ) -> tuple[float | None, float | None, str | None]:
    """(mfu, peak FLOP/s, warning): achieved FLOP/s over the device's peak; None + the reason when unknown."""
    if not flops or not wall_s:
        return None, None, None
    peak = peak_flops_per_s(device, precision)
    if peak is None:
        return None, None, (f"mfu: no known peak FLOP/s for device {device!r} at precision {precision!r} "
                            "(see lowres.meters.flops.PEAK_TFLOPS)")
    return flops / wall_s / peak, peak, None


def count_flops(fn, *args, **kwargs) -> int:
    """Total FLOPs torch counts while running fn(*args, **kwargs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def training_step_flops(model, batch: dict, loss_fn=None) -> int:
    """FLOPs of one forward + backward pass on `batch` (the optimizer step is negligible and not counted).

    `loss_fn(model, batch)` defaults to `model(**batch).loss` (Hugging Face models). Gradients are cleared
    afterwards, so call it before training or between steps.
    """
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)

    def step():
        loss_fn(model, batch).backward()

    flops = count_flops(step)
    model.zero_grad(set_to_none=True)
    return flops
