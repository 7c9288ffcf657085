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


MATMUL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")  # decide bf16/int8 speed


def cpu_flags() -> list[str]:
    """The CPU's instruction sets that decide bf16 and int8 speed. A VM can report the same model name ("AMD
    EPYC") with or without native bf16 (avx512_bf16): bf16 then runs ~1.5x faster or ~8x slower than fp32."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in MATMUL_FLAGS if flag in present]
    except OSError:
        pass
    return []


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
            "torch_threads": torch.get_num_threads(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def fingerprint() -> dict:
    """What a result needs to be compared fairly: CPU, cores, RAM, GPUs, driver, CUDA, versions, git sha."""
    import psutil

    gpu_list = gpus()
    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_cores_logical": os.cpu_count(),
            "cpu_cores_physical": psutil.cpu_count(logical=False), "ram_bytes": psutil.virtual_memory().total,
            "gpus": gpu_list, "gpu_names": ", ".join(g["name"] for g in gpu_list) or None,
            "gpu_driver": gpu_list[0].get("driver_version") if gpu_list else None, **torch_info(),
            "packages": package_versions(), "git_sha": git_sha(),
            "kernel_mode": os.environ.get("LOWRES_KERNEL_MODE", "fresh")}  # forked: lowres.warm (RSS reads lower)
    info["fingerprint"] = hardware_key(info)
    info["load"] = machine_load(interval_s=0.0)
    return info


def machine_load(interval_s: float = 0.5) -> dict:
    """The machine's load now: load averages and the share of CPU in use (over `interval_s`; 0: since the last
    call, cheap, for results), so a result and `lowres env` say how quiet the machine was."""
    import psutil

    one, five, fifteen = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {"load_avg_1m": one, "load_avg_5m": five, "load_avg_15m": fifteen,
            "cpu_busy_pct": psutil.cpu_percent(interval=interval_s or None)}


def energy_sources() -> list[str]:
    """Where a run's energy figures would come from on this machine, best first (what `Meter(energy="auto")`
    uses), each with its scope."""
    from lowres.meters import rapl

    found = [f"NVML energy counter / sampled power (per GPU): {g['name']}" for g in gpus()]
    domains, why = rapl.discover()
    if domains:
        found.append(f"RAPL counters (CPU package{', DRAM' if any(d.kind == 'dram' for d in domains) else ''}; "
                     "the whole machine)")
    else:
        found.append(f"codecarbon estimate (CPU load x TDP, RAM at a fixed power; the whole machine), {why}")
    return found


def hardware_key(info: dict) -> str:
    """Short hash of the hardware only (CPU model, cores, RAM rounded to GiB, GPU names): results match on it."""
    parts = [info["cpu_model"], str(info["cpu_cores_logical"]), str(round(info["ram_bytes"] / 2**30)),
             info.get("gpu_names") or "no-gpu"]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def gib(value) -> str:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, (int, float)) else "unknown"


def isa_text(info: dict) -> str:
    flags = ", ".join(info.get("cpu_flags") or []) or "none of " + ", ".join(MATMUL_FLAGS)
    return f"{flags} (torch kernels: {info.get('torch_cpu_capability', 'unknown')})"


def describe(info: dict | None = None) -> str:
    """The fingerprint for people: human units, the energy source a run would use, the load right now."""
    info = info or fingerprint()
    load = machine_load()
    lines = [f"host: {info['hostname']} ({info['platform']}, Python {info['python']})",
             f"CPU: {info['cpu_model']}, {info['cpu_cores_physical']} physical / {info['cpu_cores_logical']} logical cores",
             f"CPU instruction sets for bf16/int8: {isa_text(info)}",
             f"RAM: {gib(info['ram_bytes'])}"]
    lines += [f"GPU {g.get('index', i)}: {g.get('name')}, {gib(g.get('memory_total_bytes'))}" for i, g in
              enumerate(info["gpus"])] or ["GPUs: none detected"]
    lines += [f"torch {info['torch']} (CUDA {info['cuda'] or 'none'}, available: {info['cuda_available']}), "
              f"{info['torch_threads']} threads", f"hardware fingerprint: {info['fingerprint']}",
              f"git: {info['git_sha'] or 'unknown'}", "energy source: " + "; ".join(energy_sources()),
              f"load now: {load['cpu_busy_pct']:.0f}% of the CPU busy, load average {load['load_avg_1m']:.2f} (1 min) / "
              f"{load['load_avg_5m']:.2f} (5 min) on {info['cpu_cores_logical']} cores"]
    lines += ["packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)]
    return "\n".join(lines)
