"""MLM training throughput: the lowres MLM trainer vs a minimal hand-written PyTorch loop vs transformers' Trainer.

Same model (tiny-bert, MLM head), same synthetic VizWiz questions, same batch, dynamic padding, 15% masking,
AdamW (fused) + linear warm-up/decay, same precision, one torch thread each, interleaved in many short rounds
(the order rotates every round) so the load of a shared machine hits every arm; ratios are medians of per-round
ratios. Each arm runs `--warmup` steps, then `--steps` timed steps; tokens/s = real tokens of the timed steps /
their wall time, measured inside each framework at the same boundaries (warm-up's last step ends -> last step ends).

Arms (fp32): `lowres` = `lowres.mlm.fit_mlm` as a study notebook runs it (Lightning, Meter with every sampler on,
MeterCallback, rank-0 export), with its default masked-only MLM head; `lowres-all` = the same with `head="all"`
(transformers' own forward: logits for every position); `loop-all` = the hand-written loop over transformers'
forward; `loop-masked` = the hand-written loop with lowres's masked-only head; `hf-trainer` = transformers'
Trainer (its own forward). Like for like: lowres-all / loop-all and lowres / loop-masked are the trainer's
overhead over the same computation (target >= 0.95); lowres / hf-trainer is what a user of lowres gains over
the Trainer (target >= 1.0; the masked head does fewer FLOPs for the same loss, so this is not an overhead
figure), and lowres-all / hf-trainer the same with the Trainer's forward. Then bf16-mixed / fp32 speed of the
lowres trainer and the loop (masked head) on this CPU.

    python bench/trainer_efficiency.py [--rounds 8] [--steps 15] [--warmup 5] [--batch-size 32] [--bf16-steps 8]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

import lightning as L
import torch

from lowres import data, mlm, models, parallel
from lowres.meters import Meter

MODEL, LR, SEED = "tiny-bert", 1e-3, 0


def make_datamodule(tokenizer, batch_size: int, n_questions: int) -> mlm.MLMAdaptationDataModule:
    corpus = data.load_corpus("synthetic-vizwiz", train_size=n_questions, val_size=16, seed=SEED)
    datamodule = mlm.MLMAdaptationDataModule(corpus, tokenizer, batch_size=batch_size, max_length=32, seed=SEED)
    datamodule.setup()
    return datamodule


class StepClock:
    """Marks time and the token count when the warm-up's last step ends and when the last step ends."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.tokens = warmup, None, None, 0

    def step_done(self, step: int, tokens_so_far: int) -> None:
        if step == self.warmup:
            self.start, self.tokens = time.perf_counter(), tokens_so_far
        self.end, self.final_tokens = time.perf_counter(), tokens_so_far

    def tokens_per_s(self) -> float:
        return (self.final_tokens - self.tokens) / (self.end - self.start)


class LightningClock(L.Callback):
    def __init__(self, clock: StepClock, counter):
        self.clock, self.counter = clock, counter

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.clock.step_done(trainer.global_step, self.counter.real_tokens)


def run_lowres(datamodule, steps: int, warmup: int, precision: str, head: str) -> float:
    torch.manual_seed(SEED)
    plan = parallel.plan("single", datamodule.batch_size, torch_threads=1)
    module = mlm.MLMModule(models.load_model(MODEL, "mlm"), lr=LR, head=head)
    clock = StepClock(warmup)
    with tempfile.TemporaryDirectory() as folder:
        mlm.fit_mlm(module, datamodule, plan, Meter(), precision=precision, max_steps=warmup + steps, record_dir=folder,
                    limit_val_batches=0, callbacks=[LightningClock(clock, datamodule.train_counter)])
    return clock.tokens_per_s()


def linear_schedule(optimizer, total: int, warmup_ratio: float = 0.06):
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)


def run_loop(datamodule, steps: int, warmup: int, precision: str, head: str) -> float:
    """The minimal loop: DataLoader + transformers' collator, forward, backward, fused AdamW, schedule."""
    torch.manual_seed(SEED)
    net = models.load_model(MODEL, "mlm").train()
    forward = mlm.MLMForward(net, head)
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01, fused=True)
    schedule = linear_schedule(optimizer, warmup + steps)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()
    loader = torch.utils.data.DataLoader(datamodule.train_set, batch_size=datamodule.batch_size, shuffle=True,
                                         collate_fn=datamodule.make_collator(None))
    clock, tokens = StepClock(warmup), 0
    for step, batch in enumerate(loader, start=1):
        with autocast:
            loss = forward(**batch)[0].mean()
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
        clock.step_done(step, tokens)
        if step == warmup + steps:
            break
    return clock.tokens_per_s()


