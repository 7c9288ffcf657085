"""Data parallelism for MLM domain adaptation (Maina et al. 2025): single device, DataParallel and DDP.

The same run as the precision study (one MLM adaptation at one grid point), so the same parameters; the
grids differ (`params/parallelism.yaml` varies strategy and processes, `params/precision.yaml` precision).
"""
from lowres.studies.precision import Params

__all__ = ["Params"]
