"""Meters: time, memory, power, energy, carbon and FLOPs per named window (see core.Meter)."""
from lowres.meters.core import Measurement, Meter

__all__ = ["Measurement", "Meter"]
