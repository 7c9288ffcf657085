"""LoRA vs full fine-tuning, then the fine-tuned model at fp32/fp16/bf16/int8 inference."""
from lowres.summary import PER_REQUEST, Headline


def strategy(params: dict) -> str:
    return "full_ft" if params.get("method") == "full" else "lora"


def latency(params: dict, metrics: dict) -> tuple:
    return metrics.get("latency_ms_b1_p50"), PER_REQUEST  # the fp32 model, one example at a time


HEADLINE = Headline(quality=("accuracy",), strategy=strategy, task="classification", latency=latency)
