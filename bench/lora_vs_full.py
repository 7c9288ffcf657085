"""Full fine-tuning vs LoRA r=8 on real SST-2 (CPU, pretrained MiniLM), then fp32 vs int8 dynamic quantization.

One run, side by side: the same sentences, seed, batch size and epochs for both methods (the head starts from the
same random init), each trained under a Meter window (wall time; energy with its source, on this CPU a
codecarbon estimate). Lightning's per-epoch validation is off so the training time is training only; accuracy is
measured afterwards on the whole SST-2 dev set (872 sentences). The fully fine-tuned model is then measured at
fp32 and as torch dynamic int8 (Linear weights int8, activations quantized per batch): dev accuracy, state_dict
size, latency per example at batch 1 and 32 (p50/p95 after warm-up).
Targets (issue 6): LoRA within 2 points of full and faster per epoch; int8 <= 1 point loss and lower latency.

    python bench/lora_vs_full.py [--train-size 2500] [--epochs 1] [--rank 8] [--threads 1] [--latency-batches 20]
"""
from __future__ import annotations

import argparse
import datetime
import logging
import platform
import time
import warnings

import lightning as L
import torch

from lowres import data, lora, models, quantize, train
from lowres.data.modules import ClassificationDataModule
from lowres.meters import Meter

MIB = 2**20
ENERGY_FIELDS = ("gpu_energy_j", "cpu_energy_j", "dram_energy_j")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--train-size", type=int, default=2500, help="seeded subset of the SST-2 train split")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=int, default=16)
    # learning rates: the best of {5e-5, 1e-4, 2e-4} (full) and {1e-3, 2e-3, 4e-3} (LoRA) on a held-out slice of SST-2
    # *train* (1,000 sentences trained 1 epoch, 400 scored; the dev set untouched)
    parser.add_argument("--lr", type=float, default=2e-4, help="full fine-tuning")
    parser.add_argument("--lora-lr", type=float, default=4e-3, help="LoRA adapters and the modules trained in full")
    parser.add_argument("--modules-to-save", default="pooler,classifier",
                        help="trained in full beside LoRA; MiniLM's pooler is stale (its checkpoint was trained with "
                             "mean pooling): frozen, LoRA stayed near chance on the held-out slice")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: stable on a shared CPU)")
    parser.add_argument("--latency-batches", type=int, default=20, help="timed batches per batch size, after warm-up")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def fine_tune(method: str, datamodule, args, meter: Meter) -> tuple[object, dict]:
    """Train one method (validation off) under a Meter window; returns the network and its row of figures."""
    L.seed_everything(args.seed, verbose=False)  # same head init and batch order for both methods
    net = lora.build_model(args.model, method, num_labels=2, rank=args.rank, alpha=args.alpha,
                           modules_to_save=args.modules_to_save.split(","))
    module = train.ClassificationModule(net, lr=args.lr if method == "full" else args.lora_lr)
    with meter.window(f"train_{method}", samples=args.epochs * len(datamodule.train_set)) as window:
        train.fit(module, datamodule, max_epochs=args.epochs, limit_val_batches=0, num_sanity_val_steps=0)
    m, counts = window.measurement, lora.parameter_counts(net)
    sources = sorted({m.sources.get(k) for k in ENERGY_FIELDS} - {None, "unavailable"}) or ["unavailable"]
    energy = m.energy_j
    return net, {"method": method, "rank": args.rank if method != "full" else None,
                 "trainable": counts["trainable_params"], "trainable_pct": counts["trainable_pct"],
                 "train_s": m.wall_s, "s_per_epoch": m.wall_s / args.epochs, "energy_j": energy,
                 "energy_source": ", ".join(sources)}


def print_training(rows: list[dict]) -> None:
    print(f"{'method':<8}{'trainable':>12}{'share %':>9}{'accuracy':>10}{'f1':>8}{'train_s':>9}{'s/epoch':>9}"
          f"{'energy_j':>10}  energy source")
    for r in rows:
        name = r["method"] if r["rank"] is None else f"lora r={r['rank']}"
        energy = f"{r['energy_j']:10.1f}" if r["energy_j"] is not None else f"{'n/a':>10}"
        print(f"{name:<8}{r['trainable']:>12,}{r['trainable_pct']:>9.3f}{r['accuracy']:>10.4f}{r['f1']:>8.4f}"
              f"{r['train_s']:>9.1f}{r['s_per_epoch']:>9.1f}{energy}  {r['energy_source']}")


