"""Where a step runs: one device picker for every study (`auto` = CUDA when a device is visible)."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_device(device: str) -> str:
    """Refuse `cuda` where no CUDA device is visible (before any kernel starts); returns the device."""
    if device == "cuda" and not cuda_available():
        raise ValueError("device='cuda' but no CUDA device is visible here; valid: auto (cuda when present), cpu")
    return device


def pick_device(device: str = "auto") -> str:
    """`auto` -> cuda or cpu; an explicit device is checked and kept."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return check_device(device)


def set_threads(threads: int | None, faiss: bool = False) -> int:
    """torch's CPU threads (and FAISS's, for retrieval) for this process; None keeps torch's default. Latency
    measured one request at a time wants 1: on a shared CPU a second thread mostly waits (one MiniLM query:
    16 ms with 1 thread, 470 ms with 2 under contention). Returns the threads torch uses."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
        if faiss:
            import faiss as faiss_lib

            faiss_lib.omp_set_num_threads(threads)
    return torch.get_num_threads()
