"""Seq2seq fine-tuning of an encoder-decoder (T5) on summarization or generative QA, and what generating costs.

One run trains with one method (`full`; `lora`: peft adapters on T5's attention q/v; `lora-8bit`: the frozen base
in 8 bits by bitsandbytes, where its 8-bit layers run - probed, see lowres.lora.check_method) at one precision,
then scores greedy generations on the validation set (ROUGE-1/2/L; SQuAD EM/F1 for QA) beside a model-free
baseline, and times generation one request at a time (greedy and beam search) and in batches. As in the lora
study, the LoRA settings are cleared for `full`, so a grid over ranks keeps one full run.
"""
from typing import Literal, Optional

from lowres.config import BaseParams, Count, DatasetName, Fraction, ModelName, Rate, Size, params_dataclass
from lowres.lora import split_names


@params_dataclass
class Params(BaseParams):
    model: ModelName = "tiny-t5"
    dataset: DatasetName = "synthetic-summaries"
    train_size: Size = 768
    val_size: Size = 100
    method: Literal["full", "lora", "lora-8bit"] = "full"
    lora_rank: Optional[Count] = 8
    lora_alpha: Optional[Count] = 16
    lora_dropout: Optional[Fraction] = 0.05
    lora_target_modules: Optional[str] = None  # comma-separated; None: T5 attention's q,v
    lora_lr: Optional[Rate] = 1e-3
    lr: Optional[Rate] = 5e-3  # full fine-tuning (the offline tiny-t5 trains from random weights: a large step)
    epochs: Count = 4
    batch_size: Count = 8
    accumulate_grad_batches: Count = 1
    max_length: Count = 128  # source tokens (document, or question + context)
    max_target_length: Count = 32  # reference tokens in training
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"  # training; generation runs in fp32
    max_new_tokens: Count = 32
    num_beams: Count = 4  # the beam search timed beside greedy decoding
    latency_requests: Count = 20  # requests timed one at a time, per decoding
    throughput_batch_size: Count = 16

    @property
    def learning_rate(self) -> float:
        return self.lr if self.method == "full" else self.lora_lr

    @property
    def target_modules(self) -> Optional[list[str]]:
        return split_names(self.lora_target_modules) if self.lora_target_modules is not None else None

    def __post_init__(self):
        from lowres.config import check_name
        from lowres.data.corpora import seq2seq_dataset_names
        from lowres.lora import settle_lora_fields

        check_name("dataset", self.dataset, seq2seq_dataset_names())
        settle_lora_fields(self)
        if self.num_beams < 2:
            raise ValueError(f"num_beams={self.num_beams} would time greedy twice; valid: an integer >= 2 (e.g. 4)")
