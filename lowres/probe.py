"""`lowres recommend ... --probe`: run the recommended plan on this machine for a minute before spending hours.

The plan's served model is built as the plan says (method, precision, batch, sequence length) in a fresh
process (`python -m lowres.probe`) with a time cap, and runs a few training steps (or batched forward passes,
for prompting and RAG) and a few requests at batch 1, under the Meter. Inputs are random token ids of the
plan's length: cost depends on shapes, not on words. The report puts measured beside estimated: the model's
own peak memory (CPU: the process's peak RSS minus its RSS before the model was built; CUDA: the allocator's
peak), the step time and the time per epoch it projects, the per-request latency, the energy with its source.

The probe is saved as a result of the `selector` study (params: the request + the model + probe=true), so the
next recommendation on the same hardware fingerprint reads it (lowres.selector.measured_memory,
measured_latencies) and cites it. A step that runs out of memory, or a first step that does not finish within
the cap, halves the batch and tries again (a smaller batch needs less memory and a shorter step); a plan that
cannot run even at batch 1 is answered with the next plan that fits (the strategy is excluded and the
selector asked again).
"""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lowres import memory, selector

DEFAULT_SECONDS = 120
MIN_SECONDS, MAX_SECONDS = 20, 3600
MAX_STEPS, MAX_REQUESTS = 8, 10  # the first of each is a warm-up, not timed
STEP_SHARE = 0.6  # of the time left after loading, for the steps; the requests get the rest
CAP_RESERVE_S = 3.0  # left at the end for the Meter to close its windows and the result to be written
MAX_ATTEMPTS = 4
VOCAB_FLOOR = 1000  # random ids from here up: past the special tokens of every vocabulary in use


class ProbeError(selector.SelectorError):
    """A probe that cannot start (model not available here, a precision the probe cannot build): one line."""


@dataclasses.dataclass
class ProbeSpec:
    """What the child process builds and runs (JSON across the process boundary)."""

    task: str
    strategy: str
    model: str
    method: str  # full | lora | inference (lowres.memory)
    precision: str
    batch_size: int
    seq_len: int
    target_len: int
    device: str
    seconds: float
    embedder: str | None = None  # RAG: the query embedder, timed with each request

    @property
    def generates(self) -> bool:
        return selector.task_kind(self.task, self.strategy) == "generation"


# ---------------------------------------------------------------------------------------------- child process
def random_batch(vocab: int, batch: int, seq: int, labels: str | None, target_len: int = 0) -> dict:
    import torch

    ids = torch.randint(VOCAB_FLOOR, vocab, (batch, seq))
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if labels == "classification":
        out["labels"] = torch.randint(0, 2, (batch,))
    elif labels == "seq2seq":
        out["labels"] = torch.randint(VOCAB_FLOOR, vocab, (batch, max(target_len, 1)))
    return out


def build_network(spec: ProbeSpec):
    """The plan's model: the classifier or seq2seq model, with LoRA adapters for `lora`, quantized for INT8
    serving on a CPU, in FP16 for FP16 on CUDA."""
    from lowres import lora, models, quantize

    if spec.precision == "int4" or (spec.precision == "int8" and spec.device == "cuda" and spec.method != "lora"):
        raise ProbeError(f"the probe cannot build a {spec.precision.upper()} {spec.method} model on {spec.device} yet")
    kind = "seq2seq" if spec.generates else "classification"
    if spec.method == "lora" and kind == "classification":
        return lora.build_model(spec.model, "lora-8bit" if spec.precision == "int8" else "lora", 2)
    net = models.load_model(spec.model, kind)
    if spec.method == "lora":
        from peft import LoraConfig, get_peft_model

        net = get_peft_model(net, LoraConfig(r=memory.LORA_RANK, lora_alpha=16, target_modules=["q", "v"]))
    if spec.method == "inference" and spec.precision == "int8":
        return quantize.dynamic_int8(net, inplace=True)
    if spec.method == "inference" and spec.precision == "fp16":
        return net.half()
    return net