def run_hf_trainer(datamodule, steps: int, warmup: int, precision: str) -> tuple[float, str]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from lowres.data.modules import CountingCollator, TokenCounter

    counter = TokenCounter()
    collator = CountingCollator(datamodule.make_collator(None).inner, counter)  # transformers' collator, counted
    clock = StepClock(warmup)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done(state.global_step, counter.real_tokens)

    torch.manual_seed(SEED)
    net = models.load_model(MODEL, "mlm").train()
    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(output_dir=folder, per_device_train_batch_size=datamodule.batch_size,
                                 max_steps=warmup + steps, learning_rate=LR, weight_decay=0.01, warmup_steps=0.06,
                                 lr_scheduler_type="linear", logging_strategy="no", save_strategy="no",
                                 report_to="none", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
                                 bf16=precision == "bf16-mixed", seed=SEED)
        trainer = Trainer(model=net, args=args, train_dataset=datamodule.train_set, data_collator=collator,
                          callbacks=[Clock()])
        trainer.train()
    return clock.tokens_per_s(), str(args.optim)


def interleave(arms: dict, rounds: int) -> dict[str, list[float]]:
    """Each arm once per round, the order rotated by one every round; tokens/s per arm and round."""
    names, results = list(arms), {name: [] for name in arms}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name].append(arms[name]())
            print(f"  round {r + 1} {name:12s} {results[name][-1]:9.0f} tokens/s", flush=True)
    return results


def ratio_line(results, a: str, b: str, target: float | None = None) -> str:
    """The median of the per-round ratios (pairing cancels the load swings between rounds), its quartiles, and the
    ratio of the medians beside it."""
    per_round = [x / y for x, y in zip(results[a], results[b])]
    value = statistics.median(per_round)
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else [value, value, value]
    verdict = "" if target is None else (f" (target >= {target:.2f}) -> " + ("MET" if value >= target else "NOT MET"))
    return (f"{a} / {b}: paired median {value:.3f}x{verdict}; quartiles {quartiles[0]:.2f}..{quartiles[2]:.2f}; "
            f"ratio of medians {statistics.median(results[a]) / statistics.median(results[b]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=15, help="timed fp32 steps per arm and round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--bf16-steps", type=int, default=8, help="timed steps of the bf16 comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = models.load_tokenizer(MODEL)
    datamodule = make_datamodule(tokenizer, args.batch_size, (args.warmup + args.steps + 2) * args.batch_size)
    optim = {}

    def trainer_arm():
        tokens_per_s, optim["hf"] = run_hf_trainer(datamodule, args.steps, args.warmup, "32-true")
        return tokens_per_s

    fp32 = {"lowres": lambda: run_lowres(datamodule, args.steps, args.warmup, "32-true", "masked"),
            "lowres-all": lambda: run_lowres(datamodule, args.steps, args.warmup, "32-true", "all"),
            "loop-all": lambda: run_loop(datamodule, args.steps, args.warmup, "32-true", "all"),
            "loop-masked": lambda: run_loop(datamodule, args.steps, args.warmup, "32-true", "masked"),
            "hf-trainer": trainer_arm}
    print(f"# fp32: {MODEL} MLM, batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{args.rounds} rounds, 1 torch thread")
    results = interleave(fp32, args.rounds)
    print(f"{'arm':12s} {'median tokens/s':>16s}  per round")
    for name, values in results.items():
        print(f"{name:12s} {statistics.median(values):16.0f}  {', '.join(f'{v:.0f}' for v in values)}")
    print(f"(transformers Trainer optimizer: {optim.get('hf')})")
    print(ratio_line(results, "lowres-all", "loop-all", 0.95), "<- trainer overhead, same forward")
    print(ratio_line(results, "lowres", "hf-trainer", 1.0), "<- lowres as used vs transformers' Trainer")
    print(ratio_line(results, "lowres-all", "hf-trainer"), "<- same forward as the Trainer")
    print(ratio_line(results, "lowres", "loop-masked", 0.95), "<- trainer overhead, masked head on both")
    print(ratio_line(results, "loop-masked", "loop-all"), "<- what the masked-only head saves")

    small = make_datamodule(tokenizer, args.batch_size, (args.warmup + args.bf16_steps + 2) * args.batch_size)
    runners = {"lowres": run_lowres, "loop": run_loop}
    bf16 = {f"{arm}-{p}": (lambda arm=arm, p=p: runners[arm](small, args.bf16_steps, args.warmup, p, "masked"))
            for arm in runners for p in ("32-true", "bf16-mixed")}
    print(f"# bf16-mixed vs 32-true on this CPU: masked head, {args.bf16_steps} timed steps, 3 rounds")
    speeds = interleave(bf16, 3)
    for arm in ("lowres", "loop"):
        print(ratio_line(speeds, f"{arm}-bf16-mixed", f"{arm}-32-true"), "<- bf16 / fp32 speed")


if __name__ == "__main__":
    main()
