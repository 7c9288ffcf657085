"""Third-party chatter a study notebook should not show: Lightning's device banner and tips, a bitsandbytes
kernel notice on CPUs, known deprecation warnings inside libraries we do not control. Warnings about the run
itself (an OOM, a precision Lightning changed, a meter's caveat) are never silenced."""
from __future__ import annotations

import logging
import warnings

QUIET_LOGGERS = {
    "lightning.pytorch": logging.WARNING,  # "GPU available: ...", "💡 Tip: ...", "`Trainer.fit` stopped: ..."
    "lightning.fabric": logging.WARNING,
    "bitsandbytes.backends.cpu.ops": logging.ERROR,  # "Failed to load CPU gemm_4bit_forward from kernels-community"
}
KNOWN_WARNINGS = (  # raised inside Lightning/transformers by their own calls, not by lowres code
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*does not have many workers which may be a bottleneck.*",
)


def third_party() -> None:
    """Silence the known third-party noise (idempotent; called when a run starts)."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
