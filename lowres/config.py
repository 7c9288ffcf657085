"""Study parameters: YAML profiles and grid axes -> validated, frozen Params, one per grid point.

Each study `NAME` has `params/NAME.yaml` (notebook, description, profiles, grid axes, seeds, measure) and a
frozen Params class in lowres/studies/NAME/params.py, the only place a default lives. The `measure` block
(`Measure`: energy mode, country for carbon, sampling rate, idle baseline) is validated the same way and
builds each run's Meter. Everything is checked here, before any kernel starts: unknown study/profile/key,
wrong type, bad value, empty axis, unresolvable model or dataset, missing data dir.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import hashlib
import re
from pathlib import Path
import math
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from lowres.paths import params_dir, project_root

YAML_KEYS = {"notebook", "description", "grid", "seeds", "profiles", "measure", "cluster"}
PROFILE_KEYS = {"description", "set", "grid", "seeds", "measure", "cluster"}
MEASURE_PREFIX = "measure."  # `--set measure.country_iso_code=ARG`
RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,80}$")
RUN_ID_DIGEST = 10  # hex digits of the params' hash in a run id
GENERATED_RUN_ID = re.compile(rf"^(?P<study>[a-z][a-z0-9_]*)-[0-9a-f]{{{RUN_ID_DIGEST}}}$")  # what run_id() makes
PARAMS_CONFIG = ConfigDict(extra="forbid", strict=True)


class YamlLoader(yaml.SafeLoader):
    """Safe YAML that also reads `3e-4` as a float (YAML 1.1 wants `3.0e-4`)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def safe_load(text: str):
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


class ParamsError(ValueError):
    """Bad study input; the message names the bad key/value and the valid choices."""


def check_model_name(value: str) -> str:
    from lowres.models import check_name_format

    return check_name_format(value)


def check_dataset_name(value: str) -> str:
    from lowres.data.corpora import dataset_names

    check_name("dataset", value, dataset_names())
    return value


# Field types shared by every study's Params: the range is part of the type, so a bad value is refused with
# the field, the value and the valid range before any kernel starts.
SEED_MAX = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything enforces
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Count = Annotated[int, Field(ge=1)]  # a whole number >= 1 (epochs, batch size, tokens, threads ...)
Steps = Annotated[int, Field(ge=0)]  # optional training steps; 0 = none
Size = Optional[Count]  # examples to take from a split; None = all of it
Rate = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]  # learning rates, probabilities
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # warm-up ratio, dropout
ModelName = Annotated[str, AfterValidator(check_model_name)]  # offline name, hub id or local dir (made absolute)
DatasetName = Annotated[str, AfterValidator(check_dataset_name)]
BatchSize = Union[Count, Literal["auto"]]  # "auto": the largest that fits the memory (lowres.batch_fit)
MemoryGB = Annotated[float, Field(gt=0, le=16_384, allow_inf_nan=False)]


def params_dataclass(cls):
    """Decorator for a study's Params: frozen, strict types, unknown keys refused (pydantic)."""
    return pydantic_dataclass(frozen=True, config=PARAMS_CONFIG)(cls)


@params_dataclass
class BaseParams:
    """Fields every study has. Subclasses add theirs (all with defaults = the offline smoke run)."""

    seed: Seed = 0

    def resources(self) -> dict[str, list[str]]:
        """Model and dataset names this run needs; checked before anything runs."""
        models = [getattr(self, f) for f in ("model",) if getattr(self, f, None) is not None]  # None: not chosen
        datasets = [getattr(self, f) for f in ("dataset",) if getattr(self, f, None) is not None]
        return {"models": models, "datasets": datasets}


def check_country(code: str) -> str:
    """An ISO 3166-1 alpha-3 code that codecarbon has an energy mix for (its carbon intensity source)."""
    from lowres.meters.carbon import known_countries

    check_name("country_iso_code", code, known_countries())
    return code


