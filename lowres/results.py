"""RunResult: the one object a study saves; atomic save/load; collect() -> tidy DataFrame."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

import pydantic

from lowres.paths import outputs_dir

SCHEMA = "lowres.run/1"
STATUSES = ("ok", "failed", "oom", "timeout")
INVALID = "invalid"  # a result.json that does not pass the schema: listed with its reason, never trusted
RESULT_FILE = "result.json"
NOTEBOOK_FILE = "notebook.ipynb"


class CorruptResult(ValueError):
    """A result.json that does not parse or does not pass the RunResult schema; the message says why."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_measurements(value: dict) -> dict:
    """Every window must be a Measurement (types checked by the Measurement dataclass itself)."""
    from lowres.meters.core import Measurement

    adapter = pydantic.TypeAdapter(Measurement)
    checked = {}
    for name, window in value.items():
        try:
            checked[name] = dataclasses.asdict(adapter.validate_python({"name": name, **window}))
        except pydantic.ValidationError as err:
            raise ValueError(f"window {name!r}: {schema_problems(err)}") from None
    return checked


@pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="ignore"))
class RunResult:
    """The one object a run saves. Writer (`save_result`) and reader (`load_result`) share this schema:
    constructing it checks every field's type, so a damaged file is refused with the field that is wrong."""

    study: str
    run_id: str
    status: Literal["ok", "failed", "oom", "timeout"]
    params: dict[str, Any]
    env: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    measurements: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # {window: Measurement}
    error: Optional[dict[str, Any]] = None  # {type, message, traceback, ...}
    artifacts: dict[str, str] = dataclasses.field(default_factory=dict)  # {name: path relative to the run dir}
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    profile: Optional[str] = None  # the params profile that produced the run (None: a notebook run by hand)
    measure: dict[str, Any] = dataclasses.field(default_factory=dict)  # the Meter's settings (lowres.config)
    schema: str = SCHEMA

    @pydantic.field_validator("measurements")
    @classmethod
    def _measurements(cls, value):
        return check_measurements(value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data) -> "RunResult":
        """Validate a parsed result.json; CorruptResult names the first fields that are wrong."""
        if not isinstance(data, dict):
            raise CorruptResult(f"expected a JSON object, got {type(data).__name__}")
        try:
            return cls(**{k: v for k, v in data.items() if k in FIELD_NAMES})
        except pydantic.ValidationError as err:
            raise CorruptResult(schema_problems(err)) from None
        except TypeError as err:  # a required field is missing
            raise CorruptResult(str(err)) from None


FIELD_NAMES = {f.name for f in dataclasses.fields(RunResult)}


def schema_problems(err: pydantic.ValidationError, most: int = 3) -> str:
    """'field.path: what is wrong (got value)' for the first `most` problems of a ValidationError."""
    problems = []
    for e in err.errors()[:most]:
        where = ".".join(str(x) for x in e["loc"]) or "result"
        got = repr(e.get("input"))
        problems.append(f"{where}: {e['msg'].lower()} (got {got[:60]}{'...' if len(got) > 60 else ''})")
    more = len(err.errors()) - most
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def error_info(exc: BaseException, tail_lines: int = 25) -> dict:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(lines)[-4000:].splitlines()[-tail_lines:]}


def file_mode() -> int:
    """The mode a plain `open(path, "w")` would give (0666 minus the umask): every output shares it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; result.json must read like every other output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_jsonable(value: Any):
    """json.dumps default: numpy scalars, paths, dataclasses."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def save_result(result: RunResult, run_dir: Path) -> Path:
    path = Path(run_dir) / RESULT_FILE
    atomic_write_text(path, json.dumps(result.to_dict(), indent=2, default=to_jsonable, allow_nan=True))
    return path


def load_result(path: Path) -> RunResult:
    """Read and validate a result.json (or the one in a run folder); CorruptResult says what is wrong."""
    path = Path(path)
    if path.is_dir() and path.name != RESULT_FILE:
        path = path / RESULT_FILE
    try:
        return RunResult.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptResult(f"{path}: not valid JSON ({err})") from None
    except IsADirectoryError:
        raise CorruptResult(f"{path}: is a directory, not a file") from None
    except OSError as err:
        raise CorruptResult(f"{path}: cannot be read ({err.strerror or err})") from None
    except CorruptResult as err:
        raise CorruptResult(f"{path}: {err}") from None


