"""The parallelism study's parameters are the precision study's: the same MLM adaptation run, another grid
(`params/parallelism.yaml` varies strategy and processes, `params/precision.yaml` precision)."""
from lowres.studies.precision.params import Params

__all__ = ["Params"]