def energy_modes() -> tuple:
    from lowres.meters.core import ENERGY_MODES

    return ENERGY_MODES


@params_dataclass
class Measure:
    """How a run is metered (lowres.meters.Meter's settings); a `measure:` block in params/<study>.yaml or a
    profile, or `--set measure.<key>=<value>`."""

    energy: Literal["auto", "nvml", "rapl", "codecarbon", "off"] = "auto"  # == lowres.meters.core.ENERGY_MODES
    country_iso_code: Annotated[str, AfterValidator(check_country)] = "USA"  # grid carbon intensity for co2_kg
    sample_hz: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 10.0  # power/memory sampling
    idle_baseline_s: Annotated[float, Field(ge=0, le=600, allow_inf_nan=False)] = 0.0  # 0: no idle baseline


@params_dataclass
class ClassificationDataParams(BaseParams):
    """The fields of a study that fine-tunes a classifier on a corpus (quickstart, lora): one set of defaults."""

    model: ModelName = "tiny-bert"
    dataset: DatasetName = "synthetic-sentiment"
    train_size: Size = 1024
    val_size: Size = 200


@params_dataclass
class ClassificationTrainParams(ClassificationDataParams):
    """A classifier fine-tuning study's data and batch fields (quickstart, lora); `lowres.batch_fit.resolve`
    turns the batch fields into the micro-batch and accumulation the run trains with."""

    batch_size: BatchSize = 16  # per device; "auto": the largest power of two that fits, confirmed by a trial
    accumulate_grad_batches: Count = 1  # micro-batches per optimizer step: effective batch = batch x this x devices
    effective_batch_size: Size = None  # samples per optimizer step; set: accumulation = this / batch (rounded up)
    memory_budget_gb: Optional[MemoryGB] = None  # batch_size auto: memory to fit; None: the device's

    def __post_init__(self):
        from lowres.batch_fit import check_batch_params

        check_batch_params(self.batch_size, self.accumulate_grad_batches, self.effective_batch_size,
                           self.memory_budget_gb)


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """A study's resolved grid: what `lowres run` will execute."""

    study: str
    profile: str
    notebook: Path
    runs: list  # list[BaseParams]
    measure: Measure = Measure()

    def run_ids(self) -> list[str]:
        return [run_id(self.study, p, self.measure) for p in self.runs]


def available_studies() -> list[str]:
    from lowres import studies

    return studies.names()


def params_class(study: str) -> type:
    from lowres import studies

    return studies.params_class(study)


