"""Training throughput with and without a Meter (all samplers on, energy="auto"), interleaved in one run.

Same model (tiny-bert classification), same fixed random batches, a plain torch AdamW loop. Repeats
alternate the order (bare, metered, metered, bare, ...) so drift on a shared machine hits both arms.
Runs are short (~1 s) and many, and the headline is the median of the ratios of adjacent (paired) runs:
on a machine shared with other jobs, load swings far more than the meter costs, and pairing cancels it.
Prints tokens/s per arm, the steady-state ratio (loop timed inside the window; target >= 0.98) and the
fixed cost of opening + closing a window (codecarbon start/stop, NVML/RAPL reads, thread start/join),
and the CPU time the meter's own threads burn per second of an idle window (noise-free: an upper bound on
the share of one core the meter takes from training).

    python bench/meter_overhead.py [--repeats 30] [--steps 5] [--batch-size 16] [--seq-len 64] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lowres.meters import Meter
from lowres.models import load_model


def make_batches(n: int, batch_size: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(1000, vocab, (batch_size, seq_len), generator=g),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "labels": torch.randint(0, 2, (batch_size,), generator=g)} for _ in range(n)]


def train_steps(model, optimizer, batches, steps: int) -> float:
    """Seconds for `steps` optimizer steps cycling over `batches`."""
    start = time.perf_counter()
    for i in range(steps):
        loss = model(**batches[i % len(batches)]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def meter_cpu_cost(meter, seconds: float = 3.0) -> float:
    """CPU seconds the process burns per wall second inside an open window while the main thread sleeps,
    minus the same sleep without a window: the meter's background threads (sampler, codecarbon timers)."""
    def busy(fn) -> float:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        return (time.process_time() - cpu) / (time.perf_counter() - wall)

    with meter.window("idle_cost"):
        inside = busy(lambda: time.sleep(seconds))
    return inside - busy(lambda: time.sleep(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs per arm (the order alternates)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--energy", default="auto")
    parser.add_argument("--country", default="ARG")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = load_model("tiny-bert", "classification").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = make_batches(8, args.batch_size, args.seq_len, model.config.vocab_size)
    tokens = args.steps * args.batch_size * args.seq_len
    meter = Meter(energy=args.energy, country_iso_code=args.country)

    train_steps(model, optimizer, batches, 5)  # warm-up: allocator, kernels
    with meter.window("warmup"):  # one-time costs: codecarbon hardware detection, NVML init
        train_steps(model, optimizer, batches, 2)

    bare, metered, window_cost = [], [], []
    for rep in range(args.repeats):
        for arm in (("bare", "metered") if rep % 2 == 0 else ("metered", "bare")):
            if arm == "bare":
                bare.append(tokens / train_steps(model, optimizer, batches, args.steps))
                continue
            opened = time.perf_counter()
            with meter.window(f"rep{rep}", steps=args.steps, tokens=tokens) as m:
                loop_s = train_steps(model, optimizer, batches, args.steps)
            window_cost.append(time.perf_counter() - opened - loop_s)
            metered.append(tokens / loop_s)

    cpu_per_s = meter_cpu_cost(meter)
    ratio = statistics.median(metered) / statistics.median(bare)
    pair_ratios = [m / b for m, b in zip(metered, bare)]
    print(f"model tiny-bert classification, batch {args.batch_size} x seq {args.seq_len}, {args.steps} steps/run, "
          f"{args.repeats} runs/arm, torch threads {torch.get_num_threads()}")
    q1, q2, q3 = statistics.quantiles(pair_ratios, n=4)
    for label, runs in (("bare   ", bare), ("metered", metered)):
        print(f"{label} tokens/s: median {statistics.median(runs):9.1f}  min {min(runs):9.1f}  max {max(runs):9.1f}")
    print(f"ratio metered/bare: paired median {q2:.3f} (quartiles {q1:.3f}..{q3:.3f}); ratio of medians {ratio:.3f}; "
          f"target >= 0.98")
    print(f"window open+close cost: median {statistics.median(window_cost) * 1000:.1f} ms per window")
    print(f"meter threads' CPU: {cpu_per_s * 1000:.1f} ms per s of window ({cpu_per_s:.2%} of one core)")
    print(f"last window: sampler {m.sampler_samples} samples over {m.wall_s:.2f} s; sources {m.sources}")


if __name__ == "__main__":
    main()
