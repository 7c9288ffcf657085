"""`lowres recommend --probe` measured beside the plan's estimates, side by side in one run.

    python bench/probe_vs_estimate.py                      # this CPU: LoRA plans for tiny-bert and MiniLM
    python bench/probe_vs_estimate.py --worked-examples    # a GPU with the hub models cached: docs/selector.md's
                                                           # three worked examples (needs CUDA)

Each probe runs in a fresh process under its time cap (lowres.probe) and is saved to a scratch outputs folder
(not yours), so one probe does not calibrate the next. Prints, per plan: the model's own peak memory measured vs
estimated, per-request latency measured vs estimated, the step time and the time per epoch it projects; the
ratios last.
"""
from __future__ import annotations

import argparse
import sys
import tempfile

from lowres import probe, selector
from lowres.env import fingerprint

CPU_PLANS = (  # (model, seq_len): LoRA fine-tuning plans on this machine's detected memory
    ("tiny-bert", 32), ("tiny-bert", 128), ("minilm", 64))


def cpu_requests():
    for model, seq in CPU_PLANS:
        yield f"{model}, {seq} tokens", dict(task="classification", latency_ms=60_000, dataset_size=20_000,
                                             model=model, seq_len=seq)


def worked_examples():
    for index, (inputs, _) in enumerate(selector.WORKED_EXAMPLES, 1):
        yield f"worked example {index}", dict(inputs)


def probe_one(label: str, request: dict, seconds: int, outputs: str) -> dict:
    seq = request.pop("seq_len", None)
    rec = selector.recommend(**request, seq_len=seq, fingerprint=fingerprint()["fingerprint"], outputs=outputs)
    report = probe.probe(rec, seconds, seq, outputs=outputs)
    m, e = report.measured, report.estimated
    return {"plan": label, "strategy": rec.strategy, "batch": report.spec.batch_size,
            "mem_measured_gb": m["model_peak_gb"], "mem_estimated_gb": e["estimator_peak_gb"],
            "latency_measured_ms": m["latency_ms"], "latency_estimated_ms": e["latency_ms"],
            "step_s": m["step_s"], "epoch_s": m["epoch_s"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worked-examples", action="store_true", help="probe docs/selector.md's examples (GPU)")
    parser.add_argument("--seconds", type=int, default=90, help="each probe's time cap")
    args = parser.parse_args(argv)
    if args.worked_examples and selector.detect()["hardware"] != "gpu":
        print("--worked-examples plans for a GPU: no CUDA device here", file=sys.stderr)
        return 2
    requests = worked_examples() if args.worked_examples else cpu_requests()
    with tempfile.TemporaryDirectory(prefix="lowres-probe-bench-") as outputs:
        rows = [probe_one(label, request, args.seconds, outputs) for label, request in requests]
    import pandas as pd

    table = pd.DataFrame(rows)
    table["mem_ratio"] = table["mem_measured_gb"] / table["mem_estimated_gb"]
    table["latency_ratio"] = table["latency_measured_ms"] / table["latency_estimated_ms"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("measured/estimated memory: " + ", ".join(f"{v:.2f}" for v in table["mem_ratio"]))
    print("measured/estimated latency: " + ", ".join(f"{v:.2f}" for v in table["latency_ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
