"""Prompting: training-free sentiment classification, zero- and few-shot, every shot count within one run.

- method=embedding (offline default, the pretrained `minilm`): shots=0 is zero-shot by similarity to label
  descriptions; shots=k > 0 runs both class prototypes and a kNN vote over k labelled examples per class.
- method=generative (google/flan-t5-small/base with hub access): a seq2seq or causal LM scores each label word
  after a prompt; shots=k puts k demonstrations (balanced by label, drawn with the seed) in the prompt, and
  every template of the first `n_templates` is run to show how much the wording alone moves accuracy.
Demonstrations/support examples come from the train split, scores from the dev split (`n_eval` of it).
"""
import dataclasses
from typing import List, Literal, Optional

from lowres.config import BaseParams, Count, ModelName, params_dataclass
from lowres.devices import check_device
from lowres.models import TINY_NAMES

SENTIMENT_DATASETS = ("sst2", "synthetic-sentiment", "imdb")  # the label descriptions/verbalizers are sentiment
N_TEMPLATES = 3  # len(lowres.prompting.SENTIMENT_TEMPLATES), kept import-free here
EMBEDDERS_OFFLINE = ("minilm", "minilm-half")
OFFLINE_LMS = TINY_NAMES  # the offline names that are not sentence embedders
ENCODERS_OFFLINE = ("tiny-bert", "tiny-distilbert")  # no LM head: label scoring needs seq2seq or causal


@params_dataclass
class Params(BaseParams):
    dataset: str = "synthetic-sentiment"
    method: Literal["embedding", "generative"] = "embedding"
    model: ModelName = "minilm"
    n_eval: Optional[Count] = 100  # seeded subset of the dev split; null = all of it
    shots: List[int] = dataclasses.field(default_factory=lambda: [0, 4, 16])
    n_templates: int = 1  # generative only: the first n of lowres.prompting.SENTIMENT_TEMPLATES
    batch_size: Count = 1  # 1 = serving latency, one example at a time; larger = throughput per example
    max_input_tokens: int = 512
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Count = 1

    def __post_init__(self):
        if self.dataset not in SENTIMENT_DATASETS:
            raise ValueError(f"dataset {self.dataset!r} is not a sentiment task (the label descriptions and "
                             f"verbalizers are positive/negative); valid: {', '.join(SENTIMENT_DATASETS)}")
        if not self.shots or any(s < 0 for s in self.shots) or len(set(self.shots)) != len(self.shots):
            raise ValueError(f"shots must be a non-empty list of distinct integers >= 0, got {self.shots!r}")
        if self.shots != sorted(self.shots):
            raise ValueError(f"shots must be increasing, got {self.shots}")
        if not 1 <= self.n_templates <= N_TEMPLATES:
            raise ValueError(f"n_templates must be in 1..{N_TEMPLATES}, got {self.n_templates}")
        if self.method == "embedding" and self.n_templates != 1:
            raise ValueError(f"n_templates={self.n_templates} applies to method=generative only (embedding "
                             "prompting has no template); set n_templates: 1")
        if self.method == "embedding" and self.model in OFFLINE_LMS:
            raise ValueError(f"model {self.model!r} is not a sentence embedder; for method=embedding valid: minilm, "
                             "or a sentence-transformers model (hub id or local dir)")
        if self.method == "generative" and self.model in EMBEDDERS_OFFLINE:
            raise ValueError(f"model {self.model!r} is a sentence embedder, not a language model; for "
                             "method=generative valid: google/flan-t5-small, google/flan-t5-base, tiny-t5 "
                             "(offline, untrained), or a local seq2seq/causal LM dir")
        if self.method == "generative" and self.model in ENCODERS_OFFLINE:
            raise ValueError(f"model {self.model!r} is an encoder-only model, not a language model; for "
                             "method=generative valid: google/flan-t5-small, google/flan-t5-base, tiny-t5 "
                             "(offline, untrained), or a local seq2seq/causal LM dir")
        if self.max_input_tokens < 16:
            raise ValueError(f"max_input_tokens must be >= 16, got {self.max_input_tokens}")
        check_device(self.device)
