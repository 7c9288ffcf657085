"""RunResult: the one object a study saves; atomic save/load; collect() -> tidy DataFrame."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lowres.paths import outputs_dir

SCHEMA = "lowres.run/1"
STATUSES = ("ok", "failed", "oom", "timeout")
RESULT_FILE = "result.json"


class CorruptResult(ValueError):
    """A result.json that does not parse or lacks required fields."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class RunResult:
    study: str
    run_id: str
    status: str
    params: dict
    env: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    measurements: dict = dataclasses.field(default_factory=dict)  # {window: Measurement.to_dict()}
    error: dict | None = None  # {type, message, traceback}
    artifacts: dict = dataclasses.field(default_factory=dict)  # {name: path relative to the run dir}
    started_at: str | None = None
    finished_at: str | None = None
    schema: str = SCHEMA

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"study", "run_id", "status", "params"} - set(data)
        if missing:
            raise CorruptResult(f"result lacks {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


def error_info(exc: BaseException, tail_lines: int = 25) -> dict:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(lines)[-4000:].splitlines()[-tail_lines:]}


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
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    try:
        return RunResult.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise CorruptResult(f"{path}: {err}") from None


def iter_results(study: str, outputs: Path | None = None):
    """Every parseable result of a study; corrupt ones are reported, not fatal."""
    base = Path(outputs or outputs_dir()) / study
    for path in sorted(base.glob(f"*/{RESULT_FILE}")):
        try:
            yield load_result(path)
        except CorruptResult as err:
            print(f"warning: skipping corrupt result {err}")


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
    """One tidy row: identity, params.*, metrics.*, <window>.<field>, env.<key>, error."""
    row = {"study": result.study, "run_id": result.run_id, "status": result.status,
           "started_at": result.started_at, "finished_at": result.finished_at}
    flatten("params", result.params, row)
    flatten("metrics", result.metrics, row)
    for window, measurement in (result.measurements or {}).items():
        flatten(window, measurement, row)
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
    """All results of a study as a tidy pandas DataFrame (one row per run)."""
    import pandas as pd

    rows = [result_row(r) for r in iter_results(study, outputs)]
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
