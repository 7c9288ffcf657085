"""Full fine-tuning vs LoRA (peft) of a sequence classifier: build, count, export adapters, reload.

Methods: `full` (every weight trains); `lora` (low-rank adapters on the attention query/value projections, as
in the LoRA paper; the freshly initialised head trains in full through peft's `modules_to_save`); `lora-8bit`
(QLoRA-style: the frozen base is loaded in 8 bits by bitsandbytes, `prepare_model_for_kbit_training`, then
LoRA; on the current CUDA device, else on the CPU, where recent bitsandbytes (0.50 here) runs LLM.int8
too - probed, not assumed). Training itself is `lowres.train.ClassificationModule` (it takes any nn.Module, a PeftModel included),
shared with the DistilBERT study.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import warnings
from pathlib import Path

METHODS = ("full", "lora", "lora-8bit")
EIGHT_BIT_METHODS = ("lora-8bit",)
# model_type -> (default LoRA targets, head modules that are new for the task and so train in full). BERT's pooler
# (dense + tanh over [CLS]) is pretrained and stays frozen by default, as in peft; `modules_to_save` can add it: for
# MiniLM's sentence-embedding checkpoint, trained with mean pooling, the pooler is stale, and a CPU-sized LoRA run
# on SST-2 stays near chance without it (held-out slice of train: 0.52 frozen, 0.76 trained, 32 steps). On the
# random tiny-bert, training it makes LoRA collapse to one class on synthetic sentiment (0.47-0.53 at lr 5e-4..2e-2).
ARCHITECTURES = {
    "bert": (("query", "value"), ("classifier",)),  # BERT and MiniLM
    "distilbert": (("q_lin", "v_lin"), ("pre_classifier", "classifier")),
    "roberta": (("query", "value"), ("classifier",)),  # RobertaClassificationHead: dense + out_proj
    "t5": (("q", "v"), ()),  # seq2seq: the LM head is pretrained (tied to the embeddings in tiny-t5); nothing new
}
TASK_TYPES = {"classification": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}  # our task -> peft's TaskType


def eight_bit_device() -> str:
    """Where the 8-bit base lives: the current CUDA device when there is one, else the CPU."""
    import torch

    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


@functools.cache
def bnb_8bit_problem(device: str) -> str | None:
    """None when bitsandbytes runs an 8-bit Linear forward + backward on `device`; else why not (probed once)."""
    try:
        import bitsandbytes as bnb
        import torch

        layer = bnb.nn.Linear8bitLt(8, 8, has_fp16_weights=False).to(device)  # quantizes the weight to int8
        x = torch.randn(2, 8, device=device, dtype=torch.float16, requires_grad=True)
        layer(x).sum().backward()
    except Exception as err:  # noqa: BLE001 - any failure means "not here"; the message says which
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def valid_methods(device: str | None = None) -> list[str]:
    device = device or eight_bit_device()
    return [m for m in METHODS if m not in EIGHT_BIT_METHODS or bnb_8bit_problem(device) is None]


def check_method(method: str, device: str | None = None) -> None:
    """Raise ValueError naming the bad method and the methods valid on this machine."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; valid: {', '.join(METHODS)}")
    if method in EIGHT_BIT_METHODS:
        device = device or eight_bit_device()
        problem = bnb_8bit_problem(device)
        if problem:
            raise ValueError(f"method {method!r} needs bitsandbytes 8-bit layers, which fail on {device} here "
                             f"({problem}); valid methods here: {', '.join(valid_methods(device))}")


LORA_FIELDS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_modules_to_save", "lora_lr")


def settle_lora_fields(params) -> None:
    """A fine-tuning study's Params (fields `method`, `lr` and those of LORA_FIELDS it has), once, at construction:
    for `full` the LoRA settings do not apply and are cleared (None), so grid points differing only in them are
    identical and the runner keeps one; for LoRA they must be set."""
    check_method(params.method)
    fields = [name for name in LORA_FIELDS if hasattr(params, name)]
    if params.method == "full":
        for name in fields:
            object.__setattr__(params, name, None)  # frozen dataclass: normalised here only
        if params.lr is None:
            raise ValueError("lr must be set for method 'full' (a learning rate in (0, 1))")
        return
    for name in ("lora_rank", "lora_alpha", "lora_dropout", "lora_lr"):
        if getattr(params, name) is None:
            raise ValueError(f"{name} must be set for method {params.method!r} (null only for method 'full')")
    if params.lora_target_modules is not None and not split_names(params.lora_target_modules):
        raise ValueError("lora_target_modules must name at least one module (comma-separated), or be null "
                         "(the architecture's query/value projections)")
    object.__setattr__(params, "lr", None)  # unused by LoRA; cleared so a grid over lr does not repeat runs