def timed(fn, device: str) -> float:
    from lowres.quantize import sync

    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def run_steps(net, spec: ProbeSpec, vocab: int, until: float) -> list[float]:
    """Training steps (AdamW) or, for a served model, batched forward passes; seconds per step."""
    import torch

    labels = None if spec.method == "inference" else "seq2seq" if spec.generates else "classification"
    batch = {k: v.to(spec.device) for k, v in random_batch(vocab, spec.batch_size, spec.seq_len, labels,
                                                             spec.target_len).items()}
    autocast = spec.precision == "fp16" and spec.device == "cuda" and spec.method != "inference"
    if spec.method == "inference":
        def step():
            with torch.inference_mode():
                net(**batch, **decoder_start(net, batch))
    else:
        optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)

        def step():
            with torch.autocast(spec.device, dtype=torch.float16, enabled=autocast):
                loss = net(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    net.train(spec.method != "inference")
    return repeat_until(step, spec.device, MAX_STEPS, until)


def repeat_until(action, device: str, most: int, until: float) -> list[float]:
    """Seconds of each call of `action`: at least one, at most `most`, and no call that would end after `until`
    (judged by the last one's time), so the probe keeps inside its cap rather than being killed at it."""
    times = [timed(action, device)]
    while len(times) < most and time.perf_counter() + times[-1] < until:
        times.append(timed(action, device))
    return times


def decoder_start(net, batch: dict) -> dict:
    """A seq2seq model's forward needs decoder inputs: one start token per example."""
    if not getattr(net.config, "is_encoder_decoder", False):
        return {}
    import torch

    start = net.config.decoder_start_token_id or 0
    return {"decoder_input_ids": torch.full((batch["input_ids"].shape[0], 1), start, device=batch["input_ids"].device)}


def run_requests(net, spec: ProbeSpec, vocab: int, until: float, embedder=None) -> list[float]:
    """Requests at batch 1 in eval mode: a forward pass, or for a generator the time to its first token (the
    budget the selector checks); RAG adds the query's embedding. Seconds per request."""
    import torch

    net.eval()
    request = {k: v.to(spec.device) for k, v in random_batch(vocab, 1, spec.seq_len, None).items()}

    def answer():
        with torch.inference_mode():
            if embedder is not None:
                embedder.encode(["a question of about thirty two tokens " * 4], normalize_embeddings=True)
            if spec.generates:
                net.generate(**request, max_new_tokens=1, do_sample=False)
            else:
                net(**request)
    return repeat_until(answer, spec.device, MAX_REQUESTS, until)


def vocab_size(net) -> int:
    return int(getattr(net.config, "vocab_size", 0) or net.get_input_embeddings().num_embeddings)


def probe_in_this_process(spec: ProbeSpec) -> dict:
    """The child's work: build, step, answer; measured figures and the Meter's windows."""
    from lowres import batch_fit, models
    from lowres.meters import Meter

    started = time.perf_counter()
    deadline = started + spec.seconds
    meter = Meter()
    import_libraries(spec)  # their memory is the runtime's, not the model's: loaded before the baseline is read
    batch_fit.reset_peak(spec.device)
    before = batch_fit.process_rss_bytes()
    with meter.window("probe_load"):
        net = build_network(spec)
        net = net if spec.precision == "int8" else net.to(spec.device)  # quantized weights stay where they were built
        embedder = models.load_embedder(spec.embedder, spec.device) if spec.embedder else None
    vocab = vocab_size(net)
    loaded = time.perf_counter()
    with meter.window("probe_steps", samples=0) as window:
        steps = run_steps(net, spec, vocab, loaded + STEP_SHARE * (deadline - loaded))
        window.samples, window.steps = spec.batch_size * len(steps), len(steps)
        model_peak = model_peak_bytes(spec.device, before)
        process_peak = batch_fit.peak_bytes(spec.device) if spec.device == "cpu" else None
    with meter.window("probe_requests") as window:
        requests = run_requests(net, spec, vocab, deadline - CAP_RESERVE_S, embedder)
        window.samples = len(requests)
    return {"steps": len(steps), "step_s": statistics.median(steps[1:] or steps),
            "step_s_includes_warmup": len(steps) == 1,
            "requests": len(requests), "latency_ms": 1000 * statistics.median(requests[1:] or requests),
            "model_peak_bytes": model_peak, "process_peak_bytes": process_peak,
            "memory_kind": MODEL_MEMORY_KIND[spec.device], "load_s": loaded - started,
            "measurements": meter.to_dict()}


def import_libraries(spec: ProbeSpec) -> None:
    import importlib

    for name in ("torch", "transformers", "peft" if spec.method == "lora" else None,
                 "sentence_transformers" if spec.embedder else None):
        if name:
            importlib.import_module(name)
    if spec.device == "cuda":
        import torch

        torch.zeros(1, device="cuda")  # the CUDA context, before the allocator's peak is reset


MODEL_MEMORY_KIND = {"cpu": "process peak RSS minus its RSS before the model was built",
                     "cuda": "CUDA allocator peak (torch.cuda.max_memory_allocated)"}


def model_peak_bytes(device: str, before: float) -> float:
    if device == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated())
    from lowres.batch_fit import peak_bytes

    return peak_bytes("cpu") - before


