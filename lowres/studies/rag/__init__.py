"""RAG: retrieve top-k passages and read or generate an answer; quality, latency and energy per question."""
from lowres.summary import PER_REQUEST, Headline


def latency(params: dict, metrics: dict) -> tuple:
    """One question at a time, end to end: the median (the mean for results that lack it)."""
    p50 = metrics.get("latency_p50_ms")
    return (p50 if p50 is not None else metrics.get("latency_ms")), PER_REQUEST


HEADLINE = Headline(quality=("f1", "exact_match"), strategy="rag", task="qa",
                    model=lambda params: params.get("generator"), latency=latency)