def split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def check_lora_settings(rank: int, alpha: int, dropout: float) -> None:
    """Raise ValueError naming the bad LoRA setting (peft's own errors come later and less clearly)."""
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1 (e.g. 1, 2, 4, 8, 16, 32, 64), got {rank!r}")
    if not alpha or alpha <= 0:
        raise ValueError(f"LoRA alpha must be > 0, got {alpha!r}")
    if dropout is None or not 0 <= dropout < 1:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout!r}")


def architecture(model_type: str) -> tuple[tuple, tuple]:
    if model_type not in ARCHITECTURES:
        raise ValueError(f"no default LoRA target modules for model type {model_type!r} (known: "
                         f"{', '.join(ARCHITECTURES)}); pass lora_target_modules explicitly")
    return ARCHITECTURES[model_type]


def linear_module_names(model) -> list[str]:
    """Leaf names of the model's Linear layers (bitsandbytes' 8-bit Linear subclasses nn.Linear): LoRA's targets."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def lora_config(model, rank: int = 8, alpha: int = 16, dropout: float = 0.1, target_modules=None,
                modules_to_save=None, task: str = "classification"):
    """peft LoraConfig for sequence classification or seq2seq LM; default targets and head per architecture,
    checked against the model (`modules_to_save`: the modules trained in full beside the adapters)."""
    from peft import LoraConfig, TaskType

    check_lora_settings(rank, alpha, dropout)
    kind = model.config.model_type
    if target_modules:  # explicit targets also work for architectures without defaults here
        targets, heads = list(target_modules), ARCHITECTURES.get(kind, ((), ("classifier",)))[1]
    else:
        targets, heads = (list(names) for names in architecture(kind))
    heads = list(modules_to_save) if modules_to_save else list(heads)
    check_names("LoRA target modules", targets, linear_module_names(model), f"Linear layers of this {kind} model")
    check_names("modules to train in full (modules_to_save)", heads, module_names(model), f"modules of this {kind} model")
    return LoraConfig(task_type=TaskType[TASK_TYPES[task]], r=rank, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=targets, modules_to_save=heads or None)


def module_names(model) -> list[str]:
    """Leaf names of every named module (what peft's `modules_to_save` matches, by suffix)."""
    return sorted({name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name})


def check_names(what: str, names, valid: list[str], kind: str) -> None:
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"{what} {unknown} are not {kind}; valid: {', '.join(valid)}")


class _DropFp16CastNotice(logging.Filter):
    """LLM.int8 casts every input to fp16 by design; bitsandbytes logs that on every forward pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast from" not in record.getMessage()


@contextlib.contextmanager
def quiet_peft():
    """peft still asks transformers for the deprecated `is_gradient_checkpointing`: a FutureWarning per model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def load_base(name: str, method: str, num_labels: int = 2, task: str = "classification"):
    """The model to adapt (`task`: classification or seq2seq): fp32, or for `lora-8bit` an 8-bit base on
    `eight_bit_device()`."""
    from lowres import models

    if method not in EIGHT_BIT_METHODS:
        return models.load_model(name, task, num_labels=num_labels)
    from transformers import BitsAndBytesConfig

    from lowres.quantize import INT8_SKIP

    bnb_logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropFp16CastNotice) for f in bnb_logger.filters):
        bnb_logger.addFilter(_DropFp16CastNotice())
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(INT8_SKIP[task]))
    return models.load_model(name, task, num_labels=num_labels, quantization_config=config,
                             device_map={"": eight_bit_device()})


def build_model(name: str, method: str, num_labels: int = 2, rank: int = 8, alpha: int = 16, dropout: float = 0.1,
                target_modules=None, modules_to_save=None, gradient_checkpointing: bool = False,
                task: str = "classification"):
    """The network to train: the plain model (`full`) or a PeftModel (`lora`, `lora-8bit`); `task` is
    classification (a new head) or seq2seq (an encoder-decoder LM)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    check_method(method)
    if method != "full":
        check_lora_settings(rank, alpha, dropout)
    net = load_base(name, method, num_labels, task)
    with quiet_peft():
        if method == "lora-8bit":  # fp32 norms/head, input grads on; checkpointing off to compare like with like
            net = prepare_model_for_kbit_training(net, use_gradient_checkpointing=gradient_checkpointing)
        if method != "full":
            net = get_peft_model(net, lora_config(net, rank, alpha, dropout, target_modules, modules_to_save, task))
    # from_pretrained returns eval mode and Lightning >= 2.2 keeps the modes it finds: without this, every
    # dropout (the model's and LoRA's) would be off during training.
    return net.train()


def parameter_counts(model) -> dict:
    """Trainable/total parameters: peft's own count for a PeftModel, torch's otherwise; torch's trainable beside it."""
    from lowres.models import count_parameters

    by_torch = count_parameters(model)
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        source = "peft.get_nb_trainable_parameters"
    else:
        trainable, total, source = by_torch["trainable"], by_torch["total"], "torch (requires_grad)"
    return {"trainable_params": trainable, "total_params": total, "trainable_pct": 100.0 * trainable / total,
            "params_counted_by": source, "trainable_params_torch": by_torch["trainable"]}