def child_main(spec_path: str, out_path: str) -> int:
    """`python -m lowres.probe spec.json out.json`: the probe, or {"error", "oom"} when it fails."""
    from lowres.batch_fit import is_out_of_memory
    from lowres import quiet

    quiet.third_party()
    spec = ProbeSpec(**json.loads(Path(spec_path).read_text()))
    try:
        found = probe_in_this_process(spec)
    except (RuntimeError, MemoryError, ProbeError) as err:
        found = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                 "oom": is_out_of_memory(err) and not isinstance(err, ProbeError)}
    Path(out_path).write_text(json.dumps(found, default=str))
    return 0 if "error" not in found else 1


# ---------------------------------------------------------------------------------------------- parent side
@dataclasses.dataclass
class ProbeReport:
    """Measured beside estimated for one plan; `run_id` names the saved selector result."""

    plan: selector.Recommendation
    spec: ProbeSpec
    measured: dict
    estimated: dict
    fits: dict
    attempts: list
    run_id: str | None = None
    location: str | None = None

    def rows(self) -> list[tuple[str, str, str]]:
        m, e = self.measured, self.estimated
        return [("peak memory, the model's own *", gb(m.get("model_peak_gb")), gb(e.get("model_peak_gb"))),
                ("peak memory, the whole process", gb(m.get("process_peak_gb")), gb(e.get("required_gb"))),
                ("step time" + (" (training)" if self.spec.method != "inference" else " (batched forward)"),
                 selector.fmt_duration(m.get("step_s")) + f" at batch {self.spec.batch_size}"
                 + (" (one step: warm-up included)" if m.get("step_s_includes_warmup") else ""), "-"),
                ("time per epoch (projected)", selector.fmt_duration(m.get("epoch_s")),
                 selector.fmt_duration(e.get("epoch_s"))),
                ("latency per request (batch 1)", ms(m.get("latency_ms")), ms(e.get("latency_ms"))),
                ("energy of the probe", joules(m.get("energy_j"), m.get("energy_source")), "-")]

    def verdict(self) -> str:
        parts = [f"{what}: {'yes' if ok else 'no'}" for what, ok in self.fits.items()]
        return "fits the budget: " + ", ".join(parts)

    def title(self) -> str:
        return (f"Probe of {selector.STRATEGY_LABELS[self.spec.strategy]} with {self.spec.model} on this machine "
                f"({self.spec.device}, {plural(self.measured['steps'], 'step')}, "
                f"{plural(self.measured['requests'], 'request')})")

    def notes(self) -> list[str]:
        saved = ([f"saved as {self.run_id} ({self.location}): the next recommendation here is calibrated by it"]
                 if self.location else [])
        return ([f"* {self.measured.get('memory_kind')}", self.verdict()] +
                [f"attempt: {a}" for a in self.attempts] + saved)

    def __str__(self) -> str:
        width, got_width = max(len(r[0]) for r in self.rows()), max(len(r[1]) for r in self.rows())
        lines = [self.title(), f"  {'':{width}}  {'measured':{got_width}}  the plan's estimate"]
        lines += [f"  {name:{width}}  {got:{got_width}}  {est}" for name, got, est in self.rows()]
        return "\n".join(lines + [f"  {note}" for note in self.notes()])

    def _repr_html_(self) -> str:
        import html

        body = "".join(f"<tr><th style='text-align:left'>{html.escape(n)}</th><td>{html.escape(g)}</td>"
                       f"<td>{html.escape(e)}</td></tr>" for n, g, e in self.rows())
        notes = "".join(f"<li>{html.escape(t)}</li>" for t in self.notes())
        return (f"<p><b>{html.escape(self.title())}</b></p><table class='lowres-probe'><tr><th></th>"
                f"<th>measured</th><th>the plan's estimate</th></tr>{body}</table><ul>{notes}</ul>")

    def to_dict(self) -> dict:
        return {"spec": dataclasses.asdict(self.spec), "measured": self.measured, "estimated": self.estimated,
                "fits": self.fits, "attempts": self.attempts, "run_id": self.run_id}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def gb(value) -> str:
    return "-" if value is None else f"{value:.2f} GB"


def ms(value) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def joules(value, source) -> str:
    return "not measured" if value is None else f"{value:.0f} J ({source})"