def print_precisions(records: dict) -> None:
    print(f"{'precision':<10}{'accuracy':>9}{'change':>8}{'state_dict MiB':>15}{'b1 p50/p95 ms':>16}"
          f"{'b32 p50/p95 ms/ex':>19}  backend")
    ref = records["fp32"]
    for p, r in records.items():
        change = 100 * (r["accuracy"] - ref["accuracy"])
        print(f"{p:<10}{r['accuracy']:>9.4f}{change:>+8.2f}{r['state_dict_bytes'] / MIB:>15.1f}"
              f"{r['latency_ms_b1_p50']:>8.2f}/{r['latency_ms_b1_p95']:<7.2f}"
              f"{r['latency_ms_b32_p50']:>10.2f}/{r['latency_ms_b32_p95']:<8.2f}  {r['backend']}")


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # device/tip banners per fit
    warnings.filterwarnings("ignore", module="lightning")
    started = time.perf_counter()
    corpus = data.load_corpus("sst2", train_size=args.train_size, val_size=None, seed=args.seed)
    datamodule = ClassificationDataModule(corpus, models.load_tokenizer(args.model), batch_size=args.batch_size,
                                          max_length=args.max_length, seed=args.seed)
    datamodule.setup()
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC | {platform.machine()}, "
          f"{torch.get_num_threads()} torch thread(s) | torch {torch.__version__} | quantized engine "
          f"{torch.backends.quantized.engine}")
    print(f"# {args.model} on SST-2: {len(corpus.train):,} train sentences (seed {args.seed}), dev {len(corpus.val)}; "
          f"{args.epochs} epoch(s), batch {args.batch_size}, max_length {args.max_length}; AdamW lr {args.lr:g} (full), "
          f"{args.lora_lr:g} (LoRA r={args.rank}, alpha {args.alpha}, query/value; in full: {args.modules_to_save})",
          flush=True)

    meter, rows, nets = Meter(energy="auto"), [], {}
    for method in ("full", "lora"):
        nets[method], row = fine_tune(method, datamodule, args, meter)
        rows.append(row)
        print(f"  trained {method}: {row['train_s']:.0f} s", flush=True)
    # full: its fp32 row of the precision comparison is its accuracy; LoRA: evaluated once here
    records = quantize.compare_precisions(nets["full"].float().cpu().eval(), datamodule, ["fp32", "int8"],
                                          latency_batches=args.latency_batches, device="cpu")
    rows[0].update(accuracy=records["fp32"]["accuracy"], f1=records["fp32"]["f1"])
    rows[1].update(train.evaluate_classifier(nets["lora"], datamodule.val_dataloader(), "cpu"))

    print_training(rows)
    full, lo = rows
    gap, time_ratio = 100 * (lo["accuracy"] - full["accuracy"]), lo["s_per_epoch"] / full["s_per_epoch"]
    print(f"LoRA - full accuracy: {gap:+.2f} points (target >= -2) -> {verdict(gap >= -2)}")
    print(f"LoRA / full time per epoch: {time_ratio:.2f}x (target < 1) -> {verdict(time_ratio < 1)}")
    print(f"LoRA trainable parameters: {lo['trainable']:,} = {100 * lo['trainable'] / full['trainable']:.2f}% of full's")
    print("# the fully fine-tuned model at inference: fp32 vs torch dynamic int8 (CPU)")
    print_precisions(records)
    fp32, int8 = records["fp32"], records["int8"]
    drop = 100 * (int8["accuracy"] - fp32["accuracy"])
    b1, b32 = (int8[f"latency_ms_{b}_p50"] / fp32[f"latency_ms_{b}_p50"] for b in ("b1", "b32"))
    print(f"int8 accuracy change: {drop:+.2f} points (target >= -1) -> {verdict(drop >= -1)}")
    print(f"int8 / fp32 latency p50: batch 1 {b1:.2f}x, batch 32 {b32:.2f}x (target < 1 at both) -> "
          f"{verdict(b1 < 1 and b32 < 1)}")
    print(f"int8 state_dict: {int8['state_dict_bytes'] / fp32['state_dict_bytes']:.2f}x fp32's")
    print(f"# wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