def status_of_folder(folder: Path) -> str | None:
    """The status of the run committed in `folder`: ok | failed | oom | timeout, `invalid` for a damaged
    result.json, None when there is none."""
    try:
        return load_result(folder).status
    except FileNotFoundError:
        return None
    except CorruptResult:
        return INVALID


def invalid_row(study: str, path: Path, reason: str) -> dict:
    """How collect() lists a result that failed validation: status `invalid` with the reason."""
    return {"study": study, "run_id": path.parent.name, "status": INVALID, "error": reason}


def result_paths(study: str, outputs: Path | None = None) -> list[Path]:
    """outputs/<study>/<run_id>/result.json of every committed run (hidden work folders are not runs)."""
    base = Path(outputs or outputs_dir()) / study
    return sorted(p for p in base.glob(f"*/{RESULT_FILE}") if not p.parent.name.startswith("."))


def scan_results(study: str, outputs: Path | None = None):
    """(path, RunResult) for each valid result and (path, CorruptResult) for each invalid one."""
    for path in result_paths(study, outputs):
        try:
            yield path, load_result(path)
        except CorruptResult as err:
            yield path, err


def iter_results(study: str, outputs: Path | None = None):
    """Every valid result of a study; invalid ones are reported on stderr with the reason, not fatal."""
    for path, found in scan_results(study, outputs):
        if isinstance(found, CorruptResult):
            print(f"warning: invalid result, not used: {found}", file=sys.stderr)
            continue
        yield found


def is_per_device(value) -> bool:
    """A short list of numbers (or None where a device has no figure): one column per device."""
    return isinstance(value, list) and len(value) <= 16 and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value)


def flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif is_per_device(value):
        for i, inner in enumerate(value):
            out[f"{prefix}.{i}"] = inner
        if value and None not in value:  # a sum over devices with a missing figure would be a silent guess
            out[f"{prefix}.sum"] = sum(value)
    else:
        out[prefix] = value if not isinstance(value, (list, tuple)) else json.dumps(value, default=str)


ENV_COLUMNS = ("hostname", "cpu_model", "gpu_names", "fingerprint", "git_sha", "torch")


def result_row(result: RunResult) -> dict:
    """One tidy row: identity, summary.* (lowres.summary: what every consumer reads), params.*, metrics.*,
    <window>.<field>, measure.*, env.<key>, error."""
    from lowres.summary import summary_columns

    row = {"study": result.study, "run_id": result.run_id, "status": result.status, "profile": result.profile,
           "started_at": result.started_at, "finished_at": result.finished_at, **summary_columns(result)}
    flatten("params", result.params, row)
    flatten("metrics", result.metrics, row)
    for window, measurement in (result.measurements or {}).items():
        flatten(window, measurement, row)
    flatten("measure", result.measure, row)
    for key in ENV_COLUMNS:
        row[f"env.{key}"] = (result.env or {}).get(key)
    row["error"] = (result.error or {}).get("message")
    return row


def number(row, column):
    """The float in a collected row's column; None when the column is missing, NaN or not a number."""
    try:
        value = float(row.get(column))
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def collect(study: str, outputs: Path | None = None):
    """All results of a study as a tidy pandas DataFrame (one row per run). An invalid result.json is a row
    with status `invalid` and the reason in `error`: listed, never trusted."""
    import pandas as pd

    rows = []
    for path, found in scan_results(study, outputs):
        rows.append(invalid_row(study, path, str(found)) if isinstance(found, CorruptResult) else result_row(found))
    return pd.DataFrame(rows)


def save_table(df, study: str, outputs: Path | None = None) -> dict[str, Path]:
    base = Path(outputs or outputs_dir()) / study
    base.mkdir(parents=True, exist_ok=True)
    paths = {"csv": base / "results.csv", "parquet": base / "results.parquet"}
    df.to_csv(paths["csv"], index=False)
    df.astype({c: "string" for c in df.columns if df[c].dtype == object}).to_parquet(paths["parquet"], index=False)
    return paths


