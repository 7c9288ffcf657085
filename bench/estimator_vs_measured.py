"""Estimated vs measured peak training memory (lowres.memory) for bert-base and distilbert.

On CUDA: models are built from their configs (random weights: memory does not depend on the values, and the
GPU machine needs no download), trained for a few AdamW steps at several batch sizes, and
`torch.cuda.max_memory_allocated` is compared with `lowres.memory.estimate(...).peak_bytes`.

    python bench/estimator_vs_measured.py                       # bert-base + distilbert, full + LoRA, fp32 + fp16
    python bench/estimator_vs_measured.py --models distilbert-base-uncased --batch-sizes 8 32 --methods lora

Without CUDA it exits with code 2 and says so. `--cpu-profile` instead replays a (slow) training step on the
CPU under torch.profiler(profile_memory=True) and compares the allocator's peak with the CPU-flavoured
estimate (device="cpu": float dropout masks, math attention): a check of the accounting, not of CUDA kernels.
Target: |error| <= 15%. Paste the table into bench/RESULTS.md.

`--latency` compares the per-request latency estimate (lowres.latency: FLOPs, this CPU's measured throughput and
overheads) with the measured median latency of a classifier at batch 1 for tiny-bert and MiniLM at several
sequence lengths, on this machine's CPU (target: within 30%; the worst ratio is printed last).
"""
from __future__ import annotations

import argparse
import sys

from lowres import memory

LORA_TARGETS = {"bert": ["query", "value"], "distilbert": ["q_lin", "v_lin"]}
AMP = {"fp16": "float16", "bf16": "bfloat16"}


def build(name: str, method: str, precision: str, device: str):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = dict(memory.KNOWN_MODELS[memory.ALIASES.get(name, name)])
    config = AutoConfig.for_model(cfg.pop("model_type"), num_labels=memory.NUM_LABELS, **cfg)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    if method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        if precision != "fp32":
            model = model.to(getattr(torch, AMP[precision]))
        family = memory.model_spec(name).family
        lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=memory.LORA_RANK, lora_alpha=16,
                          lora_dropout=memory.LORA_DROPOUT, target_modules=LORA_TARGETS[family])
        model = get_peft_model(model, lora)
        for param in model.parameters():  # adapters and the classifier head train in fp32 (GradScaler needs it)
            if param.requires_grad:
                param.data = param.data.float()
    return model.to(device).train()


def train_steps(model, precision: str, batch: int, seq: int, device: str, steps: int) -> None:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, foreach=True)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    ids = torch.randint(1000, 30000, (batch, seq), device=device)
    labels = torch.randint(0, memory.NUM_LABELS, (batch,), device=device)
    dtype = getattr(torch, AMP.get(precision, "float32"))
    for _ in range(steps):
        with torch.autocast(device, dtype=dtype, enabled=precision in AMP):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)


def measure_cuda(name, method, precision, batch, seq, steps) -> float:
    import torch

    torch.cuda.empty_cache()
    model = build(name, method, precision, "cuda")
    torch.cuda.reset_peak_memory_stats()
    try:
        train_steps(model, precision, batch, seq, "cuda", steps)
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated())
    finally:
        del model
        torch.cuda.empty_cache()


def measure_cpu(name, method, precision, batch, seq, steps) -> float:
    """Peak of the CPU allocator over the steps (weights are allocated before and added)."""
    from torch.profiler import ProfilerActivity, profile

    model = build(name, method, precision, "cpu")
    resident = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        train_steps(model, precision, batch, seq, "cpu", steps)
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return float(resident + peak)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["bert-base-uncased", "distilbert-base-uncased"])
    parser.add_argument("--methods", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 32, 64])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cpu-profile", action="store_true", help="CPU allocator replay instead of CUDA (slow)")
    parser.add_argument("--latency", action="store_true", help="latency estimate vs measured at batch 1 on this CPU")
    args = parser.parse_args(argv)
    import torch

    if args.latency:
        return latency_check()

    device = "cpu" if args.cpu_profile else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("estimator_vs_measured: needs CUDA (torch.cuda.is_available() is False); run it on a GPU machine, "
              "or pass --cpu-profile for the CPU allocator check", file=sys.stderr)
        return 2
    measure = measure_cuda if device == "cuda" else measure_cpu
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}; seq_len {args.seq_len}; "
          f"torch {torch.__version__}")
    print(f"{'model':26} {'method':6} {'prec':5} {'batch':>5} {'estimate MB':>12} {'measured MB':>12} {'error %':>8}")
    errors = []
    for name in args.models:
        for method in args.methods:
            for precision in args.precisions:
                for batch in args.batch_sizes:
                    est = memory.estimate(name, method, precision, batch, args.seq_len, device).peak_bytes
                    try:
                        got = measure(name, method, precision, batch, args.seq_len, args.steps)
                    except torch.OutOfMemoryError:
                        print(f"{name:26} {method:6} {precision:5} {batch:5} {est / 1e6:12.0f} {'OOM':>12}")
                        continue
                    err = 100 * (est - got) / got
                    errors.append(abs(err))
                    print(f"{name:26} {method:6} {precision:5} {batch:5} {est / 1e6:12.0f} {got / 1e6:12.0f} {err:+8.1f}")
    if errors:
        print(f"mean |error| {sum(errors) / len(errors):.1f}%, max |error| {max(errors):.1f}% over {len(errors)} runs")
    return 0


def measured_latency_ms(name: str, seq: int, repeats: int = 50) -> float:
    """Median ms of one classification forward at batch 1 (the pretrained or tiny model, eval, no grad)."""
    from lowres import latency, models

    times = latency.request_times(models.load_model(name, "classification", num_labels=2).eval(), seq, repeats)
    return 1000 * times[len(times) // 2]


def latency_check(names=("tiny-bert", "minilm"), seqs=(32, 64, 128)) -> int:
    import torch

    from lowres import latency, models

    print(f"cpu, {torch.get_num_threads()} torch threads; batch 1; median of 50 requests")
    print(f"{'model':10} {'seq':>4} {'estimate ms':>12} {'measured ms':>12} {'estimate/measured':>18}")
    ratios = []
    for name in names:
        for seq in seqs:
            est = latency.estimate(models.resolve(name), "cpu", seq)
            got = measured_latency_ms(name, seq)
            ratios.append(est.ms / got)
            print(f"{name:10} {seq:4} {est.ms:12.2f} {got:12.2f} {est.ms / got:18.2f}")
    print(est.how)
    worst = max(ratios, key=lambda r: abs(r - 1))
    print(f"worst estimate/measured ratio: {worst:.2f} over {len(ratios)} configurations (target within 0.70-1.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
