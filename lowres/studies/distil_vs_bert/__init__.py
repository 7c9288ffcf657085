"""DistilBERT vs BERT: fine-tuning energy, and how it scales with tokens (Wang et al., 2023)."""
from lowres.summary import Headline

QA_DATASETS = ("squad", "synthetic-kb")  # knowledge bases whose questions carry their context and answer


def task(params: dict) -> str:
    return "qa" if params.get("dataset") in QA_DATASETS else "classification"


def model(params: dict) -> str | None:
    """The twin this run fine-tuned."""
    return params.get(f"{params.get('variant')}_model")


HEADLINE = Headline(quality=("@quality",), strategy="full_ft", task=task, model=model, latency_window="eval")
