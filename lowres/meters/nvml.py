"""NVIDIA GPUs through nvidia-ml-py (the `pynvml` module).

Every NVML call is wrapped: a missing library, a missing driver or an unsupported query means "no GPUs"
or "figure unavailable", never a crash. The module is imported lazily on each use, so tests can replace
`sys.modules["pynvml"]` with a fake (zeus-style) and every function here sees it.
"""
from __future__ import annotations

import dataclasses
import os
import threading

_LOCK = threading.Lock()
_INITIALIZED = {"lib": None}  # the pynvml module object nvmlInit succeeded on


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used here; the message says why (for Measurement.warnings)."""


def lib():
    """The initialised pynvml module, or raise NvmlUnavailable with the reason."""
    try:
        import pynvml
    except ImportError as err:  # also `sys.modules["pynvml"] = None`
        raise NvmlUnavailable(f"nvidia-ml-py is not importable ({err})") from None
    with _LOCK:
        if _INITIALIZED["lib"] is not pynvml:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as err:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
                raise NvmlUnavailable(f"NVML init failed ({type(err).__name__}: {err}): no NVIDIA driver?") from None
            _INITIALIZED["lib"] = pynvml
    return pynvml


def call(name: str, *args, default=None):
    """pynvml.<name>(*args), or `default` on an NVML error (unsupported query, lost GPU) or without NVML."""
    try:
        nvml = lib()
    except NvmlUnavailable:
        return default
    try:
        return getattr(nvml, name)(*args)
    except nvml.NVMLError:
        return default


def text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclasses.dataclass
class Gpu:
    """One NVML device with the queries a Meter needs (each returns None when NVML cannot answer)."""

    index: int
    handle: object
    name: str
    has_energy_counter: bool

    def power_w(self) -> float | None:
        mw = call("nvmlDeviceGetPowerUsage", self.handle)
        return mw / 1000.0 if mw is not None else None

    def energy_j(self) -> float | None:
        """Total energy since driver load (Volta and newer), from NVML's counter."""
        mj = call("nvmlDeviceGetTotalEnergyConsumption", self.handle)
        return mj / 1000.0 if mj is not None else None

    def memory_used_bytes(self) -> int | None:
        info = call("nvmlDeviceGetMemoryInfo", self.handle)
        return int(info.used) if info is not None else None


def device_count() -> int:
    return call("nvmlDeviceGetCount", default=0) or 0


def open_gpu(index: int) -> Gpu | None:
    handle = call("nvmlDeviceGetHandleByIndex", index)
    if handle is None:
        return None
    name = text(call("nvmlDeviceGetName", handle)) or f"GPU {index}"
    counter = call("nvmlDeviceGetTotalEnergyConsumption", handle)
    return Gpu(index=index, handle=handle, name=name, has_energy_counter=counter is not None)


def visible_indices() -> list[int]:
    """NVML indices of the GPUs this process may use: CUDA_VISIBLE_DEVICES (indices or UUIDs) or all."""
    count = device_count()
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return list(range(count))
    uuids = {text(call("nvmlDeviceGetUUID", call("nvmlDeviceGetHandleByIndex", i))): i for i in range(count)}
    out = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item.isdigit() and int(item) < count:
            out.append(int(item))
        elif item.startswith(("GPU-", "MIG-")):
            out.extend(i for u, i in uuids.items() if u and u.startswith(item))
        else:
            break  # CUDA stops at the first invalid entry
    return out


def open_gpus(local_rank: int | None = None) -> tuple[list[Gpu], str | None]:
    """The GPUs to measure: all visible ones, or under DDP only the rank's own; plus a reason when none."""
    try:
        lib()
    except NvmlUnavailable as err:
        return [], str(err)
    indices = visible_indices()
    if local_rank is not None:
        indices = [indices[local_rank]] if local_rank < len(indices) else []
    gpus = [g for g in (open_gpu(i) for i in indices) if g is not None]
    return gpus, None if gpus else "NVML found no visible GPU"


def list_gpus() -> list[dict]:
    """For the environment fingerprint: one dict per GPU; [] without NVML or a driver."""
    try:
        lib()
    except NvmlUnavailable:
        return []
    driver = text(call("nvmlSystemGetDriverVersion"))
    out = []
    for i in range(device_count()):
        handle = call("nvmlDeviceGetHandleByIndex", i)
        memory = call("nvmlDeviceGetMemoryInfo", handle) if handle is not None else None
        out.append({"index": i, "name": text(call("nvmlDeviceGetName", handle)) if handle is not None else None,
                    "memory_total_bytes": int(memory.total) if memory is not None else None,
                    "driver_version": driver})
    return out