def check_name(what: str, value: Any, valid: list[str]) -> None:
    if value in valid:
        return
    text = str(value)
    hint = difflib.get_close_matches(text, valid, n=1) or difflib.get_close_matches(text.lower(), valid, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ParamsError(f"unknown {what} {value!r}{did_you_mean}; valid: {', '.join(map(str, valid))}")


def read_study_yaml(study: str, checked: bool = True) -> dict:
    """params/<study>.yaml; `checked`: the study must exist and every key must be known."""
    if checked:
        check_name("study", study, available_studies())
    path = params_dir() / f"{study}.yaml"
    spec = safe_load(path.read_text()) or {}
    if not checked:
        return spec
    if "defaults" in spec:
        raise ParamsError(f"{path.name} has a `defaults:` block; defaults live only in the study's Params "
                          f"(lowres/studies/{study}/params.py) - move them there or into a profile's `set:`")
    for key in spec:
        check_name(f"top-level key in {path.name}", key, sorted(YAML_KEYS))
    for name, profile in (spec.get("profiles") or {}).items():
        for key in profile or {}:
            check_name(f"key in profile {name!r} of {path.name}", key, sorted(PROFILE_KEYS))
    return spec


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_keys(cls: type, keys, where: str) -> None:
    for key in keys:
        check_name(f"parameter ({where})", key, field_names(cls))


def build_params(cls: type, values: dict, where: str = "params"):
    """Construct one Params; pydantic errors become ParamsError naming key, value and valid values."""
    check_keys(cls, values, where)
    try:
        return cls(**values)
    except ValidationError as err:
        raise ParamsError(f"invalid {where}: " + "; ".join(problem_texts(err.errors()))) from None
    except (TypeError, ValueError) as err:
        raise ParamsError(f"invalid {where}: {err}") from None


def short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def problem_text(error: dict) -> str:
    """One pydantic error as `key=value: what is wrong`; a cross-field check (no key) as its message alone,
    never the whole parameter set."""
    message = error["msg"].removeprefix("Value error, ")
    key = ".".join(str(x) for x in error["loc"])
    return f"{key}={short_repr(error.get('input'))}: {message}" if key else message


def problem_texts(errors: list[dict]) -> list[str]:
    """One text per field: a value refused by every branch of a union (`batch_size: 16 or "auto"`) is one
    problem whose alternatives are joined with "or"."""
    by_field: dict = {}
    for error in errors:
        by_field.setdefault(error["loc"][:1], []).append(error)
    texts = []
    for field_loc, group in by_field.items():
        if len(group) == 1 or not field_loc:
            texts += [problem_text(e) for e in group]
            continue
        wants = " or ".join(e["msg"].removeprefix("Input should be ") for e in group)
        texts.append(f"{field_loc[0]}={short_repr(group[0].get('input'))}: Input should be {wants}")
    return texts


def check_timeout(value):
    """`--timeout`: None (no limit) or whole seconds >= 1 (nbclient's cell timeout is an integer)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 1 or not number.is_integer():
        raise ParamsError(f"--timeout {value!r} is not allowed; valid: whole seconds >= 1 per cell (e.g. --timeout "
                          f"600), or leave it out for no limit")
    return int(number)


def expand_grid(defaults: dict, grid: dict, seeds: list) -> list[dict]:
    """Cartesian product of the grid axes x seeds, each over the defaults (axes in YAML order)."""
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ParamsError(f"grid axis {axis!r} must be a non-empty list, got {values!r}")
    if not isinstance(seeds, list) or not seeds:
        raise ParamsError(f"seeds must be a non-empty list, got {seeds!r}")
    axes = list(grid.items()) + [("seed", seeds)]
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        points.append({**defaults, **dict(zip((a for a, _ in axes), combo))})
    return points


def load_params(study: str, profile: str = "smoke", overrides: dict | None = None) -> StudyPlan:
    """Resolve params/<study>.yaml + profile + `--set` overrides into validated grid points."""
    spec = read_study_yaml(study)
    cls = params_class(study)
    profiles = spec.get("profiles") or {}
    check_profile(study, profile, sorted(profiles))
    chosen = profiles[profile] or {}
    defaults = dict(chosen.get("set") or {})
    grid = {**(spec.get("grid") or {}), **(chosen.get("grid") or {})}
    seeds = chosen.get("seeds", spec.get("seeds", [0]))
    overrides = dict(overrides or {})
    measure = build_measure({**(spec.get("measure") or {}), **(chosen.get("measure") or {}),
                             **pop_measure(overrides)}, f"{study}/{profile} measure")
    check_keys(cls, list(defaults) + list(grid), f"{study}.yaml")
    check_keys(cls, overrides, "--set")
    if "seed" in overrides:
        seeds = as_axis(overrides.pop("seed"))
    for key, value in overrides.items():
        grid.pop(key, None)
        if isinstance(value, list):
            grid[key] = value
        else:
            defaults[key] = value
    runs = [build_params(cls, point, f"{study}/{profile} grid point") for point in expand_grid(defaults, grid, seeds)]
    notebook = project_root() / spec.get("notebook", "")
    if not spec.get("notebook") or not notebook.is_file():
        raise ParamsError(f"{study}.yaml names notebook {spec.get('notebook')!r}, which does not exist")
    return StudyPlan(study=study, profile=profile, notebook=notebook, runs=unique(runs), measure=measure)


def check_profile(study: str, profile, valid: list[str]) -> None:
    if profile in valid:
        return
    hint = difflib.get_close_matches(str(profile), valid, n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ParamsError(f"study {study!r} has no profile {profile!r}{did_you_mean} (valid: {', '.join(valid)})")


def pop_measure(overrides: dict) -> dict:
    """Take the `measure.<key>` entries out of `--set` overrides (a measurement setting is never a grid axis)."""
    found = {}
    for key in [k for k in overrides if k.startswith(MEASURE_PREFIX)]:
        value = overrides.pop(key)
        if isinstance(value, list):
            raise ParamsError(f"--set {key}={value!r}: measurement settings take one value, not a grid axis")
        found[key[len(MEASURE_PREFIX):]] = value
    return found


def build_measure(values: dict, where: str = "measure") -> Measure:
    return build_params(Measure, values, where)


def measure_dict(measure) -> dict:
    """A Measure (or a dict of its settings) as the dict result.json stores, defaults filled in."""
    return to_dict(measure if isinstance(measure, Measure) else build_measure(dict(measure or {})))


def as_axis(value) -> list:
    return value if isinstance(value, list) else [value]


def unique(runs: list) -> list:
    seen, kept = set(), []
    for p in runs:
        key = canonical_json(p)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` strings -> dict; values are YAML scalars/lists (safe_load), never code."""
    out = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set {pair!r} does not parse; expected key=value, e.g. --set batch_size=32")
        try:
            out[key.strip()] = safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ParamsError(f"--set {pair!r}: value does not parse as YAML ({err.problem})") from None
    return out


def to_dict(params) -> dict:
    return dataclasses.asdict(params)


# Parameters added after results existed, with the value that reproduces the behaviour before them: at that value
# they are left out of a run's identity, so a new axis does not orphan the results measured before it.
NEUTRAL_DEFAULTS = {"accumulate_grad_batches": 1, "effective_batch_size": None, "memory_budget_gb": None,
                    "model": None, "probe": False, "probe_seconds": None, "train_hours": None, "distill_steps": 0}


def identity(values: dict) -> dict:
    """A run's params as they identify it: `values` without the parameters at their neutral default."""
    return {k: v for k, v in values.items() if not (k in NEUTRAL_DEFAULTS and v == NEUTRAL_DEFAULTS[k])}


def canonical_json(params) -> str:
    return json.dumps(identity(to_dict(params)), sort_keys=True, separators=(",", ":"))


def run_id(study: str, params, measure=None) -> str:
    """study-<hash of the params>; measurement settings other than the defaults are part of the identity (a run
    metered differently is another run)."""
    identity = canonical_json(params)
    settings = measure_dict(measure)
    if settings != to_dict(Measure()):
        identity += json.dumps(settings, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(identity.encode()).hexdigest()[:RUN_ID_DIGEST]
    rid = f"{study}-{digest}"
    check_run_id(rid)
    return rid


def check_run_id(rid: str) -> str:
    if not isinstance(rid, str) or not RUN_ID_PATTERN.match(rid):
        raise ParamsError(f"run id {rid!r} is not allowed: lower-case letters, digits, '-' and '_' only")
    return rid


def params_for_notebook(study: str, values: dict):
    """Validate the parameters a notebook received (papermill-injected or edited by hand)."""
    return build_params(params_class(study), values, f"{study} notebook parameters")


__all__ = [
    "BaseParams", "BatchSize", "ClassificationTrainParams", "Count", "DatasetName", "Measure", "Fraction", "ModelName", "Rate", "Seed", "Size", "Steps", "Literal", "ParamsError", "StudyPlan", "available_studies", "build_params",
    "load_params", "params_dataclass", "parse_overrides", "run_id", "params_for_notebook", "to_dict",
]
