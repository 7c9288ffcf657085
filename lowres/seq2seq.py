"""Fine-tuned encoder-decoder models at work: generation, its quality and its cost.

Quality: ROUGE-1/2/L by Google's `rouge-score` (Porter stemming, the best reference when there are several) and,
for generative QA, SQuAD exact match / F1 (lowres.qa_metrics); baselines with no model: the first sentence of the
document (summarization's lead baseline) and the lexical extractive reader of lowres.rag (QA). Cost: generation
latency one request at a time (batch 1) with greedy search and beam search, and batched throughput, with the
generated tokens counted. Export: the adapter (LoRA) and a full checkpoint with its tokenizer, so a run's
`checkpoint/` is a model directory other studies can load (the rag study's reader).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
GREEDY = 1


@dataclasses.dataclass
class Generation:
    texts: list
    new_tokens: list  # generated tokens per example (end-of-sequence included, padding not)

    @property
    def total_tokens(self) -> int:
        return int(sum(self.new_tokens))


def decoding_name(num_beams: int) -> str:
    return "greedy" if num_beams == GREEDY else f"beam{num_beams}"


def check_pairs(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references; pass one per example")
    if not predictions:
        raise ValueError("no predictions to score")


def rouge_scores(predictions: Sequence[str], references: Sequence) -> dict:
    """Mean ROUGE F-measure per type (0..1). `references[i]` is a string or a list of accepted strings (then the
    best one counts, as rouge-score's `score_multi` picks it)."""
    from rouge_score import rouge_scorer

    check_pairs(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, references):
        scores = scorer.score_multi([refs] if isinstance(refs, str) else list(refs), prediction)
        for kind in ROUGE_TYPES:
            totals[kind] += scores[kind].fmeasure
    return {kind: total / len(predictions) for kind, total in totals.items()}


def quality(predictions: Sequence[str], rows: Sequence[dict], task: str) -> dict:
    """ROUGE always; exact match and F1 too for QA (the SQuAD normalisation)."""
    from lowres.qa_metrics import squad_scores

    references = [r["references"] for r in rows]
    scores = rouge_scores(predictions, references)
    if task == "qa":
        scores.update(squad_scores(predictions, references))
    return scores


def lead_sentence(text: str) -> str:
    from lowres.rag import sentences

    found = sentences(text)
    return found[0].strip() if found else text


def baseline_predictions(rows: Sequence[dict], task: str) -> tuple[str, list[str]]:
    """(name, predictions) of the model-free floor: the lead sentence, or the extractive reader for QA."""
    if task == "qa":
        from lowres.rag import READER_BASELINE, baseline_extractive_reader

        return READER_BASELINE, [baseline_extractive_reader(r["question"], [r["context"]]) for r in rows]
    return "lead sentence", [lead_sentence(r["source"]) for r in rows]


def encode_sources(tokenizer, sources: Sequence[str], max_input_tokens: int, device):
    enc = tokenizer(list(sources), return_tensors="pt", padding=True, truncation=True, max_length=max_input_tokens)
    enc.pop("token_type_ids", None)
    return enc.to(device)


def generate(model, tokenizer, sources: Sequence[str], num_beams: int = GREEDY, max_new_tokens: int = 32,
             max_input_tokens: int = 512, batch_size: int = 16) -> Generation:
    """Decode every source (deterministic: greedy or beam search), in batches, counting generated tokens."""
    import torch

    model.eval()
    pad = model.generation_config.pad_token_id
    texts, counts = [], []
    with torch.inference_mode():
        for start in range(0, len(sources), batch_size):
            enc = encode_sources(tokenizer, sources[start:start + batch_size], max_input_tokens, model.device)
            out = model.generate(**enc, num_beams=num_beams, do_sample=False, max_new_tokens=max_new_tokens)
            generated = out[:, 1:]  # the first position is the decoder's start token, not generated
            counts += (generated != pad).sum(dim=1).tolist()
            texts += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return Generation([t.strip() for t in texts], counts)


def synchronize(model) -> None:
    import torch

    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def request_latency(model, tokenizer, sources: Sequence[str], num_beams: int = GREEDY, max_new_tokens: int = 32,
                    max_input_tokens: int = 512, warmup: int = 2) -> dict:
    """One request at a time (batch 1), as a service answers: p50/p95/mean ms per request, generated tokens per
    request and ms per generated token; `warmup` requests first, untimed."""
    from lowres.rag import LatencyStats

    for source in sources[:warmup]:
        generate(model, tokenizer, [source], num_beams, max_new_tokens, max_input_tokens, batch_size=1)
    seconds, tokens = [], []
    for source in sources:
        synchronize(model)
        start = time.perf_counter()
        out = generate(model, tokenizer, [source], num_beams, max_new_tokens, max_input_tokens, batch_size=1)
        synchronize(model)
        seconds.append(time.perf_counter() - start)
        tokens.append(out.total_tokens)
    stats = LatencyStats.of(seconds).to_dict()
    return {**stats, "decoding": decoding_name(num_beams), "num_beams": num_beams,
            "new_tokens_mean": sum(tokens) / len(tokens), "ms_per_token": 1000 * sum(seconds) / max(sum(tokens), 1)}


def batched_throughput(model, tokenizer, sources: Sequence[str], batch_size: int = 16, max_new_tokens: int = 32,
                       max_input_tokens: int = 512) -> dict:
    """Greedy generation over every source in batches of `batch_size` (one batch first, untimed)."""
    generate(model, tokenizer, sources[:batch_size], GREEDY, max_new_tokens, max_input_tokens, batch_size)
    synchronize(model)
    start = time.perf_counter()
    out = generate(model, tokenizer, sources, GREEDY, max_new_tokens, max_input_tokens, batch_size)
    synchronize(model)
    seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "n": len(sources), "seconds": seconds,
            "examples_per_s": len(sources) / seconds, "tokens_per_s": out.total_tokens / seconds,
            "ms_per_example": 1000 * seconds / len(sources)}


