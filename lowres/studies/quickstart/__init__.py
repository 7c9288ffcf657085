"""Quickstart: fine-tune a small classifier, evaluate accuracy, record what it cost (the platform end to end)."""
from lowres.summary import Headline

HEADLINE = Headline(quality=("accuracy",), strategy="full_ft", task="classification", latency_window="eval")
