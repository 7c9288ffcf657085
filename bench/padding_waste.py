"""Padding waste on real SST-2 train: padded/real tokens and epoch time, `max_length` vs `dynamic` vs
`length-grouped` padding, side by side in one run (Wang et al. 2023: energy scales with tokens processed,
padding included, so padding is energy spent on nothing).

Token counts are exact: one full pass of each mode's training loader over all 67,349 sentences (the
study's ClassificationDataModule, so the same samplers and collators). Epoch time: by default the training
step (forward + backward + AdamW) is timed on `--timed-batches` batches spread evenly through each mode's
epoch, the modes interleaved batch by batch so a shared machine's load swings hit all three alike; the epoch
time is then n_batches x the mean step time (an extrapolation, labelled as such). `--full-epoch` trains a
whole epoch per mode instead (for a GPU). Target: padded/real <= 1.10 for length-grouped.

    python bench/padding_waste.py                                  # tiny-bert, batch 32, max_length 128, 1 thread
    python bench/padding_waste.py --model minilm --timed-batches 60
    python bench/padding_waste.py --full-epoch --device cuda       # whole epochs on a GPU
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LOWRES_DATA_DIR", str(REPO.parent / "shared" / "data"))  # as the Makefile and tests do
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from lowres import models  # noqa: E402
from lowres.data import load_corpus  # noqa: E402
from lowres.data.modules import PADDING_MODES, ClassificationDataModule  # noqa: E402

MODES = ("max_length", "dynamic", "length-grouped")  # the baseline first: ratios are against it
TARGET = 1.10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-bert", help="model name for the timed steps (lowres.models)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--timed-batches", type=int, default=40, help="batches timed per mode (not with --full-epoch)")
    parser.add_argument("--full-epoch", action="store_true", help="train a whole epoch per mode instead")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps timings stable on a shared CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.max_length < 8 or args.timed_batches < 1:
        parser.error(f"need --batch-size >= 1, --max-length >= 8, --timed-batches >= 1; got {args.batch_size}, "
                     f"{args.max_length}, {args.timed_batches}")
    return args


def datamodules(tokenizer, args) -> dict[str, ClassificationDataModule]:
    """One DataModule per padding mode over the same tokenized SST-2 train split (tokenized once)."""
    corpus = load_corpus("sst2", seed=args.seed)
    dms = {}
    for mode in MODES:
        assert mode in PADDING_MODES
        dm = ClassificationDataModule(corpus, tokenizer, batch_size=args.batch_size, max_length=args.max_length,
                                      padding=mode, seed=args.seed)
        if dms:  # share the encodings: tokenizing 67k sentences once is enough
            first = next(iter(dms.values()))
            dm.train_set, dm.val_set = first.train_set, first.val_set
        dm.setup()
        dms[mode] = dm
    return dms


def count_tokens(dm) -> dict:
    start = time.perf_counter()
    counts = dm.epoch_token_counts("train")
    return {**counts, "data_pass_s": time.perf_counter() - start}


def epoch_batches(dm) -> list[list[int]]:
    """The epoch's batches (dataset indices) in the order the training loader yields them."""
    order = list(dm.train_sampler())
    return [order[i:i + dm.batch_size] for i in range(0, len(order), dm.batch_size)]


