"""The notebook side of a run: validated params, a Meter, the run folder, and `save()` -> result.json.

A notebook opens its run with `run = lowres.start_run("lora", globals())`: exactly the study's Params fields
are taken from the notebook's parameters (generated from Params, so nothing is typed twice), plus what the
runner injects beside them (`profile`, `measure`, `run_id`, `output_dir`). Later cells read `run.params`.
"""
from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

from lowres import config, results
from lowres.meters import Meter
from lowres.paths import run_dir

RUN_SETTINGS = ("study", "profile", "measure", "run_id", "output_dir")  # injected beside the Params fields


@dataclasses.dataclass
class Run:
    study: str
    params: object
    run_id: str
    dir: Path
    meter: Meter
    started_at: str
    profile: str | None = None
    measure: dict = dataclasses.field(default_factory=dict)
    artifacts: dict = dataclasses.field(default_factory=dict)

    @property
    def location(self) -> Path:
        """Where this run's result lands: under `lowres run` the attempt folder is committed to
        outputs/<study>/<run_id> when the notebook finishes; by hand it is written there directly."""
        from lowres.attempts import WORK

        return run_dir(self.study, self.run_id) if WORK in self.dir.parts else self.dir

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

    def result(self, metrics: dict | None = None, artifacts: dict | None = None, status: str = "ok",
               error: dict | None = None) -> results.RunResult:
        """This run as a RunResult (what `save` writes; analyses use it for a run not saved yet)."""
        from lowres.env import fingerprint

        return results.RunResult(study=self.study, run_id=self.run_id, status=status,
                                 params=config.to_dict(self.params), env=fingerprint(), metrics=metrics or {},
                                 measurements=self.meter.to_dict(), error=error,
                                 artifacts={**self.artifacts, **(artifacts or {})}, started_at=self.started_at,
                                 finished_at=results.utc_now(), profile=self.profile, measure=self.measure)

    def save(self, metrics: dict | None = None, artifacts: dict | None = None, status: str = "ok",
             error: dict | None = None) -> Path:
        return results.save_result(self.result(metrics, artifacts, status, error), self.dir)


def check_run_id(study: str, params, measure, given: str | None) -> str:
    """The run id the runner injected must be the one these params give: else the notebook received another
    grid point's id (a forwarding slip) and its result would be filed under the wrong run."""
    expected = config.run_id(study, params, measure)
    if given is not None and given != expected:
        raise config.ParamsError(f"run id {given!r} does not match the parameters this notebook received (they give "
                                 f"{expected!r}); a parameter did not reach the notebook as the runner planned it")
    return expected


def start_run(study: str, namespace: dict | None = None, **values) -> Run:
    """Validate a notebook's parameters and open its run (folder, Meter); works by hand and under papermill.

    `namespace`: the notebook's `globals()` (or any dict); exactly the study's Params fields are taken from it,
    with `values` overriding. Missing fields take Params' defaults. `measure` (a dict of lowres.config.Measure
    settings) builds the Meter; `run_id` must match the params; `output_dir` defaults to outputs/<study>/<run_id>.
    """
    from lowres import quiet

    quiet.third_party()
    source = {**(namespace or {}), **values}
    names = config.field_names(config.params_class(study))
    params = config.params_for_notebook(study, {name: source[name] for name in names if name in source})
    measure = config.build_measure(dict(source.get("measure") or {}), f"{study} measure settings")
    rid = check_run_id(study, params, measure, source.get("run_id"))
    folder = Path(source["output_dir"]) if source.get("output_dir") else run_dir(study, rid)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = config.to_dict(measure)
    return Run(study=study, params=params, run_id=rid, dir=folder, meter=Meter(**settings),
               started_at=results.utc_now(), profile=source.get("profile"), measure=settings)
