"""Selector: the plan `lowres.selector.recommend` gives for one task and environment (rules + estimator +
measured results on matching hardware), plus the design's worked examples and the memory-vs-batch curves."""
from typing import Annotated, Literal, Optional

from pydantic import Field

from lowres.config import BaseParams, ModelName, params_dataclass
from lowres.probe import MAX_SECONDS, MIN_SECONDS


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
    model: Optional[ModelName] = None  # plan with this model instead of the size rules' choice
    train_hours: Optional[float] = None  # the most one training epoch may take (checked on a CPU); None: no bound
    probe: bool = False  # run the plan on this machine for a minute (lowres.probe) and save what it measured
    probe_seconds: Optional[Annotated[int, Field(ge=MIN_SECONDS, le=MAX_SECONDS)]] = None  # cap; None: DEFAULT_SECONDS

    def __post_init__(self):
        from lowres import selector

        selector.make_facts(self.task, self.hardware, self.memory_gb, self.gpus, self.latency_ms, self.dataset_size,
                            self.accuracy_priority)
        if self.model is not None:
            selector.check_model(self.model)
        if self.train_hours is not None:
            selector.check_train_hours(self.train_hours)
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be >= 1 or null (per-task default), got {self.seq_len}")
