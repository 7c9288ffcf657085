"""Prompting: training-free sentiment classification, zero- and few-shot."""
from lowres.summary import BATCHED, PER_REQUEST, Headline


def latency(params: dict, metrics: dict) -> tuple:
    return metrics.get("latency_ms"), PER_REQUEST if params.get("batch_size", 1) == 1 else BATCHED


HEADLINE = Headline(quality=("accuracy",), strategy="prompting", task="classification", latency=latency)
