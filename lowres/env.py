"""Hardware + software fingerprint that travels inside every result (and decides "same hardware")."""
from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "lightning", "peft", "bitsandbytes", "sentence-transformers", "faiss-cpu",
            "codecarbon", "nvidia-ml-py", "papermill", "lowres")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_sha() -> str | None:
    from lowres.paths import project_root

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project_root(), capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def gpus() -> list[dict]:
    try:
        from lowres.meters.nvml import list_gpus
    except ImportError:
        return []
    return list_gpus()


def torch_info() -> dict:
    import torch

    return {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads()}


def fingerprint() -> dict:
    """What a result needs to be compared fairly: CPU, cores, RAM, GPUs, driver, CUDA, versions, git sha."""
    import psutil

    gpu_list = gpus()
    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_model": cpu_model(), "cpu_cores_logical": os.cpu_count(),
            "cpu_cores_physical": psutil.cpu_count(logical=False), "ram_bytes": psutil.virtual_memory().total,
            "gpus": gpu_list, "gpu_names": ", ".join(g["name"] for g in gpu_list) or None,
            "gpu_driver": gpu_list[0].get("driver_version") if gpu_list else None, **torch_info(),
            "packages": package_versions(), "git_sha": git_sha()}
    info["fingerprint"] = hardware_key(info)
    return info


def hardware_key(info: dict) -> str:
    """Short hash of the hardware only (CPU model, cores, RAM rounded to GiB, GPU names): results match on it."""
    parts = [info["cpu_model"], str(info["cpu_cores_logical"]), str(round(info["ram_bytes"] / 2**30)),
             info.get("gpu_names") or "no-gpu"]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def describe(info: dict | None = None) -> str:
    info = info or fingerprint()
    lines = [f"{k}: {v}" for k, v in info.items() if k not in ("packages", "gpus")]
    lines += [f"gpu[{g.get('index', i)}]: {g}" for i, g in enumerate(info["gpus"])] or ["gpus: none detected"]
    lines += [f"package {k}: {v}" for k, v in info["packages"].items()]
    return "\n".join(lines)
