"""Seq2seq fine-tuning (T5: full, LoRA, 8-bit LoRA) for summarization and generative QA: quality, cost, generation."""
from lowres.summary import PER_REQUEST, Headline


def strategy(params: dict) -> str:
    return "full_ft" if params.get("method") == "full" else "lora"


def task(params: dict) -> str:
    from lowres.data.corpora import seq2seq_task

    return seq2seq_task(params.get("dataset"))


def latency(params: dict, metrics: dict) -> tuple:
    """Greedy generation, one request at a time: what a service answering one user costs."""
    return metrics.get("latency_ms_greedy_p50"), PER_REQUEST


# QA runs record f1 (and ROUGE); summarization runs record ROUGE only, so the first present is the task's own metric
HEADLINE = Headline(quality=("f1", "rougeL"), strategy=strategy, task=task, latency=latency)