def last_validation_predictions(module):
    """Predictions of the trained model in the last validation epoch of `fit` (on its training device/precision)."""
    import torch

    if not getattr(module, "val_preds", None):
        raise ValueError("the module has no validation predictions: fit it with a validation loader first")
    return torch.cat(module.val_preds), torch.cat(module.val_labels)


def autocast_like(precision: str, device: str):
    """The autocast Lightning used for `precision`, so a reloaded model is compared like with like."""
    import torch

    if precision not in ("16-mixed", "bf16-mixed"):
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "16-mixed" and device == "cuda" else torch.bfloat16  # CPU: 16-mixed is bf16
    return torch.autocast(device_type=device, dtype=dtype)


def prediction_agreement(model, reference_preds, val_loader, precision: str = "32-true", device: str = "cpu") -> float:
    """Share of validation examples where `model` predicts what the trained model predicted."""
    from lowres.train import predict

    with autocast_like(precision, device):
        preds, _ = predict(model, val_loader, device)
    return float((preds == reference_preds).float().mean())


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def reload_adapter(name: str, adapter_dir: Path, method: str, num_labels: int = 2, task: str = "classification"):
    """Base model (loaded as `method` trained it) + the saved adapter and head."""
    from peft import PeftModel

    with quiet_peft():
        return PeftModel.from_pretrained(load_base(name, method, num_labels, task), str(adapter_dir))


@dataclasses.dataclass
class Export:
    """What a fine-tuning run leaves: adapter (LoRA) and full checkpoint on disk, and the fp32 model to quantize."""

    method: str
    adapter_dir: Path | None
    adapter_bytes: int | None
    checkpoint_dir: Path
    checkpoint_bytes: int
    reload_agreement: float  # share of validation predictions the reloaded model reproduces (1.0 = identical)
    model: object  # plain transformers classifier, fp32 on CPU (LoRA merged into the weights)

    def metrics(self) -> dict:
        share = 100.0 * self.adapter_bytes / self.checkpoint_bytes if self.adapter_bytes is not None else None
        return {"adapter_bytes": self.adapter_bytes, "checkpoint_bytes": self.checkpoint_bytes,
                "adapter_vs_checkpoint_pct": share, "reload_agreement": self.reload_agreement}


def export(net, module, name: str, method: str, folder: Path, val_loader, num_labels: int = 2,
           precision: str = "32-true") -> Export:
    """Save (adapter for LoRA, full checkpoint always), reload, check the reload reproduces the trained predictions.

    LoRA: `folder/adapter` holds adapter + head; the reloaded model is merged into `folder/checkpoint`, the
    full-size model one would otherwise ship. Full: `folder/checkpoint` is the fine-tuned model itself.
    lora-8bit: the agreement is checked on the reloaded 8-bit model; the exported fp32 model is the adapter
    merged into the fp32 base, so its accuracy (the inference table's fp32 row) can differ slightly from the
    trained 8-bit model's.
    """
    from lowres import models
    from lowres.quantize import default_device

    folder, device = Path(folder), default_device()
    reference, _ = last_validation_predictions(module)
    adapter_dir = adapter_bytes = None
    if method == "full":
        net.save_pretrained(folder / "checkpoint")
        reloaded = models.load_model(str(folder / "checkpoint"), "classification", num_labels=num_labels)
    else:
        adapter_dir = folder / "adapter"
        net.save_pretrained(adapter_dir)
        adapter_bytes = dir_bytes(adapter_dir)
        reloaded = reload_adapter(name, adapter_dir, method, num_labels)
    agreement = prediction_agreement(reloaded, reference, val_loader, precision, device)
    if method != "full":
        fp32 = reload_adapter(name, adapter_dir, "lora", num_labels) if method == "lora-8bit" else reloaded
        reloaded = fp32.merge_and_unload()
        reloaded.save_pretrained(folder / "checkpoint")
    return Export(method, adapter_dir, adapter_bytes, folder / "checkpoint", dir_bytes(folder / "checkpoint"),
                  agreement, reloaded.float().cpu().eval())