@dataclasses.dataclass
class Export:
    """What a seq2seq fine-tuning run leaves: the adapter (LoRA) and a full checkpoint with its tokenizer."""

    adapter_dir: Path | None
    adapter_bytes: int | None
    checkpoint_dir: Path
    checkpoint_bytes: int
    reload_agreement: float  # share of probe sources the reloaded model decodes exactly as the trained one
    model: object  # the full fp32 model on the CPU (LoRA merged into it)

    def metrics(self) -> dict:
        share = 100.0 * self.adapter_bytes / self.checkpoint_bytes if self.adapter_bytes is not None else None
        return {"adapter_bytes": self.adapter_bytes, "checkpoint_bytes": self.checkpoint_bytes,
                "adapter_vs_checkpoint_pct": share, "reload_agreement": self.reload_agreement}


SOURCE_TEMPLATE_FILE = "lowres_source_template.json"  # beside a checkpoint: the format its sources were written in


def save_source_template(checkpoint: Path, template: str | None) -> None:
    if template is not None:
        (Path(checkpoint) / SOURCE_TEMPLATE_FILE).write_text(json.dumps({"template": template}) + "\n")


def trained_source_template(model_dir) -> str | None:
    """The source format a model fine-tuned here learned (e.g. "question: {question} context: {context}"), read
    from its checkpoint; None for any other model."""
    path = Path(model_dir) / SOURCE_TEMPLATE_FILE
    return json.loads(path.read_text())["template"] if path.is_file() else None


def agreement(first: Sequence[str], second: Sequence[str]) -> float:
    return sum(a == b for a, b in zip(first, second)) / max(len(first), 1)


def export(net, tokenizer, name: str, method: str, folder: Path, probe_sources: Sequence[str],
           max_new_tokens: int = 32, max_input_tokens: int = 512, source_template: str | None = None) -> Export:
    """Save (adapter for LoRA; the full model always, with the tokenizer), reload, and check the reload decodes
    `probe_sources` (greedy) exactly as the trained model does. For lora-8bit the check is on the reloaded 8-bit
    model and the checkpoint is the adapter merged into the fp32 base. `source_template` (the corpus's, for QA) is
    saved beside the checkpoint so a reader built from it is prompted as it was trained."""
    from lowres import lora, models

    folder, checkpoint = Path(folder), Path(folder) / "checkpoint"
    trained = generate(net, tokenizer, probe_sources, GREEDY, max_new_tokens, max_input_tokens).texts
    adapter_dir = adapter_bytes = None
    if method == "full":
        net.save_pretrained(checkpoint)
        reloaded = models.load_model(str(checkpoint), "seq2seq")
    else:
        adapter_dir = folder / "adapter"
        net.save_pretrained(adapter_dir)
        adapter_bytes = lora.dir_bytes(adapter_dir)
        reloaded = lora.reload_adapter(name, adapter_dir, method, task="seq2seq")
    again = generate(reloaded.to(net.device), tokenizer, probe_sources, GREEDY, max_new_tokens, max_input_tokens).texts
    if method != "full":
        fp32 = lora.reload_adapter(name, adapter_dir, "lora", task="seq2seq") if method == "lora-8bit" else reloaded
        reloaded = fp32.merge_and_unload()
        reloaded.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)  # the checkpoint is a model directory: lowres.models.load_* reads it
    save_source_template(checkpoint, source_template)
    return Export(adapter_dir, adapter_bytes, checkpoint, lora.dir_bytes(checkpoint), agreement(trained, again),
                  reloaded.float().cpu().eval())
