"""Selector: the plan `lowres.selector.recommend` gives for one task and environment (rules + estimator +
measured results on matching hardware), plus the design's worked examples and the memory-vs-batch curves."""
from typing import Literal, Optional

from lowres.config import BaseParams, params_dataclass


@params_dataclass
class Params(BaseParams):
    task: Literal["classification", "qa", "summarization", "chatbot"] = "classification"
    hardware: Literal["cpu", "gpu"] = "gpu"
    memory_gb: float = 4.0
    gpus: Optional[int] = None  # None: 1 on a GPU, none on a CPU
    latency_ms: float = 200.0
    dataset_size: Optional[int] = 10000
    accuracy_priority: bool = False
    seq_len: Optional[int] = None

    def __post_init__(self):
        from lowres import selector

        selector.make_facts(self.task, self.hardware, self.memory_gb, self.gpus, self.latency_ms, self.dataset_size,
                            self.accuracy_priority)
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be >= 1 or null (per-task default), got {self.seq_len}")
