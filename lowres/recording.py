"""The notebook side of a run: validated params, a Meter, the run folder, and `save()` -> result.json."""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

from lowres import config, results
from lowres.meters import Meter
from lowres.paths import run_dir


@dataclasses.dataclass
class Run:
    study: str
    params: object
    run_id: str
    dir: Path
    meter: Meter
    started_at: str
    artifacts: dict = dataclasses.field(default_factory=dict)

    def seed_everything(self) -> int:
        import lightning as L

        L.seed_everything(self.params.seed, workers=True, verbose=False)
        random.seed(self.params.seed)
        return self.params.seed

    def path(self, name: str) -> Path:
        """A file inside this run's folder (for plots, tables, adapters)."""
        return self.dir / name

    def save_figure(self, figure_or_axes, name: str) -> Path:
        """Save a matplotlib figure (or the figure of an Axes) as a PNG artifact of this run."""
        figure = getattr(figure_or_axes, "figure", figure_or_axes)
        path = self.path(name)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        self.artifacts[name] = name
        return path

    def save(self, metrics: dict | None = None, artifacts: dict | None = None, status: str = "ok",
             error: dict | None = None) -> Path:
        from lowres.env import fingerprint

        result = results.RunResult(study=self.study, run_id=self.run_id, status=status,
                                   params=config.to_dict(self.params), env=fingerprint(), metrics=metrics or {},
                                   measurements=self.meter.to_dict(), error=error, artifacts={**self.artifacts, **(artifacts or {})},
                                   started_at=self.started_at, finished_at=results.utc_now())
        return results.save_result(result, self.dir)


def start_run(study: str, values: dict, run_id: str | None = None, output_dir: str | None = None,
              **meter_kwargs) -> Run:
    """Validate a notebook's parameters and open its run (folder, Meter); works by hand and under papermill."""
    params = config.params_for_notebook(study, values)
    rid = run_id or config.run_id(study, params)
    folder = Path(output_dir) if output_dir else run_dir(study, rid)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Run(study=study, params=params, run_id=rid, dir=folder, meter=Meter(**meter_kwargs),
               started_at=results.utc_now())