def check_seconds(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_SECONDS <= value <= MAX_SECONDS:
        raise ProbeError(f"probe time cap must be {MIN_SECONDS}..{MAX_SECONDS} seconds, got {value!r}")
    return float(value)


def spec_for(rec: selector.Recommendation, seconds_cap: float, seq_len: int | None) -> ProbeSpec:
    served = rec.models.get("model") or rec.models.get("generator")
    seq, target = selector.SEQ_LEN[rec.inputs["task"]]
    return ProbeSpec(task=rec.inputs["task"], strategy=rec.strategy, model=served,
                     method=selector.memory_method(rec.strategy), precision=rec.precision, batch_size=rec.batch_size,
                     seq_len=seq_len or seq, target_len=target, device="cuda" if rec.inputs["hardware"] == "gpu"
                     else "cpu", seconds=seconds_cap, embedder=rec.models.get("embedder"))


def check_available(spec: ProbeSpec) -> None:
    from lowres.models import ModelNotAvailable, resolve

    for name in filter(None, (spec.model, spec.embedder)):
        try:
            resolve(name)
        except ModelNotAvailable:
            raise ProbeError(f"the plan's model {name!r} is not available on this machine, so it cannot be probed; "
                             f"valid: download it, or plan with a model you have (--model tiny-bert, minilm, tiny-t5 "
                             f"or a local directory)") from None


def run_child(spec: ProbeSpec) -> tuple[dict | None, str]:
    """(measured figures, "") or (None, why): the probe in a fresh process, killed at the time cap."""
    with tempfile.TemporaryDirectory(prefix="lowres-probe-") as folder:
        spec_file, out_file = Path(folder) / "spec.json", Path(folder) / "out.json"
        spec_file.write_text(json.dumps(dataclasses.asdict(spec)))
        try:
            subprocess.run([sys.executable, "-m", "lowres.probe", str(spec_file), str(out_file)], timeout=spec.seconds,
                           capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return None, f"over the {spec.seconds:g} s time cap before its first steps and requests finished"
        if not out_file.is_file():
            return None, "the probe process died without a result (killed, or out of memory)"
        found = json.loads(out_file.read_text())
    if "error" in found:
        return None, ("out of memory: " if found["oom"] else "failed: ") + found["error"]
    return found, ""


def estimates(rec: selector.Recommendation) -> dict:
    """The plan's figures for what the probe builds (as the plan states them, calibrated or not): the model's
    peak without the vector index (the probe builds no index); `estimator_peak_gb` also without a previous
    probe's correction, what the saved memory ratio compares with."""
    parts = {k: v for k, v in rec.memory_breakdown_gb.items() if k != "vector_index"}
    return {"model_peak_gb": sum(parts.values()), "required_gb": rec.estimated_memory_gb,
            "estimator_peak_gb": sum(v for k, v in parts.items() if k != "measured_correction"),
            "latency_ms": rec.estimated_latency_ms, "epoch_s": rec.estimated_epoch_s}


def measured_figures(found: dict, spec: ProbeSpec, dataset_size: int | None) -> dict:
    from lowres.summary import energy_of, windows_from_dict

    windows = [m for name, m in windows_from_dict(found["measurements"]).items() if name != "probe_load"]
    energy, source, scope = energy_of(windows)
    steps_per_epoch = math.ceil(dataset_size / spec.batch_size) if dataset_size and spec.method != "inference" else None
    return {"model_peak_gb": found["model_peak_bytes"] / memory.GB, "memory_kind": found["memory_kind"],
            "process_peak_gb": found["process_peak_bytes"] / memory.GB if found.get("process_peak_bytes") else None,
            "step_s": found["step_s"], "steps": found["steps"], "requests": found["requests"],
            "step_s_includes_warmup": found.get("step_s_includes_warmup", False),
            "epoch_s": found["step_s"] * steps_per_epoch if steps_per_epoch else None,
            "latency_ms": found["latency_ms"], "load_s": found["load_s"], "energy_j": energy,
            "energy_source": f"{source}, {scope}" if source else None}


def fits(measured: dict, rec: selector.Recommendation) -> dict:
    """Against the request's budgets: memory as the whole process on a CPU (the budget is its RAM), the model's
    peak + the CUDA context allowance on a GPU; latency per request."""
    budget = rec.inputs["memory_gb"]
    context = memory.RUNTIME_OVERHEAD_BYTES["cuda"] / memory.GB
    memory_used = measured["process_peak_gb"] or measured["model_peak_gb"] + context
    verdict = {f"memory ({gb(memory_used)} of {budget:g} GB)": memory_used <= budget}
    if rec.inputs.get("latency_ms") is not None:
        verdict[f"latency ({ms(measured['latency_ms'])} of {rec.inputs['latency_ms']:g} ms)"] = \
            measured["latency_ms"] <= rec.inputs["latency_ms"]
    hours = rec.inputs.get("train_hours")
    if hours is not None and measured.get("epoch_s") is not None:
        verdict[f"training time ({selector.fmt_duration(measured['epoch_s'])} per epoch of {hours:g} h)"] = \
            measured["epoch_s"] <= hours * 3600
    return verdict


def probe(rec: selector.Recommendation, seconds_cap: float | None = None, seq_len: int | None = None,
          recommend_again=None, outputs=None, save: bool = True) -> ProbeReport:
    """Probe `rec`; out of memory or over the cap, halve its batch; when it cannot run at all ask
    `recommend_again(exclude)` for the next plan and probe that. Saved as a `selector` result unless `save` is
    False."""
    seconds_cap = check_seconds(DEFAULT_SECONDS if seconds_cap is None else seconds_cap)
    attempts, excluded = [], ()
    for _ in range(MAX_ATTEMPTS):
        spec = spec_for(rec, seconds_cap, seq_len)
        check_available(spec)
        found, why = run_child(spec)
        if found is not None:
            report = report_for(rec, spec, found, attempts)
            return save_probe(report, outputs) if save else report
        attempts.append(f"{selector.STRATEGY_LABELS[spec.strategy]}, batch {spec.batch_size}: {why}")
        if why.startswith(("out of memory", "over the")) and spec.batch_size > 1:  # a smaller batch: less memory,
            # a shorter step (the time per epoch it projects stays about the same)
            rec = dataclasses.replace(rec, batch_size=spec.batch_size // 2)
            continue
        excluded += (spec.strategy,)
        if recommend_again is None:
            break
        try:
            rec = recommend_again(excluded)
        except selector.SelectorError as err:
            attempts.append(f"no other plan fits: {err}")
            break
    raise ProbeError("the probe found no plan that runs here: " + "; ".join(attempts))


def report_for(rec, spec, found, attempts) -> ProbeReport:
    measured = measured_figures(found, spec, rec.inputs.get("dataset_size"))
    measured["measurements"] = found["measurements"]
    report = ProbeReport(rec, spec, measured, estimates(rec), {}, attempts)
    report.fits = fits(measured, rec)
    return report


def probe_params(rec: selector.Recommendation, spec: ProbeSpec) -> dict:
    """The saved probe's params: the request, the model it ran, probe=true (its identity: a new probe of the
    same request and model on this machine replaces the last one)."""
    from lowres import config

    fields = {f.name for f in dataclasses.fields(config.params_class("selector"))}
    values = {k: v for k, v in rec.inputs.items() if k in fields}  # the request, as the selector study's params
    cap = None if spec.seconds == DEFAULT_SECONDS else int(spec.seconds)
    return {**values, "gpus": values.get("gpus") or None, "seq_len": spec.seq_len, "model": spec.model, "probe": True,
            "probe_seconds": cap}


def save_probe(report: ProbeReport, outputs=None) -> ProbeReport:
    from lowres import config, results
    from lowres.env import fingerprint
    from lowres.paths import outputs_dir

    params = config.build_params(config.params_class("selector"), probe_params(report.plan, report.spec),
                                 "probe params")
    rid = config.run_id("selector", params)
    measured = {k: v for k, v in report.measured.items() if k != "measurements"}
    metrics = {"probe": {**measured, "estimated": report.estimated, "memory_ratio": ratio(measured["model_peak_gb"],
                         report.estimated["estimator_peak_gb"]), "method": report.spec.method,
                         "precision": report.spec.precision, "device": report.spec.device,
                         "seq_len": report.spec.seq_len, "batch_size": report.spec.batch_size,
                         "strategy": report.spec.strategy, "fits": report.fits, "attempts": report.attempts},
               **selector.plan_metrics(report.plan)}  # flat, as the selector notebook records its plan
    result = results.RunResult(study="selector", run_id=rid, status="ok", params=config.to_dict(params),
                               env=fingerprint(), metrics=metrics, measurements=report.measured["measurements"],
                               profile="probe", started_at=None, finished_at=results.utc_now())
    folder = Path(outputs or outputs_dir()) / "selector" / rid
    folder.mkdir(parents=True, exist_ok=True)
    results.save_result(result, folder)
    report.run_id, report.location = rid, str(folder)
    return report


def ratio(measured, estimated) -> float | None:
    return measured / estimated if measured and estimated else None


if __name__ == "__main__":
    sys.exit(child_main(*sys.argv[1:3]))
