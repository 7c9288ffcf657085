"""Meters: time, memory, power, energy, carbon and FLOPs per named window (see core.Meter).

`MeterCallback` (Lightning) is imported lazily so `import lowres.meters` stays light.
"""
from lowres.meters.core import Measurement, Meter

__all__ = ["Measurement", "Meter", "MeterCallback"]


def __getattr__(name):
    if name == "MeterCallback":
        from lowres.meters.callback import MeterCallback

        return MeterCallback
    raise AttributeError(f"module 'lowres.meters' has no attribute {name!r}")
