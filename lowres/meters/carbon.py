"""Carbon (and codecarbon's own energy figures) from codecarbon's OfflineEmissionsTracker.

Never the online tracker: it calls geolocation services and silently falls back to another country. The
country is explicit, nothing is written unless asked, and codecarbon's periodic timers are stopped and
joined when the window closes. Without RAPL, codecarbon's CPU energy is load x TDP and its RAM energy a
fixed power: `estimated` says so, and the Meter labels those figures `codecarbon-estimate`.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
from pathlib import Path

KWH_TO_J = 3.6e6
MEASURED_CPU_MODES = ("Rapl", "Power Gadget", "Emi", "Powermetrics")


@functools.lru_cache(maxsize=1)
def known_countries() -> list[str]:
    """The ISO 3166-1 alpha-3 codes codecarbon has a grid energy mix for (read from its data, not imported)."""
    spec = importlib.util.find_spec("codecarbon")
    path = Path(spec.origin).parent / "data" / "private_infra" / "global_energy_mix.json"
    return sorted(json.loads(path.read_text()))


def tracker_class():
    """The tracker class (a function so tests can replace it with a fast fake)."""
    from codecarbon import OfflineEmissionsTracker

    return OfflineEmissionsTracker


class CarbonTracker:
    """Start/stop one OfflineEmissionsTracker; `result()` -> dict of codecarbon's figures (J, W, kg)."""

    def __init__(self, country_iso_code: str, measure_power_secs: float = 1.0, save_to_file: bool = False,
                 tracking_mode: str = "machine", output_dir: str | None = None):
        self.options = dict(country_iso_code=country_iso_code, measure_power_secs=measure_power_secs,
                            save_to_file=save_to_file, tracking_mode=tracking_mode, log_level="error",
                            allow_multiple_runs=True, project_name="lowres")
        if save_to_file and output_dir:
            self.options["output_dir"] = str(output_dir)
        self.tracker = None
        self.data = None
        self.error: str | None = None
        self.hardware: list[str] = []

    def start(self) -> None:
        cls = tracker_class()
        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its init logs before log_level applies
        self.tracker = cls(**self.options)
        self.tracker.start()

    def stop(self) -> None:
        """Stop the tracker and join its timer threads; safe to call twice or after a failed start."""
        tracker, self.tracker = self.tracker, None
        if tracker is None:
            return
        schedulers = [getattr(tracker, a, None) for a in ("_scheduler", "_scheduler_monitor_power")]
        try:
            tracker.stop()
            self.data = getattr(tracker, "final_emissions_data", None)
        except Exception as err:  # never let carbon accounting break the run
            self.error = f"codecarbon stop failed ({type(err).__name__}: {err})"
        finally:
            for scheduler in schedulers:
                stop_scheduler(scheduler)
        self.hardware = [repr(h) for h in getattr(tracker, "_hardware", []) or []]

    def result(self) -> dict | None:
        d = self.data
        if d is None:
            return None
        cpu_modes = [h for h in self.hardware if h.startswith("CPU")]
        estimated = not any(m in h for h in cpu_modes for m in MEASURED_CPU_MODES)
        has_gpu = any(h.startswith("GPU") for h in self.hardware)  # no GPU tracked: None, not codecarbon's 0
        return {"co2_kg": d.emissions, "energy_j": d.energy_consumed * KWH_TO_J,
                "cpu_energy_j": d.cpu_energy * KWH_TO_J, "gpu_energy_j": d.gpu_energy * KWH_TO_J if has_gpu else None,
                "ram_energy_j": d.ram_energy * KWH_TO_J, "cpu_power_w": d.cpu_power,
                "gpu_power_w": d.gpu_power if has_gpu else None,
                "ram_power_w": d.ram_power, "duration_s": d.duration, "country_iso_code": d.country_iso_code,
                "tracking_mode": d.tracking_mode, "hardware": ", ".join(self.hardware) or None,
                "cpu_estimated": estimated}


def stop_scheduler(scheduler) -> None:
    """Cancel a codecarbon PeriodicScheduler and wait for a timer that is mid-run."""
    if scheduler is None:
        return
    try:
        scheduler.stop()
    except Exception:
        pass
    for _ in range(3):  # a timer mid-run re-arms itself before running: cancel until none is left
        timer = getattr(scheduler, "_timer", None)
        if timer is None:
            return
        timer.cancel()
        if timer.is_alive():
            timer.join(timeout=5)
        if getattr(scheduler, "_timer", None) is timer:
            return