def collate(dm, indices: list[int], device) -> dict:
    batch = dm.make_collator(None)([dm.train_set[i] for i in indices])
    return {k: v.to(device) for k, v in batch.items()}


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def train_step(model, optimizer, batch) -> None:
    model(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed_step(model, optimizer, batch, device) -> float:
    sync(device)
    start = time.perf_counter()
    train_step(model, optimizer, batch)
    sync(device)
    return time.perf_counter() - start


def sampled_step_times(model, optimizer, dms, args) -> dict[str, list[float]]:
    """Step times on evenly spread batches of each mode, the modes interleaved batch by batch."""
    plans = {mode: epoch_batches(dm) for mode, dm in dms.items()}
    picks = {mode: [batches[round(i * (len(batches) - 1) / max(args.timed_batches - 1, 1))]
                    for i in range(args.timed_batches)] for mode, batches in plans.items()}
    times: dict[str, list[float]] = {mode: [] for mode in dms}
    for i in range(args.timed_batches):
        for mode, dm in dms.items():
            times[mode].append(timed_step(model, optimizer, collate(dm, picks[mode][i], args.device), args.device))
    return times


def full_epoch_times(model, optimizer, dms, args) -> dict[str, float]:
    out = {}
    for mode, dm in dms.items():
        sync(args.device)
        start = time.perf_counter()
        for batch in dm.train_dataloader():
            train_step(model, optimizer, {k: v.to(args.device) for k, v in batch.items()})
        sync(args.device)
        out[mode] = time.perf_counter() - start
    return out


def machine_line(args) -> str:
    gpu = torch.cuda.get_device_name(0) if str(args.device).startswith("cuda") else "no GPU used"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | {platform.machine()}, {os.cpu_count()} cores, "
            f"{gpu} | torch {torch.__version__}, {torch.get_num_threads()} threads | load avg {load}")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(machine_line(args))
    tokenizer = models.load_tokenizer(args.model)
    start = time.perf_counter()
    dms = datamodules(tokenizer, args)
    n = len(dms["max_length"].train_set)
    print(f"# SST-2 train: {n:,} sentences tokenized in {time.perf_counter() - start:.1f} s; batch {args.batch_size}, "
          f"max_length {args.max_length}; length-grouped = transformers' LengthGroupedSampler "
          f"(mega-batches of {50 * args.batch_size} sorted by length)")
    counts = {mode: count_tokens(dm) for mode, dm in dms.items()}

    model = models.load_model(args.model, "classification", num_labels=2).train().to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    warm = collate(dms["max_length"], epoch_batches(dms["max_length"])[0], args.device)
    for _ in range(2):  # lazy optimizer state, allocator growth: out of the timings
        train_step(model, optimizer, warm)
    if args.full_epoch:
        epoch_s, how = full_epoch_times(model, optimizer, dms, args), "measured (full epoch)"
        step_ms = {mode: 1000 * epoch_s[mode] / counts[mode]["batches"] for mode in dms}
    else:
        times = sampled_step_times(model, optimizer, dms, args)
        step_ms = {mode: 1000 * statistics.fmean(t) for mode, t in times.items()}
        epoch_s = {mode: counts[mode]["batches"] * step_ms[mode] / 1000 for mode in dms}
        how = f"extrapolated: batches x mean of {args.timed_batches} timed steps"

    print(f"# model {args.model} ({models.count_parameters(model)['total'] / 1e6:.1f} M params) on {args.device}; "
          f"epoch time {how}")
    header = (f"{'padding':>15} {'batches':>8} {'real_tokens':>12} {'padded_tokens':>14} {'padded/real':>12} "
              f"{'data_pass_s':>12} {'step_ms':>8} {'epoch_s':>9} {'epoch_s/max_length':>19}")
    print(header)
    base = epoch_s["max_length"]
    for mode in MODES:
        c = counts[mode]
        print(f"{mode:>15} {c['batches']:>8,} {c['real_tokens']:>12,} {c['padded_tokens']:>14,} "
              f"{c['padded_tokens'] / c['real_tokens']:>12.3f} {c['data_pass_s']:>12.2f} {step_ms[mode]:>8.1f} "
              f"{epoch_s[mode]:>9.1f} {epoch_s[mode] / base:>19.3f}")
    ratio = counts["length-grouped"]["padded_tokens"] / counts["length-grouped"]["real_tokens"]
    verdict = "MET" if ratio <= TARGET else "NOT MET"
    vs_max = {mode: counts[mode]["padded_tokens"] / counts["max_length"]["padded_tokens"] for mode in MODES}
    print(f"target: length-grouped padded/real = {ratio:.3f} <= {TARGET:.2f} -> {verdict}; padded tokens vs "
          f"max_length: dynamic {vs_max['dynamic']:.3f}, length-grouped {vs_max['length-grouped']:.3f}")
    print(f"# load avg at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
