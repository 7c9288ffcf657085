"""Data parallelism for MLM domain adaptation (Maina et al. 2025): single device, DataParallel and DDP.

The same run as the precision study (its Params, steps and notebook); this package adds the scaling analysis."""
from lowres.studies.precision import HEADLINE

__all__ = ["HEADLINE"]
