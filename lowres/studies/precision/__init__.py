"""Numerical precision for MLM domain adaptation (Maina et al. 2025): FP32, AMP-FP16, BF16 and TF32.

Params and steps are shared with the parallelism study (one experiment, two grids, one notebook)."""
from lowres.summary import Headline

HEADLINE = Headline(quality=("val_mlm_accuracy",), strategy="full_ft", task="mlm")
