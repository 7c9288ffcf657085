"""Selector: the plan `lowres.selector.recommend` gives for one task and environment (a plan, not a measurement),
and the probes of plans on this machine (`lowres recommend --probe`: params.probe true), whose model and
per-request latency calibrate the next plan (never its quality: a probe measures costs, not accuracy)."""
from lowres.summary import PER_REQUEST, Headline


def probe_latency(params: dict, metrics: dict) -> tuple:
    return (metrics.get("probe") or {}).get("latency_ms"), PER_REQUEST


HEADLINE = Headline(quality=(), strategy=lambda params: None, task="plan", model=lambda params: params.get("model"),
                    latency=probe_latency, measured=False)