MEASUREMENT_COLUMNS = ("wall_s", "steps", "samples", "tokens", "padded_tokens", "cpu_energy_j", "co2_kg", "flops")


def measurement_table(meter_or_dict):
    """One row per window with the stored figures and derived rates (computed here, never stored)."""
    import pandas as pd

    measurements = meter_or_dict.to_dict() if hasattr(meter_or_dict, "to_dict") else meter_or_dict
    rows = []
    for name, m in measurements.items():
        row = {"window": name, **{k: m.get(k) for k in MEASUREMENT_COLUMNS}}
        wall = m.get("wall_s") or None
        row["tokens_per_s"] = m["tokens"] / wall if wall and m.get("tokens") is not None else None
        row["samples_per_s"] = m["samples"] / wall if wall and m.get("samples") is not None else None
        row["energy_source"] = ", ".join(sorted({str(v) for v in (m.get("sources") or {}).values()})) or None
        rows.append(row)
    return pd.DataFrame(rows)


def energy_and_source(measurement: dict) -> tuple[float | None, str]:
    """Total energy of one window (GPUs + CPU package + DRAM, over the figures present) and where it came from:
    lowres.meters.Measurement.energy_j / energy_sources, the one definition of a window's energy."""
    from lowres.meters.core import Measurement

    m = Measurement.from_dict({"name": "window", **measurement})
    return m.energy_j, ", ".join(sorted(m.energy_sources())) or "unavailable"


def energy_per_sample(*measurements: dict | None) -> tuple[float | None, str]:
    """Joules per sample over windows that each covered the same samples, and where the figures came from."""
    total, sources, samples = 0.0, set(), None
    for m in measurements:
        joules, source = energy_and_source(m) if m else (None, "unavailable")
        if joules is None or not m.get("samples"):
            return None, "unavailable"
        total, samples = total + joules, m["samples"]
        sources |= set(source.split(", "))
    if samples is None:
        return None, "unavailable"
    return total / samples, ", ".join(sorted(sources - {"unavailable"})) or "unavailable"


def significant(value, digits: int = 3):
    """A number to `digits` significant figures (integers stay integers; text and None pass through)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return value
    rounded = float(f"{value:.{digits}g}")
    if isinstance(value, int) or (rounded.is_integer() and abs(rounded) >= 10 ** (digits - 1)):
        return int(round(value if abs(value) >= 10 ** digits else rounded))
    return rounded


def number_text(value) -> str:
    """A figure for a terminal table: three significant figures, whole numbers without decimals, '-' if none."""
    value = significant(value)
    return "-" if value is None or value != value else str(value)


def varying_params(frame) -> list[str]:
    """The params.* columns whose values differ between runs (what tells the runs of a grid apart)."""
    return [c for c in frame.columns if c.startswith("params.") and frame[c].astype(str).nunique() > 1]


def compact_table(frame):
    """One line per run: run id, the params that vary, status, headline quality, time, energy with its
    source (the run summaries); what `lowres collect` prints."""
    import pandas as pd

    def col(name):
        return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)

    table = pd.DataFrame({"run_id": frame["run_id"]})
    for column in varying_params(frame):
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce")
        whole = numbers.notna().any() and (numbers.dropna() % 1 == 0).all() and (numbers.notna() | values.isna()).all()
        table[column.removeprefix("params.")] = numbers.astype("Int64") if whole else values
    table["status"] = frame["status"]
    table["quality"] = [f"{m} {significant(v)}" if isinstance(m, str) and v == v and v is not None else "-"
                        for m, v in zip(col("summary.quality_metric"), col("summary.quality"))]
    table["time_s"] = col("summary.wall_s").map(number_text)
    table["energy_j"] = col("summary.energy_j").map(number_text)
    table["energy_source"] = col("summary.energy_source").fillna("-")
    if col("summary.contended").fillna(False).astype(bool).any():
        table["contended"] = col("summary.contended").fillna(False).astype(bool)
    return table
